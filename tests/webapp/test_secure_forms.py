"""The secure forms under attack: reuse, expiry, another customer, tampering, CSRF, XSS.

Also the happy paths of the address, one-time code, enrolment, export and Messenger forms,
each checking what reached the database and what the conversation was told.
"""

from __future__ import annotations

import re
from datetime import timedelta

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


def test_a_used_link_answers_410_and_says_what_to_do(browser: Browser) -> None:
    token, _ = issue("export", 1)
    first = browser.submit(f"/s/{token}", {})
    assert first.status_code == 200
    again_get = browser.get(f"/s/{token}")
    again_post = browser.post(f"/s/{token}", {"csrf_token": browser.csrf()})
    for response in (again_get, again_post):
        assert response.status_code == 410
        assert LINK_410 in response.text and "ask the assistant" in response.text


def test_an_expired_link_answers_410(browser: Browser) -> None:
    token, _ = issue("address", 1, payload={"order_id": _order(1, open_=True)})
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


def test_tampered_and_unknown_tokens_get_the_same_404(browser: Browser) -> None:
    token, _ = issue("card", 1)
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
    browser: Browser, web, fake: FakeRasa
) -> None:
    order_id = _order(2, open_=True)
    token, conversation = issue("address", 2, payload={"order_id": order_id})
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


def test_xss_in_form_fields_is_rendered_escaped(browser: Browser) -> None:
    order_id = _order(3, open_=True)
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
    browser: Browser, fake: FakeRasa
) -> None:
    order_id = _order(1, open_=True)
    token, conversation = issue("address", 1, payload={"order_id": order_id})
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200 and order_id in page.text
    done = browser.submit(f"/s/{token}", _address(ship_street="7 Harbour Road"))
    assert done.status_code == 200 and order_id in done.text
    with session_scope() as session:
        order = session.get(Order, order_id)
        assert (order.ship_street, order.ship_country) == ("7 Harbour Road", "US")
        assert "address changed" in order.history[-1].note
    calls = wait_for(lambda: fake.calls_for(conversation))
    assert calls == [
        {
            "conversation_id": conversation,
            "auth_in_url": False,
            "name": "EXTERNAL_address_changed",
            "entities": {"order_id": order_id},
        }
    ]


def test_address_change_is_refused_politely_once_the_order_shipped(
    browser: Browser, fake: FakeRasa
) -> None:
    order_id = _order(1, open_=False)
    token, conversation = issue("address", 1, payload={"order_id": order_id})
    response = browser.submit(f"/s/{token}", _address(ship_street="1 Too Late Street"))
    assert response.status_code == 409
    assert f"order {order_id}" in response.text and "can no longer be changed" in response.text
    with session_scope() as session:
        assert session.get(Order, order_id).ship_street != "1 Too Late Street"
    assert not fake.calls_for(conversation)


def test_a_link_for_someone_elses_order_changes_nothing(browser: Browser) -> None:
    foreign_order = _order(2, open_=True)
    token, _ = issue("address", 1, payload={"order_id": foreign_order})
    response = browser.submit(f"/s/{token}", _address(ship_street="9 Intruder Way"))
    assert response.status_code == 404
    with session_scope() as session:
        assert session.get(Order, foreign_order).ship_street != "9 Intruder Way"


# --- one-time code and enrolment ---------------------------------------------------------------


def _enrolled_secret(customer_id: int) -> str:
    from cartguard.stepup.enrolment import demo_secret, enroll_demo_customers

    with session_scope() as session:
        secret = demo_secret(session, customer_id)
        if secret is None:
            secret = enroll_demo_customers(session, [customer_id])[customer_id]
    return secret


def test_otp_form_verifies_step_up_and_tells_the_conversation(
    browser: Browser, fake: FakeRasa
) -> None:
    from cartguard.stepup import totp
    from cartguard.stepup.service import GENERIC_FAILURE_MESSAGE, StepUpService, StepUpStatus

    secret = _enrolled_secret(2)
    token, conversation = issue("otp", 2, channel="facebook")
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


def test_enrol_form_shows_a_qr_code_and_accepts_the_first_code(
    browser: Browser, fake: FakeRasa
) -> None:
    from cartguard.stepup import totp
    from cartguard.stepup.enrolment import is_enrolled

    token, conversation = issue("enrol", 4)
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200
    assert 'src="data:image/png;base64,' in page.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    # (posting without reloading the page: a reload starts over with a new secret)
    refused = browser.post(f"/s/{token}", {"code": "000000", "csrf_token": browser.csrf()})
    assert refused.status_code == 400 and "didn&#39;t match" in refused.text
    assert secret not in refused.text  # the pending secret is not shown again
    code = totp.current_code(secret, utcnow())
    token_value = browser.csrf()
    done = browser.post(f"/s/{token}", {"code": code, "csrf_token": token_value})
    assert done.status_code == 200, re.findall(r'class="(?:alert|error)"[^>]*>([^<]+)', done.text)
    with session_scope() as session:
        assert is_enrolled(session, 4)
    assert [c["name"] for c in wait_for(lambda: fake.calls_for(conversation))] == [
        "EXTERNAL_enrolled"
    ]


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
    assert "Download my data" in browser.get(f"/s/{token}").text
    download = browser.submit(f"/s/{token}", {})
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/json")
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    assert demo_logins[3][0] in download.text.lower()
    again = browser.post(f"/s/{token}", {"csrf_token": browser.csrf()})
    assert again.status_code == 410


def test_forms_that_need_a_customer_refuse_an_anonymous_link(browser: Browser) -> None:
    token, _ = issue("card", None)
    response = browser.get(f"/s/{token}")
    assert response.status_code == 400
    assert "sign in" in response.text
