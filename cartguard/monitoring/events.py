"""Security events: what the anomaly rules raise, where operators see it, and how often.

An event is raised **once per rule, subject and window**: while an open event of the same
rule and subject was last seen within the rule's window, a new finding only updates it
(``last_seen_at`` and the largest count). Scanning every minute, from several replicas or
from cron at the same time, therefore never multiplies incidents.

A new event goes to three places, so it is seen even if one of them is not watched:

* the ``security_events`` table (``cartguard security events``);
* the hash-chained audit log, as ``security.event`` (rule, subject pseudonym, count);
* the ``cartguard.security`` logger at WARNING and a JSON-lines file,
  ``$CARTGUARD_DATA_DIR/logs/security-events.jsonl``, for a log shipper or SIEM to tail.

Subjects and summaries never contain personal data: addresses and conversations are
pseudonyms, customers and staff accounts are ids the audit log already uses.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.monitoring import metrics
from cartguard.settings import get_settings
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.security import SecurityEvent

log = logging.getLogger("cartguard.security")

ACTOR = "system:monitor"


@dataclass(frozen=True)
class Finding:
    """What a rule saw: ``count`` of something about ``subject`` within ``window``."""

    rule: str
    subject: str
    count: int
    threshold: int
    window: timedelta
    summary: str
    severity: str = "warning"


def events_log_path() -> Path:
    return get_settings().log_file.parent / "security-events.jsonl"


def _append_jsonl(record: dict[str, object]) -> None:
    path = events_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def raise_event(
    session: Session, finding: Finding, now: datetime | None = None
) -> tuple[SecurityEvent, bool]:
    """Record ``finding``; returns (event, True) when it is new, (event, False) when known."""
    now = now or utcnow()
    existing = session.execute(
        select(SecurityEvent)
        .where(
            SecurityEvent.rule == finding.rule,
            SecurityEvent.subject == finding.subject,
            SecurityEvent.last_seen_at >= now - finding.window,
        )
        .order_by(SecurityEvent.id.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if existing is not None:
        existing.last_seen_at = max(existing.last_seen_at, now)
        existing.count = max(existing.count, finding.count)
        session.flush()
        return existing, False
    event = SecurityEvent(
        rule=finding.rule,
        subject=finding.subject,
        severity=finding.severity,
        count=finding.count,
        threshold=finding.threshold,
        summary=finding.summary,
        first_seen_at=now,
        last_seen_at=now,
        status="open",
    )
    session.add(event)
    session.flush()
    details = {
        "event_id": event.id,
        "rule": finding.rule,
        "count": finding.count,
        "threshold": finding.threshold,
        "window_seconds": int(finding.window.total_seconds()),
        "severity": finding.severity,
    }
    audit.record(session, ACTOR, "security.event", finding.subject, details)
    record = {"at": now.isoformat(timespec="seconds") + "Z", "subject": finding.subject}
    record.update(details, summary=finding.summary)
    log.warning("security event %s: %s", finding.rule, json.dumps(record, sort_keys=True))
    try:
        _append_jsonl(record)
    except OSError as exc:  # the table and the audit log still have it
        log.error("could not append to %s: %s", events_log_path(), exc)
    metrics.record_security_event(finding.rule)
    return event, True


def list_events(
    session: Session, *, since: datetime | None = None, status: str | None = None, limit: int = 50
) -> list[SecurityEvent]:
    """Newest first."""
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit)
    if since is not None:
        query = query.where(SecurityEvent.last_seen_at >= since)
    if status is not None:
        query = query.where(SecurityEvent.status == status)
    return list(session.execute(query).scalars())


def acknowledge(session: Session, event_id: int, *, actor: str) -> SecurityEvent:
    """Mark an event as handled (audited); the rule may raise a new one in a later window."""
    event = session.get(SecurityEvent, event_id)
    if event is None:
        raise LookupError(f"there is no security event {event_id}")
    event.status = "acknowledged"
    session.flush()
    audit.record(session, actor, "security.acknowledged", f"event:{event_id}", {"rule": event.rule})
    return event


def describe(event: SecurityEvent) -> str:
    """One line for the console."""
    return (
        f"#{event.id:<4} {event.last_seen_at:%Y-%m-%d %H:%M} {event.status:<12} "
        f"{event.severity:<8} {event.rule:<24} {event.subject:<26} "
        f"count={event.count} (threshold {event.threshold})  {event.summary}"
    )
