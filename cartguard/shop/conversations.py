"""Who a channel conversation belongs to, read and written in one place.

The owner of a conversation lives in ``conversations`` (:class:`ConversationOwner`), which the
privacy tools also use. Webchat adds a claim flag (:class:`WebchatSession`): a session is
issued unclaimed, its first accepted message claims it for the signed-in customer or for
"anonymous", and the claim never changes. Claiming is a conditional ``UPDATE`` so that two
racing first messages cannot both win.

A session whose rows are gone (erased by a privacy request, or never issued by this
installation) is unknown: the channel then starts a fresh one rather than recreate it.

The functions take a SQLAlchemy session and leave committing to the caller;
:func:`run_in_db` runs one of them in a worker thread inside its own transaction, so the
channels' event loop is not blocked by the database, and bounds the wait: a database that
stops answering (a dropped network path, not a refusal) costs the shopper
:data:`DB_TIMEOUT_SECONDS` and a "please try again", never a frozen chat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cartguard.shop.db import DatabaseUnavailable, session_scope
from cartguard.shop.models import ConversationOwner
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import WebchatSession

WEBCHAT = "socketio"
MESSENGER = "facebook"
ANONYMOUS = "anonymous"
CUSTOMER = "customer"

UNCLAIMED_SESSION_HOURS = 24
#: longest wait for one channel transaction before the shopper is told to try again
DB_TIMEOUT_SECONDS = 5.0

# The channels' own worker threads (not the loop's default executor): a transaction stuck on a
# dead connection then holds one of these, never a thread something else needs.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cartguard-channel-db")

T = TypeVar("T")


@dataclass(frozen=True)
class SessionState:
    """A webchat conversation as the channel sees it."""

    conversation_id: str
    claimed: bool
    customer_id: int | None  # meaningful once claimed; None = anonymous

    def belongs_to(self, customer_id: int | None) -> bool:
        """True when a message from ``customer_id`` (None = anonymous) may speak here."""
        return self.claimed and self.customer_id == customer_id


async def run_in_db(fn: Callable[..., T], *args: Any, timeout: float = DB_TIMEOUT_SECONDS) -> T:
    """Run ``fn(session, *args)`` in one committed transaction, off the event loop.

    Raises :class:`DatabaseUnavailable` when it took longer than ``timeout``. Work that was
    given up on is not done late: it does not start once its time is over, and it rolls back
    instead of committing if its time ran out while it ran.
    """
    deadline = time.monotonic() + timeout

    def work() -> T:
        if time.monotonic() > deadline:
            raise DatabaseUnavailable("the shop database is unavailable: gave up waiting")
        with session_scope() as session:
            result = fn(session, *args)
            if time.monotonic() > deadline:  # the caller has gone: roll back, do not commit
                raise DatabaseUnavailable("the shop database is unavailable: too slow")
            return result

    future = asyncio.get_running_loop().run_in_executor(_executor, work)
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError as exc:
        raise DatabaseUnavailable(
            f"the shop database is unavailable: no answer within {timeout:.0f} s"
        ) from exc


def register_webchat_session(session: Session, conversation_id: str) -> None:
    """Record a freshly issued, unclaimed webchat session."""
    now = utcnow()
    session.add(
        ConversationOwner(
            conversation_id=conversation_id,
            customer_id=None,
            channel=WEBCHAT,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.add(WebchatSession(conversation_id=conversation_id, issued_at=now))


def load_webchat_session(session: Session, conversation_id: str) -> SessionState | None:
    """The session's state, or ``None`` when we hold no record of it."""
    row = session.execute(
        select(WebchatSession.claimed_as, ConversationOwner.customer_id)
        .join(
            ConversationOwner,
            ConversationOwner.conversation_id == WebchatSession.conversation_id,
        )
        .where(
            WebchatSession.conversation_id == conversation_id,
            ConversationOwner.channel == WEBCHAT,
        )
    ).one_or_none()
    if row is None:
        return None
    claimed_as, customer_id = row
    return SessionState(
        conversation_id=conversation_id,
        claimed=claimed_as is not None,
        customer_id=customer_id if claimed_as == CUSTOMER else None,
    )


def claim_webchat_session(
    session: Session, conversation_id: str, customer_id: int | None
) -> SessionState | None:
    """Claim an unclaimed session for ``customer_id`` (None = anonymous); return the state.

    If someone else claimed it first, the returned state shows their claim and the caller
    refuses the message. A session that is already claimed is only read back (and, for its
    owner, its activity noted), so the channel calls this one transaction for any first message of a
    socket instead of a read, then a claim, then a touch.
    """
    now = utcnow()
    result = session.execute(
        update(WebchatSession)
        .where(
            WebchatSession.conversation_id == conversation_id,
            WebchatSession.claimed_as.is_(None),
        )
        .values(claimed_as=CUSTOMER if customer_id is not None else ANONYMOUS, claimed_at=now)
    )
    if result.rowcount == 1:
        session.execute(
            update(ConversationOwner)
            .where(ConversationOwner.conversation_id == conversation_id)
            .values(customer_id=customer_id, last_seen_at=now)
        )
        return load_webchat_session(session, conversation_id)
    state = load_webchat_session(session, conversation_id)
    if state is not None and state.belongs_to(customer_id):
        touch(session, conversation_id)  # only its owner's messages count as activity
    return state


def conversation_owner(
    session: Session, conversation_id: str, customer_id: int | None, channel: str | None
) -> ConversationOwner:
    """The conversation's owner row, created on first sight; a signed-in customer claims an
    anonymous one (never the other way round: a known owner is never replaced)."""
    row = session.get(ConversationOwner, conversation_id)
    if row is None:
        row = ConversationOwner(
            conversation_id=conversation_id,
            customer_id=customer_id,
            channel=channel or "unknown",
        )
        session.add(row)
    elif row.customer_id is None and customer_id is not None:
        row.customer_id = customer_id
    return row


def touch(session: Session, conversation_id: str) -> None:
    """Note activity (retention counts from ``last_seen_at``)."""
    session.execute(
        update(ConversationOwner)
        .where(ConversationOwner.conversation_id == conversation_id)
        .values(last_seen_at=utcnow())
    )


def note_messenger_sender(session: Session, psid: str, customer_id: int | None) -> None:
    """Create or update the Messenger conversation's owner row (the PSID is the sender id)."""
    now = utcnow()
    row = session.get(ConversationOwner, psid)
    if row is None:
        session.add(
            ConversationOwner(
                conversation_id=psid,
                customer_id=customer_id,
                channel=MESSENGER,
                created_at=now,
                last_seen_at=now,
            )
        )
        return
    if customer_id is not None:
        # Never reset to None on unlink: the past transcript still belongs to that customer
        # for export and erasure.
        row.customer_id = customer_id
    row.last_seen_at = now


def purge_unclaimed_sessions(session: Session, hours: int = UNCLAIMED_SESSION_HOURS) -> int:
    """Delete sessions issued more than ``hours`` ago that never got a message.

    Every page view issues a session; most are never used and hold nothing but an id.
    """
    cutoff = utcnow() - timedelta(hours=hours)
    stale = select(WebchatSession.conversation_id).where(
        WebchatSession.claimed_as.is_(None), WebchatSession.issued_at < cutoff
    )
    ids = list(session.execute(stale).scalars())
    if not ids:
        return 0
    session.execute(delete(WebchatSession).where(WebchatSession.conversation_id.in_(ids)))
    session.execute(
        delete(ConversationOwner).where(
            ConversationOwner.conversation_id.in_(ids),
            ConversationOwner.channel == WEBCHAT,
            ConversationOwner.customer_id.is_(None),
        )
    )
    return len(ids)
