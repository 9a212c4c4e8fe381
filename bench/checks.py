"""Reading conversations back from the tracker database: nothing lost, doubled or reordered.

For each conversation the driver played, :func:`check_conversations` reads the stored events
(in insertion order) and compares them with what the shopper said:

* every user message is stored exactly once, in the order it was typed (lost -> missing,
  doubled -> extra, reordered -> a different sequence);
* every user message is followed by the bot's turn, ending in ``action_listen``, before the
  next user message (no interleaving of two turns of one conversation: the lock store works);
* timestamps never go backwards in insertion order.

Texts are compared after the same redaction the store applies, so the check does not
depend on the script being free of anything the detector would mask.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa


@dataclass
class StoredConversation:
    """The events of one sender id, as stored."""

    sender_id: str
    events: list[dict] = field(default_factory=list)

    @property
    def user_texts(self) -> list[str]:
        return [e.get("text") or "" for e in self.events if e.get("event") == "user"]


def load_events(database_url: str, sender_ids: Iterable[str]) -> dict[str, StoredConversation]:
    """Every stored event of ``sender_ids``, in insertion order."""
    wanted = sorted(set(sender_ids))
    out = {sid: StoredConversation(sid) for sid in wanted}
    if not wanted:
        return out
    engine = sa.create_engine(database_url, future=True)
    try:
        with engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    sa.text(
                        "SELECT sender_id, data FROM events WHERE sender_id IN :ids ORDER BY id"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": chunk},
                )
                for sender_id, data in rows:
                    out[sender_id].events.append(json.loads(data))
    finally:
        engine.dispose()
    return out


def _normalise(text: str) -> str:
    from cartguard.pii import redact

    return redact(text).text.strip()


def problems_in(
    stored: StoredConversation, sent: Sequence[str], in_flight: str | None = None
) -> list[str]:
    """What is wrong with one stored conversation (empty when it is intact).

    ``in_flight``: the line of a conversation that stopped mid-turn (no reply arrived); it may
    or may not have been stored, both are intact.
    """
    found: list[str] = []
    expected = [_normalise(t) for t in sent]
    actual = [t.strip() for t in stored.user_texts]
    if in_flight is not None and actual == [*expected, _normalise(in_flight)]:
        actual = expected
    if actual != expected:
        missing = Counter(expected) - Counter(actual)
        extra = Counter(actual) - Counter(expected)
        if missing:
            found.append(f"lost user messages: {sorted(missing.elements())}")
        if extra:
            found.append(f"duplicated or foreign user messages: {sorted(extra.elements())}")
        if not missing and not extra:
            found.append(f"user messages reordered: {actual}")
    last_stamp = float("-inf")
    for event in stored.events:
        stamp = event.get("timestamp")
        if isinstance(stamp, (int, float)):
            if stamp < last_stamp:
                found.append("timestamps go backwards in insertion order")
                break
            last_stamp = stamp
    turns = _turns(stored.events)
    for index, turn in enumerate(turns):
        names = [e.get("name") for e in turn if e.get("event") == "action"]
        bot = [e for e in turn if e.get("event") == "bot"]
        if not names or names[-1] != "action_listen":
            found.append(f"turn {index + 1} does not end with action_listen: {names}")
        if not bot:
            found.append(f"turn {index + 1} has no bot reply")
    return found


def _turns(events: list[dict]) -> list[list[dict]]:
    """Events from each user message up to (not including) the next one."""
    turns: list[list[dict]] = []
    for event in events:
        if event.get("event") == "user":
            turns.append([])
        if turns:
            turns[-1].append(event)
    return turns


def check_conversations(
    database_url: str, played: Iterable[tuple[Any, ...]], settle: float = 20.0
) -> dict[str, list[str]]:
    """``{sender_id: problems}`` for every played (sender id, texts[, in-flight line]) that is
    not intact.

    Rasa sends a turn's replies before it saves the turn, so a conversation read back the
    moment its last reply arrived may not hold that turn yet: damaged conversations are read
    again for up to ``settle`` seconds, and only what is still wrong then is reported.
    """
    played = list(played)
    deadline = time.monotonic() + settle
    while True:
        stored = load_events(database_url, [entry[0] for entry in played])
        report: dict[str, list[str]] = {}
        for sender_id, texts, *rest in played:
            problems = problems_in(stored[sender_id], texts, rest[0] if rest else None)
            if problems:
                report[sender_id] = problems
        if not report or time.monotonic() > deadline:
            return report
        played = [entry for entry in played if entry[0] in report]
        time.sleep(0.5)


def count_events(database_url: str, sender_ids: Iterable[str]) -> dict[str, int]:
    """Stored events per sender id."""
    return {sid: len(c.events) for sid, c in load_events(database_url, sender_ids).items()}


def broker_counts(bodies: Iterable[bytes]) -> dict[str, list[dict]]:
    """Messages taken from the event queue, grouped by sender id (in queue order)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for body in bodies:
        event = json.loads(body)
        grouped[str(event.get("sender_id"))].append(event)
    return dict(grouped)
