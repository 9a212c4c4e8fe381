"""The Messenger linking page: only the Messenger user the link was made for can use it, the
shop sign-in happens on the page (password, then the authenticator code when enrolled), and the
conversation is told with a signed identity of the customer who signed in.

Messenger's log-in button opens the page with an ``account_linking_token`` that only the Graph
API can resolve to a PSID; here a dictionary stands in for that lookup (the lookup itself is
tested against a fake Graph API in tests/channels/test_messenger_output.py, and for real in
tests/e2e/test_messenger_journey.py).
"""

from __future__ import annotations

import html
import re
import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from webharness import Browser

from cartguard.account_links import linked_customer
from cartguard.shop.db import session_scope

#: account_linking_token -> the PSID Messenger made it for
TAPS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def graph_lookup(monkeypatch):
    import cartguard.webapp.forms as forms

    monkeypatch.setattr(forms, "psid_for_linking_token", lambda token, **_: TAPS.get(token))


def new_psid() -> str:
    return str(10**15 + secrets.randbelow(10**15))


def tap(psid: str) -> str:
    """What Messenger appends when ``psid`` taps the log-in button."""
    token = "ALT" + secrets.token_urlsafe(24)
    TAPS[token] = psid
    return token


def linking_link(psid: str) -> str:
    from cartguard.account_links import start_linking

    with session_scope() as session:
        url = start_linking(session, psid)
    return url.rsplit("/s/", 1)[1]


def page(token: str, linking_token: str | None) -> str:
    return f"/s/{token}" + (f"?account_linking_token={linking_token}" if linking_token else "")


def opener_of(response) -> str:
    match = re.search(r'name="opener" value="([0-9a-f]{64})"', response.text)
    assert match, response.text[:800]
    return match.group(1)


def sign_in(browser: Browser, token: str, psid: str, **fields: str):
    """Open the page from Messenger as ``psid`` and submit it."""
    shown = browser.get(page(token, tap(psid)))
    assert shown.status_code == 200, shown.text[:500]
    data = {"csrf_token": browser.csrf(page(token, tap(psid))), "opener": opener_of(shown)}
    return browser.post(f"/s/{token}", {**data, **fields})


def customer_without_authenticator(demo_logins) -> int:
    from cartguard.stepup.enrolment import is_enrolled

    with session_scope() as session:
        free = [c for c in sorted(demo_logins) if not is_enrolled(session, c)]
    assert free, "every demo customer has an authenticator"
    return free[-1]


# --- who may use the link ------------------------------------------------------------------


def test_a_link_opened_outside_messenger_explains_itself(browser: Browser) -> None:
    token = linking_link(new_psid())
    response = browser.get(f"/s/{token}")
    assert response.status_code == 403
    assert "Sign in button in the Messenger app" in html.unescape(response.text)
    assert 'name="password"' not in response.text


def test_another_messenger_user_presenting_the_link_is_refused(browser: Browser, demo_logins):
    """The link was forwarded (or phished): the Messenger user who opens it is not its owner."""
    owner, other = new_psid(), new_psid()
    token = linking_link(owner)
    response = browser.get(page(token, tap(other)))
    assert response.status_code == 403
    assert "belongs to another Messenger conversation" in html.unescape(response.text)
    assert 'name="password"' not in response.text
    # the owner can still use it
    assert browser.get(page(token, tap(owner))).status_code == 200
    with session_scope() as session:
        assert linked_customer(session, other) is None and linked_customer(session, owner) is None


def test_an_unknown_linking_token_is_refused(browser: Browser) -> None:
    token = linking_link(new_psid())
    response = browser.get(page(token, "ALT-made-up-by-the-attacker"))
    assert response.status_code == 403


def test_a_submission_without_the_page_opened_from_messenger_is_refused(
    browser: Browser, demo_logins
) -> None:
    """Posting the form directly, or with the opener proof of another link, links nobody."""
    customer = customer_without_authenticator(demo_logins)
    email, password = demo_logins[customer]
    victim, attacker = new_psid(), new_psid()
    victim_link, attacker_link = linking_link(victim), linking_link(attacker)
    attacker_proof = opener_of(browser.get(page(attacker_link, tap(attacker))))
    csrf = browser.csrf()
    for opener in ("", "0" * 64, attacker_proof):
        response = browser.post(
            f"/s/{victim_link}",
            {"csrf_token": csrf, "opener": opener, "email": email, "password": password},
        )
        assert response.status_code == 403, opener
    with session_scope() as session:
        assert linked_customer(session, victim) is None


# --- signing in ----------------------------------------------------------------------------


def test_signing_in_links_the_psid_and_tells_the_conversation_who_it_is(
    browser: Browser, demo_logins, fake
) -> None:
    from webharness import wait_for

    from cartguard.identity import (
        EXTERNAL_IDENTITY_ENTITY,
        claim_external_identity,
        verify_external_identity,
    )
    from cartguard.shop.models import AuditEntry

    customer = customer_without_authenticator(demo_logins)
    email, password = demo_logins[customer]
    psid = new_psid()
    token = linking_link(psid)
    done = sign_in(browser, token, psid, email=email.upper(), password=password)
    assert done.status_code == 200, done.text[:800]
    assert "Messenger linked" in done.text
    with session_scope() as session:
        assert linked_customer(session, psid) == customer
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.subject == f"customer:{customer}")
        ).scalars()
        assert "messenger.link" in set(actions)

    [call] = wait_for(lambda: fake.calls_for(psid))
    assert call["name"] == "EXTERNAL_messenger_linked"
    identity = verify_external_identity(
        call["entities"][EXTERNAL_IDENTITY_ENTITY],
        conversation_id=psid,
        intent="EXTERNAL_messenger_linked",
    )
    assert identity is not None and identity.customer_id == customer
    assert claim_external_identity(identity)

    again = browser.get(page(token, tap(psid)))  # used: the page says so
    assert again.status_code == 410
    assert "already been used" in html.unescape(again.text)


def test_wrong_passwords_are_counted_per_link(browser: Browser, demo_logins) -> None:
    customer = customer_without_authenticator(demo_logins)
    email, password = demo_logins[customer]
    psid = new_psid()
    token = linking_link(psid)
    for _ in range(5):
        wrong = sign_in(browser, token, psid, email=email, password=password + "x")
        assert wrong.status_code == 401
        assert "don't match an account" in html.unescape(wrong.text)
    blocked = sign_in(browser, token, psid, email=email, password=password)
    assert blocked.status_code == 429
    with session_scope() as session:
        assert linked_customer(session, psid) is None


def test_an_enrolled_customer_also_needs_the_authenticator_code(browser: Browser, demo_logins):
    from cartguard.shop.models import StepUpSession
    from cartguard.stepup import totp
    from cartguard.stepup.enrolment import enroll_demo_customers
    from cartguard.stepup.service import StepUpService, StepUpStatus

    customer = sorted(demo_logins)[1]
    with session_scope() as session:
        secret = enroll_demo_customers(session, [customer])[customer]
    email, password = demo_logins[customer]
    psid = new_psid()
    token = linking_link(psid)

    no_code = sign_in(browser, token, psid, email=email, password=password)
    assert no_code.status_code == 401 and "6-digit code" in no_code.text
    wrong = sign_in(browser, token, psid, email=email, password=password, code="000000")
    assert wrong.status_code == 401 and "couldn't verify that code" in html.unescape(wrong.text)
    with session_scope() as session:
        assert linked_customer(session, psid) is None

    code = totp.current_code(secret, datetime.now(timezone.utc).replace(tzinfo=None))
    done = sign_in(browser, token, psid, email=email, password=password, code=code)
    assert done.status_code == 200, done.text[:800]
    with session_scope() as session:
        assert linked_customer(session, psid) == customer
        # signing in to link is not a step-up of the Messenger conversation, nor of any other
        status = StepUpService(session).status(customer, psid)
        assert status is not StepUpStatus.FRESH
        left = session.execute(
            select(StepUpSession).where(StepUpSession.conversation_id.like("messenger-link-%"))
        ).all()
        assert left == []


# --- the account page ----------------------------------------------------------------------


def test_the_account_page_shows_and_removes_the_messenger_link(browser: Browser, demo_logins):
    from cartguard.account_links import complete_linking
    from cartguard.shop.models import AuditEntry

    assert browser.get("/account/messenger").headers["Location"].startswith("/login")
    customer = sorted(demo_logins)[2]
    psid = new_psid()
    with session_scope() as session:
        complete_linking(session, customer, psid)
    browser.login(*demo_logins[customer])
    shown = browser.get("/account/messenger")
    assert "Linked on" in shown.text and psid not in shown.text
    assert browser.post("/account/messenger", {}).status_code == 403  # CSRF
    removed = browser.submit("/account/messenger", {})
    assert removed.status_code == 200
    assert "no longer linked" in removed.text
    with session_scope() as session:
        assert linked_customer(session, psid) is None
        actors = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "messenger.unlink")
        ).scalars()
        assert f"customer:{customer}" in set(actors)
