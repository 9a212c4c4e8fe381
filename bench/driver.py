"""Simulated shoppers: concurrent webchat conversations over socket.io, with latencies.

Each shopper is a python-socketio client on the ``polling`` transport (what Rasa 3.6's
engine.io pin supports), speaking the rasa-webchat protocol: ``session_request`` ->
``session_confirm``, then ``user_uttered`` with ``customData.auth_token`` (a signed login
token), replies as ``bot_uttered``. With Cartguard's channel the server issues the session
id; with the stock channel the client picks one, as the widget does.

A turn is over when the number of replies that script line gets has arrived. Those counts
are measured once per stack by :func:`calibrate` (one unhurried conversation), so the load
runs never sleep and the next message never queues behind a turn still running.

``switch_at`` reconnects the shopper half-way to another replica with the same session id:
the conversation must simply go on there (shared tracker store, lock store and shop DB).
Behind the balancer (one URL) the reconnect drops the sticky cookie, so HAProxy picks a
replica again; which one served each turn is read from that cookie.

Each shopper connects from a loopback address of its own (``127.0.x.y``), so per-address rate
limits see many shoppers, as in production, and run at their defaults.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import socketio
from sqlalchemy import select

from cartguard.settings import get_settings

T = TypeVar("T")

REPLY_TIMEOUT = 60.0
RETRY_PAUSE = 1.0
#: how long a shopper listens for more after the first answer to a line that follows an
#: "order system unavailable" answer (its reply count is not the calibrated one)
AFTER_DEGRADED_QUIET = 3.0


class Refused(RuntimeError):
    """The channel answered with one of its own refusals ("try again later") instead."""


class Disconnected(ConnectionError):
    """The server side of the socket went away (its replica died) while waiting."""


_GONE = object()  # put in the reply queue when the socket disconnects


class RepliesMissing(TimeoutError):
    """Fewer replies than the line gets arrived within the reply timeout."""

    def __init__(self, expected: int, got: list[str]) -> None:
        super().__init__(f"{expected - len(got)} of {expected} replies never arrived")
        self.expected = expected
        self.got = got


#: HAProxy's sticky cookie (bench/haproxy.cfg): its value names the replica, "r1" = index 0
STICKY_COOKIE = "CARTGUARD_RASA"


def shopper_address(index: int) -> str:
    """A loopback address of its own for shopper ``index`` (127.0.0.2 onwards)."""
    index += 2
    return f"127.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def _channel_refusals() -> frozenset[str]:
    from cartguard.channels import replies

    return frozenset({replies.UNAVAILABLE, replies.TOO_FAST, replies.NO_SESSION})


@functools.lru_cache(maxsize=1)
def _degraded_answers() -> frozenset[str]:
    """What the actions say when the shop database is down (``utter_db_unavailable``).

    Such an answer ends the turn: the bot replied, with one polite sentence instead of the
    usual replies, and the shopper moves on (it is counted, not mistaken for a lost reply).
    """
    import yaml

    from cartguard.settings import PROJECT_ROOT

    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    variants = domain.get("responses", {}).get("utter_db_unavailable", [])
    return frozenset(str(v.get("text", "")) for v in variants if isinstance(v, dict))


def _text(reply: Any) -> str:
    return str(reply.get("text", "")) if isinstance(reply, dict) else str(reply)


def script_for(order_id: str, personal: dict[str, str] | None = None) -> list[str]:
    """What one shopper says: greet, consent, track an order, ask for a person, thank, leave.

    With ``personal`` (keys ``email``, ``phone``, ``card``), three lines also carry personal
    data the way shoppers paste it, so the edge redaction does real work in the benchmark.
    """
    if personal is None:
        return [
            "hello there",
            "yes",
            f"where is my order {order_id}",
            "has my package shipped yet",
            "thanks a lot",
            "goodbye",
        ]
    return [
        "hello there",
        "yes",
        f"where is my order {order_id}, you can mail me at {personal['email']}",
        f"has my package shipped yet? call {personal['phone']} if needed",
        f"thanks a lot, I paid with {personal['card']}",
        "goodbye",
    ]


def shape(texts: Sequence[str]) -> str:
    """Which template a script follows ("personal" or "plain"): reply counts differ by it."""
    return "personal" if any("mail me at" in text for text in texts) else "plain"


Counts = Sequence[int] | dict[str, Sequence[int]]


def counts_for(counts: Counts, texts: Sequence[str]) -> Sequence[int]:
    """The calibrated reply counts for ``texts`` (one list, or one per :func:`shape`)."""
    return counts[shape(texts)] if isinstance(counts, dict) else counts


def personal_data(count: int, seed: int = 16) -> list[dict[str, str]]:
    """Generated (never real) e-mail, phone and Luhn-valid card for ``count`` shoppers."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    out = []
    for _ in range(count):
        card = fake.credit_card_number(card_type="visa16")
        out.append(
            {
                "email": fake.email(),
                "phone": fake.numerify("(###) 555-01##").replace("(0", "(3").replace("(1", "(4"),
                "card": " ".join(card[i : i + 4] for i in range(0, len(card), 4)),
            }
        )
    return out


def login_token(keys_file: Path, customer_id: int, ttl_seconds: int = 3600) -> str:
    """A login token signed with the stack's keys (what the shop's login page issues)."""
    from cartguard.identity import issue_login_token
    from cartguard.keys import load_keys

    settings = dataclasses.replace(get_settings(), keys_file=keys_file)
    return issue_login_token(customer_id, ttl_seconds, keys=load_keys(settings))


def shoppers(database_url: str, count: int) -> list[tuple[int, str]]:
    """``count`` (customer id, one of their order ids) pairs from the stack's shop, cycled."""
    from cartguard.shop.db import make_engine
    from cartguard.shop.models import Order

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Order.customer_id, Order.id).order_by(Order.customer_id, Order.id)
            ).all()
    finally:
        engine.dispose()
    first: dict[int, str] = {}
    for customer_id, order_id in rows:
        first.setdefault(customer_id, order_id)
    pairs = sorted(first.items())
    if not pairs:
        raise RuntimeError("the stack's shop has no orders: was it seeded?")
    return [pairs[i % len(pairs)] for i in range(count)]


class Shopper:
    """One webchat client (socket.io, polling transport)."""

    def __init__(
        self, stock: bool, address: str | None = None, reply_timeout: float = REPLY_TIMEOUT
    ) -> None:
        self.stock = stock
        self.address = address
        self.reply_timeout = reply_timeout
        self.degraded = 0  # turns answered with the actions' "database unavailable" sentence
        self.sio: socketio.AsyncClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self.replies: asyncio.Queue = asyncio.Queue()
        self.confirms: asyncio.Queue = asyncio.Queue()
        self.session_id: str | None = None
        #: ids of messages the channel said it wrote down (kept across reconnects)
        self.receipted: set[str] = set()
        self.last_sent: dict[str, Any] | None = None  # the last message, as sent

    async def connect(self, url: str, replica: int | None = None) -> None:
        """Connect to ``url``; behind the balancer, ``replica`` picks one by its sticky cookie
        (as a browser's cookie would after a fail-over or a rebalance)."""
        await self.close()
        # Our own HTTP session, closed in close(): engine.io leaves its own open otherwise. A
        # new one per connection: no sticky cookie, so a balancer picks a replica afresh.
        connector = aiohttp.TCPConnector(
            local_addr=(self.address, 0) if self.address else None, force_close=False
        )
        jar = aiohttp.CookieJar(unsafe=True)
        if replica is not None:
            from yarl import URL

            jar.update_cookies({STICKY_COOKIE: f"r{replica + 1}"}, response_url=URL(url))
        self._http = aiohttp.ClientSession(connector=connector, cookie_jar=jar)
        self.sio = socketio.AsyncClient(reconnection=False, http_session=self._http)
        # fresh queues per connection: nothing of the previous socket (a late reply, its
        # disconnect) is mistaken for this one's
        self.replies, self.confirms = asyncio.Queue(), asyncio.Queue()
        replies = self.replies
        self.sio.on("bot_uttered", replies.put_nowait)
        self.sio.on("session_confirm", self.confirms.put_nowait)
        self.sio.on("disconnect", lambda: replies.put_nowait(_GONE))
        self.sio.on("message_received", lambda data: self.receipted.add(data.get("message_id")))
        try:
            await self.sio.connect(
                url, transports=["polling"], socketio_path="/socket.io", wait_timeout=20
            )
        except socketio.exceptions.ConnectionError as exc:  # refused, or its replica is down
            raise Disconnected(f"could not connect: {exc}") from exc

    @property
    def replica(self) -> int | None:
        """The replica the balancer pinned this shopper to (from its sticky cookie)."""
        if self._http is None:
            return None
        for cookie in self._http.cookie_jar:
            if cookie.key == STICKY_COOKIE and cookie.value.startswith("r"):
                return int(cookie.value[1:]) - 1
        return None

    async def close(self) -> None:
        sio, http = self.sio, self._http
        self.sio, self._http = None, None
        try:
            if sio is not None and sio.connected:
                await sio.disconnect()
            # socket.io aborts engine.io's long poll without waiting for it; a poll still
            # running after the session below is closed would open a session of its own,
            # and waiting for it would add the server's ping interval to every goodbye
            eio = getattr(sio, "eio", None)
            loops = [getattr(eio, "read_loop_task", None), getattr(eio, "write_loop_task", None)]
            for task in [t for t in loops if t is not None and not t.done()]:
                task.cancel()
            await asyncio.gather(*[t for t in loops if t is not None], return_exceptions=True)
        finally:
            if http is not None and not http.closed:
                await http.close()

    async def open_session(self, token: str) -> str:
        """Ask for (or resume) the session; returns the confirmed session id."""
        assert self.sio is not None
        if self.session_id is None and self.stock:
            self.session_id = uuid.uuid4().hex  # the stock channel lets the client choose
        await self.sio.emit(
            "session_request", {"session_id": self.session_id, "customData": {"auth_token": token}}
        )
        confirm = asyncio.ensure_future(self.confirms.get())
        refusal = asyncio.ensure_future(self.replies.get())
        done, _ = await asyncio.wait(
            {confirm, refusal}, timeout=self.reply_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for future in (confirm, refusal):
            if future not in done:
                future.cancel()
        if refusal in done:
            if refusal.result() is _GONE:
                raise Disconnected("the socket was closed while asking for a session")
            raise Refused(_text(refusal.result()))
        if not done:
            raise TimeoutError("no session confirmation")
        confirmed = confirm.result()
        if isinstance(confirmed, dict):
            confirmed = confirmed.get("session_id")
        self.session_id = str(confirmed)
        return self.session_id

    @property
    def conversation_id(self) -> str:
        """The Rasa sender id (Cartguard's tickets are ``<conversation id>.<signature>``)."""
        assert self.session_id is not None
        return self.session_id if self.stock else self.session_id.split(".", 1)[0]

    async def say(self, text: str, token: str, replies: int) -> tuple[float, list[str]]:
        """Send one message; wait for ``replies`` answers; (seconds, reply texts)."""
        assert self.sio is not None
        started = time.perf_counter()
        # named like the page's delivery script names it (cartguard/webapp/static/delivery.js)
        self.last_sent = {
            "message": text,
            "customData": {"auth_token": token},
            "session_id": self.session_id,
            "message_id": uuid.uuid4().hex,
        }
        await self.sio.emit("user_uttered", self.last_sent)
        got: list[str] = []
        refusals = _channel_refusals()
        for _ in range(replies):
            try:
                raw = await asyncio.wait_for(self.replies.get(), self.reply_timeout)
            except asyncio.TimeoutError:
                raise RepliesMissing(replies, got) from None
            if raw is _GONE:
                raise RepliesMissing(replies, got) from Disconnected("the socket was closed")
            reply = _text(raw)
            if reply in refusals:
                raise Refused(reply)
            got.append(reply)
            if reply in _degraded_answers():
                self.degraded += 1
                break
        return time.perf_counter() - started, got

    async def send_again(self) -> bool:
        """What the page does once back in its session: send the last message again if the
        channel never said it wrote it down (same id, ``resent``). True when it was sent."""
        assert self.sio is not None
        last = self.last_sent
        if last is None or last["message_id"] in self.receipted or self.stock:
            return False
        await self.sio.emit("user_uttered", {**last, "resent": True})
        return True

    async def collect(self, replies: int, timeout: float) -> list[str]:
        """Up to ``replies`` answers that arrive within ``timeout`` s without being asked.

        After a reconnect: the replica that took the socket over replays the message its
        dead replica was answering (cartguard.channels.inflight), and its replies come here.
        """
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < replies:
            try:
                raw = await asyncio.wait_for(self.replies.get(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
            if raw is _GONE:
                break
            got.append(_text(raw))
            if got[-1] in _degraded_answers():
                self.degraded += 1
                break
        return got

    async def ask(self, text: str, token: str, quiet: float = 2.0) -> list[str]:
        """Send one message; every reply until none came for ``quiet`` s (at least one)."""
        _, first = await self.say(text, token, 1)
        return first + await self.settle(quiet)

    async def settle(self, quiet: float) -> list[str]:
        """Replies that arrive until none has come for ``quiet`` seconds."""
        got = []
        while True:
            try:
                reply = await asyncio.wait_for(self.replies.get(), quiet)
            except asyncio.TimeoutError:
                return got
            if reply is _GONE:
                return got
            got.append(_text(reply))


@dataclass
class Conversation:
    """What one shopper did and saw."""

    customer_id: int
    texts: list[str]
    conversation_id: str | None = None
    latencies: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)  # replica index per turn
    refusals: list[str] = field(default_factory=list)  # "try again" answers, then retried
    refusal_seconds: list[float] = field(default_factory=list)  # time to each "try again"
    refusal_replicas: list[int] = field(default_factory=list)  # where each came from
    reconnects: int = 0  # the socket's replica went away; the shopper came back elsewhere
    replayed: int = 0  # turns cut off by a dead replica, answered after the shopper came back
    resent: int = 0  # of those: messages without a receipt, sent again by the client
    #: per turn: the replies taken as its answer, and how the socket was reached (diagnostics
    #: for a damaged conversation: which answer stood in for which line)
    heard: list[list[str]] = field(default_factory=list)
    degraded: int = 0  # turns the actions answered "our order system is unavailable"
    finished_at: list[float] = field(default_factory=list)  # monotonic end of each turn
    replies_lost: int = 0  # replies the shopper never received
    error: str | None = None
    error_turn_began: float | None = None  # monotonic start of the turn that failed
    address: str | None = None


@dataclass
class LoadResult:
    """A load run: every conversation, plus wall time."""

    conversations: list[Conversation]
    seconds: float

    @property
    def latencies(self) -> list[float]:
        return [x for c in self.conversations for x in c.latencies]

    @property
    def messages(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> list[str]:
        return [c.error for c in self.conversations if c.error]

    @property
    def replies_lost(self) -> int:
        return sum(c.replies_lost for c in self.conversations)

    @property
    def replayed(self) -> int:
        return sum(c.replayed for c in self.conversations)

    @property
    def resent(self) -> int:
        return sum(c.resent for c in self.conversations)

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {
            "messages": float(self.messages),
            "seconds": self.seconds,
            "msg_per_s": self.messages / self.seconds if self.seconds else 0.0,
            "p50_ms": 1000 * percentile(lat, 50),
            "p95_ms": 1000 * percentile(lat, 95),
            "errors": float(len(self.errors)),
            "replies_lost": float(self.replies_lost),
        }


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def calibrate(
    url: str, token: str, texts: Sequence[str], *, stock: bool, quiet: float = 2.0
) -> list[int]:
    """How many replies each line gets, from one unhurried conversation."""
    shopper = Shopper(stock)
    await shopper.connect(url)
    try:
        await shopper.open_session(token)
        counts = []
        for text in texts:
            _, first = await shopper.say(text, token, 1)  # every line gets an answer
            counts.append(len(first) + len(await shopper.settle(quiet)))
        return counts
    finally:
        await shopper.close()


async def calibrate_all(
    url: str,
    tokens: dict[int, str],
    scripts: Sequence[tuple[int, list[str]]],
    *,
    stock: bool,
) -> dict[str, list[int]]:
    """Reply counts per script :func:`shape`, from one unhurried conversation of each."""
    counts: dict[str, list[int]] = {}
    for customer_id, texts in scripts:
        kind = shape(texts)
        if kind not in counts:
            counts[kind] = await calibrate(url, tokens[customer_id], texts, stock=stock)
    return counts


async def converse(
    urls: Sequence[str],
    conversation: Conversation,
    token: str,
    counts: Sequence[int],
    *,
    stock: bool,
    start: int = 0,
    switch_at: int | None = None,
    retries: int = 30,
    reply_timeout: float = REPLY_TIMEOUT,
    await_replays: bool = False,
) -> Conversation:
    """Play one script; from turn ``switch_at`` on, continue on the next replica.

    When the channel answers "try again later" (a database outage) the shopper does just
    that, up to ``retries`` times a second apart; each refusal is recorded.
    """
    shopper = Shopper(stock, conversation.address, reply_timeout)
    replica = start % len(urls)

    async def patiently(step: Callable[[], Awaitable[T]]) -> T:
        for _ in range(retries):
            began = time.perf_counter()
            try:
                return await step()
            except Refused as refused:
                conversation.refusals.append(str(refused))
                conversation.refusal_seconds.append(time.perf_counter() - began)
                conversation.refusal_replicas.append(served_by())
                await asyncio.sleep(RETRY_PAUSE)
            except Disconnected:  # the replica refused or lost the socket: connect again
                conversation.reconnects += 1
                await asyncio.sleep(RETRY_PAUSE)
        return await step()

    balanced = len(urls) == 1  # one balancer URL: replicas are chosen by the sticky cookie

    def served_by() -> int:
        pinned = shopper.replica  # behind the balancer: what its cookie says
        return replica if pinned is None else pinned

    async def join(url: str, prefer: int | None = None) -> str:
        await shopper.connect(url, prefer)
        return await shopper.open_session(token)

    async def resume(prefer: int | None = None) -> None:
        before = shopper.session_id
        url = urls[0] if balanced else urls[replica]
        if await patiently(lambda: join(url, prefer)) != before:
            raise RuntimeError("the other replica did not resume the same session")

    try:
        await patiently(lambda: join(urls[0] if balanced else urls[replica]))
        conversation.conversation_id = shopper.conversation_id
        after_degraded = False
        for turn, (text, calibrated) in enumerate(zip(conversation.texts, counts, strict=True)):
            # After an "order system unavailable" answer the dialogue may go on otherwise than
            # in the unhurried calibration run (one answer where it gave two): the shopper
            # takes the first answer and whatever follows it within AFTER_DEGRADED_QUIET s.
            expected = 1 if after_degraded else calibrated
            degraded_so_far = shopper.degraded
            if switch_at is not None and turn == switch_at:
                if balanced:  # move to the other replica (of two) through the balancer
                    await resume(prefer=1 - served_by())
                elif len(urls) > 1:
                    replica = (replica + 1) % len(urls)
                    await resume()
            began = time.perf_counter()
            conversation.error_turn_began = time.monotonic()
            for attempt in range(3):
                try:
                    seconds, got = await patiently(
                        lambda: shopper.say(text, token, expected)  # noqa: B023 - awaited here
                    )
                    if after_degraded:
                        got += await shopper.settle(AFTER_DEGRADED_QUIET)
                    conversation.heard.append([reply[:40] for reply in got])
                    break
                except RepliesMissing as missing:
                    if not isinstance(missing.__cause__, Disconnected) or attempt == 2:
                        conversation.replies_lost += missing.expected - len(missing.got)
                        conversation.heard.append(["(lost)", *(r[:40] for r in missing.got)])
                        raise
                    # its replica went away mid-turn: come back through the balancer (another
                    # replica) and resume the same session, as the widget does; that replica
                    # answers the message the dead one was answering. Only if it does not,
                    # the shopper says it again (and those replies count as lost).
                    conversation.reconnects += 1
                    await resume()
                    if not await_replays:  # no replica died: the shopper says it again
                        conversation.replies_lost += missing.expected - len(missing.got)
                        continue
                    if await shopper.send_again():
                        conversation.resent += 1
                    replayed = await shopper.collect(expected, shopper.reply_timeout)
                    if len(replayed) == expected or (
                        replayed and replayed[-1] in _degraded_answers()
                    ):
                        conversation.replayed += 1
                        conversation.heard.append(["(replayed)", *(r[:40] for r in replayed)])
                        seconds = time.perf_counter() - began
                        break
                    conversation.replies_lost += missing.expected - len(missing.got)
                    conversation.heard.append(
                        ["(cut off, not replayed)", *(r[:40] for r in missing.got + replayed)]
                    )
            after_degraded = shopper.degraded > degraded_so_far
            conversation.error_turn_began = None
            conversation.latencies.append(seconds)
            conversation.finished_at.append(time.monotonic())
            conversation.replicas.append(served_by())
    except Exception as exc:  # recorded, the run goes on: the checks count failures
        conversation.error = f"{type(exc).__name__}: {exc}"
    finally:
        conversation.degraded = shopper.degraded
        try:
            await shopper.close()
        except Exception:  # noqa: S110 - closing a dead connection is not the failure
            pass
    return conversation


async def run_load(
    urls: Sequence[str],
    tokens: dict[int, str],
    scripts: Sequence[tuple[int, list[str]]],
    counts: Counts,
    *,
    concurrency: int,
    stock: bool = False,
    switch_replicas: bool = True,
    first_address: int = 0,
    reply_timeout: float = REPLY_TIMEOUT,
    await_replays: bool = False,
) -> LoadResult:
    """Play ``scripts`` ((customer id, lines)) with at most ``concurrency`` at once.

    Shopper ``i`` connects from :func:`shopper_address` ``(first_address + i)``.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, customer_id: int, texts: list[str]) -> Conversation:
        async with gate:
            return await converse(
                urls,
                Conversation(customer_id, texts, address=shopper_address(first_address + index)),
                tokens[customer_id],
                counts_for(counts, texts),
                stock=stock,
                start=index,
                switch_at=len(texts) // 2 if switch_replicas else None,
                reply_timeout=reply_timeout,
                await_replays=await_replays,
            )

    started = time.perf_counter()
    done = await asyncio.gather(*(one(i, cid, t) for i, (cid, t) in enumerate(scripts)))
    return LoadResult(list(done), time.perf_counter() - started)


def plan(
    database_url: str, keys_file: Path, conversations: int, *, personal: bool = False
) -> tuple[list[tuple[int, list[str]]], dict[int, str]]:
    """Scripts and login tokens for ``conversations`` shoppers of a stack's shop.

    ``personal``: every other shopper's script carries an e-mail, a phone and a card number
    (:func:`script_for`); the same generated values for every stack, so runs compare.
    """
    pairs = shoppers(database_url, conversations)
    tokens = {cid: login_token(keys_file, cid) for cid, _ in pairs}
    data = personal_data(conversations) if personal else [None] * conversations
    scripts = [
        (cid, script_for(order_id, data[i] if i % 2 == 0 else None))
        for i, (cid, order_id) in enumerate(pairs)
    ]
    return scripts, tokens


def drive_demo(stack: Any, conversations: int, concurrency: int = 4) -> str:
    """Run a few conversations against a launched stack and describe the result."""
    scripts, tokens = plan(stack.shop_database_url, stack.keys_file, conversations)
    stock = stack.config.flavour == "stock"

    async def go() -> LoadResult:
        counts = await calibrate(
            stack.rasa_urls[0], tokens[scripts[0][0]], scripts[0][1], stock=stock
        )
        return await run_load(
            stack.rasa_urls, tokens, scripts, counts, concurrency=concurrency, stock=stock
        )

    result = asyncio.run(go())
    s = result.summary()
    lines = [
        f"==> {int(s['messages'])} messages in {s['seconds']:.1f} s: "
        f"{s['msg_per_s']:.1f} msg/s, p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms"
    ]
    lines += [f"!! {error}" for error in result.errors]
    if result.latencies:
        lines.append(f"    mean {1000 * statistics.mean(result.latencies):.0f} ms")
    return "\n".join(lines)
