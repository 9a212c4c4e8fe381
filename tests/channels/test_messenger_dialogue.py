"""Messenger account linking in the actions: the Sign in button for anonymous shoppers, the
pending question answered after linking, step-up by secure form, and unlinking.

Trackers are shaped like the ones Rasa sends for a Messenger conversation (the sender id is
the PSID, the input channel ``facebook``); the shop is the shared seeded one.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from sqlalchemy import select

from cartguard.account_links import complete_linking, linked_customer
from cartguard.identity import EXTERNAL_IDENTITY_ENTITY, issue_external_identity, issue_login_token
from cartguard.links import open_link
from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from tests.dialogue.helpers import run_action, slot_events


def said(messages: list[dict]) -> str:
    """Everything the bot said: texts, response names and the values filled into them."""
    return " ".join(str(value) for message in messages for value in message.values() if value)


CUSTOMER = 2
PROJECT = Path(__file__).resolve().parents[2]


def new_psid() -> str:
    return str(10**15 + secrets.randbelow(10**15))


def messenger_turn(tracker_factory, psid: str, intent: str, *, token: bool = False, **kwargs):
    metadata = {"auth_token": issue_login_token(CUSTOMER, 300)} if token else {}
    return tracker_factory(
        sender_id=psid, intent=intent, metadata=metadata, input_channel="facebook", **kwargs
    )


def linked_turn(tracker_factory, psid: str, **kwargs):
    """The web service's EXTERNAL_messenger_linked turn, with its signed identity."""
    token = issue_external_identity(CUSTOMER, psid, "EXTERNAL_messenger_linked")
    return tracker_factory(
        sender_id=psid,
        intent="EXTERNAL_messenger_linked",
        text="EXTERNAL: EXTERNAL_messenger_linked",
        metadata={"is_external": True},
        entities=[{"entity": EXTERNAL_IDENTITY_ENTITY, "value": token}],
        input_channel="facebook",
        **kwargs,
    )


def link(psid: str, customer: int = CUSTOMER) -> None:
    with session_scope() as session:
        complete_linking(session, customer, psid)


def sign_in_button(messages: list[dict]) -> dict:
    """The log-in button of ``utter_messenger_link``, as Rasa fills it in from domain.yml."""
    from rasa.shared.core.domain import Domain

    [message] = [m for m in messages if m.get("response") == "utter_messenger_link"]
    [variant] = Domain.load(PROJECT / "domain.yml").responses["utter_messenger_link"]
    [button] = variant["buttons"]
    return {**button, "url": button["url"].replace("{link_url}", message["link_url"])}


# --- anonymous shoppers get the Sign in button -------------------------------------------------


def test_an_anonymous_account_question_gets_the_sign_in_button(tracker_factory) -> None:
    from actions.orders import ActionTrackOrder

    psid = new_psid()
    messages, events = run_action(ActionTrackOrder(), messenger_turn(tracker_factory, psid, "x"))
    button = sign_in_button(messages)
    assert button["type"] == "account_link"
    assert button["url"].startswith(get_settings().public_web_url + "/s/")
    assert slot_events(events)["pending_action"] == "action_track_order"
    assert not re.search(r"CG-\d{6}", said(messages))
    with session_scope() as session:  # single use, ten minutes, bound to this PSID
        opened = open_link(session, button["url"].rsplit("/s/", 1)[1], viewer_customer_id=None)
        assert (opened.purpose, opened.conversation_id) == ("messenger_link", psid)
        assert (opened.expires_at - opened.created_at).total_seconds() == 600


def test_a_sensitive_question_remembers_itself_behind_the_sign_in(tracker_factory) -> None:
    from actions.stepup import ActionStepUpGate

    psid = new_psid()
    tracker = messenger_turn(tracker_factory, psid, "check_balance")
    messages, events = run_action(ActionStepUpGate(), tracker)
    assert sign_in_button(messages)["type"] == "account_link"
    slots = slot_events(events)
    assert (slots["stepup_status"], slots["pending_action"]) == ("refused", "action_check_balance")


def test_webchat_still_asks_to_log_in_on_the_shop_page(tracker_factory) -> None:
    from actions.orders import ActionTrackOrder

    messages, _ = run_action(ActionTrackOrder(), tracker_factory(intent="track_order"))
    assert [m.get("response") for m in messages] == ["utter_please_login"]


def test_a_login_token_without_a_live_link_is_anonymous_on_messenger(tracker_factory) -> None:
    """A token minted before the shopper unlinked (or forged into a Messenger turn)."""
    from actions.orders import ActionTrackOrder

    psid = new_psid()
    messages, _ = run_action(
        ActionTrackOrder(), messenger_turn(tracker_factory, psid, "track_order", token=True)
    )
    assert sign_in_button(messages)
    link(psid)
    messages, _ = run_action(
        ActionTrackOrder(), messenger_turn(tracker_factory, psid, "track_order", token=True)
    )
    assert re.search(r"CG-\d{6}", said(messages))


# --- after linking -------------------------------------------------------------------------


def test_after_linking_the_pending_order_question_is_answered(tracker_factory) -> None:
    from actions.messenger import ActionMessengerLinked
    from cartguard.shop.models import Customer, Order

    psid = new_psid()
    link(psid)
    tracker = linked_turn(tracker_factory, psid, slots={"pending_action": "action_track_order"})
    messages, events = run_action(ActionMessengerLinked(), tracker)
    with session_scope() as session:
        first = session.get(Customer, CUSTOMER).name.split()[0]
        mine = set(session.execute(select(Order.id).where(Order.customer_id == CUSTOMER)).scalars())
    assert messages[0]["response"] == "utter_messenger_linked"
    assert messages[0]["name"] == first
    shown = set(re.findall(r"CG-\d{6}", said(messages[1:])))
    assert shown and shown <= mine  # that customer's orders, and only theirs
    assert slot_events(events)["pending_action"] is None


def test_after_linking_a_pending_balance_asks_for_a_code_on_our_page(tracker_factory) -> None:
    from actions.messenger import ActionMessengerLinked
    from cartguard.stepup.enrolment import enroll_demo_customers

    with session_scope() as session:
        enroll_demo_customers(session, [CUSTOMER])
    psid = new_psid()
    link(psid)
    tracker = linked_turn(tracker_factory, psid, slots={"pending_action": "action_check_balance"})
    messages, events = run_action(ActionMessengerLinked(), tracker)
    [stepup] = [m for m in messages if m.get("response") == "utter_stepup_link"]
    url = stepup.get("link_url") or stepup["buttons"][0]["url"]
    with session_scope() as session:
        opened = open_link(session, url.rsplit("/s/", 1)[1], viewer_customer_id=CUSTOMER)
        assert (opened.purpose, opened.customer_id, opened.conversation_id) == (
            "otp",
            CUSTOMER,
            psid,
        )
    assert "utter_balances" not in said(messages) and "Store credit" not in said(messages)
    assert slot_events(events)["pending_action"] == "action_check_balance"


def test_a_linked_turn_without_a_signed_identity_answers_nothing(tracker_factory) -> None:
    """Someone with Rasa's API secret triggers EXTERNAL_messenger_linked for a linked PSID."""
    from actions.messenger import ActionMessengerLinked

    psid = new_psid()
    link(psid)
    tracker = tracker_factory(
        sender_id=psid,
        intent="EXTERNAL_messenger_linked",
        text="EXTERNAL: EXTERNAL_messenger_linked",
        metadata={"is_external": True},
        slots={"customer_id": CUSTOMER, "pending_action": "action_track_order"},
        input_channel="facebook",
    )
    messages, _ = run_action(ActionMessengerLinked(), tracker)
    assert not re.search(r"CG-\d{6}", said(messages))
    assert "linked as" not in str(messages)
    assert sign_in_button(messages)


# --- unlinking -----------------------------------------------------------------------------


def test_unlink_my_account_removes_the_link_at_once_and_is_audited(tracker_factory) -> None:
    from actions.messenger import ActionUnlinkAccount
    from actions.orders import ActionTrackOrder
    from cartguard.shop.models import AuditEntry

    psid = new_psid()
    link(psid)
    tracker = messenger_turn(tracker_factory, psid, "unlink_account", token=True)
    messages, events = run_action(ActionUnlinkAccount(), tracker)
    assert [m.get("response") for m in messages] == ["utter_messenger_unlinked"]
    assert slot_events(events)["customer_id"] is None
    with session_scope() as session:
        assert linked_customer(session, psid) is None
        entry = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "messenger.unlink")
                .order_by(AuditEntry.id.desc())
            )
            .scalars()
            .first()
        )
        assert (entry.actor, entry.subject) == (f"customer:{CUSTOMER}", f"customer:{CUSTOMER}")
    # the very next question, even with a token minted before, is anonymous again
    messages, _ = run_action(
        ActionTrackOrder(), messenger_turn(tracker_factory, psid, "track_order", token=True)
    )
    assert sign_in_button(messages)


def test_unlinking_keeps_other_messenger_users_of_the_customer_linked(tracker_factory) -> None:
    from actions.messenger import ActionUnlinkAccount

    phone, tablet = new_psid(), new_psid()
    link(phone)
    link(tablet)
    run_action(ActionUnlinkAccount(), messenger_turn(tracker_factory, phone, "unlink_account"))
    with session_scope() as session:
        assert linked_customer(session, phone) is None
        assert linked_customer(session, tablet) == CUSTOMER


@pytest.mark.parametrize(
    ("channel", "response"),
    [("facebook", "utter_messenger_not_linked"), ("socketio", "utter_logout_on_the_shop_page")],
)
def test_unlink_with_nothing_linked_says_so(tracker_factory, channel, response) -> None:
    from actions.messenger import ActionUnlinkAccount

    tracker = tracker_factory(sender_id=new_psid(), intent="unlink_account", input_channel=channel)
    messages, _ = run_action(ActionUnlinkAccount(), tracker)
    assert [m.get("response") for m in messages] == [response]


def test_after_linking_a_pending_balance_is_answered_when_step_up_is_fresh(tracker_factory):
    """A shopper who verified in this conversation minutes ago and re-linked needs no new code."""
    from actions.messenger import ActionMessengerLinked
    from cartguard.shop.models import StepUpSession
    from cartguard.shop.models._common import utcnow
    from cartguard.stepup.enrolment import enroll_demo_customers

    with session_scope() as session:
        enroll_demo_customers(session, [CUSTOMER])
    psid = new_psid()
    link(psid)
    with session_scope() as session:
        now = utcnow()
        session.add(
            StepUpSession(
                conversation_id=psid, customer_id=CUSTOMER, verified_at=now, last_active_at=now
            )
        )
    tracker = linked_turn(tracker_factory, psid, slots={"pending_action": "action_check_balance"})
    messages, _ = run_action(ActionMessengerLinked(), tracker)
    assert "utter_balance" in said(messages) or "Store credit" in said(messages)
    assert "utter_stepup_link" not in said(messages)
