"""Reading and deleting conversation transcripts in Rasa's SQL tracker store.

Rasa's ``SQLTrackerStore`` keeps one row per event in the table ``events`` (``sender_id`` is
the conversation id, ``timestamp`` a Unix time, ``data`` the event as JSON). We address that
table with SQLAlchemy Core and never create it: when the tracker database has no such table
yet, there is nothing to read or delete. Only user and bot messages become transcript lines,
and their text passes through the PII redactor before anyone sees it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, delete, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine

from cartguard.privacy.integrations import redact_text
from cartguard.settings import get_settings
from cartguard.shop.db import get_engine

_metadata = MetaData()
#: Rasa 3.6's ``SQLTrackerStore.SQLEvent`` table, as far as we read and delete it.
events = Table(
    "events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

_CHUNK = 500  # keeps IN (...) lists well below every database's parameter limit


def tracker_engine() -> Engine:
    return get_engine(get_settings().tracker_database_url)


def _has_events(engine: Engine) -> bool:
    return sa_inspect(engine).has_table("events")


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@dataclass(frozen=True)
class TranscriptLine:
    at: str | None  # ISO 8601, UTC
    speaker: str  # "customer" or "assistant"
    text: str

    def as_dict(self) -> dict[str, str | None]:
        return {"at": self.at, "speaker": self.speaker, "text": self.text}


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def redacted_transcript(conversation_id: str, engine: Engine | None = None) -> list[TranscriptLine]:
    """The conversation's user and bot messages, in order, with personal data redacted."""
    engine = engine or tracker_engine()
    if not _has_events(engine):
        return []
    lines: list[TranscriptLine] = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.type_name, events.c.timestamp, events.c.data)
            .where(events.c.sender_id == conversation_id, events.c.type_name.in_(("user", "bot")))
            .order_by(events.c.id)
        )
        for type_name, timestamp, data in rows:
            try:
                text = (json.loads(data or "{}") or {}).get("text")
            except ValueError:
                text = None
            if not text:
                continue
            speaker = "customer" if type_name == "user" else "assistant"
            lines.append(TranscriptLine(_iso(timestamp), speaker, redact_text(str(text)) or ""))
    return lines


def format_transcript(lines: list[TranscriptLine]) -> str:
    return "\n".join(f"[{line.at or '?'}] {line.speaker}: {line.text}" for line in lines)


def delete_conversations(conversation_ids: Iterable[str], engine: Engine | None = None) -> int:
    """Delete every event of these conversations; returns the number of events removed."""
    ids = sorted(set(conversation_ids))
    engine = engine or tracker_engine()
    if not ids or not _has_events(engine):
        return 0
    removed = 0
    with engine.begin() as conn:
        for chunk in _chunks(ids):
            removed += conn.execute(delete(events).where(events.c.sender_id.in_(chunk))).rowcount
    return removed


def stale_conversations(cutoff: datetime, engine: Engine | None = None) -> list[str]:
    """Conversations whose newest event is older than ``cutoff`` (naive UTC or aware)."""
    engine = engine or tracker_engine()
    if not _has_events(engine):
        return []
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=timezone.utc)
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.sender_id)
            .group_by(events.c.sender_id)
            .having(func.max(events.c.timestamp) < cutoff.timestamp())
        )
        return [row[0] for row in rows]


def conversation_ids_in_store(engine: Engine | None = None) -> list[str]:
    engine = engine or tracker_engine()
    if not _has_events(engine):
        return []
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(select(events.c.sender_id).distinct())]
