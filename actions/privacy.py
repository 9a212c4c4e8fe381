"""Privacy: consent for transcripts, "forget this conversation", data export and erasure.

Export and erasure are sensitive (step-up first) and confirmed by the shopper with a yes/no
before anything happens; erasure re-checks step-up at confirmation time, because minutes may
have passed since the gate.
"""

from __future__ import annotations

from rasa_sdk.events import Restarted, SlotSet

from actions.base import CartguardAction, Turn, button, link_button
from actions.sensitive import SensitiveAction
from cartguard.privacy import erase_customer
from cartguard.shop.conversations import conversation_owner
from cartguard.shop.models import ConversationOwner
from cartguard.stepup.service import StepUpService, StepUpStatus
from cartguard.vault import get_vault

YES_NO = [button("Yes", "/affirm"), button("No", "/deny")]


def conversation_row(turn: Turn) -> ConversationOwner:
    return conversation_owner(turn.session, turn.conversation_id, turn.customer_id, turn.channel)


class ActionGreet(CartguardAction):
    action_name = "action_greet"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        turn.say(response="utter_greet")
        row = conversation_row(turn)
        if row.transcript_consent is None:
            turn.say(
                response="utter_ask_consent", privacy_url=f"{turn.settings.public_web_url}/privacy"
            )
            turn.events.append(SlotSet("awaiting", "consent"))


class ActionRecordConsent(CartguardAction):
    action_name = "action_record_consent"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        agreed = turn.intent == "affirm"
        conversation_row(turn).transcript_consent = agreed
        turn.say(response="utter_consent_granted" if agreed else "utter_consent_declined")
        turn.events.append(SlotSet("awaiting", None))


class ActionForgetConversation(CartguardAction):
    """Wipe this conversation: the tracker store drops its stored events when it sees the marker."""

    action_name = "action_forget_conversation"
    needs_customer = False

    def handle(self, turn: Turn) -> None:
        get_vault().forget_conversation(turn.conversation_id, session=turn.session)
        StepUpService(turn.session).end(turn.conversation_id)
        turn.say(response="utter_forgot_conversation")
        # The marker slot tells the PII-stripping tracker store to delete what it holds for this
        # conversation when it saves this turn; Restarted makes Rasa forget it in memory.
        turn.events.extend([SlotSet("forget_requested", True), Restarted()])


class ActionExportMyData(SensitiveAction):
    action_name = "action_export_my_data"

    def serve(self, turn: Turn) -> None:
        turn.say(
            "I can prepare a copy of your data (profile, orders, invoices, balances and your "
            "chat transcripts) as a JSON file, downloadable once from a secure link. Shall I?",
            buttons=YES_NO,
        )
        turn.events.append(SlotSet("awaiting", "export"))


class ActionDeleteMyData(SensitiveAction):
    action_name = "action_delete_my_data"

    def serve(self, turn: Turn) -> None:
        turn.say(
            "This permanently erases your personal data: profile details, saved cards, chat "
            "transcripts and authenticator set-up. Invoices are kept because the law requires "
            "it, with everything else about you removed. This can't be undone. Go ahead?",
            buttons=YES_NO,
        )
        turn.events.append(SlotSet("awaiting", "erasure"))


class ActionConfirmPrivacyRequest(CartguardAction):
    action_name = "action_confirm_privacy_request"

    def handle(self, turn: Turn) -> None:
        request = turn.slot("awaiting")
        turn.events.append(SlotSet("awaiting", None))
        if turn.intent != "affirm":
            turn.say("Okay, nothing was changed.")
            return
        service = StepUpService(turn.session)
        if service.status(turn.customer_id, turn.conversation_id) is not StepUpStatus.FRESH:
            turn.say(
                "Your verification has expired, so I stopped there. Please ask again and I'll "
                "request a new code."
            )
            return
        if request == "export":
            link_url = turn.secure_link("export")
            turn.say(
                "Your export is ready: download it from this secure link (it works once, for 10 "
                "minutes).",
                buttons=[link_button("Download my data", link_url)],
            )
        elif request == "erasure":
            erase_customer(turn.session, turn.customer_id, actor=f"customer:{turn.customer_id}")
            turn.say(
                "Your personal data has been erased and this conversation will be deleted. "
                "Thank you for having been our customer."
            )
            turn.events.extend([SlotSet("forget_requested", True), Restarted()])
