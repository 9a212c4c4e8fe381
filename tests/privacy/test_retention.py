"""Retention removes only what is past the cut-off, and a second run changes nothing."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from cartguard.privacy import purge
from cartguard.privacy.scrub import scrub_sqlite
from cartguard.privacy.transcripts import conversation_ids_in_store
from cartguard.shop.db import make_engine, session_scope
from cartguard.shop.models import AuditEntry, ConversationOwner, SupportTicket
from cartguard.shop.models._common import utcnow

NOW = datetime(2031, 3, 1, 12, 0, 0)


def _audit_count() -> int:
    with session_scope() as session:
        return session.execute(select(func.count(AuditEntry.id))).scalar_one()


@pytest.fixture(scope="module")
def aged(privacy_env, add_conversation, save_conversation):
    """Conversations and tickets of several ages relative to NOW (retention 90 days)."""
    with session_scope() as session:
        ids = {
            "old": add_conversation(session, 1, [("old one", "ok")], NOW - timedelta(days=120)),
            "edge": add_conversation(session, 2, [("edge", "ok")], NOW - timedelta(days=89)),
            "new": add_conversation(session, 1, [("new one", "ok")], NOW - timedelta(days=2)),
        }
        session.add_all(
            [
                SupportTicket(
                    id="TK-90001",
                    customer_id=1,
                    kind="handoff",
                    summary="old",
                    transcript="customer: old words",
                    created_at=NOW - timedelta(days=200),
                    updated_at=NOW - timedelta(days=200),
                ),
                SupportTicket(
                    id="TK-90002",
                    customer_id=1,
                    kind="handoff",
                    summary="recent",
                    transcript="customer: recent words",
                    created_at=NOW - timedelta(days=5),
                    updated_at=NOW - timedelta(days=5),
                ),
            ]
        )
    # anonymous conversations nobody owns: one stale, one fresh
    save_conversation("orphan-old", [("anon", "hi")], NOW - timedelta(days=100))
    save_conversation("orphan-new", [("anon", "hi")], NOW - timedelta(days=1))
    ids["orphan-old"], ids["orphan-new"] = "orphan-old", "orphan-new"
    return ids


def test_purge_removes_only_old_transcripts_and_is_idempotent(aged) -> None:
    before = _audit_count()
    report = purge(now=NOW, retention_days=90)
    assert report.conversations == 1
    assert report.tracker_events > 0 and report.ticket_transcripts == 1

    stored = set(conversation_ids_in_store())
    assert aged["old"] not in stored and "orphan-old" not in stored
    assert {aged["edge"], aged["new"], "orphan-new"} <= stored
    with session_scope() as session:
        owners = set(session.execute(select(ConversationOwner.conversation_id)).scalars())
        old_ticket = session.get(SupportTicket, "TK-90001")
        new_ticket = session.get(SupportTicket, "TK-90002")
    assert aged["old"] not in owners and {aged["edge"], aged["new"]} <= owners
    assert old_ticket.transcript is None and old_ticket.summary == "old"  # ticket itself kept
    assert new_ticket.transcript == "customer: recent words"
    assert _audit_count() == before + 1

    again = purge(now=NOW, retention_days=90)
    assert again.total == 0
    assert _audit_count() == before + 1  # a no-op writes nothing, not even an audit entry


def test_purge_follows_the_clock(aged) -> None:
    # two days later the 89-day-old conversation has crossed the line; the 2-day one has not
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        report = purge(retention_days=90)
    assert report.conversations == 1
    stored = set(conversation_ids_in_store())
    assert aged["edge"] not in stored and aged["new"] in stored


def test_purge_refuses_a_nonsensical_retention(privacy_env) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        purge(now=utcnow(), retention_days=0)


def test_scrub_makes_deleted_rows_unreadable_on_disk(tmp_path) -> None:
    path = tmp_path / "scrub.db"
    marker = b"Quixotic-Marker-7731"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA secure_delete=OFF")  # what many SQLite builds do by default
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("filler " * 50,)] * 20 + [(marker.decode(),)])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("DELETE FROM t WHERE v = ?", (marker.decode(),))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert marker in path.read_bytes()  # deleted, yet still on disk

    result = scrub_sqlite(make_engine(f"sqlite:///{path}"))
    assert result.done
    leftovers = [p for p in tmp_path.iterdir() if marker in p.read_bytes()]
    assert leftovers == []


def test_a_declined_transcript_goes_once_its_session_has_ended(privacy_env, add_conversation):
    """Consent declined: deleted as soon as the session ends, long before the retention period."""
    with session_scope() as session:
        declined = add_conversation(session, 1, [("no thanks", "ok")], NOW - timedelta(minutes=90))
        still_open = add_conversation(
            session, 1, [("no thanks", "ok")], NOW - timedelta(minutes=10)
        )
        agreed = add_conversation(session, 2, [("yes", "ok")], NOW - timedelta(minutes=90))
        for conversation_id in (declined, still_open):
            session.get(ConversationOwner, conversation_id).transcript_consent = False
    purge(now=NOW, retention_days=90)
    stored = set(conversation_ids_in_store())
    assert declined not in stored
    assert {still_open, agreed} <= stored
    with session_scope() as session:
        assert session.get(ConversationOwner, declined) is None
        assert session.get(ConversationOwner, still_open) is not None
