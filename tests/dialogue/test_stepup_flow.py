"""The step-up dialogue against real server-side state: gate, code form, resume.

A code typed in the chat reaches the action as a vault token (the channel swapped it); these
tests also feed a raw code to show the form copes, and prove that the sensitive action itself
refuses when step-up is not fresh, whatever the dialogue state claims.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cartguard.identity import issue_login_token
from cartguard.shop.db import session_scope
from cartguard.stepup import totp
from cartguard.stepup.enrolment import enroll_demo_customers
from tests.dialogue.helpers import run_action, slot_events, texts

CUSTOMER = 3


@pytest.fixture(scope="module")
def secret(data_dir):
    with session_scope() as session:
        return enroll_demo_customers(session, [CUSTOMER])[CUSTOMER]


def meta(customer_id: int = CUSTOMER) -> dict:
    return {"auth_token": issue_login_token(customer_id, ttl_seconds=300)}


def code_now(secret: str) -> str:
    return totp.current_code(secret, datetime.now(timezone.utc).replace(tzinfo=None))


def test_gate_asks_for_a_code_and_remembers_the_request(tracker_factory, secret):
    from actions.stepup import ActionStepUpGate

    tracker = tracker_factory(sender_id="conv-gate", intent="check_balance", metadata=meta())
    messages, events = run_action(ActionStepUpGate(), tracker)
    slots = slot_events(events)
    assert slots["stepup_status"] == "required"
    assert slots["pending_action"] == "action_check_balance"
    assert messages == []  # the form asks for the code


def test_gate_refuses_anonymous_shoppers(tracker_factory, secret):
    from actions.stepup import ActionStepUpGate

    messages, events = run_action(
        ActionStepUpGate(), tracker_factory(intent="check_balance", metadata={})
    )
    assert slot_events(events)["stepup_status"] == "refused"
    assert [m.get("response") for m in messages] == ["utter_please_login"]


def test_gate_offers_enrolment_to_a_customer_without_an_authenticator(tracker_factory, data_dir):
    from actions.stepup import ActionStepUpGate

    messages, events = run_action(
        ActionStepUpGate(), tracker_factory(intent="get_invoice", metadata=meta(4))
    )
    assert slot_events(events)["stepup_status"] == "refused"
    assert messages[0]["response"] == "utter_not_enrolled"
    assert "/s/" in messages[0]["enrol_url"]


def test_public_channel_gets_a_link_not_a_question(tracker_factory, secret):
    from actions.stepup import ActionStepUpGate
    from cartguard.account_links import complete_linking

    with session_scope() as session:  # Messenger identity needs a live account link
        complete_linking(session, CUSTOMER, "psid-123")
    tracker = tracker_factory(
        sender_id="psid-123", intent="check_balance", metadata=meta(), input_channel="facebook"
    )
    messages, events = run_action(ActionStepUpGate(), tracker)
    assert slot_events(events)["stepup_status"] == "refused"
    assert slot_events(events)["pending_action"] == "action_check_balance"
    assert messages[0]["response"] == "utter_stepup_link"
    assert messages[0]["buttons"][0]["url"].startswith("http")


def test_wrong_then_right_code_resumes_the_original_request(tracker_factory, secret):
    from actions.stepup import ActionResumeRequest, ValidateStepUpForm

    conv = "conv-resume"
    wrong = tracker_factory(
        sender_id=conv,
        intent="provide_otp",
        text="000000",
        slots={"requested_slot": "otp_code", "otp_code": "000000"},
        metadata=meta(),
        active_loop="stepup_form",
    )
    messages, events = run_action(ValidateStepUpForm(), wrong)
    assert slot_events(events)["otp_code"] is None
    assert "couldn't verify" in texts(messages)

    code = code_now(secret)
    right = tracker_factory(
        sender_id=conv,
        intent="provide_otp",
        text=code,
        slots={"requested_slot": "otp_code", "otp_code": f"it is {code}"},
        metadata=meta(),
        active_loop="stepup_form",
    )
    messages, events = run_action(ValidateStepUpForm(), right)
    slots = slot_events(events)
    assert (slots["otp_code"], slots["stepup_status"]) == ("verified", "fresh")
    assert code not in str(events)  # the code itself is never recorded

    resume = tracker_factory(
        sender_id=conv,
        intent="provide_otp",
        text=code,
        slots={"pending_action": "action_check_balance", "stepup_status": "fresh"},
        metadata=meta(),
    )
    messages, events = run_action(ActionResumeRequest(), resume)
    assert "Store credit:" in texts(messages)
    assert "Loyalty points:" in texts(messages)

    # the same code replayed, even in this conversation, is refused
    replay = tracker_factory(
        sender_id=conv,
        intent="provide_otp",
        slots={"requested_slot": "otp_code", "otp_code": code},
        metadata=meta(),
        active_loop="stepup_form",
    )
    _, events = run_action(ValidateStepUpForm(), replay)
    assert slot_events(events)["otp_code"] is None


def test_stepup_does_not_carry_over_to_another_conversation(tracker_factory, secret):
    from actions.balances import ActionCheckBalance

    messages, _ = run_action(
        ActionCheckBalance(), tracker_factory(sender_id="conv-other", metadata=meta())
    )
    assert "verify" in texts(messages)
    assert "Store credit" not in texts(messages)


def test_cancel_during_the_form_stops_without_counting_a_failure(tracker_factory, secret):
    from actions.stepup import ValidateStepUpForm

    tracker = tracker_factory(
        sender_id="conv-cancel",
        intent="deny",
        text="no, never mind",
        slots={"requested_slot": "otp_code", "otp_code": "no, never mind"},
        metadata=meta(),
        active_loop="stepup_form",
    )
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert slot_events(events)["stepup_status"] == "refused"
    assert messages[0]["response"] == "utter_stepup_cancelled"


def test_the_request_that_starts_the_form_is_not_a_failed_code(tracker_factory, secret):
    from actions.stepup import ValidateStepUpForm

    tracker = tracker_factory(
        sender_id="conv-activate",
        intent="check_balance",
        text="what's my store credit?",
        slots={"otp_code": "what's my store credit?"},
        metadata=meta(),
        active_loop="stepup_form",
    )
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert messages == []
    assert slot_events(events)["otp_code"] is None
