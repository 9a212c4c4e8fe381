"""The "forget this conversation" and erasure turns, as the tracker store sees them.

The action cannot delete the conversation itself: Rasa saves the whole in-memory tracker at
the end of the turn and would write everything back. The store honours the action's
``forget_requested`` marker instead; these tests play that turn as Rasa would.
"""

from __future__ import annotations

import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Restarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from cartguard.stores.tracker_store import RedactingSQLTrackerStore

FORGET_DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, forget_conversation]
slots:
  forget_requested:
    type: bool
    influence_conversation: false
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "Hello!"}]
"""
)


def _texts(store: RedactingSQLTrackerStore, sender_id: str) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender_id}
        )
        return [row[0] for row in rows]


async def test_forget_marker_deletes_what_was_stored_and_keeps_the_count_rasa_expects(tmp_path):
    store = RedactingSQLTrackerStore(domain=FORGET_DOMAIN, host=f"sqlite:///{tmp_path / 't.db'}")
    tracker = DialogueStateTracker.from_events(
        "conv-forget",
        [
            ActionExecuted("action_listen"),
            UserUttered("my order CG-482913 never arrived", intent={"name": "greet"}),
            BotUttered("Sorry to hear that"),
        ],
    )
    await store.save(tracker)
    assert any("CG-482913" in row for row in _texts(store, "conv-forget"))

    # the "forget this conversation" turn, exactly as Rasa has it in memory at save time
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("forget this conversation", intent={"name": "forget_conversation"}))
    tracker.update(ActionExecuted("action_forget_conversation"))
    tracker.update(BotUttered("Done: I've deleted this conversation."))
    tracker.update(SlotSet("forget_requested", True))
    tracker.update(Restarted())
    await store.save(tracker)

    stored = _texts(store, "conv-forget")
    assert len(stored) == 1 and '"restart"' in stored[0]
    assert not any("CG-482913" in row or "forget this" in row for row in stored)

    # next turn: Rasa reloads (one event), continues, and saving appends without duplicates
    reloaded = await store.retrieve("conv-forget")
    assert len(reloaded.events) == 1
    reloaded.update(ActionExecuted("action_listen"))
    reloaded.update(UserUttered("hello", intent={"name": "greet"}))
    await store.save(reloaded)
    await store.save(reloaded)
    assert len(_texts(store, "conv-forget")) == 3
    # the file itself no longer holds the old text (SQLite free pages were scrubbed)
    assert b"never arrived" not in (tmp_path / "t.db").read_bytes()


async def test_other_conversations_are_untouched(tmp_path):
    store = RedactingSQLTrackerStore(domain=FORGET_DOMAIN, host=f"sqlite:///{tmp_path / 't.db'}")
    keep = DialogueStateTracker.from_events(
        "conv-keep", [UserUttered("where is CG-111111", intent={"name": "greet"})]
    )
    gone = DialogueStateTracker.from_events(
        "conv-gone", [UserUttered("where is CG-222222", intent={"name": "greet"})]
    )
    await store.save(keep)
    await store.save(gone)
    gone.update(SlotSet("forget_requested", True))
    gone.update(Restarted())
    await store.save(gone)
    assert any("CG-111111" in row for row in _texts(store, "conv-keep"))
    assert not any("CG-222222" in row for row in _texts(store, "conv-gone"))
