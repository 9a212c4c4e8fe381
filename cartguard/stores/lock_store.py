"""The conversation lock shared by Rasa replicas, changed atomically and held by a lease.

Rasa's agent takes ``lock_store.lock(sender_id)`` around each turn so that one conversation's
turns run one at a time. Its ``RedisLockStore`` keeps a queue of tickets per conversation but
changes it by read, modify in Python, write back. Inside one process nothing runs in between;
across replicas it does: two replicas issuing, returning or pruning tickets at the same moment
overwrite each other's change, a waiting turn's ticket disappears or the lock is deleted under
it, and two turns of one conversation run at once. Their saves then interleave in the tracker
(two tabs on two replicas stored in neither order; a turn appended after the other's events,
timestamps going backwards). Here every change is one Redis transaction (``WATCH``/``MULTI``,
retried when another replica changed the queue first), and ticket numbers come from a
counter that is never reset, so a returned ticket can never remove someone else's.

A ticket is a **lease**: its holder renews it every third of ``lease_seconds`` for as long as
the turn runs, however long that is. A replica that dies mid-turn stops renewing, and the
conversation's next turn waits at most ``lease_seconds`` (Rasa's fixed ticket lifetime made
it wait 60 s). A waiting turn polls every ``wait_seconds`` (Rasa's agent asks for 1 s).

Rasa builds it from ``endpoints.yml`` (``type: cartguard.stores.lock_store.AtomicRedisLockStore``
with the same keys as Rasa's ``redis`` lock store, plus ``lease_seconds`` and ``wait_seconds``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_SECONDS = 15.0
WAIT_SECONDS = 0.05


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store, with atomic ticket queues and renewed tickets."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **options: Any) -> None:
        settings = dict(endpoint_config.kwargs) if endpoint_config is not None else {}
        settings.update(options)
        self.lease_seconds = float(settings.pop("lease_seconds", LEASE_SECONDS))
        self.wait_seconds = float(settings.pop("wait_seconds", WAIT_SECONDS))
        if not 0 < self.wait_seconds < self.lease_seconds:
            raise ValueError("lock store: need 0 < wait_seconds < lease_seconds")
        host = settings.pop("host", None) or (endpoint_config.url if endpoint_config else None)
        super().__init__(host=host or "localhost", **settings)
        self._counter = self.key_prefix + "tickets"

    # ------------------------------------------------------------------ atomic changes

    def _change(self, conversation_id: str, change: Callable[[TicketLock], T]) -> T:
        """Apply ``change`` to the conversation's ticket queue as one Redis transaction."""
        key = self.key_prefix + conversation_id

        def attempt(pipe: Any) -> T:
            raw = pipe.get(key)
            lock = (
                TicketLock.from_dict(json.loads(raw)) if raw else self.create_lock(conversation_id)
            )
            result = change(lock)
            lock.remove_expired_tickets()
            pipe.multi()
            if lock.tickets:  # the key outlives its last ticket by nothing
                last = max(ticket.expires for ticket in lock.tickets)
                pipe.set(key, lock.dumps(), px=max(1, int((last - time.time()) * 1000)))
            else:
                pipe.delete(key)
            return result

        return self.red.transaction(attempt, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LEASE_SECONDS) -> int:
        number = int(self.red.incr(self._counter))  # unique for ever: never reused

        def append(lock: TicketLock) -> int:
            lock.tickets.append(Ticket(number, time.time() + lock_lifetime))
            return number

        return self._change(conversation_id, append)

    def renew(self, conversation_id: str, ticket_number: int, lifetime: float) -> bool:
        """Push the ticket's expiry ``lifetime`` ahead; False when it is no longer queued."""

        def extend(lock: TicketLock) -> bool:
            lock.remove_expired_tickets()
            for ticket in lock.tickets:
                if ticket.number == ticket_number:
                    ticket.expires = time.time() + lifetime
                    return True
            return False

        return self._change(conversation_id, extend)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Return the ticket; the queue's key goes with its last ticket (one transaction)."""
        self.finish_serving(conversation_id, ticket_number)

    def update_lock(self, conversation_id: str) -> None:
        """Nothing to write: expired tickets are skipped on every read and dropped on every
        change (Rasa's version wrote the whole queue back from each waiting turn's poll)."""

    # ------------------------------------------------------------------ the lock itself

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,
        wait_time_in_seconds: float | None = None,
    ) -> AsyncGenerator[TicketLock, None]:
        lease = self.lease_seconds if lock_lifetime is None else float(lock_lifetime)
        lease = min(lease, self.lease_seconds)  # renewed: a longer turn keeps it anyway
        wait = self.wait_seconds if wait_time_in_seconds is None else wait_time_in_seconds
        wait = min(wait, self.wait_seconds)
        ticket = self.issue_ticket(conversation_id, lease)
        renewing = asyncio.get_running_loop().create_task(
            self._keep_renewing(conversation_id, ticket, lease)
        )
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait)
        finally:
            renewing.cancel()
            self.cleanup(conversation_id, ticket)

    async def _keep_renewing(self, conversation_id: str, ticket: int, lease: float) -> None:
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not self.renew(conversation_id, ticket, lease):
                    log.warning(
                        "conversation lock: a ticket expired before its turn ended (the "
                        "replica stalled for over %.0f s); another turn may run alongside",
                        lease,
                    )
                    return
            except Exception as exc:  # Redis unreachable for a moment: try again next round
                log.warning("conversation lock: could not renew a ticket (%s)", exc)
