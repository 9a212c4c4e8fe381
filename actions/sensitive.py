"""Sensitive actions: they act on an account only after a fresh step-up, checked on the server.

The dialogue routes every sensitive intent through ``action_stepup_gate`` (rules generated from
``security.yml``), but the rules are not the security boundary: each sensitive action checks
again, in the database, that maintenance mode is off and that this customer verified a code in
this conversation recently, before it touches anything (:func:`why_not_now`). Subclasses
register themselves so ``action_resume_request`` can carry on with the original request after
the code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn
from cartguard.maintenance import is_enabled as is_maintenance
from cartguard.stepup.service import StepUpService, StepUpStatus

#: action name -> class, filled by subclassing
SENSITIVE_ACTIONS: dict[str, type[SensitiveAction]] = {}


def has_fresh_stepup(turn: Turn) -> bool:
    """The one freshness check: this customer verified a code in this conversation recently."""
    if turn.customer_id is None:
        return False
    status = StepUpService(turn.session).status(turn.customer_id, turn.conversation_id)
    return status is StepUpStatus.FRESH


def why_not_now(turn: Turn) -> str | None:
    """The response that explains why sensitive work may not happen now, or None if it may.

    Maintenance mode (an incident) stops sensitive work here, at the boundary, whatever the
    dialogue or a resumed request believes; then a fresh step-up is required.
    """
    if is_maintenance(turn.session):
        return "utter_maintenance"
    if not has_fresh_stepup(turn):
        return "utter_not_verified"
    return None


class SensitiveAction(CartguardAction, ABC):
    """An action that needs a fresh step-up for the identified customer in this conversation."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.action_name:
            SENSITIVE_ACTIONS[cls.action_name] = cls

    def handle(self, turn: Turn) -> None:
        refusal = why_not_now(turn)
        if refusal is not None:
            turn.say(refusal)
            turn.events.append(SlotSet("stepup_status", None))
            return
        StepUpService(turn.session).touch(turn.customer_id, turn.conversation_id)
        self.serve(turn)

    @abstractmethod
    def serve(self, turn: Turn) -> None:
        """Do the sensitive work; step-up was verified for this customer and conversation."""
