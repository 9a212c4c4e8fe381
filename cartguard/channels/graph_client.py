"""The one client for Facebook's Graph API (Messenger Send API).

Every outgoing Messenger call goes through :class:`GraphClient`, so the base URL
(``settings.graph_api_url``; tests point it at a local fake), the page token handling and the
error policy are decided once:

* the page access token travels in the ``Authorization`` header, never in the URL, so it
  cannot end up in proxy or access logs;
* a failed send is logged with the HTTP status and Graph error code only (no token, no message
  text) and reported as ``False``; it never raises into Rasa's message handling;
* messages are shaped to the Send API limits: text is split at 2000 characters, button
  templates carry at most 3 buttons and 640 characters, links become ``web_url`` buttons.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from cartguard.settings import get_settings

logger = logging.getLogger(__name__)

TEXT_LIMIT = 2000
TEMPLATE_TEXT_LIMIT = 640
BUTTONS_PER_TEMPLATE = 3
BUTTON_TITLE_LIMIT = 20


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


def to_messenger_button(button: dict[str, Any]) -> dict[str, Any]:
    """A Rasa button (``title`` + ``url`` or ``payload``) as a Send API button."""
    title = str(button.get("title", ""))[:BUTTON_TITLE_LIMIT]
    if button.get("url"):
        return {"type": "web_url", "url": str(button["url"]), "title": title}
    if button.get("type") in {"web_url", "postback", "phone_number"}:
        return dict(button, title=title)
    return {"type": "postback", "title": title, "payload": str(button.get("payload", title))}


class GraphClient:
    """Sends messages to Messenger users in the name of the shop's page."""

    def __init__(self, page_token: str, base_url: str | None = None, timeout: float = 10) -> None:
        self._page_token = page_token
        self.base_url = (base_url or get_settings().graph_api_url).rstrip("/")
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
        """Send one Send API ``message`` object as a reply."""
        return await self._post(
            {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
        )

    async def send_action(self, psid: str, action: str) -> bool:
        """``typing_on`` / ``typing_off`` / ``mark_seen``."""
        return await self._post({"recipient": {"id": psid}, "sender_action": action})

    async def send_text(self, psid: str, text: str) -> bool:
        ok = True
        for piece in _chunks(text, TEXT_LIMIT):
            ok = await self.send_message(psid, {"text": piece}) and ok
        return ok

    async def send_buttons(self, psid: str, text: str, buttons: list[dict[str, Any]]) -> bool:
        """A button template (links as URL buttons), split into several if needed."""
        converted = [to_messenger_button(b) for b in buttons]
        if not converted:
            return await self.send_text(psid, text)
        pieces = _chunks(text, TEMPLATE_TEXT_LIMIT) or [" "]
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
        quick = [
            {
                "content_type": "text",
                "title": str(r.get("title", ""))[:BUTTON_TITLE_LIMIT],
                "payload": str(r.get("payload", r.get("title", ""))),
            }
            for r in replies[:13]
        ]
        return await self.send_message(psid, {"text": text[:TEXT_LIMIT], "quick_replies": quick})
