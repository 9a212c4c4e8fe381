"""The secure forms under attack: reuse, expiry, someone logged out, another customer,
tampering, CSRF, XSS, and requests that change state on GET.

Also the happy paths of the address, one-time code and export forms, each checking what
reached the database and what the conversation was told. Every link works only for the
customer it was made for, signed in: each test signs its browser in first. Enrolment, with
its e-mailed confirmation, is in tests/webapp/test_enrolment_email.py.
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
import time_machine
from markupsafe import escape
from sqlalchemy import select
from webharness import Browser, FakeRasa, issue, wait_for

from cartguard.shop.db import session_scope
from cartguard.shop.models import Order
from cartguard.shop.models._common import utcnow

LINK_410 = "has expired or has already been used"
LINK_404 = "This link is not valid"


def _order(customer_id: int, open_: bool) -> str:
    """One of the customer's orders, put into an open or a shipped state for the test."""
    with session_scope() as session:
        orders = (
            session.execute(
                select(Order).where(Order.customer_id == customer_id).order_by(Order.id)
            )
            .scalars()
            .all()
        )
        wanted = ("placed", "processing") if open_ else ("shipped", "delivered")
        for order in orders:
            if order.status in wanted:
                return order.id
        order = orders[0]
        order.status = wanted[-1]
        return order.id


def _address(**overrides: str) -> dict[str, str]:
    data = {
        "ship_name": "Robin Example",
        "ship_street": "12 Test Lane",
        "ship_city": "Springfield",
        "ship_postcode": "12345",
        "ship_country": "us",
    }
    data.update(overrides)
    return data


# --- link attacks ----------------------------------------------------------------------------


def test_a_used_link_answers_410_and_says_what_to_do(browser: Browser, demo_logins) -> None:
    token, _ = issue("export", 1)
    browser.login(*demo_logins[1])
    first = browser.submit(f"/s/{token}", {})
    assert first.status_code == 200
    again_get = browser.get(f"/s/{token}")
    again_post = browser.post(f"/s/{token}", {"csrf_token": browser.csrf()})
    for response in (again_get, again_post):
        assert response.status_code == 410
        assert LINK_410 in response.text and "ask the assistant" in response.text


def test_an_expired_link_answers_410(browser: Browser, demo_logins) -> None:
    token, _ = issue("address", 1, payload={"order_id": _order(1, open_=True)})
    browser.login(*demo_logins[1])
    csrf = browser.csrf()
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=True):
        page = browser.get(f"/s/{token}")
        post = browser.post(f"/s/{token}", {**_address(), "csrf_token": csrf})
    assert page.status_code == post.status_code == 410
    assert LINK_410 in page.text


def test_another_logged_in_customer_gets_403_and_the_link_survives(
    browser: Browser, demo_logins, web
) -> None:
    token, _ = issue("card", 1)
    browser.login(*demo_logins[2])
    assert browser.get(f"/s/{token}").status_code == 403
    refused = browser.post(f"/s/{token}", {"csrf_token": browser.csrf(), "number": "4"})
    assert refused.status_code == 403
    assert "different account" in refused.text
    owner = Browser(web.base_url)  # the shopper it was made for can still use it
    owner.login(*demo_logins[1])
    assert owner.get(f"/s/{token}").status_code == 200


@pytest.mark.parametrize("purpose", ["export", "card", "address", "otp", "enrol"])
def test_a_logged_out_browser_is_refused_by_a_webchat_link(
    browser: Browser, demo_logins, purpose: str
) -> None:
    """Whoever holds a link (a forwarded chat, a shared screen) gets nothing without the login."""
    payload = {"order_id": _order(1, open_=True)} if purpose == "address" else None
    token, conversation = issue(purpose, 1, payload=payload)
    page = browser.get(f"/s/{token}")
    assert page.status_code == 401
    assert "Please log in" in page.text and f"/login?next=/s/{token}" in html.unescape(page.text)
    assert 'name="csrf_token"' not in page.text.split("</header>", 1)[1]  # no form at all
    posted = browser.post(f"/s/{token}", {"csrf_token": browser.csrf(), "code": "123456"})
    assert posted.status_code == 401
    assert "application/json" not in posted.headers.get("Content-Type", "")
    assert demo_logins[1][0] not in posted.text.lower()
    browser.login(*demo_logins[1])  # the shopper it was made for: still usable
    assert browser.get(f"/s/{token}").status_code == 200


def test_an_export_link_gives_nothing_to_another_customer(browser: Browser, demo_logins) -> None:
    token, _ = issue("export", 1)
    browser.login(*demo_logins[2])
    refused = browser.post(f"/s/{token}", {"csrf_token": browser.csrf()})
    assert refused.status_code == 403
    assert demo_logins[1][0] not in refused.text.lower()


# Tables a page view may never change; the ones left out are written by the web service's
# own background loops (outbox retries, monitoring), not by requests.
_BACKGROUND_TABLES = {"web_outbox", "security_events", "security_signals", "security_blocks"}


def _snapshot() -> dict[str, list[tuple]]:
    from sqlalchemy import inspect, text

    from cartguard.shop.db import get_engine

    engine = get_engine()
    tables = sorted(set(inspect(engine).get_table_names()) - _BACKGROUND_TABLES)
    with engine.connect() as connection:
        return {
            table: sorted(
                map(tuple, connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()),
                key=repr,
            )
            for table in tables
        }


def test_get_never_changes_state(browser: Browser, demo_logins) -> None:
    """Link scanners in mail clients open every link with GET; so does a curious shopper."""
    from cartguard.stepup.enrolment import remove_enrolment

    with session_scope() as session:
        remove_enrolment(session, 4)  # not enrolled: the enrolment pages offer the most
    links = {
        purpose: issue(purpose, 4, payload=payload)[0]
        for purpose, payload in [
            ("card", None),
            ("address", {"order_id": _order(4, open_=True)}),
            ("otp", None),
            ("export", None),
            ("enrol", None),
            ("enrol_email", {"notify_chat": True}),
        ]
    }
    browser.login(*demo_logins[4])
    pages = ["/", "/privacy", "/login", "/logout", "/account/2fa", "/api/chat-token", "/healthz"]
    pages += [f"/s/{token}" for token in links.values()]
    before = _snapshot()
    for path in pages * 2:
        assert browser.get(path).status_code < 500, path
    after = _snapshot()
    changed = [table for table in before if before[table] != after[table]]
    assert changed == []
    assert browser.get("/api/chat-token").json()["token"]  # GET /logout logged nobody out


def test_tampered_and_unknown_tokens_get_the_same_404(browser: Browser, demo_logins) -> None:
    token, _ = issue("card", 1)
    browser.login(*demo_logins[1])
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    variants = [flipped, token[:-2], token + "x", "A" * 43, "not-a-token", token.upper()]
    if token.upper() == token:
        variants.pop()
    bodies = set()
    for variant in variants:
        response = browser.get(f"/s/{variant}")
        assert response.status_code == 404, variant
        bodies.add(response.text)
    assert len(bodies) == 1, "the page must not hint at which part of the token was wrong"
    assert LINK_404 in bodies.pop()
    assert browser.get(f"/s/{token}").status_code == 200  # the real one was not harmed


def test_missing_or_wrong_csrf_token_is_refused_and_nothing_changes(
    browser: Browser, web, fake: FakeRasa, demo_logins
) -> None:
    order_id = _order(2, open_=True)
    token, conversation = issue("address", 2, payload={"order_id": order_id})
    browser.login(*demo_logins[2])
    browser.get(f"/s/{token}")
    attacks = [
        _address(),  # no token at all
        {**_address(), "csrf_token": "0" * 64},  # a made-up token
        {**_address(), "csrf_token": Browser(web.base_url).csrf()},  # someone else's
    ]
    for data in attacks:
        response = browser.post(f"/s/{token}", data)
        assert response.status_code == 403
        assert "reload the page" in response.text
    # a cross-site page cannot read our cookie, so it cannot submit with a matching one
    cookieless = Browser(web.base_url)
    response = cookieless.post(f"/s/{token}", {**_address(), "csrf_token": browser.csrf()})
    assert response.status_code == 403
    with session_scope() as session:
        assert session.get(Order, order_id).ship_street != "12 Test Lane"
    assert not fake.calls_for(conversation)
    assert browser.get(f"/s/{token}").status_code == 200  # link still unused


def test_xss_in_form_fields_is_rendered_escaped(browser: Browser, demo_logins) -> None:
    order_id = _order(3, open_=True)
    browser.login(*demo_logins[3])
    token, _ = issue("address", 3, payload={"order_id": order_id})
    payloads = {
        "ship_name": "<script>alert('name')</script>",
        "ship_street": '"><img src=x onerror=alert(1)>',
        "ship_city": "</textarea><svg onload=alert(2)>",
    }
    response = browser.submit(f"/s/{token}", _address(ship_postcode="!!", **payloads))
    assert response.status_code == 400  # the bad postcode sends the form back with values
    for value in payloads.values():
        assert value not in response.text
        assert str(escape(value)) in response.text

    # stored as typed, shown escaped on the next form for that order
    done = browser.submit(f"/s/{token}", _address(**payloads))
    assert done.status_code == 200
    token2, _ = issue("address", 3, payload={"order_id": order_id})
    page = browser.get(f"/s/{token2}").text
    assert "<script>alert('name')</script>" not in page
    assert "&lt;script&gt;" in page and "onerror=alert(1)>" not in page


def test_xss_in_the_login_form_is_escaped(browser: Browser) -> None:
    response = browser.submit("/login", {"email": '"><script>alert(3)</script>', "password": "x"})
    assert response.status_code == 401
    assert "<script>alert(3)</script>" not in response.text
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in response.text


# --- address ---------------------------------------------------------------------------------


def test_address_change_updates_the_order_and_tells_the_conversation(
    browser: Browser, fake: FakeRasa, demo_logins
) -> None:
    order_id = _order(1, open_=True)
    browser.login(*demo_logins[1])
    token, conversation = issue("address", 1, payload={"order_id": order_id})
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200 and order_id in page.text
    done = browser.submit(f"/s/{token}", _address(ship_street="7 Harbour Road"))
    assert done.status_code == 200 and order_id in done.text
    with session_scope() as session:
        order = session.get(Order, order_id)
        assert (order.ship_street, order.ship_country) == ("7 Harbour Road", "US")
        assert "address changed" in order.history[-1].note
    [call] = wait_for(lambda: fake.calls_for(conversation))
    identity = call["entities"].pop("cartguard_identity")  # signed: who the change was for
    assert identity.count(".") == 2
    assert call == {
        "conversation_id": conversation,
        "auth_in_url": False,
        "name": "EXTERNAL_address_changed",
        "entities": {"order_id": order_id},
    }


def test_address_change_is_refused_politely_once_the_order_shipped(
    browser: Browser, fake: FakeRasa, demo_logins
) -> None:
    order_id = _order(1, open_=False)
    browser.login(*demo_logins[1])
    token, conversation = issue("address", 1, payload={"order_id": order_id})
    response = browser.submit(f"/s/{token}", _address(ship_street="1 Too Late Street"))
    assert response.status_code == 409
    assert f"order {order_id}" in response.text and "can no longer be changed" in response.text
    with session_scope() as session:
        assert session.get(Order, order_id).ship_street != "1 Too Late Street"
    assert not fake.calls_for(conversation)


def test_a_link_for_someone_elses_order_changes_nothing(browser: Browser, demo_logins) -> None:
    foreign_order = _order(2, open_=True)
    browser.login(*demo_logins[1])
    token, _ = issue("address", 1, payload={"order_id": foreign_order})
    response = browser.submit(f"/s/{token}", _address(ship_street="9 Intruder Way"))
    assert response.status_code == 404
    with session_scope() as session:
        assert session.get(Order, foreign_order).ship_street != "9 Intruder Way"


# --- one-time code and enrolment ---------------------------------------------------------------


def _enrolled_secret(customer_id: int) -> str:
    """An active enrolment no earlier test has used a code of.

    Replay protection refuses a code from a step at or before the last one used, so a test
    that ran seconds earlier with the same customer would make this one's right code fail.
    """
    from cartguard.shop.models.stepup import StepUpEnrolment
    from cartguard.stepup.enrolment import demo_secret, enroll_demo_customers

    with session_scope() as session:
        secret = demo_secret(session, customer_id)
        if secret is None:
            secret = enroll_demo_customers(session, [customer_id])[customer_id]
        row = session.get(StepUpEnrolment, customer_id)
        row.last_used_step, row.failures, row.locked_until = None, 0, None
    return secret


def test_otp_form_verifies_step_up_and_tells_the_conversation(
    browser: Browser, fake: FakeRasa, demo_logins
) -> None:
    from cartguard.stepup import totp
    from cartguard.stepup.service import GENERIC_FAILURE_MESSAGE, StepUpService, StepUpStatus

    secret = _enrolled_secret(2)
    token, conversation = issue("otp", 2, channel="facebook")
    browser.login(*demo_logins[2])  # a Messenger link too: only on the shop, signed in
    right = totp.current_code(secret, utcnow())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = browser.submit(f"/s/{token}", {"code": wrong})
    assert refused.status_code == 400
    assert str(escape(GENERIC_FAILURE_MESSAGE)) in refused.text
    assert wrong not in refused.text
    done = browser.submit(f"/s/{token}", {"code": right})
    assert done.status_code == 200
    with session_scope() as session:
        assert StepUpService(session).status(2, conversation) is StepUpStatus.FRESH
    calls = wait_for(lambda: fake.calls_for(conversation))
    assert [c["name"] for c in calls] == ["EXTERNAL_stepup_verified"]


def test_account_2fa_needs_a_login(browser: Browser, demo_logins) -> None:
    response = browser.get("/account/2fa")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/account/2fa"
    browser.login(*demo_logins[1])
    page = browser.get("/account/2fa")
    assert page.status_code == 200 and "Two-step verification" in page.text


# --- export and Messenger ----------------------------------------------------------------------


def test_export_downloads_once_as_json(browser: Browser, demo_logins) -> None:
    token, _ = issue("export", 3)
    browser.login(*demo_logins[3])
    assert "Download my data" in browser.get(f"/s/{token}").text
    download = browser.submit(f"/s/{token}", {})
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/json")
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    assert demo_logins[3][0] in download.text.lower()
    again = browser.post(f"/s/{token}", {"csrf_token": browser.csrf()})
    assert again.status_code == 410


def test_forms_that_need_a_customer_refuse_an_anonymous_link(browser: Browser, demo_logins) -> None:
    token, _ = issue("card", None)
    browser.login(*demo_logins[1])
    response = browser.get(f"/s/{token}")
    assert response.status_code == 400
    assert "sign in" in response.text
