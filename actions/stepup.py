"""Step-up in the dialogue: the gate before sensitive intents, the code form, and resuming.

The gate decides from server-side state (``StepUpService``) and records its verdict in the
``stepup_status`` slot, which the generated rules branch on. In webchat (private, logged in)
the code is typed in the chat (the channel has already swapped it for a vault token); on public
channels the gate sends a secure-form link instead and the web service resumes the request.
"""

from __future__ import annotations

import re

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn, link_button
from actions.identity import ask_to_sign_in
from actions.sensitive import SENSITIVE_ACTIONS
from cartguard.maintenance import is_enabled as is_maintenance
from cartguard.pii.tokens import TOKEN_RE
from cartguard.stepup.policy import get_policy
from cartguard.stepup.service import GENERIC_FAILURE_MESSAGE, StepUpService, StepUpStatus

RAW_CODE_RE = re.compile(r"(?<![\w-])\d{6}(?![\w-])")
CANCEL_INTENTS = {"deny", "goodbye", "out_of_scope", "contact_human_agent"}


def refused(turn: Turn) -> None:
    turn.events.extend([SlotSet("stepup_status", "refused"), SlotSet("pending_action", None)])


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
            turn.say(response="utter_maintenance")
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
            turn.say(response="utter_stepup_unavailable")
            refused(turn)
            return
        if status is StepUpStatus.NOT_ENROLLED:
            link_url = turn.secure_link("enrol")
            turn.say(response="utter_not_enrolled", enrol_url=link_url)
            refused(turn)
            return
        # REQUIRED or LOCKED look the same to the shopper: asking for a code reveals nothing.
        if policy.is_public_channel(turn.channel):
            link_url = turn.secure_link("otp")
            turn.say(
                response="utter_stepup_link",
                buttons=[link_button("Verify securely", link_url)],
            )
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


def extract_code(text: str | None) -> str | None:
    """The vault token the channel put in place of the code (or a raw code, defensively)."""
    if not text:
        return None
    match = TOKEN_RE.search(text) or RAW_CODE_RE.search(text)
    return match.group(0) if match else None


class ValidateStepUpForm(CartguardAction):
    """Validates ``otp_code``: verified, wrong (ask again), locked or cancelled (stop the form)."""

    action_name = "validate_stepup_form"

    def handle(self, turn: Turn) -> None:
        if turn.slot("requested_slot") != "otp_code":
            # The turn that starts the form: the request itself is not a code attempt.
            turn.events.append(SlotSet("otp_code", None))
            return
        code = extract_code(turn.slot("otp_code"))
        intent = turn.intent
        if code is None:
            if intent in CANCEL_INTENTS:
                turn.say(response="utter_stepup_cancelled")
                turn.events.extend([SlotSet("otp_code", "cancelled"), *_refusal()])
            else:
                turn.say('I need the 6-digit code from your authenticator app (or say "cancel").')
                turn.events.append(SlotSet("otp_code", None))
            return
        outcome = StepUpService(turn.session).verify(turn.customer_id, turn.conversation_id, code)
        if outcome.ok:
            turn.events.extend([SlotSet("otp_code", "verified"), SlotSet("stepup_status", "fresh")])
            return
        turn.say(GENERIC_FAILURE_MESSAGE)
        if outcome.locked:
            turn.say(response="utter_stepup_stopped")
            turn.events.extend([SlotSet("otp_code", "stopped"), *_refusal()])
        else:
            turn.events.append(SlotSet("otp_code", None))


def _refusal() -> list[dict]:
    return [SlotSet("stepup_status", "refused"), SlotSet("pending_action", None)]


class ActionResumeRequest(CartguardAction):
    """After the code: carry on with the request the shopper made, without asking again."""

    action_name = "action_resume_request"

    def handle(self, turn: Turn) -> None:
        pending = turn.slot("pending_action")
        turn.events.extend([SlotSet("otp_code", None), SlotSet("pending_action", None)])
        if not pending or pending not in SENSITIVE_ACTIONS:
            return
        status = StepUpService(turn.session).status(turn.customer_id, turn.conversation_id)
        if status is not StepUpStatus.FRESH:
            return  # the form already said why; nothing sensitive happens
        turn.events.append(SlotSet("stepup_status", "fresh"))
        SENSITIVE_ACTIONS[pending]().handle(turn)


class ActionEnrolled(CartguardAction):
    action_name = "action_enrolled"

    def handle(self, turn: Turn) -> None:
        turn.say(
            "Your authenticator app is set up. From now on I'll ask for a code from it before "
            "sensitive requests. What would you like to do?"
        )
