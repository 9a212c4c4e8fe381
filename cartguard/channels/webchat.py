"""The webchat channel: Rasa's socket.io channel with server-issued, owner-bound sessions.

Configured in ``credentials.yml`` as ``cartguard.channels.webchat.SecureSocketIOInput`` with
the rasa-webchat settings (``session_persistence: true``, ``metadata_key: customData``). The
widget protocol is unchanged (``session_request`` -> ``session_confirm``, ``user_uttered``,
``bot_uttered``); what changes is who decides:

* **Session ids** are tickets we sign (:mod:`.sessions`). A client that presents a made-up,
  forged, erased or unknown id gets a fresh, empty session; the widget then clears its window.
* **Owner.** A fresh session is claimed by its first accepted message: by the customer whose
  login token (``customData.auth_token``) that message carries, or by "anonymous". The token is
  verified on *every* message, and a message whose identity differs from the conversation's
  owner is never forwarded: its socket is moved to a fresh session and told why.
* **Replies** go to a room named after the conversation. A socket joins it only once it has
  proven its right to speak there (a matching login token; for anonymous conversations the
  ticket itself). Merely presenting a ticket for a customer's conversation, as a page reload
  does, binds the socket without letting it hear anything until its first message proves
  the owner. An anonymous conversation is held by one live socket at a time: a second socket
  presenting the same ticket while the first is connected gets a fresh session.
* **Metadata.** Client metadata is dropped; Rasa receives only ``auth_token`` (when it verified)
  and ``pii_removed`` (what edge redaction took out).
* **Limits and redaction** (:mod:`.guard`, :mod:`.edge`) run before Rasa sees the text; before
  redaction, control characters and escape sequences are stripped
  (:func:`cartguard.control_chars.strip_control_chars`) and typed internal commands
  (``/EXTERNAL_*``, ``/intent{entities}``) are refused unless the bot offered that payload in
  this conversation (:mod:`.intent_guard`; the output records every offered payload).
* **Logout.** A login token bound to a shop session stops working when that session ends; the
  channel checks its signed-in sockets every :data:`REVOCATION_SWEEP_SECONDS` and moves those
  of an ended session to a fresh, empty conversation (other tabs leave it too).

Several replicas (:mod:`.cluster`, with ``CARTGUARD_SOCKETIO_REDIS_URL``): emits go through
Redis, so a reply produced on any replica (e.g. the web service's ``trigger_intent``) reaches
the socket wherever it is, and the one-socket rule for anonymous conversations is kept in Redis.
The load balancer still keeps each socket.io session on one replica (sticky), as engine.io needs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import rasa.core.channels.channel
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from cartguard.channels import intent_guard, replies
from cartguard.channels.cluster import Holders, build_client_manager, build_holders
from cartguard.channels.edge import EdgeUnavailable, protect
from cartguard.channels.edge import warm_up as edge_warm_up
from cartguard.channels.guard import MessageGuard, client_ip
from cartguard.channels.inflight import (
    Turn,
    Turns,
    build_turns,
    client_message_id,
    open_turn,
    seal_turn,
    sender_digest,
    turn_id_for,
)
from cartguard.channels.sessions import Ticket, issue_ticket, verify_ticket
from cartguard.control_chars import strip_control_chars
from cartguard.identity import ended_sessions, session_ref_of, verify_login_token_async
from cartguard.keys import load_keys
from cartguard.monitoring import metrics, signals
from cartguard.settings import get_settings
from cartguard.shop.conversations import (
    DB_TIMEOUT_SECONDS,
    SessionState,
    claim_webchat_session,
    load_webchat_session,
    register_webchat_session,
    run_in_db,
    touch,
)
from cartguard.shop.db import DatabaseUnavailable

logger = logging.getLogger(__name__)

AUTH_TOKEN = "auth_token"  # noqa: S105 - a metadata key name
PII_REMOVED = "pii_removed"
_TOUCH_EVERY_SECONDS = 60.0
#: how often sockets of shoppers who logged out elsewhere are moved out of their conversation
REVOCATION_SWEEP_SECONDS = 15.0
#: a message whose redaction takes longer is answered "try again" rather than left hanging
_EDGE_TIMEOUT_SECONDS = 15.0
#: how long a turn stays written down after its answers were sent, until the shopper's socket
#: has taken them from this replica's send queue (see ``_taken``)
_PICKUP_SECONDS = 10.0
#: the event telling the widget a message of its is written down (it stops holding a copy)
RECEIPT_EVT = "message_received"


class SecureSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output, except that a response can never choose its own room."""

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Like Rasa's, but a ``web_url`` button stays a link (rasa-webchat renders it as one).

        The stock output turns every button into a quick reply whose payload is sent back as a
        message, so a secure-form link would be posted into the chat instead of opened.
        Payloads are recorded as offered first, so that the intent guard accepts the tap.
        """
        await intent_guard.remember_offered(recipient_id, intent_guard.payloads_of(buttons))
        replies = []
        for button in buttons:
            reply = {"content_type": "text", "title": button["title"], "payload": button["payload"]}
            if button.get("type") == "web_url" and button.get("url"):
                reply.update(type="web_url", url=button["url"])
            replies.append(reply)
        parts = text.strip().split("\n\n") or [text]
        for part in parts[:-1]:
            await self._send_message(recipient_id, {"text": part})
        await self._send_message(recipient_id, {"text": parts[-1], "quick_replies": replies})

    async def send_elements(self, recipient_id: str, elements: Any, **kwargs: Any) -> None:
        elements = list(elements or [])
        offered = [
            payload
            for element in elements
            if isinstance(element, dict)
            for payload in intent_guard.payloads_of(element.get("buttons"))
        ]
        await intent_guard.remember_offered(recipient_id, offered)
        await super().send_elements(recipient_id, elements, **kwargs)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        payload = json_message.get("data", json_message)
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in {"room", "to", "skip_sid"}}
            offered = [
                *intent_guard.payloads_of(payload.get("quick_replies")),
                *intent_guard.payloads_of(payload.get("buttons")),
            ]
            await intent_guard.remember_offered(recipient_id, offered)
        await self._send_message(recipient_id, payload)


class HeldSocketIOOutput(SecureSocketIOOutput):
    """A turn's answers, held until Rasa has stored the turn, then sent in order.

    Rasa sends each answer while it predicts and stores the turn only afterwards. When that
    save fails (the database restarting or silent), the shopper would keep an answer the
    stored conversation lacks, and the next turn would be predicted without it. Held, the
    answers go out only once the turn is stored; otherwise the shopper hears "try again".
    """

    def __init__(self, sio: Any, bot_message_evt: str) -> None:
        super().__init__(sio, bot_message_evt)
        self.held: list[tuple[str, Any]] = []

    async def _send_message(self, socket_id: str, response: Any) -> None:
        self.held.append((socket_id, response))

    async def deliver(self, sid: str | None = None, namespace: str | None = None) -> None:
        """Send what was held (the turn is stored); called once per turn.

        ``sid``: the socket that asked, connected to this replica. It gets each answer straight
        into its send queue here (so the channel can wait until the socket took it); the
        conversation's other sockets, on any replica, through the client manager - published
        *first*: a shopper whose socket moves to another replica the moment it has the answer
        joins the conversation there after that copy went by, instead of receiving it twice.
        """
        held, self.held = self.held, []
        for room, answer in held:
            if sid is None:
                await super()._send_message(room, answer)
                continue
            await self.sio.emit(
                self.bot_message_evt, answer, room=room, skip_sid=sid, namespace=namespace
            )
            await self.sio.emit(
                self.bot_message_evt, answer, room=sid, namespace=namespace, ignore_queue=True
            )


@dataclass
class _Socket:
    """What we know about one connected socket."""

    ip: str | None
    ticket: Ticket | None = None
    proven: bool = False  # in the conversation's room, identity matched
    customer_id: int | None = None  # identity it proved (None = anonymous)
    #: the shop session behind the token it proved with: logging out there ends its chat
    session_ref: str | None = None
    touched_at: float = 0.0
    #: one event at a time per socket: messages reach Rasa in the order they were typed, and
    #: a claim cannot race another event of the same socket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _maybe_await(result: object) -> None:
    """python-socketio 5.9 returns None from enter_room; >= 5.10 returns a coroutine."""
    if inspect.isawaitable(result):
        await result


class SecureSocketIOInput(SocketIOInput):
    """socket.io input channel (name ``socketio``) with signed, owner-bound sessions."""

    def __init__(
        self,
        user_message_evt: str = "user_uttered",
        bot_message_evt: str = "bot_uttered",
        namespace: str | None = None,
        session_persistence: bool = True,
        socketio_path: str | None = "/socket.io",
        jwt_key: str | None = None,
        jwt_method: str | None = "HS256",
        metadata_key: str | None = "metadata",
        guard: MessageGuard | None = None,
        socketio_redis_url: str | None = None,
    ) -> None:
        # session_persistence is accepted for credentials.yml compatibility; sessions always
        # persist here, because the server (not the socket id) defines the conversation.
        super().__init__(
            user_message_evt,
            bot_message_evt,
            namespace,
            True,
            socketio_path,
            jwt_key,
            jwt_method,
            metadata_key,
        )
        self._guard = guard
        self._sockets: dict[str, _Socket] = {}
        #: Redis shared by the replicas (default: CARTGUARD_SOCKETIO_REDIS_URL; none: one process)
        self.socketio_redis_url = socketio_redis_url or get_settings().socketio_redis_url
        self._holders: Holders | None = None  # who holds each anonymous conversation
        self._turns: Turns | None = None  # messages being answered (see .inflight)
        self._agent_app: Any = None  # the Sanic app whose ctx.agent answers (set at start)
        self._session_key: bytes | None = None
        self._sweeper: asyncio.Task | None = None  # see sweep_revoked
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None

    @property
    def guard(self) -> MessageGuard:
        if self._guard is None:
            self._guard = MessageGuard()
        return self._guard

    @property
    def holders(self) -> Holders:
        if self._holders is None:
            self._holders = build_holders(self.socketio_redis_url)
        return self._holders

    @property
    def turns(self) -> Turns:
        if self._turns is None:
            self._turns = build_turns(self.socketio_redis_url)
        return self._turns

    @property
    def session_key(self) -> bytes:
        if self._session_key is None:
            self._session_key = load_keys().raw("session_key")
        return self._session_key

    def get_output_channel(self) -> OutputChannel | None:
        if self.sio is None:
            return super().get_output_channel()  # warns like Rasa does
        return SecureSocketIOOutput(self.sio, self.bot_message_evt)

    # ----------------------------------------------------------------- helpers

    def _token_of(self, data: dict[str, Any]) -> object:
        """The login token a client sent in its metadata (unverified), or None."""
        metadata = data.get(self.metadata_key or "metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return None
        if not isinstance(metadata, dict):
            return None
        return metadata.get(AUTH_TOKEN)

    async def _identity(self, token: object) -> int | None:
        """The verified customer of a login token (None: anonymous or invalid).

        Its database lookup (ended shop sessions) is bounded like every channel database call:
        a silent database raises ``asyncio.TimeoutError`` and the shopper is told to try again.
        """
        return await asyncio.wait_for(verify_login_token_async(token), DB_TIMEOUT_SECONDS)

    async def _ip_refusal(self, ip: str | None) -> Any:
        """The guard's address check (blocklist, rate limit), bounded the same way."""
        return await asyncio.wait_for(self.guard.check_ip("socketio", ip), DB_TIMEOUT_SECONDS)

    async def _say(self, sid: str, text: str) -> None:
        """A channel reply to one socket only (never to a conversation's room)."""
        assert self.sio is not None
        await self.sio.emit(self.bot_message_evt, {"text": text}, room=sid)

    async def _leave_current(self, sid: str, sock: _Socket) -> None:
        if sock.ticket and sock.proven:
            conversation_id = sock.ticket.conversation_id
            await _maybe_await(self.sio.leave_room(sid, conversation_id))  # type: ignore[union-attr]
            if sock.customer_id is None:
                await self.holders.release(conversation_id, sid)
        sock.ticket, sock.proven, sock.customer_id = None, False, None
        sock.session_ref = None

    async def _prove(self, sid: str, sock: _Socket, customer_id: int | None) -> bool:
        """The socket may now hear its conversation: join the room.

        False when the conversation is anonymous and another live socket (on any replica)
        holds it: the ticket is the only credential there, so a copy must not listen in.
        """
        assert sock.ticket is not None
        conversation_id = sock.ticket.conversation_id
        if customer_id is None and not await self.holders.acquire(conversation_id, sid):
            return False
        await _maybe_await(self.sio.enter_room(sid, conversation_id))  # type: ignore[union-attr]
        sock.proven, sock.customer_id = True, customer_id
        return True

    async def _fresh_session(self, sid: str, sock: _Socket) -> Ticket:
        """Issue, record and bind a new, unclaimed session to this socket."""
        await self._leave_current(sid, sock)
        ticket = issue_ticket(self.session_key)
        await run_in_db(register_webchat_session, ticket.conversation_id)
        sock.ticket = ticket
        return ticket

    async def _confirm(self, sid: str, ticket: Ticket) -> None:
        assert self.sio is not None
        await self.sio.emit("session_confirm", ticket.value, room=sid)

    async def _move_to_fresh_session(self, sid: str, sock: _Socket, why: str) -> None:
        ticket = await self._fresh_session(sid, sock)
        await self._confirm(sid, ticket)
        await self._say(sid, why)

    # ----------------------------------------------------------------- events

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: dict | None) -> bool:
        if self.jwt_key:
            token = auth.get("token") if isinstance(auth, dict) else None
            payload = (
                rasa.core.channels.channel.decode_bearer_token(
                    token, self.jwt_key, self.jwt_algorithm
                )
                if token
                else None
            )
            if not payload:
                return False
        request = environ.get("sanic.request")
        ip = client_ip(request) if request is not None else environ.get("REMOTE_ADDR")
        try:
            refused = await self._ip_refusal(ip)
        except asyncio.TimeoutError:  # its database is silent: let the client go elsewhere
            logger.warning("webchat: connection refused, the address check did not answer")
            return False
        if refused:
            logger.info("webchat: connection refused, too many requests from one address")
            return False
        self._sockets[sid] = _Socket(ip=ip)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        return True

    async def on_disconnect(self, sid: str) -> None:
        sock = self._sockets.pop(sid, None)
        if sock is not None:
            await self._leave_current(sid, sock)
        if not self._sockets and self._sweeper is not None:
            self._sweeper.cancel()  # nobody left to watch; the next connection starts it again
            self._sweeper = None

    # ----------------------------------------------------------------- logout elsewhere

    async def sweep_revoked(self) -> int:
        """Move sockets whose shop session ended (logout, staff revocation) out of their chat.

        Another tab or device that logged out cannot tell this socket, so the channel asks
        the shared database now and then: such a socket leaves the conversation's room, gets
        a fresh, empty session (the widget clears its window) and is told why. Returns how
        many sockets were moved.
        """
        watched = {
            sid: sock.session_ref
            for sid, sock in self._sockets.items()
            if sock.proven and sock.session_ref is not None
        }
        if not watched:
            return 0
        try:
            ended = await asyncio.to_thread(ended_sessions, set(watched.values()))
        except DatabaseUnavailable as exc:  # cannot tell: nobody is signed out on a guess
            logger.warning("webchat: sign-out check skipped this round (%s)", exc)
            return 0
        moved = 0
        for sid, ref in watched.items():
            sock = self._sockets.get(sid)
            if ref not in ended or sock is None:
                continue
            async with sock.lock:
                if sock.session_ref != ref:  # it proved a new identity meanwhile
                    continue
                await self._move_to_fresh_session(sid, sock, replies.SIGNED_OUT)
                moved += 1
        return moved

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_SWEEP_SECONDS)
            try:
                await self.sweep_revoked()
            except Exception:
                logger.exception("webchat: checking for ended shop sessions failed")

    async def on_session_request(self, sid: str, data: Any) -> None:
        sock = self._sockets.setdefault(sid, _Socket(ip=None))
        async with sock.lock:
            await self._session_request(sid, sock, data if isinstance(data, dict) else {})

    async def _session_request(self, sid: str, sock: _Socket, data: dict[str, Any]) -> None:
        unclaimed = False  # resumed a session whose first message was never accepted
        try:
            refusal = await self._ip_refusal(sock.ip)
            if refusal:
                await self._say(sid, refusal.reply)
                return
            ticket, state = await self._resume(sid, data)
            if ticket is None or state is None:
                ticket = await self._fresh_session(sid, sock)
                await self._confirm(sid, ticket)
                return
            await self._leave_current(sid, sock)
            sock.ticket = ticket
            requester = await self._identity(self._token_of(data))
            if state.claimed and (
                state.customer_id is None or state.belongs_to(requester)
            ):  # anonymous: the ticket is the credential; customer: the token proved it
                if not await self._prove(sid, sock, state.customer_id):
                    ticket = await self._fresh_session(sid, sock)  # held by another socket
                elif state.customer_id is not None:
                    sock.session_ref = session_ref_of(self._token_of(data))
            await self._confirm(sid, ticket)
            unclaimed = not state.claimed
        except Exception:
            logger.exception("webchat: session request failed")
            await self._say(sid, replies.UNAVAILABLE)
            return
        if sock.ticket is not None and (sock.proven or unclaimed):
            await self._replay_orphans(sid, sock, self._token_of(data), same_sender=unclaimed)

    async def _replay_orphans(
        self, sid: str, sock: _Socket, token: object, *, same_sender: bool
    ) -> None:
        """Answer the messages a dead replica was answering when this shopper was cut off.

        The socket came back (same ticket, proven) possibly on another replica; the messages
        of its conversation whose replica stopped renewing them go through this channel
        again, oldest first, as if this socket had just sent them with the login token it
        proved itself with: every check (owner, limits, typed commands, redaction) runs
        again (see :mod:`.inflight`). Runs under the socket's lock: messages typed meanwhile
        follow the replayed ones.

        ``same_sender``: the session was never claimed (its first message is the one cut
        off), so nothing proves who may continue it but the ticket; a message is then
        replayed only for the login token (or the absence of one) it arrived with.
        """
        if self._on_new_message is None:
            return
        assert sock.ticket is not None
        ticket = sock.ticket
        for turn in await self.turns.orphans(ticket.conversation_id):
            if same_sender and turn.sender != sender_digest(token):
                logger.warning("webchat: a first message in flight from another sender dropped")
                continue
            answers = await self._stored_answers(turn.conversation_id, turn.turn_id)
            if answers is not None:  # its replica died after storing the turn: no second turn,
                output = SecureSocketIOOutput(self.sio, self.bot_message_evt)
                for answer in answers:  # but the answers it may not have delivered
                    await output.send_response(ticket.conversation_id, answer)
                continue
            text = open_turn(turn)
            if text is None:
                continue
            logger.info("webchat: replaying a message its replica did not live to answer")
            custom = {AUTH_TOKEN: token} if token else {}
            data = {"message": text, self.metadata_key or "metadata": custom}
            await self._user_message(sid, sock, data, self._on_new_message, turn.turn_id)

    async def _stored_answers(
        self, conversation_id: str, turn_id: str
    ) -> list[dict[str, Any]] | None:
        """The bot messages stored after the turn, or None when the turn is not stored.

        A replica killed after saving its tracker has sent its answers, but they may have
        waited in the dead process for the socket's next poll; they are sent again as stored.
        """
        agent = getattr(getattr(self._agent_app, "ctx", None), "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:  # no agent loaded yet: Rasa answers "not ready" anyway
            return None
        tracker = await store.retrieve(conversation_id)
        events = list(tracker.events) if tracker is not None else []
        for at, event in enumerate(events):
            if isinstance(event, UserUttered) and event.message_id == turn_id:
                answers = []
                for later in events[at + 1 :]:
                    if isinstance(later, UserUttered):
                        break
                    if isinstance(later, BotUttered):
                        answers.append(later.message())
                return answers
        return None

    async def _write_down(self, sock: _Socket, data: Any, turn_id: str | None) -> Turn | None:
        """Record a message as it arrives, sealed, until its turn ends (see :mod:`.inflight`).

        Before every check: a replica that dies while the message waits for its database
        lookups or its redaction must not lose it either. Messages the channel refuses at
        once (no session, not text, over the length limit) are not recorded.
        """
        if not self.turns.records or sock.ticket is None or not isinstance(data, dict):
            return None
        text = data.get("message")
        if not isinstance(text, str) or len(text) > self.guard.max_chars:
            return None
        sender = sender_digest(self._token_of(data))
        turn = seal_turn(sock.ticket.conversation_id, text, sender, turn_id)
        await self.turns.begin(turn)
        return turn

    async def _resume(
        self, sid: str, data: dict[str, Any]
    ) -> tuple[Ticket | None, SessionState | None]:
        """The presented session if this socket may continue it, else (None, None)."""
        ticket = verify_ticket(self.session_key, data.get("session_id"))
        if ticket is None:
            if data.get("session_id"):
                self._note_auth_failure(sid, "forged_session")
            return None, None
        state = await run_in_db(load_webchat_session, ticket.conversation_id)
        if state is None:
            self._note_auth_failure(sid, "forged_session")  # revoked, erased or never ours
            return None, None
        token = self._token_of(data)
        if (
            state.claimed
            and token is not None
            and not state.belongs_to(await self._identity(token))
        ):
            return None, None  # the client told us who it is, and it is someone else
        if (
            state.claimed
            and state.customer_id is None
            and await self.holders.held_elsewhere(ticket.conversation_id, sid)
        ):
            return None, None  # anonymous and held by another live socket: this is a copy
        return ticket, state

    async def on_user_message(
        self, sid: str, data: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        sock = self._sockets.get(sid)
        if sock is None:
            return
        async with sock.lock:
            await self._user_message(sid, sock, data, on_new_message)

    async def _user_message(
        self,
        sid: str,
        sock: _Socket,
        data: Any,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        turn_id: str | None = None,
    ) -> None:
        """One message, written down while it is in flight (``turn_id``: a replayed one).

        A message the widget named (``message_id``) gets a receipt once written down; a copy
        it sent again for want of one is not answered twice (see :mod:`.inflight`).
        """
        client_id = client_message_id(data) if turn_id is None and sock.ticket else None
        if client_id is not None and sock.ticket is not None:
            turn_id = turn_id_for(sock.ticket.conversation_id, client_id)
            if data.get("resent") is True and await self._handled_before(
                sock.ticket.conversation_id, turn_id
            ):
                logger.info("webchat: a message sent again had already arrived; receipt only")
                await self._receipt(sid, client_id)
                return
        try:
            turn = await self._write_down(sock, data, turn_id)
        except Exception:  # the vault cannot seal: nothing goes on in clear
            logger.exception("webchat: could not seal a message in flight")
            await self._say(sid, replies.UNAVAILABLE)
            return
        if client_id is not None:
            await self._receipt(sid, client_id)
        try:
            await self._accept(sid, sock, data, on_new_message, turn.turn_id if turn else turn_id)
            if turn is not None:
                await self._taken(sid)
        finally:
            if turn is not None:
                await self.turns.end(turn)

    async def _handled_before(self, conversation_id: str, turn_id: str) -> bool:
        """Whether a turn is written down (answered or awaiting replay) or already stored."""
        if await self.turns.known(conversation_id, turn_id):
            return True
        try:
            return await self._stored_answers(conversation_id, turn_id) is not None
        except Exception:  # the tracker store did not answer: the turn itself will say so
            logger.warning("webchat: could not look up a message sent again", exc_info=True)
            return False

    async def _receipt(self, sid: str, client_id: str) -> None:
        """Tell the asking socket its message is written down (ahead of the turn's answers).

        Straight into this process's queue for the socket, as the answers are: a receipt
        through Redis could arrive after them.
        """
        assert self.sio is not None
        await self.sio.emit(
            RECEIPT_EVT,
            {"message_id": client_id},
            room=sid,
            namespace=self.namespace or "/",
            ignore_queue=True,
        )

    async def _taken(self, sid: str) -> None:
        """Wait (at most ``_PICKUP_SECONDS``) until the socket took what was queued for it.

        Sent answers wait in this process's engine.io queue for the socket's next poll (or
        its websocket writer). A replica killed before that loses them; while the turn is
        still written down, the shopper's socket coming back on another replica gets them
        again from the stored turn (``_replay_orphans``). So the turn is crossed out only
        once the queue was taken.
        """
        assert self.sio is not None
        namespace = self.namespace or "/"
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, namespace)
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is None:  # gone: nothing more to wait for here
            return
        try:
            await asyncio.wait_for(socket.queue.join(), _PICKUP_SECONDS)
        except asyncio.TimeoutError:
            logger.info("webchat: a socket did not take its answers within %.0f s", _PICKUP_SECONDS)

    async def _accept(
        self,
        sid: str,
        sock: _Socket,
        data: Any,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        message_id: str | None,
    ) -> None:
        try:
            if await self._refused_early(sid, sock, data):
                return
            assert sock.ticket is not None
            token = self._token_of(data)
            customer_id = await self._identity(token)
            if token and customer_id is None:
                self._note_auth_failure(sid, "invalid_token")
            if not await self._may_speak(sid, sock, customer_id):
                return
            if customer_id is not None:
                sock.session_ref = session_ref_of(token)
            conversation_id = sock.ticket.conversation_id
            refusal = await self.guard.check_message("socketio", conversation_id, data["message"])
            if refusal:
                await self._say(sid, refusal.reply)
                return
            text = strip_control_chars(data["message"])  # never into Rasa, logs, staff terminals
            if not text.strip():
                await self._say(sid, replies.UNSUPPORTED_CONTENT)
                return
            if not await intent_guard.allowed_text(conversation_id, text):
                logger.info("webchat: typed internal command refused")
                metrics.record_guard_refusal(self.name(), "typed_command")
                await self._say(sid, replies.COMMAND_REFUSED)
                return
            try:
                safe = await asyncio.wait_for(
                    protect(text, customer_id=customer_id, conversation_id=conversation_id),
                    _EDGE_TIMEOUT_SECONDS,
                )
            except (EdgeUnavailable, asyncio.TimeoutError):
                await self._say(sid, replies.UNAVAILABLE)
                return
            metadata: dict[str, Any] = {}
            if customer_id is not None:
                metadata[AUTH_TOKEN] = token
            if safe.pii_removed:
                metadata[PII_REMOVED] = list(safe.pii_removed)
            await self._touch(sock)
            output = HeldSocketIOOutput(self.sio, self.bot_message_evt)
            message = UserMessage(
                safe.text,
                output,
                conversation_id,
                input_channel=self.name(),
                message_id=message_id,
                metadata=metadata,
            )
        except Exception:
            logger.exception("webchat: could not accept a message")
            await self._say(sid, replies.UNAVAILABLE)
            return
        tip = replies.security_tip(message.metadata.get(PII_REMOVED))
        if tip is not None:  # why the text was changed, and how to stay safe
            await self._tip(sid, *tip)
        metrics.record_message(self.name())
        try:
            await on_new_message(message)
        except Exception:
            # e.g. the tracker database did not answer in time: the turn was not stored, and
            # the shopper hears so (and none of its held answers) instead of waiting for a
            # reply that will not come
            logger.exception("webchat: Rasa could not handle a message")
            await self._say(sid, replies.UNAVAILABLE)
            return
        await output.deliver(sid, self.namespace)

    async def _tip(self, sid: str, text: str, buttons: list[dict[str, str]]) -> None:
        """A security tip to this socket, in the widget's button format (quick replies)."""
        assert self.sio is not None
        quick = [{"content_type": "text", **button} for button in buttons]
        await self.sio.emit(self.bot_message_evt, {"text": text, "quick_replies": quick}, room=sid)

    def _note_auth_failure(self, sid: str, kind: str) -> None:
        """Count a forged session id or invalid login token for the anomaly rules."""
        sock = self._sockets.get(sid)
        metrics.record_auth_failure(self.name(), kind)
        signal = signals.FORGED_SESSION if kind == "forged_session" else signals.INVALID_TOKEN
        signals.note(signal, ip=sock.ip if sock else None)

    async def _refused_early(self, sid: str, sock: _Socket, data: Any) -> bool:
        """Cheap checks before any database work; True when the message was answered."""
        refusal = await self._ip_refusal(sock.ip)
        if refusal:
            await self._say(sid, refusal.reply)
            return True
        if sock.ticket is None:
            await self._say(sid, replies.NO_SESSION)
            return True
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await self._say(sid, replies.UNSUPPORTED_CONTENT)
            return True
        claimed_session = data.get("session_id")
        if claimed_session is not None and claimed_session != sock.ticket.value:
            # The socket names a session other than the one it was confirmed into.
            await self._say(sid, replies.NO_SESSION)
            return True
        return False

    async def _may_speak(self, sid: str, sock: _Socket, customer_id: int | None) -> bool:
        """Check (and on first use, establish) that ``customer_id`` owns the conversation."""
        assert sock.ticket is not None
        if sock.proven and sock.customer_id == customer_id:
            return True
        conversation_id = sock.ticket.conversation_id
        # one transaction: claim the session if it is still unclaimed, note the activity, read
        # the state back (this socket then skips the database until it changes identity)
        state = await run_in_db(claim_webchat_session, conversation_id, customer_id)
        sock.touched_at = time.monotonic()
        if state is None:
            await self._move_to_fresh_session(sid, sock, replies.NEW_CONVERSATION)
            return False
        if state.belongs_to(customer_id):
            if not sock.proven and not await self._prove(sid, sock, customer_id):
                await self._move_to_fresh_session(sid, sock, replies.NEW_CONVERSATION)
                return False
            return True
        if state.customer_id is None:
            why = replies.NEW_CONVERSATION_SIGNED_IN
        elif customer_id is None:
            why = replies.NEW_CONVERSATION_SIGNED_OUT
        else:
            why = replies.NEW_CONVERSATION_OTHER_ACCOUNT
        logger.info("webchat: message refused, sender does not own the conversation")
        await self._move_to_fresh_session(sid, sock, why)
        return False

    async def _touch(self, sock: _Socket) -> None:
        now = time.monotonic()
        if sock.ticket and now - sock.touched_at >= _TOUCH_EVERY_SECONDS:
            sock.touched_at = now
            await run_in_db(touch, sock.ticket.conversation_id)

    # ----------------------------------------------------------------- wiring

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Same server options as Rasa's channel (CORS is left to Rasa's --cors).
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=[],
            client_manager=build_client_manager(self.socketio_redis_url),
        )
        edge_warm_up()
        webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        self._on_new_message = on_new_message

        @webhook.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            self._agent_app = app  # its ctx.agent's tracker store tells replayed turns apart

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        metrics.add_metrics_route(webhook)  # the Rasa process's metrics (monitoring)
        namespace = self.namespace
        sio.on("connect", self.on_connect, namespace=namespace)
        sio.on("disconnect", self.on_disconnect, namespace=namespace)
        sio.on("session_request", self.on_session_request, namespace=namespace)

        async def handle_message(sid: str, data: Any) -> None:
            await self.on_user_message(sid, data, on_new_message)

        sio.on(self.user_message_evt, handle_message, namespace=namespace)
        return webhook
