"""The audit chain under concurrency, rollbacks and truncation (issue 14's attacks).

* eight honest writers at once once produced two entries with the same predecessor, and
  `audit verify` then said "chain broken" for ever: now appends are serialized on one head
  row, on SQLite and on PostgreSQL;
* deleting the newest entries, or all of them, used to verify as ok: now the head row, the
  anchor file outside the database and a head the operator kept each catch it;
* a rolled-back append leaves no gap in the sequence (it is not an autoincrement).
"""

from __future__ import annotations

import json
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.engine import Engine

from cartguard import audit
from cartguard.shop.db import make_engine, session_scope
from cartguard.shop.models import AuditEntry, Base
from cartguard.shop.models.audit import GENESIS, AuditHead
from cartguard.staff.roles import Role

WRITERS = 8
PER_WRITER = 12
PG_URL = os.environ.get("CARTGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _write_concurrently(engine: Engine | None) -> None:
    barrier = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(PER_WRITER):
            with session_scope(engine) as session:
                audit.record(session, f"system:writer-{n}", "test.concurrent", f"n:{n}:{i}")

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))


def _assert_one_chain(engine: Engine | None, at_least: int) -> None:
    with session_scope(engine) as session:
        rows = session.execute(select(AuditEntry.seq, AuditEntry.prev_hash)).all()
        result = audit.verify(session)
    seqs = sorted(seq for seq, _ in rows)
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps, no duplicates
    assert len({prev for _, prev in rows}) == len(rows)  # nobody shares a predecessor
    assert len(rows) >= at_least
    assert result.ok, result.reason
    assert result.checked == len(rows)


def test_eight_concurrent_writers_then_verify_is_ok_sqlite(privacy_env) -> None:
    _write_concurrently(None)
    _assert_one_chain(None, WRITERS * PER_WRITER)


@pytest.fixture()
def pg_engine(privacy_env) -> Iterator[Engine]:
    """A schema of our own on the local PostgreSQL (marked `services`: no skip)."""
    schema = f"audit_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, future=True)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        PG_URL,
        future=True,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=WRITERS,
        max_overflow=4,
    )
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.services
def test_eight_concurrent_writers_then_verify_is_ok_postgres(pg_engine) -> None:
    _write_concurrently(pg_engine)
    _assert_one_chain(pg_engine, WRITERS * PER_WRITER)


@pytest.mark.services
def test_rolled_back_append_leaves_no_gap_postgres(pg_engine) -> None:
    """PostgreSQL sequences skip ids on rollback; the chain's own numbers do not."""
    with session_scope(pg_engine) as session:
        audit.record(session, "system:test", "test.before")
    with pytest.raises(RuntimeError), session_scope(pg_engine) as session:
        audit.record(session, "system:test", "test.rolled_back")
        raise RuntimeError("the action this entry described failed")
    with session_scope(pg_engine) as session:
        audit.record(session, "system:test", "test.after")
    with session_scope(pg_engine) as session:
        rows = session.execute(select(AuditEntry.id, AuditEntry.seq).order_by(AuditEntry.seq)).all()
        assert audit.verify(session).ok
    assert [seq for _, seq in rows] == [1, 2]
    assert rows[1][0] - rows[0][0] == 2  # the id sequence did skip one


def test_rolled_back_append_leaves_no_gap_sqlite(privacy_env) -> None:
    with pytest.raises(RuntimeError), session_scope() as session:
        audit.record(session, "system:test", "test.rolled_back")
        raise RuntimeError("rolled back")
    with session_scope() as session:
        entry = audit.record(session, "system:test", "test.after")
        assert entry.seq == audit.database_head(session).seq
        assert audit.verify(session).ok


# --- truncation: the newest entry, or all of them --------------------------------------------


@pytest.fixture()
def restore_log(privacy_env) -> Iterator[None]:
    """Put the log back as it was after a test that deletes from it."""
    with session_scope() as session:  # at least one entry, so the anchor file exists
        audit.record(session, "system:test", "test.setup")
    with session_scope() as session:
        saved = [
            {c.name: getattr(row, c.name) for c in AuditEntry.__table__.columns}
            for row in session.execute(select(AuditEntry)).scalars()
        ]
        head = session.get(AuditHead, 1)
        saved_head = (head.seq, head.entry_hash)
    anchors = audit.anchor_path().read_bytes()
    yield
    audit.anchor_path().write_bytes(anchors)
    with session_scope() as session:
        session.execute(delete(AuditEntry))
        session.add_all(AuditEntry(**row) for row in saved)
        session.execute(update(AuditHead).values(seq=saved_head[0], entry_hash=saved_head[1]))
    with session_scope() as session:
        assert audit.verify(session).ok


def _newest(session) -> AuditEntry:
    return session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()


def test_deleting_the_newest_entry_fails_verify(privacy_env, restore_log) -> None:
    with session_scope() as session:
        audit.record(session, "system:test", "test.newest")
    with session_scope() as session:
        assert audit.verify(session).ok
        newest = _newest(session)
        gone = newest.seq
        session.delete(newest)  # the attacker leaves the head row alone...
    with session_scope() as session:
        result = audit.verify(session)
    assert not result.ok and "head row" in result.reason and result.first_bad_seq == gone


def test_deleting_the_newest_entry_and_fixing_the_head_row_fails_verify(
    privacy_env, restore_log
) -> None:
    with session_scope() as session:
        audit.record(session, "system:test", "test.newest")
    with session_scope() as session:
        newest = _newest(session)
        gone = newest.seq
        session.delete(newest)
        session.flush()
        before = _newest(session)  # ...or rewinds it too: the anchor outside still knows
        session.execute(update(AuditHead).values(seq=before.seq, entry_hash=before.entry_hash))
    with session_scope() as session:
        result = audit.verify(session)
    assert not result.ok
    assert "anchor file" in result.reason and "newest entries were deleted" in result.reason
    assert result.first_bad_seq == gone


def test_deleting_everything_fails_verify_with_the_anchor_or_a_kept_head(
    privacy_env, restore_log
) -> None:
    with session_scope() as session:
        kept = audit.database_head(session)
        session.execute(delete(AuditEntry))
        session.execute(update(AuditHead).values(seq=0, entry_hash=GENESIS))
    with session_scope() as session:
        by_anchor = audit.verify(session)
        by_operator = audit.verify(session, use_anchor=False, expected=kept)
        unchecked = audit.verify(session, use_anchor=False)
    assert not by_anchor.ok and by_anchor.checked == 0 and "anchor file" in by_anchor.reason
    assert not by_operator.ok and "the head you supplied" in by_operator.reason
    assert unchecked.ok  # what verify said before: nothing outside the database to compare


def test_a_truncated_log_refilled_past_the_anchor_still_fails(privacy_env, restore_log) -> None:
    with session_scope() as session:
        anchored = audit.database_head(session)
        session.execute(delete(AuditEntry).where(AuditEntry.seq > anchored.seq - 3))
        survivor = _newest(session)
        session.execute(update(AuditHead).values(seq=survivor.seq, entry_hash=survivor.entry_hash))
    for n in range(6):  # honest writers carry on past the old head
        with session_scope() as session:
            audit.record(session, "system:test", "test.refill", f"n:{n}")
    with session_scope() as session:
        identity = audit.database_identity(session)
        result = audit.verify(session)
    assert audit.anchored_head(identity) == anchored  # the anchor never moved onto the fork
    assert not result.ok and "not in this log" in result.reason


def test_anchor_file_is_private_and_follows_commits(privacy_env) -> None:
    with session_scope() as session:
        entry = audit.record(session, "system:test", "test.anchor")
        identity = audit.database_identity(session)
    path = audit.anchor_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit.anchored_head(identity) == audit.Head(entry.seq, entry.entry_hash)
    assert json.loads(path.read_text())[identity]["seq"] == entry.seq


def test_verify_cli_fails_after_deleting_the_newest_entry(
    staff_accounts, run_cli, restore_log
) -> None:
    admin = staff_accounts[Role.ADMINISTRATOR]
    ok = run_cli(admin, ["audit", "verify"])
    assert ok.exit_code == 0, ok.stderr
    head_line = next(line for line in ok.stdout.splitlines() if line.startswith("head "))
    kept = head_line.split()[1]
    with session_scope() as session:
        newest = _newest(session)
        session.delete(newest)
        session.flush()
        before = _newest(session)
        session.execute(update(AuditHead).values(seq=before.seq, entry_hash=before.entry_hash))
    tampered = run_cli(admin, ["audit", "verify", "--expect", kept])
    assert tampered.exit_code == 2
    assert "TAMPERED" in tampered.stderr and "newest entries were deleted" in tampered.stderr


# --- logs written before sequence numbers (migration 0003) ----------------------------------


def test_a_log_from_before_sequence_numbers_upgrades_and_verifies(tmp_path, privacy_env) -> None:
    from datetime import datetime

    from cartguard.keys import load_keys
    from cartguard.shop import schema

    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    schema.upgrade(engine, "0002_offered_payloads")
    key = load_keys().raw("audit_key")
    prev = GENESIS
    with engine.begin() as conn:
        for n in range(4):  # written the way cartguard wrote them before
            at = datetime(2026, 11, 1, 12, 0, n)
            digest = audit._digest(key, None, prev, at, "system", "legacy.event", f"n:{n}", "{}")
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, subject, details, prev_hash, "
                    "entry_hash) VALUES (:at, 'system', 'legacy.event', :s, '{}', :p, :h)"
                ),
                {"at": at, "s": f"n:{n}", "p": prev, "h": digest},
            )
            prev = digest
    schema.upgrade(engine)
    with session_scope(engine) as session:
        assert audit.verify(session, use_anchor=False).ok
        entry = audit.record(session, "system:test", "after.upgrade")
    assert entry.seq == 5 and entry.prev_hash == prev
    with session_scope(engine) as session:
        result = audit.verify(session)
        assert result.ok and result.checked == 5
    engine.dispose()
