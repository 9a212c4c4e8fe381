"""The event outbox: events for the broker, written in the tracker store's own transaction.

The redacting tracker store inserts one ``event_outbox`` row per event it stores, in the same
transaction as the events themselves, so an event is either stored *and* queued for the
broker, or neither. :class:`OutboxRelay` (run by the RabbitMQ broker of every replica) then
publishes pending rows oldest first, waits for RabbitMQ's publisher confirm of each, and marks
them sent. Whatever is pending survives a RabbitMQ outage and a replica killed meanwhile: the
rows are in the database, and any replica's relay sends them once RabbitMQ is back.

**Several relays.** Each batch is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL),
so relays of different replicas never hold the same row. Per-conversation order is kept: a
relay publishes of each conversation only the unbroken run of its rows from the oldest unsent
one; a row another relay holds, first or in the middle (two scans running at once each lock
part of a conversation), ends the run, and a later round takes the rest in order. Rows of one
conversation are written in order because the lock store serialises its turns.

**Exactly once, and its one gap.** A row is marked sent in the transaction that locked it, right
after RabbitMQ confirmed it. A relay that dies between the confirm and that commit leaves the
row unsent, and it is published again: consumers de-duplicate on the AMQP ``message_id``
(the row id, unique per installation). Nothing is ever lost or published twice otherwise.

On SQLite (one machine, one Rasa process) the same code runs without row locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

metadata = sa.MetaData()

outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),  # the redacted event as published
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.Index(
        "ix_event_outbox_unsent",
        "id",
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    ),
)

BATCH = 50
POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
#: sent rows are kept this long (for inspection), then deleted
KEEP_SENT_SECONDS = 300.0
PURGE_EVERY_SECONDS = 60.0
#: while publishing keeps failing, the operator hears it again this often (with the error)
STILL_FAILING_EVERY_SECONDS = 60.0


def create_table(engine: Engine) -> None:
    """Create ``event_outbox`` if it does not exist (several replicas may race: harmless)."""
    try:
        metadata.create_all(engine)
    except sa.exc.SQLAlchemyError as exc:  # another replica created it first
        log.debug("event outbox table creation raced: %s", exc)


def add_rows(
    conn: Connection | Any, sender_id: str, events: Iterable[dict[str, Any]], now: float
) -> int:
    """Queue ``events`` (redacted dicts) of ``sender_id`` in the caller's transaction."""
    rows = [
        {
            "sender_id": sender_id,
            "body": json.dumps({"sender_id": sender_id, **event}),
            "created_at": now,
        }
        for event in events
    ]
    if rows:
        conn.execute(outbox.insert(), rows)
    return len(rows)


def forget(conn: Connection | Any, sender_id: str) -> None:
    """Drop everything queued for a conversation the shopper asked to forget."""
    conn.execute(outbox.delete().where(outbox.c.sender_id == sender_id))


@dataclass(frozen=True)
class Pending:
    id: int
    sender_id: str
    body: str


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
        )


class _Batch:
    """One locked batch: a transaction held open while its rows are published."""

    def __init__(self, engine: Engine) -> None:
        self.conn = engine.connect()
        self.tx = self.conn.begin()
        self.rows: list[Pending] = []

    def take(self, limit: int) -> list[Pending]:
        query = (
            sa.select(outbox.c.id, outbox.c.sender_id, outbox.c.body)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = [Pending(*row) for row in self.conn.execute(query)]
        if not rows:
            return []
        self.rows = _in_order(rows, self._unsent_ids({row.sender_id for row in rows}, rows[-1].id))
        return self.rows

    def _unsent_ids(self, senders: set[str], up_to: int) -> dict[str, list[int]]:
        """Every unsent row id of ``senders`` up to ``up_to``, held by us or not, oldest first."""
        unsent: dict[str, list[int]] = {sender: [] for sender in senders}
        for sender, row_id in self.conn.execute(
            sa.select(outbox.c.sender_id, outbox.c.id)
            .where(
                outbox.c.sent_at.is_(None),
                outbox.c.sender_id.in_(list(senders)),
                outbox.c.id <= up_to,
            )
            .order_by(outbox.c.id)
        ):
            unsent[sender].append(row_id)
        return unsent

    def finish(self, sent_ids: Sequence[int]) -> None:
        try:
            if sent_ids:
                self.conn.execute(
                    outbox.update()
                    .where(outbox.c.id.in_(list(sent_ids)))
                    .values(sent_at=time.time())
                )
            self.tx.commit()
        finally:
            self.conn.close()

    def abandon(self) -> None:
        try:
            self.tx.rollback()
        finally:
            self.conn.close()


def _in_order(rows: list[Pending], unsent: dict[str, list[int]]) -> list[Pending]:
    """The rows of ``rows`` that may be published now without overtaking another relay.

    Per conversation, the unbroken run of our rows from its oldest unsent row: a row another
    relay holds ends it, whether it comes first (that relay publishes first) or in the middle
    (two scans that ran at the same moment each locked part of the conversation, because
    ``SKIP LOCKED`` locks rows as the scan returns them). The rest waits for a later round.
    """
    ours = {row.id for row in rows}
    allowed: set[int] = set()
    for ids in unsent.values():
        for row_id in ids:
            if row_id not in ours:
                break
            allowed.add(row_id)
    return [row for row in rows if row.id in allowed]


Publish = Callable[[str, int], Awaitable[None]]


class OutboxRelay:
    """Publishes pending outbox rows in order; one per process, any number per database."""

    def __init__(
        self,
        engine: Engine,
        publish: Publish,
        *,
        ready: Callable[[], bool] = lambda: True,
        batch: int = BATCH,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.engine = engine
        self.publish = publish
        self.ready = ready
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.published = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # one thread: the batch's connection is always used from the same thread
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-outbox")
        self._failing_since: float | None = None
        self._told_at = 0.0
        self._last_purge = 0.0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """New rows were committed: publish them now rather than at the next poll."""
        self._wake.set()

    async def _in_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def _run(self) -> None:
        delay = self.poll_seconds
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                sent = await self.relay_once()
                delay = self.poll_seconds
                if sent == self.batch:
                    self._wake.set()  # more waiting: go on at once
                await self._purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note_failure(exc)
                delay = min(MAX_BACKOFF_SECONDS, max(self.poll_seconds, delay * 2))

    def _note_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = self._told_at = now
            log.warning(
                "event outbox: cannot publish right now (%s: %s); events stay in the outbox "
                "table and are sent once RabbitMQ and the database answer",
                type(exc).__name__,
                str(exc)[:200],
            )
        elif now - self._told_at >= STILL_FAILING_EVERY_SECONDS:
            # one line at the start is not enough: a relay stuck after RabbitMQ came back
            # (the soak's lost channel) logged nothing more for five minutes
            self._told_at = now
            log.error(
                "event outbox: still cannot publish after %.0f s (%s: %s); events wait in "
                "the outbox table",
                now - self._failing_since,
                type(exc).__name__,
                str(exc)[:200],
            )

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were sent (raises when publishing failed)."""
        if not self.ready():
            raise ConnectionError("not connected to RabbitMQ")
        batch: _Batch = await self._in_db(_Batch, self.engine)
        sent: list[int] = []
        try:
            rows = await self._in_db(batch.take, self.batch)
            for row in rows:
                await self.publish(row.body, row.id)  # returns once RabbitMQ confirmed it
                sent.append(row.id)
        except BaseException:
            if sent:  # mark what RabbitMQ confirmed, so it is not sent twice
                await asyncio.shield(self._in_db(batch.finish, sent))
            else:
                await asyncio.shield(self._in_db(batch.abandon))
            raise
        await self._in_db(batch.finish, sent)
        self.published += len(sent)
        if self._failing_since is not None and sent:
            log.warning(
                "event outbox: publishing again after %.0f s",
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        return len(sent)

    async def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now

        def purge() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    outbox.delete().where(
                        outbox.c.sent_at.is_not(None),
                        outbox.c.sent_at < time.time() - KEEP_SENT_SECONDS,
                    )
                )

        await self._in_db(purge)

    async def drain(self, timeout: float) -> int:
        """Publish until nothing is pending or ``timeout`` passed (at shutdown); rows left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.relay_once() == 0:
                    break
            except Exception:
                await asyncio.sleep(0.2)
        return await self._in_db(pending_count, self.engine)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - stopping
                pass
        self._db.shutdown(wait=False)
