"""Demo login, session cookie, logout, the chat token endpoint, and safe redirects."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from webharness import Browser, set_cookies

from cartguard.identity import verify_login_token


def test_demo_logins_file_is_private_and_matches(data_dir: Path, demo_logins: dict) -> None:
    path = data_dir / "demo-logins.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    for email, password in demo_logins.values():
        assert stored[email] == password


def test_create_demo_logins_keeps_passwords_and_stores_only_hashes(db_session, demo_logins) -> None:
    from cartguard.shop.models.web import WebLogin
    from cartguard.webapp.auth import authenticate, create_demo_logins

    again = create_demo_logins(db_session, [1, 2])
    assert again == {demo_logins[1][0]: demo_logins[1][1], demo_logins[2][0]: demo_logins[2][1]}
    row = db_session.get(WebLogin, 1)
    assert row.password_hash.startswith("$argon2") and demo_logins[1][1] not in row.password_hash
    assert authenticate(db_session, demo_logins[1][0].upper(), demo_logins[1][1]) == 1
    assert authenticate(db_session, demo_logins[1][0], demo_logins[2][1]) is None
    assert authenticate(db_session, "nobody@example.com", demo_logins[1][1]) is None


def test_login_sets_a_strict_httponly_cookie_and_chat_token(browser: Browser, demo_logins) -> None:
    anonymous = browser.get("/api/chat-token").json()
    assert anonymous == {"token": None, "owner": "anonymous"}

    email, password = demo_logins[2]
    response = browser.login(email, password)
    assert response.headers["Location"] == "/"
    cookies = set_cookies(response)
    assert "HttpOnly" in cookies["cg_session"] and "SameSite=Strict" in cookies["cg_session"]
    assert "HttpOnly" in cookies["cg_csrf"]  # a new CSRF seed after login
    assert email not in str(cookies)

    chat = browser.get("/api/chat-token")
    assert chat.headers["Cache-Control"] == "no-store"
    body = chat.json()
    assert verify_login_token(body["token"]) == 2
    assert body["owner"] != "anonymous" and "2" != body["owner"]

    page = browser.get("/").text
    assert "Signed in as" in page


def test_wrong_password_gets_one_generic_answer(browser: Browser, demo_logins) -> None:
    email, _ = demo_logins[1]
    wrong = browser.submit("/login", {"email": email, "password": "not-the-password"})
    unknown = browser.submit("/login", {"email": "ghost@example.org", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    message = "That e-mail address and password don&#39;t match an account."
    assert message in wrong.text and message in unknown.text
    assert "cg_session" not in set_cookies(wrong)


def test_logout_revokes_the_session_even_if_the_cookie_is_replayed(
    browser: Browser, demo_logins, web
) -> None:
    browser.login(*demo_logins[3])
    stolen = browser.http.cookies.get("cg_session")
    assert browser.get("/api/chat-token").json()["token"]
    token = browser.csrf()
    response = browser.post("/logout", {"csrf_token": token})
    assert response.status_code == 303
    assert '"storage"' in response.headers["Clear-Site-Data"]
    assert browser.get("/api/chat-token").json()["token"] is None

    replay = Browser(web.base_url)
    replay.http.cookies.set("cg_session", stolen)
    assert replay.get("/api/chat-token").json()["token"] is None


def test_forged_session_cookies_are_anonymous(web) -> None:
    for forged in ("1", "abc.def", "x" * 43 + "." + "y" * 43, "", "." * 5):
        client = Browser(web.base_url)
        client.http.cookies.set("cg_session", forged)
        assert client.get("/api/chat-token").json()["token"] is None


def test_login_redirects_only_to_our_own_pages(browser: Browser, demo_logins) -> None:
    email, password = demo_logins[1]
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"):
        token = browser.csrf("/login")
        response = browser.post(
            "/login", {"email": email, "password": password, "next": target, "csrf_token": token}
        )
        assert response.headers["Location"] == "/", target
    token = browser.csrf("/login?next=/account/2fa")
    response = browser.post(
        "/login",
        {"email": email, "password": password, "next": "/account/2fa", "csrf_token": token},
    )
    assert response.headers["Location"] == "/account/2fa"


def test_login_without_csrf_token_is_refused(browser: Browser, demo_logins) -> None:
    email, password = demo_logins[1]
    browser.get("/login")  # has the CSRF cookie, but does not send the token
    response = browser.post("/login", {"email": email, "password": password})
    assert response.status_code == 403
    assert "cg_session" not in set_cookies(response)


def test_login_attempts_are_throttled(web, demo_logins) -> None:
    client = Browser(web.base_url)
    web.app.ctx.login_throttle.limit = 3
    try:
        codes = [
            client.submit("/login", {"email": "x@example.org", "password": "wrong"}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        email, password = demo_logins[1]
        blocked = client.submit("/login", {"email": email, "password": password})
        assert blocked.status_code == 429  # even the right password waits
    finally:
        web.app.ctx.login_throttle.limit = 10
        web.app.ctx.login_throttle._failures.clear()


def test_privacy_notice_and_health(browser: Browser) -> None:
    page = browser.get("/privacy").text
    for phrase in ("automated", "90 days", "Export", "Erasure"):
        assert phrase in page
    assert browser.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_the_chat_page_loads_the_local_widget_bundle(browser: Browser, fake_rasa) -> None:
    page = browser.get("/").text
    assert 'src="/static/chat.js"' in page
    assert f'data-socket-url="{fake_rasa.url}"' in page
    assert 'href="/login"' in page and 'href="/privacy"' in page


def test_cli_prints_demo_logins_only_with_dev_keys(demo_logins, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cartguard.cli.web import web_app

    result = CliRunner().invoke(web_app, ["demo-logins"])
    assert result.exit_code == 0, result.output
    email, password = demo_logins[1]
    assert email in result.output and password in result.output

    monkeypatch.setenv("CARTGUARD_LOGIN_KEY", "a-production-key-from-the-environment")
    refused = CliRunner(mix_stderr=False).invoke(web_app, ["demo-logins"])
    assert refused.exit_code == 2
    assert password not in refused.stdout and "dev keys" in refused.stderr


def test_logout_revokes_the_chat_token_of_that_session(browser: Browser, demo_logins, web) -> None:
    """A chat token kept after logout (another tab, a copied token) no longer names anyone."""
    browser.login(*demo_logins[1])
    token = browser.get("/api/chat-token").json()["token"]
    other_device = Browser(web.base_url)  # the same shopper, signed in elsewhere
    other_device.login(*demo_logins[1])
    other_token = other_device.get("/api/chat-token").json()["token"]
    assert verify_login_token(token) == verify_login_token(other_token) == 1

    assert browser.post("/logout", {"csrf_token": browser.csrf("/")}).status_code == 303
    assert verify_login_token(token) is None
    assert verify_login_token(other_token) == 1  # only the session that logged out ends


def test_get_logout_shows_a_form_and_logs_nobody_out(browser: Browser, demo_logins) -> None:
    browser.login(*demo_logins[2])
    page = browser.get("/logout")
    assert page.status_code == 200 and 'method="post" action="/logout"' in page.text
    assert browser.get("/api/chat-token").json()["token"]  # still signed in
    cross_site = browser.post("/logout", {})  # no CSRF token: a link or form on another site
    assert cross_site.status_code == 403
    assert browser.get("/api/chat-token").json()["token"]
