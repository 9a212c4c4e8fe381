"""Privacy: consent for transcripts, "forget this conversation", data export and erasure.

Export and erasure are sensitive (step-up first) and confirmed by the shopper with a yes/no
before anything happens; the confirmation checks maintenance mode and step-up again
(:func:`actions.sensitive.why_not_now`), because minutes may have passed since the gate.

The transcript-consent question is asked once per conversation, with the greeting. When the
shopper answers it with a sensitive request instead, the step-up gate sets the question aside
(``consent_deferred``) so that it never stands next to the code prompt, and it is asked again
once the request is done (:func:`ask_deferred_consent`).
"""

from __future__ import annotations

from rasa_sdk.events import Restarted, SlotSet

from actions.base import CartguardAction, Turn
from actions.sensitive import SensitiveAction, why_not_now
from cartguard.privacy import erase_customer
from cartguard.shop.conversations import conversation_owner
from cartguard.shop.models import ConversationOwner
from cartguard.stepup.service import StepUpService
from cartguard.vault import get_vault


def conversation_row(turn: Turn) -> ConversationOwner:
    return conversation_owner(turn.session, turn.conversation_id, turn.customer_id, turn.channel)


def ask_consent(turn: Turn, response: str = "utter_ask_consent") -> None:
    """Ask to keep the transcript (if not decided yet) and wait for the yes or no."""
    if conversation_row(turn).transcript_consent is not None:
        return
    turn.say(response, privacy_url=f"{turn.settings.public_web_url}/privacy")
    turn.events.append(SlotSet("awaiting", "consent"))


def ask_deferred_consent(turn: Turn) -> None:
    """Ask again the consent question the step-up gate set aside, now that the code is done."""
    if turn.slot("consent_deferred"):
        turn.events.append(SlotSet("consent_deferred", None))
        ask_consent(turn, "utter_ask_consent_after_request")


class ActionGreet(CartguardAction):
    action_name = "action_greet"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        turn.say("utter_greet")
        ask_consent(turn)


class ActionRecordConsent(CartguardAction):
    action_name = "action_record_consent"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        agreed = turn.intent == "affirm"
        conversation_row(turn).transcript_consent = agreed
        turn.say("utter_consent_granted" if agreed else "utter_consent_declined")
        turn.events.append(SlotSet("awaiting", None))


class ActionForgetConversation(CartguardAction):
    """Wipe this conversation: the tracker store drops its stored events when it sees the marker."""

    action_name = "action_forget_conversation"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        get_vault().forget_conversation(turn.conversation_id, session=turn.session)
        StepUpService(turn.session).end(turn.conversation_id)
        turn.say("utter_forgot_conversation")
        # The marker slot tells the PII-stripping tracker store to delete what it holds for this
        # conversation when it saves this turn; Restarted makes Rasa forget it in memory.
        turn.events.extend([SlotSet("forget_requested", True), Restarted()])


class ActionExportMyData(SensitiveAction):
    action_name = "action_export_my_data"

    def serve(self, turn: Turn) -> None:
        turn.say("utter_confirm_export")
        turn.events.append(SlotSet("awaiting", "export"))


class ActionDeleteMyData(SensitiveAction):
    action_name = "action_delete_my_data"

    def serve(self, turn: Turn) -> None:
        turn.say("utter_confirm_erasure")
        turn.events.append(SlotSet("awaiting", "erasure"))


class ActionConfirmPrivacyRequest(CartguardAction):
    action_name = "action_confirm_privacy_request"

    def handle(self, turn: Turn) -> None:
        request = turn.slot("awaiting")
        turn.events.append(SlotSet("awaiting", None))
        if turn.intent != "affirm":
            turn.say("utter_nothing_changed")
            return
        refusal = why_not_now(turn)
        if refusal is not None:
            expired = refusal == "utter_not_verified"
            turn.say("utter_verification_expired" if expired else refusal)
            return
        if request == "export":
            turn.say("utter_export_ready", link_url=turn.secure_link("export"))
        elif request == "erasure":
            erase_customer(turn.session, turn.customer_id, actor=f"customer:{turn.customer_id}")
            turn.say("utter_data_erased")
            turn.events.extend([SlotSet("forget_requested", True), Restarted()])
