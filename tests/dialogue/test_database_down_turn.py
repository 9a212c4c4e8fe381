"""A turn the shop database refused ends with its one sentence.

An action that cannot reach the database says "I can't reach our order system ... nothing was
changed" and records nothing, so the slots the stories expect after it (``awaiting`` cleared
after consent, a flow's next step) are not set. Left to the policies, the next prediction then
follows no rule and the model added a second, unrelated answer ("Sorry, I didn't quite get
that ...") to the same turn: the shopper read two contradicting messages, and a client counting
one answer per line took the leftover as the answer to its next line (seen in the soak's
PostgreSQL restart phase as conversations whose next message went unanswered).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dialogue.helpers import responses, run_action

ROOT = Path(__file__).resolve().parents[2]


def _consent_turn(tracker_factory, token_for):
    return tracker_factory(
        intent="affirm", text="yes", slots={"awaiting": "consent"}, metadata=token_for(1)
    )


def test_an_action_the_database_refused_ends_its_turn(tracker_factory, token_for, database_down):
    from actions.privacy import ActionRecordConsent

    messages, events = run_action(ActionRecordConsent(), _consent_turn(tracker_factory, token_for))
    assert responses(messages) == ["utter_db_unavailable"]
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "action_listen"}


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    model = ROOT / "models" / "cartguard.tar.gz"
    assert model.exists(), "no trained model: run `make train` first"
    return Agent.load(str(model))


@pytest.mark.slow
def test_the_trained_model_says_nothing_more_after_the_database_refused(
    agent, tracker_factory, token_for, database_down
):
    """The real model, given the consent turn as the failed action left it, waits for the shopper."""
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        Event,
        SessionStarted,
        SlotSet,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    from actions.privacy import ActionRecordConsent

    _, events = run_action(ActionRecordConsent(), _consent_turn(tracker_factory, token_for))
    history = [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered("hello", {"name": "greet", "confidence": 1.0}),
        ActionExecuted("action_greet"),
        BotUttered("Hi!"),
        SlotSet("awaiting", "consent"),
        ActionExecuted("action_listen"),
        UserUttered("yes", {"name": "affirm", "confidence": 1.0}),
        ActionExecuted("action_record_consent"),
        BotUttered("Sorry, I can't reach our order system right now"),
        *(Event.from_parameters(event) for event in events),
    ]
    tracker = DialogueStateTracker.from_events("db-down-consent", history, agent.domain.slots)
    prediction = agent.processor.predict_next_with_tracker(tracker)
    assert prediction is not None
    best = max(prediction["scores"], key=lambda score: score["score"])
    assert best["action"] == "action_listen", prediction["policy"]
