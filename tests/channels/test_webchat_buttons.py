"""Secure-form links must reach the widget as links, never as quick replies that post the URL."""

from __future__ import annotations

from cartguard.channels.webchat import SecureSocketIOOutput


class RecordingSio:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, str]] = []

    async def emit(self, event: str, data: dict, room: str | None = None, **_: object) -> None:
        self.sent.append((event, data, room))


async def test_web_url_buttons_stay_links_and_payload_buttons_stay_quick_replies() -> None:
    sio = RecordingSio()
    out = SecureSocketIOOutput(sio, "bot_uttered")
    await out.send_text_with_buttons(
        "room-1",
        "First part.\n\nPlease use the secure page.",
        [
            {
                "title": "Update my card securely",
                "type": "web_url",
                "url": "http://x/s/abc",
                "payload": "http://x/s/abc",
            },
            {"title": "Talk to a person", "payload": "/contact_human_agent"},
        ],
    )
    assert [data["text"] for _, data, _ in sio.sent] == [
        "First part.",
        "Please use the secure page.",
    ]
    link, reply = sio.sent[-1][1]["quick_replies"]
    assert link["type"] == "web_url" and link["url"] == "http://x/s/abc"
    assert "type" not in reply and reply["payload"] == "/contact_human_agent"
    assert {room for _, _, room in sio.sent} == {"room-1"}
