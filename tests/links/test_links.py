"""Secure-form links: random, hashed at rest, single use, short-lived, bound to their owner, and
useless to anyone not signed in as that owner."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select

from cartguard.keys import load_keys
from cartguard.links import (
    PURPOSES,
    SIGNS_IN_ON_THE_PAGE,
    LinkError,
    LinkForbidden,
    LinkGone,
    LinkLoginRequired,
    LinkNotFound,
    consume_link,
    count_issued,
    issue_link,
    open_link,
    purge_expired_links,
)
from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models import SecureLink

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=timezone.utc)
CONV = "conv-links-7d1c"


@pytest.fixture()
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def _issue(session, **overrides):
    args = {"conversation_id": CONV, "customer_id": 1, "purpose": "card"}
    args.update(overrides)
    return issue_link(session, **args)


def test_link_is_a_random_256_bit_token_under_the_public_url(db_session, clock):
    issued = _issue(db_session, payload={"order_id": "CG-482913"})
    assert issued.url == f"{get_settings().public_web_url}/s/{issued.token}"
    raw = base64.urlsafe_b64decode(issued.token + "=" * (-len(issued.token) % 4))
    assert len(raw) * 8 >= 128
    assert issued.expires_at - START.replace(tzinfo=None) == timedelta(minutes=10)
    # Nothing about the shopper, the conversation or the order in the URL.
    for leak in (CONV, "CG-482913", "customer", "card"):
        assert leak not in issued.url.split("/s/", 1)[1]
    assert issued.token not in repr(issued)
    assert len({_issue(db_session).token for _ in range(20)}) == 20


def test_only_a_keyed_hash_of_the_token_is_stored(db_session, clock):
    issued = _issue(db_session)
    row = db_session.execute(select(SecureLink).order_by(SecureLink.id.desc())).scalars().first()
    assert row.token_hash != issued.token
    expected = hmac.new(
        load_keys().raw("link_key"), issued.token.encode(), hashlib.sha256
    ).hexdigest()
    assert row.token_hash == expected
    stored = " ".join(str(getattr(row, c.name)) for c in SecureLink.__table__.columns)
    assert issued.token not in stored


def test_open_does_not_consume_and_returns_the_binding(db_session, clock):
    issued = _issue(db_session, purpose="address", payload={"order_id": "CG-100200"})
    first = open_link(db_session, issued.token, purpose="address", viewer_customer_id=1)
    again = open_link(db_session, issued.token, viewer_customer_id=1)
    assert first == again
    assert (first.conversation_id, first.customer_id, first.purpose) == (CONV, 1, "address")
    assert first.payload == {"order_id": "CG-100200"}
    assert first.used_at is None


def test_second_use_is_gone(db_session, clock):
    issued = _issue(db_session)
    used = consume_link(db_session, issued.token, purpose="card", viewer_customer_id=1)
    assert used.used_at is not None
    with pytest.raises(LinkGone) as gone:
        consume_link(db_session, issued.token, purpose="card", viewer_customer_id=1)
    assert gone.value.http_status == 410
    with pytest.raises(LinkGone):
        open_link(db_session, issued.token, viewer_customer_id=1)


def test_link_expires_after_ten_minutes(db_session, clock):
    issued = _issue(db_session)
    clock.shift(timedelta(minutes=9, seconds=59))
    assert open_link(db_session, issued.token, viewer_customer_id=1).purpose == "card"
    clock.shift(timedelta(seconds=1))
    with pytest.raises(LinkGone):
        open_link(db_session, issued.token, viewer_customer_id=1)
    with pytest.raises(LinkGone):
        consume_link(db_session, issued.token, viewer_customer_id=1)


def test_shorter_lifetime_and_explicit_now(db_session, clock):
    issued = _issue(db_session, ttl_seconds=60)
    later = START.replace(tzinfo=None) + timedelta(seconds=61)
    with pytest.raises(LinkGone):
        consume_link(db_session, issued.token, now=later, viewer_customer_id=1)


def test_another_logged_in_customer_is_forbidden(db_session, clock):
    issued = _issue(db_session, customer_id=1)
    with pytest.raises(LinkForbidden) as forbidden:
        open_link(db_session, issued.token, viewer_customer_id=2)
    assert forbidden.value.http_status == 403
    with pytest.raises(LinkForbidden):
        consume_link(db_session, issued.token, viewer_customer_id=2)
    # The refused attempt did not use the link up for its owner.
    assert consume_link(db_session, issued.token, viewer_customer_id=1).customer_id == 1


def test_tampered_and_unknown_tokens_are_indistinguishable(db_session, clock):
    issued = _issue(db_session)
    flipped = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    candidates = [
        flipped,  # tampered
        issue_link.__name__ + "x" * 34,  # well-formed, never issued
        issued.token[:20],  # truncated
        issued.token + "A",  # extended
        "../../etc/passwd",
        "",
        None,
    ]
    errors = []
    for candidate in candidates:
        with pytest.raises(LinkError) as caught:
            open_link(db_session, candidate, viewer_customer_id=1)
        errors.append(caught.value)
    assert {type(e) for e in errors} == {LinkNotFound}
    assert {str(e) for e in errors} == {str(LinkNotFound())}
    assert {e.http_status for e in errors} == {404}
    assert open_link(db_session, issued.token, viewer_customer_id=1)  # the real one still works


def test_link_for_another_purpose_is_not_found(db_session, clock):
    issued = _issue(db_session, purpose="otp")
    with pytest.raises(LinkNotFound):
        consume_link(db_session, issued.token, purpose="card", viewer_customer_id=1)
    assert (
        consume_link(db_session, issued.token, purpose="otp", viewer_customer_id=1).purpose == "otp"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"purpose": "admin"},
        {"ttl_seconds": 601},
        {"ttl_seconds": 0},
        {"conversation_id": ""},
        {"payload": {"address": {"street": "1 Main St"}}},
        {"payload": {"order_id": "x" * 2000}},
    ],
)
def test_weak_or_malformed_requests_are_refused(db_session, clock, overrides):
    with pytest.raises(ValueError):
        _issue(db_session, **overrides)


def test_every_declared_purpose_can_be_issued(db_session, clock):
    for purpose in PURPOSES:
        assert (
            open_link(
                db_session, _issue(db_session, purpose=purpose).token, viewer_customer_id=1
            ).purpose
            == purpose
        )


def test_purge_removes_only_expired_links(db_session, clock):
    db_session.execute(delete(SecureLink))
    old = _issue(db_session, ttl_seconds=60)
    clock.shift(timedelta(minutes=2))
    fresh = _issue(db_session)
    assert purge_expired_links(db_session) == 1
    with pytest.raises(LinkNotFound):
        open_link(db_session, old.token, viewer_customer_id=1)
    assert open_link(db_session, fresh.token, viewer_customer_id=1)


def test_two_concurrent_submits_only_one_succeeds(data_dir):
    with session_scope() as session:
        issued = _issue(session, conversation_id="conv-links-race")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        barrier.wait(timeout=10)
        try:
            with session_scope() as session:
                consume_link(session, issued.token, purpose="card", viewer_customer_id=1)
            outcomes.append("used")
        except LinkGone:
            outcomes.append("gone")

    threads = [threading.Thread(target=submit) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["gone", "used"]
    finally:
        with session_scope() as session:
            session.execute(
                delete(SecureLink).where(SecureLink.conversation_id == "conv-links-race")
            )


def test_nobody_signed_in_gets_nothing_and_the_link_survives(db_session, clock):
    issued = _issue(db_session, purpose="export")
    for use in (open_link, consume_link):
        with pytest.raises(LinkLoginRequired) as refused:
            use(db_session, issued.token, viewer_customer_id=None)
        assert refused.value.http_status == 401
    assert consume_link(db_session, issued.token, viewer_customer_id=1).used_at is not None


def test_the_viewer_must_always_be_named(db_session, clock):
    """A page cannot forget who is signed in: the argument has no default."""
    issued = _issue(db_session)
    with pytest.raises(TypeError):
        open_link(db_session, issued.token)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        consume_link(db_session, issued.token)  # type: ignore[call-arg]


def test_a_link_without_a_customer_still_needs_a_signed_in_viewer(db_session, clock):
    issued = _issue(db_session, customer_id=None, purpose="otp")
    with pytest.raises(LinkLoginRequired):
        open_link(db_session, issued.token, viewer_customer_id=None)
    assert open_link(db_session, issued.token, viewer_customer_id=2).customer_id is None


def test_only_forms_that_sign_in_on_the_page_open_without_a_session(db_session, clock):
    assert SIGNS_IN_ON_THE_PAGE == {"messenger_link"}
    issued = _issue(db_session, customer_id=None, purpose="messenger_link")
    assert open_link(db_session, issued.token, viewer_customer_id=None).purpose == "messenger_link"


def test_an_emailed_link_lives_thirty_minutes_and_no_longer(db_session, clock):
    issued = _issue(db_session, purpose="enrol_email")
    assert issued.expires_at - START.replace(tzinfo=None) == timedelta(minutes=30)
    with pytest.raises(ValueError):
        _issue(db_session, purpose="enrol_email", ttl_seconds=1801)
    clock.shift(timedelta(minutes=30))
    with pytest.raises(LinkGone):
        open_link(db_session, issued.token, viewer_customer_id=1)


def test_count_issued_counts_one_customer_and_purpose_since_a_time(db_session, clock):
    since = START.replace(tzinfo=None)
    before = count_issued(db_session, customer_id=1, purpose="enrol_email", since=since)
    _issue(db_session, purpose="enrol_email")
    _issue(db_session, purpose="enrol_email", customer_id=2)
    _issue(db_session, purpose="card")
    assert count_issued(db_session, customer_id=1, purpose="enrol_email", since=since) == before + 1
    later = since + timedelta(minutes=1)
    assert count_issued(db_session, customer_id=1, purpose="enrol_email", since=later) == 0
