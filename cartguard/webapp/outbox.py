"""Telling the conversation what happened on a secure form, even when Rasa is down.

A form's result is written to the outbox table in the same transaction as the data it reports
(the transactional outbox pattern), then delivered with ``trigger_intent``. If Rasa cannot be
reached the row stays pending; the web service retries in the background and the action server
can call :func:`deliver_pending` for a conversation when the shopper next writes. A delivering
process first claims a row for a short while, so two processes never send the same result twice.

A notification names the customer it is about. The row keeps that id (an identifier, like the
order id beside it) and the signed identity is minted only when the row is sent, so a result
that waited for Rasa still arrives with a fresh, two-minute identity.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cartguard.clients.rasa_api import RasaClient, RasaUnavailable
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.web import OutboxNotification

log = logging.getLogger(__name__)

#: the intents the dialogue handles; anything else is a programming error
INTENTS = frozenset(
    {
        "EXTERNAL_card_saved",
        "EXTERNAL_address_changed",
        "EXTERNAL_stepup_verified",
        "EXTERNAL_enrolled",
        "EXTERNAL_messenger_linked",
    }
)
#: where the row's JSON keeps the customer id (never sent to Rasa as it is)
_CUSTOMER_KEY = "__customer_id"
CLAIM_SECONDS = 30
#: after this many failed attempts a row is reported in the log at warning level on each retry
WARN_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class Notification:
    """What a form wants the conversation to hear: an intent, non-personal entities, and the
    customer it is about (``None``: the turn is anonymous and account actions will not act)."""

    intent: str
    entities: dict[str, Any]
    customer_id: int | None = None


def enqueue(
    session: Session, conversation_id: str, notification: Notification
) -> OutboxNotification:
    """Add a pending notification in the caller's transaction."""
    if notification.intent not in INTENTS:
        raise ValueError(f"unknown notification intent {notification.intent!r}")
    stored = dict(notification.entities)
    if _CUSTOMER_KEY in stored:
        raise ValueError(f"{_CUSTOMER_KEY!r} is reserved")
    if notification.customer_id is not None:
        stored[_CUSTOMER_KEY] = int(notification.customer_id)
    row = OutboxNotification(
        conversation_id=conversation_id,
        intent=notification.intent,
        entities=json.dumps(stored, sort_keys=True),
        created_at=utcnow(),
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row


def _claim(session: Session, row_id: int) -> bool:
    now = utcnow()
    result = session.execute(
        update(OutboxNotification)
        .where(
            OutboxNotification.id == row_id,
            OutboxNotification.delivered_at.is_(None),
            or_(
                OutboxNotification.claimed_until.is_(None),
                OutboxNotification.claimed_until < now,
            ),
        )
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def deliver_pending(
    conversation_id: str | None = None,
    *,
    client: RasaClient | None = None,
    scope: Callable[[], Any] = session_scope,
    limit: int = 50,
) -> int:
    """Send undelivered notifications (of one conversation, or all); return how many arrived.

    Safe to call from any process at any time: rows are claimed before sending and marked
    delivered only after Rasa acknowledged them. Stops at the first unreachable-Rasa error of a
    conversation so that results arrive in the order they happened.
    """
    with scope() as session:
        query = (
            select(OutboxNotification.id)
            .where(OutboxNotification.delivered_at.is_(None))
            .order_by(OutboxNotification.id)
            .limit(limit)
        )
        if conversation_id is not None:
            query = query.where(OutboxNotification.conversation_id == conversation_id)
        ids = list(session.execute(query).scalars())
    if not ids:
        return 0
    client = client or RasaClient.from_settings()
    delivered = 0
    blocked: set[str] = set()
    for row_id in ids:
        with scope() as session:
            if not _claim(session, row_id):
                continue
            row = session.get(OutboxNotification, row_id)
            target, intent, entities = row.conversation_id, row.intent, json.loads(row.entities)
        customer_id = entities.pop(_CUSTOMER_KEY, None)
        if target in blocked:
            _release(scope, row_id, None)
            continue
        try:
            client.trigger_intent(target, intent, entities, customer_id=customer_id)
        except RasaUnavailable as exc:
            blocked.add(target)
            _release(scope, row_id, str(exc))
            continue
        with scope() as session:
            row = session.get(OutboxNotification, row_id)
            row.delivered_at = utcnow()
            row.attempts += 1
            row.last_error = None
            row.claimed_until = None
        delivered += 1
    return delivered


def _release(scope: Callable[[], Any], row_id: int, error: str | None) -> None:
    with scope() as session:
        row = session.get(OutboxNotification, row_id)
        row.claimed_until = None
        if error is not None:
            row.attempts += 1
            row.last_error = error[:300]
            level = logging.WARNING if row.attempts >= WARN_AFTER_ATTEMPTS else logging.INFO
            log.log(
                level,
                "outbox: %s for conversation result %s not delivered yet (attempt %d): %s",
                row.intent,
                row.id,
                row.attempts,
                error,
            )


def pending_count(session: Session, conversation_id: str | None = None) -> int:
    query = select(OutboxNotification.id).where(OutboxNotification.delivered_at.is_(None))
    if conversation_id is not None:
        query = query.where(OutboxNotification.conversation_id == conversation_id)
    return len(session.execute(query).scalars().all())


async def retry_forever(interval_seconds: float, client_factory: Callable[[], RasaClient]) -> None:
    """Background task of the web service: deliver what is pending every few seconds."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await asyncio.to_thread(deliver_pending, client=client_factory())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox: delivery round failed; will retry")
