"""Security headers on every kind of response, and the refusal to serve clear text publicly."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from webharness import Browser, ServerThread, issue

from cartguard.settings import get_settings
from cartguard.webapp.security import InsecureBindError, check_transport

PROJECT = Path(__file__).resolve().parents[2]


def assert_security_headers(response: requests.Response) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    script_src = re.search(r"script-src ([^;]+)", csp)
    assert script_src, csp
    assert script_src.group(1).strip() == "'self'", "inline or foreign scripts must be refused"
    assert "frame-ancestors 'none'" in csp
    assert headers.get("Cache-Control") == "no-store"
    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("X-Content-Type-Options") == "nosniff"


def test_every_page_sends_the_security_headers(browser: Browser) -> None:
    token, _ = issue("card", 1)
    responses = [
        browser.get("/"),
        browser.get("/privacy"),
        browser.get("/login"),
        browser.get("/healthz"),
        browser.get("/api/chat-token"),
        browser.get("/static/site.css"),
        browser.get("/static/chat.js"),
        browser.get("/account/2fa"),  # redirect
        browser.get("/no-such-page"),  # 404
        browser.get(f"/s/{token}"),  # a link, signed out: the page asks to log in
        browser.get("/s/" + "A" * 43),  # unknown link
        browser.post(f"/s/{token}", {"number": "1"}),  # refused: no CSRF token
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 200, 200, 200, 200, 303, 404, 401, 404, 403]
    for response in responses:
        assert_security_headers(response)
        assert "Strict-Transport-Security" not in response.headers  # plain http on loopback


def test_connect_src_allows_only_our_origin_and_rasa(browser: Browser, fake_rasa) -> None:
    csp = browser.get("/").headers["Content-Security-Policy"]
    connect = re.search(r"connect-src ([^;]+)", csp).group(1).split()
    assert connect == ["'self'", fake_rasa.url, fake_rasa.url.replace("http://", "ws://")]


def test_the_chat_page_has_no_inline_script(browser: Browser) -> None:
    page = browser.get("/").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    for attributes, body in scripts:
        assert 'src="/static/' in attributes and not body.strip()
    assert not re.search(r"\son[a-z]+=", page), "inline event handlers would need unsafe-inline"


def test_hsts_and_secure_cookies_behind_a_tls_proxy(data_dir, fake_rasa) -> None:
    from cartguard.webapp.app import create_app

    settings = dataclasses.replace(get_settings(), rasa_url=fake_rasa.url, behind_tls_proxy=True)
    server = ServerThread(create_app(settings)).start()
    try:
        over_tls = requests.get(
            server.base_url + "/",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
            timeout=10,
        )
        assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Secure" in over_tls.headers["Set-Cookie"]
        assert_security_headers(over_tls)
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "shop.example.com", "::"])
def test_refuses_a_public_address_without_tls(data_dir, host: str) -> None:
    settings = dataclasses.replace(get_settings(), host=host)
    with pytest.raises(InsecureBindError, match="CARTGUARD_BEHIND_TLS_PROXY=1"):
        check_transport(settings)


def test_transport_choices_that_are_allowed(data_dir, tmp_path: Path) -> None:
    base = get_settings()
    assert check_transport(dataclasses.replace(base, host="127.0.0.1")) is None
    assert check_transport(dataclasses.replace(base, host="localhost")) is None
    behind = dataclasses.replace(base, host="0.0.0.0", behind_tls_proxy=True)
    assert check_transport(behind) is None
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    with_tls = dataclasses.replace(base, host="0.0.0.0", tls_cert=cert, tls_key=key)
    assert check_transport(with_tls) == {"cert": cert, "key": key}
    half = dataclasses.replace(base, host="127.0.0.1", tls_cert=cert)
    with pytest.raises(InsecureBindError, match="both"):
        check_transport(half)


def test_the_service_exits_with_a_clear_message_instead_of_serving(data_dir) -> None:
    env = {**os.environ, "CARTGUARD_HOST": "0.0.0.0", "WEB_PORT": "0"}
    env.pop("CARTGUARD_BEHIND_TLS_PROXY", None)
    result = subprocess.run(
        [sys.executable, "-m", "cartguard.webapp"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve card and address forms without TLS" in result.stderr
    assert "Starting worker" not in result.stderr + result.stdout
