"""Sensitive actions: they act on an account only after a fresh step-up, checked on the server.

The dialogue routes every sensitive intent through ``action_stepup_gate`` (rules generated from
``security.yml``), but the rules are not the security boundary: each sensitive action checks
step-up freshness again in the database before it touches anything. Subclasses register
themselves so ``action_resume_request`` can carry on with the original request after the code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from rasa_sdk.events import SlotSet

from actions.base import CartguardAction, Turn
from cartguard.stepup.service import StepUpService, StepUpStatus

#: action name -> class, filled by subclassing
SENSITIVE_ACTIONS: dict[str, type[SensitiveAction]] = {}

NOT_VERIFIED_MESSAGE = (
    "For your security I need to verify it's you before I can do that. Please ask again and "
    "I'll request your code."
)


class SensitiveAction(CartguardAction, ABC):
    """An action that needs a fresh step-up for the identified customer in this conversation."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.action_name:
            SENSITIVE_ACTIONS[cls.action_name] = cls

    def handle(self, turn: Turn) -> None:
        service = StepUpService(turn.session)
        if service.status(turn.customer_id, turn.conversation_id) is not StepUpStatus.FRESH:
            turn.say(NOT_VERIFIED_MESSAGE)
            turn.events.append(SlotSet("stepup_status", None))
            return
        service.touch(turn.customer_id, turn.conversation_id)
        self.serve(turn)

    @abstractmethod
    def serve(self, turn: Turn) -> None:
        """Do the sensitive work; step-up was verified for this customer and conversation."""
