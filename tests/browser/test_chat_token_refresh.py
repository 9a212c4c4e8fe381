"""The page keeps the chat signed in: it renews its short chat token while the shop session lives
and stops at logout (Playwright's fake clock stands in for the hour that passes).

Before: the page fetched the token once, so an hour later an open tab's chat said the sign-in
had expired. The fake chat back end records the login token each message carries.
"""

from __future__ import annotations

import jwt
import pytest

pytestmark = pytest.mark.browser


def _log_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def _say(page, chat, text: str) -> dict:
    """Type a message and return what the chat back end received with it."""
    before = len(chat.received)
    page.fill(".rw-new-message", text)
    page.keyboard.press("Enter")
    for _ in range(100):
        arrived = [m for m in chat.received[before:] if m.get("message") == text]
        if arrived:
            return arrived[-1]
        page.wait_for_timeout(200)
    raise AssertionError(f"the chat back end never received {text!r}")


def _jti(message: dict) -> str | None:
    token = (message.get("customData") or {}).get("auth_token")
    return jwt.decode(token, options={"verify_signature": False})["jti"] if token else None


def test_the_page_renews_the_chat_token_and_stops_at_logout(chromium, fake_stack) -> None:
    context = chromium.new_context()
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/chat-token" in r.url else None)
    page.clock.install()

    _log_in(page, fake_stack.web_url, *fake_stack.logins[2])
    page.locator(".rw-launcher").click(timeout=20000)
    page.locator(".rw-response").first.wait_for(state="visible", timeout=20000)
    first = _say(page, fake_stack.chat, "before the hour")
    assert first["customer_id"] == 2 and len(fetched) == 1

    page.clock.fast_forward("50:00")  # past three quarters of the token's hour
    for _ in range(50):
        if len(fetched) >= 2:
            break
        page.wait_for_timeout(200)
    assert len(fetched) == 2, "the page did not renew its chat token"
    page.wait_for_timeout(500)  # let the answer land in the widget's customData
    renewed = _say(page, fake_stack.chat, "after the hour")
    assert renewed["customer_id"] == 2  # still signed in
    assert _jti(renewed) not in (None, _jti(first))  # with the new token

    # log out in another tab: the next renewal finds no shop session and the chat signs out
    other = context.new_page()
    other.goto(fake_stack.web_url + "/logout")
    other.click("main button[type=submit]")
    other.close()
    page.clock.fast_forward("50:00")
    for _ in range(50):
        if len(fetched) >= 3:
            break
        page.wait_for_timeout(200)
    assert len(fetched) == 3
    page.wait_for_timeout(500)
    after = _say(page, fake_stack.chat, "after logging out")
    assert after["customer_id"] is None and _jti(after) is None
    page.clock.fast_forward("03:00:00")
    page.wait_for_timeout(1000)
    assert len(fetched) == 3, "the page kept asking for chat tokens after logout"
    context.close()
