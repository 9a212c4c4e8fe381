"""Retention: transcripts older than the configured period, and expired secrets, are deleted.

Safe to run from cron as often as you like: every step deletes only what is past its
deadline at ``now``, so a second run finds nothing and changes nothing (no audit entry
either). What goes:

* conversations whose ``last_seen_at`` is older than ``retention_days``: their tracker events,
  per-conversation vault tokens and ownership rows;
* conversations whose shopper declined to have the transcript kept, as soon as their session
  has ended (no message for ``session_minutes``, Rasa's session expiry): the same;
* tracker events of conversations with no owner row (anonymous or already erased) whose
  newest event is older than the cut-off;
* support-ticket transcripts not touched since the cut-off (the ticket itself stays);
* expired secure links, expired vault tokens and stale step-up sessions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Engine

from cartguard import audit
from cartguard.privacy import integrations
from cartguard.privacy.scrub import scrub_sqlite
from cartguard.privacy.transcripts import (
    delete_conversations,
    stale_conversations,
    tracker_engine,
)
from cartguard.settings import get_settings
from cartguard.shop.db import get_engine, session_scope
from cartguard.shop.models import ConversationOwner, SupportTicket
from cartguard.shop.models._common import utcnow


@dataclass(frozen=True)
class PurgeReport:
    cutoff: str
    conversations: int
    tracker_events: int
    ticket_transcripts: int
    vault_tokens: int
    secure_links: int
    stepup_sessions: int

    @property
    def total(self) -> int:
        counts = (
            self.conversations,
            self.tracker_events,
            self.ticket_transcripts,
            self.vault_tokens,
            self.secure_links,
            self.stepup_sessions,
        )
        return sum(c or 0 for c in counts)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def purge(
    now: datetime | None = None,
    retention_days: int | None = None,
    *,
    actor: str = "system:retention",
    engine: Engine | None = None,
) -> PurgeReport:
    """Delete what is past retention at ``now`` (default: the current time); idempotent."""
    if retention_days is None:
        retention_days = get_settings().retention_days
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1 (set CARTGUARD_RETENTION_DAYS)")
    now = _naive_utc(now) if now is not None else utcnow()
    cutoff = now - timedelta(days=retention_days)
    session_ended = now - timedelta(minutes=get_settings().session_minutes)
    expired = or_(
        ConversationOwner.last_seen_at < cutoff,
        and_(
            ConversationOwner.transcript_consent.is_(False),
            ConversationOwner.last_seen_at < session_ended,
        ),
    )
    shop_engine = engine or get_engine()

    with session_scope(shop_engine) as session:
        old = list(
            session.execute(select(ConversationOwner.conversation_id).where(expired)).scalars()
        )
        owned = set(session.execute(select(ConversationOwner.conversation_id)).scalars())
    # Orphans: events nobody owns any more (anonymous chats, erased customers' later turns).
    orphans = [cid for cid in stale_conversations(cutoff) if cid not in owned]
    tracker_events = delete_conversations(old + orphans)
    vault_tokens = integrations.vault_purge_expired()
    for conversation_id in old:
        removed = integrations.vault_forget_conversation(conversation_id)
        if vault_tokens is not None and removed:
            vault_tokens += removed

    with session_scope(shop_engine) as session:
        conversations = 0
        if old:
            integrations.forget_conversation_rows(session, old)
            conversations = (
                session.execute(
                    delete(ConversationOwner).where(
                        ConversationOwner.conversation_id.in_(old),
                        expired,  # not revived meanwhile
                    )
                ).rowcount
                or 0
            )
        ticket_transcripts = (
            session.execute(
                update(SupportTicket)
                .where(SupportTicket.transcript.is_not(None), SupportTicket.updated_at < cutoff)
                .values(transcript=None)
            ).rowcount
            or 0
        )
        secure_links = integrations.links_purge_expired(session, now)
        stepup_sessions = integrations.stepup_purge_expired(session, now)
        report = PurgeReport(
            cutoff=cutoff.isoformat(timespec="seconds"),
            conversations=conversations,
            tracker_events=tracker_events,
            ticket_transcripts=ticket_transcripts,
            vault_tokens=vault_tokens,
            secure_links=secure_links,
            stepup_sessions=stepup_sessions,
        )
        if report.total:
            details = {k: v for k, v in report.as_dict().items() if k != "cutoff"}
            audit.record(session, actor, "privacy.purge", details=details)

    # Always scrub: it also finishes any scrub an earlier erasure could not complete.
    scrub_sqlite(shop_engine)
    scrub_sqlite(tracker_engine())
    return report
