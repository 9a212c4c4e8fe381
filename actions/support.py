"""Support: hand the conversation to a person, or record a complaint, as a ticket.

Tickets carry a redacted transcript: the PII detector runs over every line again, so a value
that slipped past the channel (or predates it) never reaches a support agent's screen.
"""

from __future__ import annotations

from actions.base import CartguardAction, Turn
from cartguard.pii import redact
from cartguard.shop import queries

TRANSCRIPT_LINES = 20


def redacted_transcript(turn: Turn) -> str:
    lines = []
    for event in turn.tracker.events:
        kind = event.get("event")
        text = event.get("text")
        if kind in ("user", "bot") and text:
            who = "Shopper" if kind == "user" else "Assistant"
            lines.append(f"{who}: {redact(text).text}")
    return "\n".join(lines[-TRANSCRIPT_LINES:])


def latest_user_text(turn: Turn) -> str:
    text = turn.tracker.latest_message.get("text") or ""
    return redact(text).text[:300]


class _TicketAction(CartguardAction):
    needs_customer = False
    kind = ""

    def open_ticket(self, turn: Turn, summary: str) -> str:
        # The summary is for staff (the support queue), not for the shopper.
        ticket = queries.create_ticket(
            turn.session,
            customer_id=turn.customer_id,
            conversation_id=turn.conversation_id,
            kind=self.kind,
            summary=summary,
            transcript=redacted_transcript(turn),
        )
        return ticket.id


class ActionContactHumanAgent(_TicketAction):
    action_name = "action_contact_human_agent"
    kind = "handoff"

    def handle(self, turn: Turn) -> None:
        ticket_id = self.open_ticket(
            turn, "Shopper asked to talk to a person: " + latest_user_text(turn)
        )
        # A known shopper is answered by e-mail; an anonymous one only here, in the chat.
        if turn.customer_id is not None:
            turn.say("utter_handoff_by_email", ticket_id=ticket_id)
        else:
            turn.say("utter_handoff_in_chat", ticket_id=ticket_id)


class ActionComplaint(_TicketAction):
    action_name = "action_complaint"
    kind = "complaint"

    def handle(self, turn: Turn) -> None:
        ticket_id = self.open_ticket(turn, "Complaint: " + latest_user_text(turn))
        turn.say("utter_complaint_recorded", ticket_id=ticket_id)
