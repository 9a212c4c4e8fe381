"""Secure-form link tokens never reach the tracker store: staff who read transcripts must not
be able to open a shopper's still-unused link."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker

from cartguard.pii import redact
from cartguard.stores.tracker_store import RedactingSQLTrackerStore


def test_the_token_of_a_link_is_redacted_and_the_rest_kept():
    token = secrets.token_urlsafe(32)
    text = redact(f"open http://localhost:8080/s/{token} within 10 minutes").text
    assert token not in text
    assert text == "open http://localhost:8080/s/<SECURE_LINK> within 10 minutes"


async def test_bot_buttons_with_a_link_are_stored_without_the_token(tmp_path, data_dir):
    token = secrets.token_urlsafe(32)
    url = f"http://localhost:8080/s/{token}"
    store = RedactingSQLTrackerStore(
        domain=Domain.empty(), host=f"sqlite:///{tmp_path / 'tracker.db'}"
    )
    tracker = DialogueStateTracker.from_events(
        "conv-link",
        [
            BotUttered(
                "Please enter your new card on our secure page.",
                data={
                    "buttons": [
                        {"title": "Update my card", "type": "web_url", "url": url, "payload": url}
                    ]
                },
            )
        ],
    )
    await store.save(tracker)
    with store.engine.connect() as conn:
        stored = "".join(row[0] for row in conn.execute(sa.text("SELECT data FROM events")))
    assert token not in stored
    assert "/s/<SECURE_LINK>" in stored
    assert token not in (tmp_path / "tracker.db").read_bytes().decode("latin-1")
