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
        contact = (
            "by e-mail to the address on your account"
            if turn.customer_id is not None
            else "right here in this chat if you keep the page open"
        )
        turn.say(
            f"I've passed this conversation to our support team (ticket {ticket_id}). A person "
            f"will get back to you {contact}, usually within one business day."
        )


class ActionComplaint(_TicketAction):
    action_name = "action_complaint"
    kind = "complaint"

    def handle(self, turn: Turn) -> None:
        ticket_id = self.open_ticket(turn, "Complaint: " + latest_user_text(turn))
        turn.say(
            "I'm sorry about this experience. I've recorded your complaint as ticket "
            f"{ticket_id} and our customer care team will review it and reply within two business "
            "days."
        )
