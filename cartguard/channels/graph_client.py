"""The one client for Facebook's Graph API (Messenger Send API, account-linking lookups).

Every Messenger call goes through this module, so the base URL (``settings.graph_api_url``;
tests point it at a local fake), the page token handling and the error policy are decided once:

* the page access token travels in the ``Authorization`` header, never in the URL, so it
  cannot end up in proxy or access logs;
* a failed call is logged with the HTTP status and Graph error code only (no token, no message
  text) and reported as ``False``/``None``; it never raises into Rasa's message handling;
* messages are shaped to the Send API's limits (:func:`shape_text`, :func:`to_messenger_button`):
  text is split at 2000 characters, button templates carry at most 3 buttons and 640 characters,
  button and quick-reply titles 20 characters, payloads 1000, at most 13 quick replies;
* links go only to our own origin (``settings.public_web_url``): a URL button for anywhere else
  is dropped, and an outside address in a text is replaced, so nothing the bot says can carry a
  shopper to someone else's page. Markdown links (which Messenger shows raw) become plain text.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests

from cartguard.settings import get_settings

logger = logging.getLogger(__name__)

TEXT_LIMIT = 2000
TEMPLATE_TEXT_LIMIT = 640
BUTTONS_PER_TEMPLATE = 3
BUTTON_TITLE_LIMIT = 20
PAYLOAD_LIMIT = 1000
QUICK_REPLIES_LIMIT = 13
LINK_REMOVED = "(link removed)"

_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{1,200})\]\(([^)\s]{1,2000})\)")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"')\]]+")
#: a bare host name such as ``evil.example/pay`` (Messenger makes those clickable too)
_BARE_HOST = re.compile(
    r"(?i)(?<![\w@.-])(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})"
    r"(?::\d{1,5})?(?:/[^\s<>\"')\]]*)?(?![\w@-])"
)
#: Facebook's account-linking tokens: opaque, URL-safe, a few hundred characters at most
_LINKING_TOKEN = re.compile(r"^[A-Za-z0-9_\-.:]{8,512}$")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origin() -> str:
    return origin_of(get_settings().public_web_url)


def is_own_url(url: object, origin: str) -> bool:
    """True only for an absolute http(s) URL on ``origin`` (no credentials, no other host)."""
    if not isinstance(url, str) or len(url) > PAYLOAD_LIMIT:
        return False
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    return f"{parts.scheme}://{parts.netloc}".lower() == origin


def clean_text(text: str, origin: str) -> str:
    """Markdown links as ``label: url``; addresses outside ``origin`` replaced."""

    def unlink(match: re.Match) -> str:
        label, url = match.group(1), match.group(2)
        return f"{label}: {url}" if is_own_url(url, origin) else f"{label} {LINK_REMOVED}"

    own_host = (urlsplit(origin).hostname or "").lower()
    text = _MARKDOWN_LINK.sub(unlink, text)
    text = _URL.sub(lambda m: m.group(0) if is_own_url(m.group(0), origin) else LINK_REMOVED, text)
    return _BARE_HOST.sub(
        lambda m: m.group(0) if m.group("host").lower() == own_host else LINK_REMOVED, text
    )


def _chunks(text: str, size: int) -> list[str]:
    """Split on paragraph, then line, then hard boundaries so each piece fits ``size``."""
    pieces: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        while len(paragraph) > size:
            cut = paragraph.rfind("\n", 0, size)
            if cut <= 0:
                cut = paragraph.rfind(" ", 0, size)
            if cut <= 0:
                cut = size
            pieces.append(paragraph[:cut].rstrip())
            paragraph = paragraph[cut:].lstrip()
        if paragraph:
            pieces.append(paragraph)
    return pieces


def shape_text(text: str, origin: str, size: int = TEXT_LIMIT) -> list[str]:
    """``text`` as Messenger may show it: cleaned, in pieces of at most ``size`` characters."""
    return _chunks(clean_text(str(text or ""), origin), size)


def _title(button: dict[str, Any]) -> str:
    return str(button.get("title", ""))[:BUTTON_TITLE_LIMIT] or "Open"


def to_messenger_button(button: dict[str, Any], origin: str | None = None) -> dict[str, Any] | None:
    """A Rasa button as a Send API button, or ``None`` when it may not be shown.

    * ``url`` (or ``type: web_url``): a URL button, only to our own origin;
    * ``type: account_link``: Messenger's log-in button (account linking), our origin only;
    * anything else: a postback button whose payload comes back when tapped (at most 1000
      characters; longer ones are dropped rather than cut into a different command).
    """
    origin = origin or own_origin()
    url = button.get("url")
    kind = button.get("type")
    if kind == "account_link":
        return {"type": "account_link", "url": url} if is_own_url(url, origin) else None
    if url or kind == "web_url":
        if not is_own_url(url, origin):
            logger.warning("Messenger: a link button to another site was not sent")
            return None
        return {"type": "web_url", "url": str(url).strip(), "title": _title(button)}
    payload = str(button.get("payload", button.get("title", "")))
    if not payload or len(payload) > PAYLOAD_LIMIT:
        return None
    return {"type": "postback", "title": _title(button), "payload": payload}


def to_quick_reply(reply: dict[str, Any]) -> dict[str, Any] | None:
    payload = str(reply.get("payload", reply.get("title", "")))
    if not payload or len(payload) > PAYLOAD_LIMIT:
        return None
    return {"content_type": "text", "title": _title(reply), "payload": payload}


def psid_for_linking_token(
    token: object,
    *,
    page_token: str,
    base_url: str | None = None,
    timeout: float = 5.0,
) -> str | None:
    """The PSID of the Messenger user who tapped our log-in button, or ``None``.

    Messenger opens an ``account_link`` button's URL with an ``account_linking_token`` made
    for the person who tapped it; only the Graph API can turn it into their page-scoped id
    (``GET /me?fields=recipient&account_linking_token=...``). This is how the linking page knows
    which Messenger user is in front of it, rather than trusting whoever holds the URL.
    Synchronous: the web service calls it once when the page is opened.
    """
    if not isinstance(token, str) or not _LINKING_TOKEN.match(token):
        return None
    url = f"{(base_url or get_settings().graph_api_url).rstrip('/')}/me"
    try:
        response = requests.get(
            url,
            params={"fields": "recipient", "account_linking_token": token},
            headers={"Authorization": f"Bearer {page_token}"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        logger.warning("Graph API unreachable for a linking lookup: %s", type(exc).__name__)
        return None
    if not response.ok:
        logger.warning("Graph API refused an account-linking lookup: HTTP %s", response.status_code)
        return None
    try:
        recipient = response.json().get("recipient")
    except (ValueError, AttributeError):
        return None
    return str(recipient) if isinstance(recipient, str | int) and str(recipient) else None


class GraphClient:
    """Sends messages to Messenger users in the name of the shop's page."""

    def __init__(
        self,
        page_token: str,
        base_url: str | None = None,
        timeout: float = 10,
        *,
        origin: str | None = None,
    ) -> None:
        self._page_token = page_token
        self.base_url = (base_url or get_settings().graph_api_url).rstrip("/")
        self.origin = (origin or own_origin()).lower()
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r})"

    async def _post(self, body: dict[str, Any]) -> bool:
        headers = {"Authorization": f"Bearer {self._page_token}"}
        url = f"{self.base_url}/me/messages"
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.post(url, json=body, headers=headers) as resp:
                    if resp.status < 300:
                        return True
                    code = None
                    try:
                        code = (await resp.json()).get("error", {}).get("code")
                    except (aiohttp.ContentTypeError, ValueError, AttributeError):
                        pass
                    logger.warning(
                        "Graph API refused a message: HTTP %s, error code %s", resp.status, code
                    )
                    return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Graph API unreachable: %s", type(exc).__name__)
            return False

    async def send_message(self, psid: str, message: dict[str, Any]) -> bool:
        """Send one Send API ``message`` object as a reply (callers shape it first)."""
        return await self._post(
            {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
        )

    async def send_action(self, psid: str, action: str) -> bool:
        """``typing_on`` / ``typing_off`` / ``mark_seen``."""
        return await self._post({"recipient": {"id": psid}, "sender_action": action})

    async def send_text(self, psid: str, text: str) -> bool:
        ok = True
        for piece in shape_text(text, self.origin):
            ok = await self.send_message(psid, {"text": piece}) and ok
        return ok

    def buttons(self, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The buttons that may be shown, in the Send API's format."""
        converted = (to_messenger_button(b, self.origin) for b in buttons if isinstance(b, dict))
        return [b for b in converted if b is not None]

    async def send_buttons(self, psid: str, text: str, buttons: list[dict[str, Any]]) -> bool:
        """A button template (at most 3 buttons each), split into several if needed."""
        converted = self.buttons(buttons)
        if not converted:
            return await self.send_text(psid, text)
        pieces = shape_text(text, self.origin, TEMPLATE_TEXT_LIMIT) or ["Please choose:"]
        ok = True
        for piece in pieces[:-1]:
            ok = await self.send_message(psid, {"text": piece}) and ok
        label = pieces[-1]
        for start in range(0, len(converted), BUTTONS_PER_TEMPLATE):
            template = {
                "template_type": "button",
                "text": label,
                "buttons": converted[start : start + BUTTONS_PER_TEMPLATE],
            }
            message = {"attachment": {"type": "template", "payload": template}}
            ok = await self.send_message(psid, message) and ok
            label = "More options:"
        return ok

    async def send_quick_replies(self, psid: str, text: str, replies: list[dict[str, Any]]) -> bool:
        """Text with quick replies (the replies ride on the last piece of the text)."""
        quick = [q for q in (to_quick_reply(r) for r in replies if isinstance(r, dict)) if q]
        pieces = shape_text(text, self.origin) or ["Please choose:"]
        ok = True
        for piece in pieces[:-1]:
            ok = await self.send_message(psid, {"text": piece}) and ok
        last: dict[str, Any] = {"text": pieces[-1]}
        if quick:
            last["quick_replies"] = quick[:QUICK_REPLIES_LIMIT]
        return await self.send_message(psid, last) and ok


class HeldGraphClient(GraphClient):
    """A turn's messages, held until Rasa has stored the turn, then sent in order.

    Rasa answers while it predicts and stores the turn afterwards; when that save fails the
    shopper must not keep an answer the stored conversation lacks (see the webchat's
    ``HeldSocketIOOutput``). Everything goes through ``_post``, so holding it holds them all.
    """

    def __init__(self, graph: GraphClient) -> None:
        super().__init__(
            graph._page_token,
            graph.base_url,
            origin=graph.origin,
        )
        self._timeout = graph._timeout
        self._real = graph
        self.held: list[dict[str, Any]] = []

    async def _post(self, body: dict[str, Any]) -> bool:
        self.held.append(body)
        return True

    async def deliver(self) -> bool:
        """Send what was held (the turn is stored); False when any send failed."""
        held, self.held = self.held, []
        ok = True
        for body in held:
            ok = await self._real._post(body) and ok
        return ok
