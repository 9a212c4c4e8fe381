"""A shopper stays signed in to the chat exactly as long as to the shop, with a frozen clock.

Chat tokens live an hour at most; the shop login eight. The page renews its chat token from
``/api/chat-token`` (``static/chat.js``), so the endpoint is what decides: it answers a fresh,
short token while the shop session is alive, never one that outlives the session, and nothing
once the session has ended or the shopper logged out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import requests
import time_machine
from webharness import Browser, ServerThread

from cartguard.identity import verify_login_token
from cartguard.settings import get_settings

HOUR = 3600


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _session_cookie(browser: Browser) -> str:
    value = browser.http.cookies.get("cg_session")
    assert value, "no shop session cookie after login"
    return value


def _token_for(web: ServerThread, cookie: str) -> dict:
    """Ask as the page would, sending the cookie even if the client's jar thinks it expired."""
    response = requests.get(
        web.base_url + "/api/chat-token", headers={"Cookie": f"cg_session={cookie}"}, timeout=10
    )
    assert response.status_code == 200
    assert "no-store" in response.headers.get("Cache-Control", "")
    return response.json()


def test_the_chat_token_is_renewed_for_the_whole_shop_session_and_no_longer(
    web: ServerThread, demo_logins
) -> None:
    shop_hours = get_settings().web_session_hours
    assert shop_hours * HOUR > HOUR  # the situation of the issue: the shop login lasts longer
    start = datetime.now(timezone.utc).replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        browser = Browser(web.base_url)
        browser.login(*demo_logins[3])
        cookie = _session_cookie(browser)
        first = _token_for(web, cookie)
        assert verify_login_token(first["token"]) == 3
        assert first["expires_in"] == HOUR

        clock.shift(timedelta(minutes=61))  # an open tab that fetched its token only once
        assert verify_login_token(first["token"]) is None

        # the page renews at three quarters of the lifetime; every answer stays short and
        # signed in, up to the end of the shop session
        clock.move_to(start)
        session_end = start + timedelta(hours=shop_hours)
        renewals = 0
        now = start
        while now < session_end - timedelta(minutes=1):
            body = _token_for(web, cookie)
            claims = _claims(body["token"])
            assert verify_login_token(body["token"]) == 3, now
            assert 0 < body["expires_in"] <= HOUR, now
            assert claims["exp"] - claims["iat"] <= HOUR
            assert claims["exp"] <= session_end.timestamp(), "outlives the shop session"
            renewals += 1
            now += timedelta(seconds=body["expires_in"] * 0.75)
            clock.move_to(now)
        assert renewals >= shop_hours  # about one an hour (the last ones are shorter)

        clock.move_to(session_end - timedelta(minutes=10))
        late = _token_for(web, cookie)
        assert late["expires_in"] <= 10 * 60  # clipped to the session's last ten minutes

        clock.move_to(session_end + timedelta(minutes=1))
        ended = _token_for(web, cookie)
        assert ended["token"] is None and ended["owner"] == "anonymous"


def test_logout_stops_the_renewals(web: ServerThread, demo_logins) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        browser = Browser(web.base_url)
        browser.login(*demo_logins[2])
        cookie = _session_cookie(browser)
        assert verify_login_token(_token_for(web, cookie)["token"]) == 2
        clock.shift(timedelta(minutes=45))
        out = browser.post("/logout", {"csrf_token": browser.csrf("/")})
        assert out.status_code == 303
        after = _token_for(web, cookie)  # the old cookie, replayed by a stale tab
        assert after["token"] is None
        clock.shift(timedelta(hours=2))
        assert _token_for(web, cookie)["token"] is None
