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
from tests.dialogue.helpers import extracted, responses, run_action, slot_events, texts

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
    assert "/s/" in messages[0]["link_url"]
    assert "authenticator app" in texts(messages)


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
    assert messages[0]["link_url"].startswith("http")  # the domain's button opens it


def code_turn(tracker_factory, conversation: str, typed: str, intent: str = "provide_otp"):
    """The tracker the code form's validation gets after the shopper typed ``typed``."""
    return extracted(
        tracker_factory(
            sender_id=conversation,
            intent=intent,
            text=typed,
            slots={"requested_slot": "otp_code"},
            metadata=meta(),
            active_loop="stepup_form",
        ),
        otp_code=typed,
    )


def test_the_code_form_is_validated_by_a_form_validation_action():
    from rasa_sdk.forms import FormValidationAction

    from actions.stepup import ValidateStepUpForm

    assert issubclass(ValidateStepUpForm, FormValidationAction)
    assert ValidateStepUpForm().form_name() == "stepup_form"
    assert callable(ValidateStepUpForm.validate_otp_code)


def test_wrong_then_right_code_resumes_the_original_request(tracker_factory, secret):
    from actions.stepup import ActionResumeRequest, ValidateStepUpForm

    conv = "conv-resume"
    messages, events = run_action(ValidateStepUpForm(), code_turn(tracker_factory, conv, "000000"))
    assert slot_events(events)["otp_code"] is None
    assert responses(messages) == ["utter_stepup_failed"]
    assert "couldn't verify" in texts(messages)

    code = code_now(secret)
    right = code_turn(tracker_factory, conv, f"it is {code}")
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
    assert responses(messages) == ["utter_balances"]
    assert "in store credit" in texts(messages)
    assert "loyalty points" in texts(messages)

    # the same code replayed, even in this conversation, is refused
    _, events = run_action(ValidateStepUpForm(), code_turn(tracker_factory, conv, code))
    assert slot_events(events)["otp_code"] is None


def test_a_balance_answer_is_a_sentence(tracker_factory, secret):
    """One kind asked for: one sentence naming it, not a lone bullet."""
    from actions.balances import ActionCheckBalance
    from tests.dialogue.test_actions import fresh_stepup

    fresh_stepup(CUSTOMER, "conv-balance-sentence")
    tracker = tracker_factory(
        sender_id="conv-balance-sentence", metadata=meta(), slots={"balance_type": "gift_card"}
    )
    messages, _ = run_action(ActionCheckBalance(), tracker)
    assert responses(messages) == ["utter_balance_gift_card"]
    reply = texts(messages)
    assert reply.startswith("Your gift card balance is $") and reply.endswith(".")
    assert not reply.lstrip().startswith("-")


def test_stepup_does_not_carry_over_to_another_conversation(tracker_factory, secret):
    from actions.balances import ActionCheckBalance

    messages, _ = run_action(
        ActionCheckBalance(), tracker_factory(sender_id="conv-other", metadata=meta())
    )
    assert responses(messages) == ["utter_not_verified"]
    assert "store credit" not in texts(messages)


def test_cancel_during_the_form_stops_without_counting_a_failure(tracker_factory, secret):
    from actions.stepup import ValidateStepUpForm

    tracker = code_turn(tracker_factory, "conv-cancel", "no, never mind", intent="deny")
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert slot_events(events)["stepup_status"] == "refused"
    assert messages[0]["response"] == "utter_stepup_cancelled"


def test_a_message_that_is_no_code_is_asked_again(tracker_factory, secret):
    from actions.stepup import ValidateStepUpForm

    tracker = code_turn(tracker_factory, "conv-no-code", "what?", intent="nlu_fallback")
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert slot_events(events)["otp_code"] is None
    assert responses(messages) == ["utter_need_code"]


def test_the_request_that_starts_the_form_is_not_a_failed_code(tracker_factory, secret):
    from actions.stepup import ValidateStepUpForm

    tracker = extracted(
        tracker_factory(
            sender_id="conv-activate",
            intent="check_balance",
            text="what's my store credit?",
            metadata=meta(),
            active_loop="stepup_form",
        ),
        otp_code="what's my store credit?",
    )
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert messages == []
    assert slot_events(events)["otp_code"] is None


# --- the first turn reads well: one question at a time ----------------------------------------


def test_a_sensitive_request_sets_the_open_consent_question_aside(tracker_factory, secret):
    from actions.stepup import ActionStepUpGate

    tracker = tracker_factory(
        sender_id="conv-consent-first",
        intent="check_balance",
        metadata=meta(),
        slots={"awaiting": "consent"},
    )
    messages, events = run_action(ActionStepUpGate(), tracker)
    slots = slot_events(events)
    assert slots["stepup_status"] == "required"
    # "yes" to the code prompt must not be read as consent, nor consent as a wrong code
    assert (slots["awaiting"], slots["consent_deferred"]) == (None, True)
    assert messages == []  # the form's prompt is the only question


def test_the_code_prompt_says_the_consent_question_comes_back():
    from tests.dialogue.helpers import DOMAIN

    variants = DOMAIN["responses"]["utter_ask_otp_code"]
    deferred = [v for v in variants if v.get("condition")]
    assert deferred[0]["condition"] == [{"type": "slot", "name": "consent_deferred", "value": True}]
    assert "transcript question afterwards" in deferred[0]["text"]


def test_the_set_aside_consent_question_is_asked_after_the_request(tracker_factory, secret):
    from actions.stepup import ActionResumeRequest
    from tests.dialogue.test_actions import fresh_stepup

    conv = "conv-consent-after"
    fresh_stepup(CUSTOMER, conv)
    tracker = tracker_factory(
        sender_id=conv,
        metadata=meta(),
        slots={"pending_action": "action_check_balance", "consent_deferred": True},
    )
    messages, events = run_action(ActionResumeRequest(), tracker)
    assert responses(messages) == ["utter_balances", "utter_ask_consent_after_request"]
    assert slot_events(events)["awaiting"] == "consent"
    assert "[privacy notice](http" in texts(messages)  # a link with words, not a bare URL


def test_the_privacy_link_has_words_on_every_channel():
    from tests.dialogue.helpers import DOMAIN

    for name in ("utter_ask_consent", "utter_ask_consent_after_request"):
        web, messenger = DOMAIN["responses"][name]
        assert "[privacy notice]({privacy_url})" in web["text"]
        assert messenger["channel"] == "facebook"  # Messenger shows no markdown: a sentence
        assert messenger["text"].endswith("explains what we keep and why: {privacy_url}")


def test_maintenance_stops_a_sensitive_action_even_with_a_fresh_stepup(tracker_factory, secret):
    """The gate is not the boundary: a resumed request or a forged dialogue state meets this."""
    from actions.balances import ActionCheckBalance
    from cartguard.maintenance import set_enabled
    from cartguard.shop.db import session_scope
    from tests.dialogue.test_actions import fresh_stepup

    conv = "conv-maintenance"
    fresh_stepup(CUSTOMER, conv)
    with session_scope() as session:
        set_enabled(session, True, actor="test")
    try:
        messages, events = run_action(
            ActionCheckBalance(), tracker_factory(sender_id=conv, metadata=meta())
        )
    finally:
        with session_scope() as session:
            set_enabled(session, False, actor="test")
    assert responses(messages) == ["utter_maintenance"]
    assert slot_events(events)["stepup_status"] is None
