"""The Messenger channel: Rasa's Facebook channel with verified, replay-proof webhooks.

Configured in ``credentials.yml`` as ``cartguard.channels.messenger.SecureFacebookInput``; the
channel keeps Rasa's name ``facebook`` (the actions use it to recognise the public channel).
Secrets come from the credentials file when given there, else from :func:`load_keys`.

Differences from the stock channel, and why:

* ``POST /webhook`` requires ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app
  secret, compared in constant time). Missing, wrong or SHA-1-only signatures get **403** and
  nothing is parsed. (The stock channel checked SHA-1 only and answered 200 on failure.)
* ``GET /webhook`` verification compares the verify token in constant time; 403 otherwise.
* Every event is handled once (:mod:`.dedupe`); events older than the replay window are
  ignored, so a captured body cannot be replayed later either.
* Every event in a batch is handled (the stock channel stopped at the first).
* Identity: a linked PSID (:mod:`cartguard.account_links`) gets a fresh five-minute login token in
  ``metadata["auth_token"]``; unlinked senders get none. The link is looked up on every message
  (and the actions look again), so an unlinked or revoked PSID is anonymous at once. Nothing
  else goes into metadata except ``pii_removed`` from edge redaction.
* Typed commands: control characters are stripped first, then text Rasa would read as an
  internal intent (``/EXTERNAL_...``, or any intent with entities) is refused unless it is
  exactly a postback or quick-reply payload the bot offered in this conversation
  (:mod:`.intent_guard`; offers are recorded before they are sent, so they stay tappable).
* ``account_linking`` events: Messenger's own "unlinked" (its log-out button) removes our link.
* Limits: too many requests from one address -> **429**; too many messages from one sender
  -> a polite reply (at most one a minute) and the message is dropped; over-long messages ->
  a reply saying so. The webhook never raises: Facebook disables webhooks that keep failing.
* Replies go through :class:`GraphClient`: Messenger's formats (button template, quick
  replies), Messenger's length limits, and links only to our own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from cartguard.account_links import linked_customer, unlink_psid
from cartguard.channels import intent_guard, replies
from cartguard.channels.dedupe import REPLAY_WINDOW_SECONDS, DedupeStore, build_dedupe, event_key
from cartguard.channels.edge import EdgeUnavailable, protect
from cartguard.channels.edge import warm_up as edge_warm_up
from cartguard.channels.graph_client import GraphClient, HeldGraphClient, is_own_url, shape_text
from cartguard.channels.guard import MessageGuard, client_ip
from cartguard.control_chars import strip_control_chars
from cartguard.identity import issue_login_token
from cartguard.keys import load_keys
from cartguard.monitoring import metrics, signals
from cartguard.shop.conversations import note_messenger_sender, run_in_db

logger = logging.getLogger(__name__)

CHANNEL = "facebook"
LOGIN_TOKEN_TTL_SECONDS = 300
SIGNATURE_HEADER = "X-Hub-Signature-256"
_TOLD_TOO_FAST_EVERY_SECONDS = 60.0


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """True only for ``sha256=<hex HMAC of body>``; other algorithms are refused."""
    if not header or not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len("sha256=") :].strip().encode())


def _configured(value: object) -> str | None:
    """A credential from credentials.yml, or None when it is missing or an unexpanded ``${..}``.

    Rasa expands ``${VAR}`` only in unquoted YAML values; a quoted one arrives literally, and
    using the literal text as the app secret would let anyone who read the file sign webhooks.
    Such values fall back to the installation's keys (the same environment variables).
    """
    if not isinstance(value, str) or not value.strip() or "${" in value:
        return None
    return value


class MessengerOutput(OutputChannel):
    """Bot responses to Messenger, through the Graph API client, in Messenger's own formats.

    Every payload a shopper can tap (postback buttons, quick replies) is recorded as offered
    in this conversation before it is sent, so the intent guard lets the tap through later.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    @staticmethod
    async def _offer(recipient_id: str, items: Iterable[Any] | None) -> None:
        await intent_guard.remember_offered(recipient_id, intent_guard.payloads_of(items))

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.graph.send_text(recipient_id, text)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self._offer(recipient_id, buttons)
        await self.graph.send_buttons(recipient_id, text, buttons)

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self._offer(recipient_id, quick_replies)
        await self.graph.send_quick_replies(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        if not is_own_url(image, self.graph.origin):
            logger.warning("Messenger: an image from another site was not sent")
            return
        attachment = {"type": "image", "payload": {"url": image, "is_reusable": True}}
        await self.graph.send_message(recipient_id, {"attachment": attachment})

    async def send_elements(
        self, recipient_id: str, elements: Iterable[dict[str, Any]], **kwargs: Any
    ) -> None:
        items = []
        for element in list(elements or [])[:10]:  # the generic template holds 10 elements
            if not isinstance(element, dict) or not element.get("title"):
                continue
            await self._offer(recipient_id, element.get("buttons"))
            item: dict[str, Any] = {"title": shape_text(element["title"], self.graph.origin, 80)[0]}
            if element.get("subtitle"):
                item["subtitle"] = shape_text(element["subtitle"], self.graph.origin, 80)[0]
            if is_own_url(element.get("image_url"), self.graph.origin):
                item["image_url"] = element["image_url"]
            buttons = self.graph.buttons(element.get("buttons") or [])[:3]
            if buttons:
                item["buttons"] = buttons
            items.append(item)
        if not items:
            return
        payload = {"template_type": "generic", "elements": items}
        await self.graph.send_message(
            recipient_id, {"attachment": {"type": "template", "payload": payload}}
        )

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """A response's ``custom`` block: only text, quick replies and button templates.

        It can shape the message but never choose another recipient, reach another site or
        bypass the limits: everything goes through the same shaping as Rasa's own messages.
        """
        if not isinstance(json_message, dict):
            return
        attachment = json_message.get("attachment")
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        if isinstance(payload, dict) and payload.get("template_type") == "button":
            await self.send_text_with_buttons(
                recipient_id, str(payload.get("text") or ""), list(payload.get("buttons") or [])
            )
        elif isinstance(json_message.get("quick_replies"), list):
            await self.send_quick_replies(
                recipient_id, str(json_message.get("text") or ""), json_message["quick_replies"]
            )
        elif isinstance(json_message.get("text"), str):
            await self.send_text_message(recipient_id, json_message["text"])
        else:
            logger.warning("Messenger: a custom message of an unsupported shape was not sent")

    async def send_attachment(  # type: ignore[override]
        self, recipient_id: str, attachment: Any, **kwargs: Any
    ) -> None:
        if isinstance(attachment, dict):
            await self.send_custom_json(recipient_id, {"attachment": attachment})


class SecureFacebookInput(FacebookInput):
    """Messenger input channel (name ``facebook``) with verified signatures."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> SecureFacebookInput:
        credentials = credentials or {}
        return cls(
            _configured(credentials.get("verify")),
            _configured(credentials.get("secret")),
            _configured(credentials.get("page-access-token")),
        )

    def __init__(
        self,
        fb_verify: str | None = None,
        fb_secret: str | None = None,
        fb_access_token: str | None = None,
        *,
        guard: MessageGuard | None = None,
        dedupe: DedupeStore | None = None,
        graph_api_url: str | None = None,
    ) -> None:
        # Secrets not given in credentials.yml come from the installation's keys.
        keys = None
        if not (fb_verify and fb_secret and fb_access_token):
            keys = load_keys()
        super().__init__(
            fb_verify or keys.get("messenger_verify_token"),  # type: ignore[union-attr]
            fb_secret or keys.get("messenger_app_secret"),  # type: ignore[union-attr]
            fb_access_token or keys.get("messenger_page_token"),  # type: ignore[union-attr]
        )
        self._guard = guard
        self._dedupe = dedupe
        self._graph_api_url = graph_api_url
        self._told_too_fast: dict[str, float] = {}

    @property
    def guard(self) -> MessageGuard:
        if self._guard is None:
            self._guard = MessageGuard()
        return self._guard

    @property
    def dedupe(self) -> DedupeStore:
        if self._dedupe is None:
            self._dedupe = build_dedupe()
        return self._dedupe

    def graph(self) -> GraphClient:
        return GraphClient(self.fb_access_token, self._graph_api_url)

    def get_output_channel(self) -> OutputChannel:
        return MessengerOutput(self.graph())

    # ----------------------------------------------------------------- webhook

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("cartguard_fb_webhook", __name__)
        edge_warm_up()

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return self.answer_verification(request)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request, on_new_message)

        return webhook

    def answer_verification(self, request: Request) -> HTTPResponse:
        """Facebook's subscription handshake: echo the challenge for the right token only."""
        token = request.args.get("hub.verify_token") or ""
        challenge = request.args.get("hub.challenge") or ""
        if (
            request.args.get("hub.mode") == "subscribe"
            and self.fb_verify
            and hmac.compare_digest(token.encode(), self.fb_verify.encode())
        ):
            return response.text(challenge)
        logger.warning("Messenger verification refused: the verify token does not match")
        return response.text("verification token mismatch", status=403)

    async def receive(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        try:
            if await self.guard.check_ip(CHANNEL, client_ip(request)):
                return response.text("too many requests", status=429)
            if not valid_signature(
                self.fb_secret, request.body, request.headers.get(SIGNATURE_HEADER)
            ):
                logger.warning("Messenger webhook refused: missing or invalid %s", SIGNATURE_HEADER)
                metrics.record_messenger_signature_failure()
                signals.note(signals.BAD_SIGNATURE, ip=client_ip(request))
                return response.text("invalid signature", status=403)
            try:
                payload = json.loads(request.body)
            except ValueError:
                return response.text("body is not JSON", status=400)
            for event in self._events(payload):
                await self.handle_event(event, on_new_message)
        except Exception:
            # Facebook disables webhooks that keep failing; log and acknowledge.
            logger.exception("Messenger webhook: an event could not be handled")
        return response.text("EVENT_RECEIVED")

    @staticmethod
    def _events(payload: object) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or payload.get("object") != "page":
            return []
        events = []
        for entry in payload.get("entry") or []:
            if isinstance(entry, dict):
                events.extend(e for e in entry.get("messaging") or [] if isinstance(e, dict))
        return events

    async def handle_event(
        self, event: dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """One messaging event: dedupe, limits, identity, redaction, then Rasa."""
        psid = str((event.get("sender") or {}).get("id") or "")
        message = event.get("message") if isinstance(event.get("message"), dict) else None
        postback = event.get("postback") if isinstance(event.get("postback"), dict) else None
        linking = event.get("account_linking")
        if psid and isinstance(linking, dict) and not (message or postback):
            await self._account_linking(event, psid, linking)
            return
        if not psid or not (message or postback) or (message or {}).get("is_echo"):
            return  # delivery / read receipts, echoes of our own messages
        if not await self._first_delivery(event, psid, message, postback):
            return
        graph = self.graph()
        text = self._text_of(message, postback)
        if text is None:
            await graph.send_text(psid, replies.UNSUPPORTED_CONTENT)
            return
        refusal = await self.guard.check_message(CHANNEL, psid, text)
        if refusal:
            await self._tell_refusal(graph, psid, refusal.reason, refusal.reply)
            return
        text = strip_control_chars(text)  # never into Rasa, logs, staff terminals
        if not text.strip():
            await graph.send_text(psid, replies.UNSUPPORTED_CONTENT)
            return
        if not await intent_guard.allowed_text(psid, text):
            logger.info("Messenger: typed internal command refused")
            metrics.record_guard_refusal(CHANNEL, "typed_command")
            await graph.send_text(psid, replies.COMMAND_REFUSED)
            return
        customer_id = await run_in_db(_resolve_sender, psid)
        try:
            safe = await protect(text, customer_id=customer_id, conversation_id=psid)
        except EdgeUnavailable:
            await graph.send_text(psid, replies.UNAVAILABLE)
            return
        metadata: dict[str, Any] = {}
        if customer_id is not None:
            metadata["auth_token"] = issue_login_token(customer_id, LOGIN_TOKEN_TTL_SECONDS)
        if safe.pii_removed:
            metadata["pii_removed"] = list(safe.pii_removed)
        held = HeldGraphClient(graph)  # sent once the turn is stored
        user_message = UserMessage(
            safe.text, MessengerOutput(held), psid, input_channel=CHANNEL, metadata=metadata
        )
        tip = replies.security_tip(safe.pii_removed)
        if tip is not None:  # why the text was changed, and how to stay safe
            await graph.send_buttons(psid, tip[0], tip[1])
        metrics.record_message(CHANNEL)
        try:
            await on_new_message(user_message)
        except Exception:
            # e.g. the tracker database did not answer in time: the turn was not stored, and
            # the shopper hears so (and none of its held answers) instead of silence
            logger.exception("Messenger: Rasa could not handle a message")
            await graph.send_text(psid, replies.UNAVAILABLE)
            return
        await held.deliver()

    async def _account_linking(
        self, event: dict[str, Any], psid: str, linking: dict[str, Any]
    ) -> None:
        """Messenger's own account-linking callbacks (its log-in and log-out buttons).

        "unlinked" (the shopper used Messenger's log-out) removes our link, audited. "linked"
        needs nothing: our linking page already linked the PSID it verified.
        """
        if not await self._first_delivery(event, psid, None, {"account_linking": linking}):
            return
        if linking.get("status") == "unlinked":
            await run_in_db(unlink_psid, psid, "shopper:messenger-logout")

    async def _first_delivery(
        self,
        event: dict[str, Any],
        psid: str,
        message: dict[str, Any] | None,
        postback: dict[str, Any] | None,
    ) -> bool:
        """False for replays: an event seen before, or older than the replay window."""
        timestamp = event.get("timestamp")
        if isinstance(timestamp, int | float):
            age = time.time() - timestamp / 1000.0
            if age > REPLAY_WINDOW_SECONDS:
                logger.info("Messenger: ignored an event older than the replay window")
                return False
        mid = (message or postback or {}).get("mid")
        if mid:
            key = event_key("mid", mid)
        else:
            body = json.dumps(postback or message, sort_keys=True)
            key = event_key("event", psid, timestamp, body)
        if await self.dedupe.first_time(key):
            return True
        logger.info("Messenger: ignored a repeated delivery of the same event")
        return False

    @staticmethod
    def _text_of(message: dict[str, Any] | None, postback: dict[str, Any] | None) -> str | None:
        if postback is not None:
            payload = postback.get("payload")
            return payload if isinstance(payload, str) else None
        message = message or {}
        quick = message.get("quick_reply")
        if isinstance(quick, dict) and isinstance(quick.get("payload"), str):
            return quick["payload"]
        text = message.get("text")
        return text if isinstance(text, str) else None

    async def _tell_refusal(self, graph: GraphClient, psid: str, reason: str, reply: str) -> None:
        """Answer a refused message; rate-limit answers go out at most once a minute."""
        if reason == "rate_sender":
            now = time.monotonic()
            if now - self._told_too_fast.get(psid, -1e9) < _TOLD_TOO_FAST_EVERY_SECONDS:
                return
            if len(self._told_too_fast) > 10_000:
                self._told_too_fast.clear()
            self._told_too_fast[psid] = now
        await graph.send_text(psid, reply)


def _resolve_sender(session: Any, psid: str) -> int | None:
    """The linked customer of ``psid`` (or None), noting the conversation's owner row."""
    customer_id = linked_customer(session, psid)
    note_messenger_sender(session, psid, customer_id)
    return customer_id
