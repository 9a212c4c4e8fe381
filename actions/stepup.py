"""Step-up in the dialogue: the gate before sensitive intents, the code form, and resuming.

The gate decides from server-side state (``StepUpService``) and records its verdict in the
``stepup_status`` slot, which the generated rules branch on. In webchat (private, logged in)
the code is typed in the chat (the channel has already swapped it for a vault token); on public
channels the gate sends a secure-form link instead and the web service resumes the request.

The code form is Rasa's own: ``stepup_form`` with one slot, validated by
:class:`ValidateStepUpForm` (a ``FormValidationAction`` with ``validate_otp_code``). If the
transcript-consent question is still open when the code is asked for, the gate sets it aside so
the shopper faces one question at a time; ``action_resume_request`` asks it again afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

# Resuming needs every sensitive action: importing their modules registers them, so the
# registry is complete wherever this module is (test: test_stepup_coverage.py).
from actions import balances, invoices, orders, payments  # noqa: F401
from actions.base import DB_DOWN_RESPONSE, CartguardAction, Turn, run_turn
from actions.identity import ask_to_sign_in, identify
from actions.privacy import ask_deferred_consent
from actions.sensitive import SENSITIVE_ACTIONS, has_fresh_stepup
from cartguard.maintenance import is_enabled as is_maintenance
from cartguard.pii.tokens import TOKEN_RE
from cartguard.shop.db import DatabaseUnavailable
from cartguard.stepup.policy import get_policy
from cartguard.stepup.service import StepUpService, StepUpStatus

logger = logging.getLogger(__name__)

RAW_CODE_RE = re.compile(r"(?<![\w*-])\d{6}(?![\w*-])")  # not the digits of a card mask
CANCEL_INTENTS = {"deny", "goodbye", "out_of_scope", "contact_human_agent"}


#: slot values that end the code form without a step-up, and forget the pending request
REFUSAL = {"stepup_status": "refused", "pending_action": None}


def refused(turn: Turn) -> None:
    turn.events.extend(SlotSet(name, value) for name, value in REFUSAL.items())


class ActionStepUpGate(CartguardAction):
    action_name = "action_stepup_gate"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        action = get_policy().sensitive_intents.get(turn.intent or "")
        if action is None:  # a rule sent a non-sensitive intent here: nothing to guard
            refused(turn)
            return
        self.decide(turn, action)

    def decide(self, turn: Turn, action: str) -> None:
        """May ``action`` run now? Else ask for sign-in, a code or enrolment, remembering it.

        Also called for the request a Messenger shopper made before linking their account.
        """
        policy = get_policy()
        if is_maintenance(turn.session):
            turn.say("utter_maintenance")
            refused(turn)
            return
        if turn.customer_id is None:
            refused(turn)
            ask_to_sign_in(turn, action)  # after refused(): it remembers the request
            return
        service = StepUpService(turn.session)
        status = service.status(turn.customer_id, turn.conversation_id)
        if status is StepUpStatus.FRESH:
            turn.events.extend([SlotSet("stepup_status", "fresh"), SlotSet("pending_action", None)])
            return
        if status is StepUpStatus.DISABLED:
            turn.say("utter_stepup_unavailable")
            refused(turn)
            return
        if status is StepUpStatus.NOT_ENROLLED:
            turn.say("utter_not_enrolled", link_url=turn.secure_link("enrol"))
            refused(turn)
            return
        # REQUIRED or LOCKED look the same to the shopper: asking for a code reveals nothing.
        service.ask_for_code(turn.customer_id, turn.conversation_id)  # the edge reads it
        if policy.is_public_channel(turn.channel):
            turn.say("utter_stepup_link", link_url=turn.secure_link("otp"))
            turn.events.extend(
                [SlotSet("stepup_status", "refused"), SlotSet("pending_action", action)]
            )
            return
        turn.events.extend(
            [
                SlotSet("stepup_status", "required"),
                SlotSet("pending_action", action),
                SlotSet("otp_code", None),
            ]
        )
        if turn.slot("awaiting") == "consent":
            # One question at a time: the code prompt must not stand next to an open yes/no
            # (a "yes" meant for consent would be read as a wrong code). Asked again afterwards.
            turn.events.extend([SlotSet("awaiting", None), SlotSet("consent_deferred", True)])


def extract_code(text: str | None) -> str | None:
    """The vault token the channel put in place of the code (or a raw code, defensively)."""
    if not text:
        return None
    match = TOKEN_RE.search(text) or RAW_CODE_RE.search(text)
    return match.group(0) if match else None


class ValidateStepUpForm(FormValidationAction):
    """Validates ``otp_code``: verified, wrong (ask again), locked or cancelled (stop the form).

    A filled ``otp_code`` ends the form (then ``action_resume_request`` runs): ``verified``,
    ``cancelled``, ``stopped`` (locked out) or ``unavailable`` (database down). ``None`` makes
    the form ask again with ``utter_ask_otp_code``.
    """

    def name(self) -> str:
        return "validate_stepup_form"

    async def validate_otp_code(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "otp_code":
            # The turn that starts the form: the request itself is not a code attempt.
            return {"otp_code": None}
        identity: dict[str, Any] = {}
        try:
            customer_id, identity_events = await asyncio.to_thread(identify, tracker)
            identity = {event["name"]: event["value"] for event in identity_events}
            turn, slots = await run_turn(
                tracker, customer_id, lambda turn: self.check_code(turn, slot_value)
            )
        except DatabaseUnavailable as exc:
            logger.error("%s: %s", self.name(), exc)
            dispatcher.utter_message(response=DB_DOWN_RESPONSE)
            return {**identity, "otp_code": "unavailable", **REFUSAL}
        turn.send(dispatcher)
        return {**identity, **slots}

    @staticmethod
    def check_code(turn: Turn, typed: Any) -> dict[str, Any]:
        code = extract_code(typed if isinstance(typed, str) else None)
        if code is None:
            if turn.intent in CANCEL_INTENTS:
                turn.say("utter_stepup_cancelled")
                StepUpService(turn.session).withdraw_code_request(turn.conversation_id)
                return {"otp_code": "cancelled", **REFUSAL}
            turn.say("utter_need_code")
            return {"otp_code": None}
        outcome = StepUpService(turn.session).verify(turn.customer_id, turn.conversation_id, code)
        if outcome.ok:
            return {"otp_code": "verified", "stepup_status": "fresh"}
        turn.say(outcome.response)  # the same words for every kind of failure
        if outcome.locked:
            turn.say("utter_stepup_stopped")
            return {"otp_code": "stopped", **REFUSAL}
        return {"otp_code": None}


class ActionResumeRequest(CartguardAction):
    """After the code: carry on with the request the shopper made, without asking again."""

    action_name = "action_resume_request"

    def handle(self, turn: Turn) -> None:
        pending = turn.slot("pending_action")
        turn.events.extend([SlotSet("otp_code", None), SlotSet("pending_action", None)])
        # Without a fresh step-up the form already said why: nothing sensitive happens.
        if pending in SENSITIVE_ACTIONS and has_fresh_stepup(turn):
            turn.events.append(SlotSet("stepup_status", "fresh"))
            SENSITIVE_ACTIONS[pending]().handle(turn)  # checks maintenance and freshness again
        ask_deferred_consent(turn)


class ActionEnrolled(CartguardAction):
    action_name = "action_enrolled"

    def handle(self, turn: Turn) -> None:
        turn.say("utter_enrolled")
