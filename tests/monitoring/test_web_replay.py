"""Attacks replayed against the running web service: detection, metrics and the IP block.

The web service runs for real on a free port. Each simulated client connects from its own
source address (Linux routes all of 127.0.0.0/8 to loopback), so the service sees real,
distinct client addresses. The attacker holds secure-form links for several customers'
step-up and tries a code on each from one address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from faker import Faker
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).parent.parent / "webapp"))

from webharness import Browser, FakeRasa, ServerThread, issue

from cartguard.monitoring import anomaly, signals
from cartguard.shop.db import session_scope
from cartguard.stepup.enrolment import enroll_demo_customers

fake = Faker()
WRONG = "000000"  # tests below skip a customer whose current code happens to be this


@pytest.fixture(scope="module")
def web(mon_db) -> Iterator[ServerThread]:
    from cartguard.keys import load_keys
    from cartguard.settings import get_settings
    from cartguard.webapp.app import create_app

    rasa = FakeRasa(jwt_secret=load_keys().get("rasa_jwt_secret")).start()
    settings = dataclasses.replace(get_settings(), rasa_url=rasa.url)
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()
    rasa.stop()


@pytest.fixture()
def enrolled(mon_db, clean_slate) -> dict[int, str]:
    secrets: dict[int, str] = {}
    for customer_id in mon_db[:6]:
        with session_scope() as session:
            secrets.update(enroll_demo_customers(session, [customer_id]))
    return secrets


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen local address, like a client on another machine."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


_addresses = iter(f"127.0.{a}.{b}" for a in range(1, 250) for b in range(2, 250))


def new_address() -> str:
    """A fresh loopback address standing for one client machine."""
    return next(_addresses)


def client_at(web: ServerThread, address: str) -> Browser:
    browser = Browser(web.base_url)
    browser.http.mount("http://", SourceAddressAdapter(address))
    return browser


def sign_in(browser: Browser, customer_id: int) -> None:
    """A shop session for the customer: the attacker holds stolen passwords too (a secure-form
    link works only for its own customer, signed in)."""
    from datetime import timedelta

    from cartguard.keys import load_keys
    from cartguard.webapp import auth
    from cartguard.webapp.app import _web_key

    with session_scope() as session:
        key = _web_key(load_keys().raw("session_key"))
        cookie = auth.start_session(session, customer_id, key, timedelta(hours=1))
    browser.http.cookies.set(auth.SESSION_COOKIE, cookie)


def try_code(browser: Browser, customer_id: int, code: str) -> requests.Response:
    token, _ = issue("otp", customer_id, channel="facebook")
    sign_in(browser, customer_id)
    return browser.submit(f"/s/{token}", {"code": code})


def scrape(web: ServerThread) -> dict[str, float]:
    text = requests.get(web.base_url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(cartguard_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def run_scan(settings) -> list:
    signals.flush()
    with session_scope() as session:
        return anomaly.scan(session, settings=settings)


def test_credential_stuffing_replay_is_detected_counted_and_blockable(web, enrolled, settings):
    from cartguard.channels.guard import MessageGuard
    from cartguard.monitoring import incident

    before = scrape(web)
    attacker = new_address()
    browser = client_at(web, attacker)
    for customer_id in list(enrolled)[:5]:
        answer = try_code(browser, customer_id, WRONG)
        assert answer.status_code == 400 and "verify that code" in answer.text

    [event] = run_scan(settings)
    assert (event.rule, event.subject) == (
        "credential_stuffing",
        f"ip:{signals.pseudonym(attacker)}",
    )
    after = scrape(web)
    key = 'cartguard_stepup_total{outcome="failure"}'
    assert after[key] - before.get(key, 0) == 5
    assert not any(attacker in name for name in after)  # no address in any label

    # Contain: block the pseudonym the event shows, as the runbook says.
    with session_scope() as session:
        incident.block(
            session, "ip", actor="cli:test", pseudonym_value=event.subject.removeprefix("ip:")
        )
    assert client_at(web, attacker).get("/").status_code == 403
    assert client_at(web, new_address()).get("/").status_code == 200
    guard = MessageGuard()
    refusal = asyncio.run(guard.check_ip("socketio", attacker))
    assert refusal is not None and refusal.reason == "blocked"
    assert scrape(web)["cartguard_blocked_requests_total"] >= 1


def test_normal_step_up_traffic_of_the_same_volume_raises_nothing(web, enrolled, settings):
    from cartguard.shop.models._common import utcnow
    from cartguard.stepup import totp

    for customer_id, secret in list(enrolled.items())[:5]:
        browser = client_at(web, new_address())
        assert try_code(browser, customer_id, WRONG).status_code == 400  # a typo
        assert try_code(browser, customer_id, totp.current_code(secret, utcnow())).ok
    assert run_scan(settings) == []


def test_metrics_are_only_for_the_monitoring_system(web, monkeypatch):
    from cartguard.settings import get_settings

    assert requests.get(web.base_url + "/metrics", timeout=10).status_code == 200  # loopback

    monkeypatch.setenv("CARTGUARD_METRICS_TOKEN", "scrape-" + fake.sha1())
    get_settings.cache_clear()
    try:
        token = get_settings().metrics_token
        assert requests.get(web.base_url + "/metrics", timeout=10).status_code == 403
        ok = requests.get(
            web.base_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ok.status_code == 200 and "cartguard_stepup_total" in ok.text
    finally:
        monkeypatch.delenv("CARTGUARD_METRICS_TOKEN")
        get_settings.cache_clear()


def test_scrape_access_rules_for_remote_clients() -> None:
    from types import SimpleNamespace

    from cartguard.monitoring.metrics import may_scrape

    def request(ip: str, headers: dict[str, str] | None = None) -> SimpleNamespace:
        return SimpleNamespace(ip=ip, headers={k.lower(): v for k, v in (headers or {}).items()})

    remote = fake.ipv4_public()
    assert not may_scrape(request(remote), None, behind_proxy=False)
    assert may_scrape(request("127.0.0.1"), None, behind_proxy=False)
    # Behind our proxy every peer is the proxy: the hop the proxy appended decides.
    assert not may_scrape(
        request("127.0.0.1", {"X-Forwarded-For": f"127.0.0.1, {remote}"}), None, True
    )
    assert may_scrape(request(remote, {"Authorization": "Bearer t0ken"}), "t0ken", False)
    assert not may_scrape(request("127.0.0.1", {"Authorization": "Bearer nope"}), "t0ken", False)
