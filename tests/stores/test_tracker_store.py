"""The PII-stripping tracker store against real Rasa trackers on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa
from faker import Faker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from cartguard.identity import issue_login_token
from cartguard.stores.broker import RedactingSQLEventBroker
from cartguard.stores.tracker_store import RedactingSQLTrackerStore

fake = Faker()
CARD = "4539 1488 0343 6467"  # Luhn-valid test number


def _conversation(sender_id: str, domain: Domain) -> tuple[DialogueStateTracker, dict]:
    email = f"{fake.user_name()}+orders@{fake.domain_name()}"
    token = issue_login_token(1, 300)
    secrets = {"email": email, "auth_token": token, "card": CARD, "otp": "836150"}
    tracker = DialogueStateTracker(sender_id, domain.slots)
    meta = {"auth_token": token, "locale": "en-GB", "page": "checkout"}
    # As Rasa hands trackers to the store: the session's events from SessionStarted on.
    tracker.update(SessionStarted())
    tracker.update(SlotSet("session_started_metadata", meta))
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(
        UserUttered(
            f"my card is {CARD} and my email is {email}",
            intent={"name": "update_payment_method", "confidence": 0.93},
            entities=[{"entity": "order_id", "value": "CG-482913", "start": 0, "end": 9}],
            parse_data={
                "text": f"my card is {CARD} and my email is {email}",
                "intent": {"name": "update_payment_method", "confidence": 0.93},
                "entities": [{"entity": "order_id", "value": "CG-482913", "start": 0, "end": 9}],
            },
            metadata=meta,
        )
    )
    tracker.update(BotUttered(f"Thanks, we will write to {email}.", metadata={"x": 1}))
    tracker.update(SlotSet("requested_slot", "otp_code"))
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(
        UserUttered(
            "836 150",
            intent={"name": "provide_otp", "confidence": 0.99},
            entities=[{"entity": "otp_code", "value": "836 150", "start": 0, "end": 7}],
        )
    )
    tracker.update(SlotSet("otp_code", "836150"))
    tracker.update(SlotSet("contact_email", email))
    return tracker, secrets


def _rows(store: RedactingSQLTrackerStore, sender_id: str) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender_id},
            )
        )


async def test_round_trip_keeps_count_order_and_strips_pii(
    domain: Domain, tracker_db_url: str, sender_id: str
) -> None:
    store = RedactingSQLTrackerStore(domain=domain, host=tracker_db_url)
    tracker, secrets = _conversation(sender_id, domain)
    await store.save(tracker)

    rows = _rows(store, sender_id)
    assert [r[0] for r in rows] == [e.type_name for e in tracker.events]
    raw = "\n".join(r[1] for r in rows)
    for name, value in secrets.items():
        assert value not in raw, f"{name} stored in clear"
    assert "836 150" not in raw and "4539" + "1488" not in raw.replace(" ", "")
    assert "CG-482913" in raw  # order ids are not personal data
    assert "en-GB" in raw and "checkout" in raw  # harmless metadata kept
    assert "auth_token" not in raw

    reloaded = await store.retrieve(sender_id)
    assert reloaded is not None
    assert len(reloaded.events) == len(tracker.events)
    assert [type(e) for e in reloaded.events] == [type(e) for e in tracker.events]
    assert reloaded.get_slot("otp_code") == "<REDACTED>"
    assert secrets["email"] not in (reloaded.get_slot("contact_email") or "")
    user = [e for e in reloaded.events if isinstance(e, UserUttered)][0]
    assert "453914******6467" in user.text and "<EMAIL_ADDRESS>" in user.text


async def test_same_rows_as_rasas_own_sql_store_apart_from_the_redaction(
    domain: Domain, tmp_path, sender_id: str
) -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    plain = SQLTrackerStore(domain=domain, host=f"sqlite:///{tmp_path / 'plain.db'}")
    ours = RedactingSQLTrackerStore(domain=domain, host=f"sqlite:///{tmp_path / 'ours.db'}")
    tracker, _ = _conversation(sender_id, domain)
    listen = ActionExecuted("action_listen")
    for store in (plain, ours):
        await store.save(tracker)
        tracker.update(listen)
        await store.save(tracker)
        tracker.events.pop()
    plain_rows, our_rows = _rows(plain, sender_id), _rows(ours, sender_id)
    assert [r[0] for r in plain_rows] == [r[0] for r in our_rows]
    for (_, a), (_, b) in zip(plain_rows, our_rows, strict=True):
        a_data, b_data = json.loads(a), json.loads(b)
        assert a_data["event"] == b_data["event"] and a_data["timestamp"] == b_data["timestamp"]


async def test_saving_twice_does_not_duplicate_and_rasa_continues(
    domain: Domain, tracker_db_url: str, sender_id: str
) -> None:
    store = RedactingSQLTrackerStore(domain=domain, host=tracker_db_url)
    tracker, _ = _conversation(sender_id, domain)
    await store.save(tracker)
    await store.save(tracker)
    assert len(_rows(store, sender_id)) == len(tracker.events)

    # A new process: reload the redacted tracker, continue the conversation, save again.
    store2 = RedactingSQLTrackerStore(domain=domain, host=tracker_db_url)
    resumed = await store2.retrieve(sender_id)
    assert resumed is not None
    before = len(resumed.events)
    resumed.update(ActionExecuted("action_listen"))
    resumed.update(UserUttered("call me on +44 7700 900123", intent={"name": "greet"}))
    resumed.update(BotUttered("Hello!"))
    await store2.save(resumed)
    rows = _rows(store2, sender_id)
    assert len(rows) == before + 3
    assert [r[0] for r in rows[-3:]] == ["action", "user", "bot"]
    assert "7700 900123" not in rows[-2][1]
    final = await store2.retrieve(sender_id)
    assert final is not None and len(final.events) == before + 3
    assert final.latest_message.intent.get("name") == "greet"


async def test_broker_attached_to_the_store_receives_redacted_events(
    domain: Domain, tmp_path, sender_id: str
) -> None:
    broker = RedactingSQLEventBroker(db=str(tmp_path / "events.db"))
    store = RedactingSQLTrackerStore(
        domain=domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", event_broker=broker
    )
    tracker, secrets = _conversation(sender_id, domain)
    await store.save(tracker)
    with broker.engine.connect() as conn:
        published = [r[0] for r in conn.execute(sa.text("SELECT data FROM events ORDER BY id"))]
    assert len(published) == len(tracker.events)
    assert all(json.loads(p)["sender_id"] == sender_id for p in published)
    raw = "\n".join(published)
    assert not any(value in raw for value in secrets.values())


def test_a_retry_while_an_earlier_save_is_still_committing_stores_each_event_once(
    domain: Domain, tracker_db_url: str, sender_id: str, monkeypatch
) -> None:
    """A save given up on (the database went silent) can still commit once it answers.

    The store then retries the same turn. Played here with two threads: the first save stalls
    right before its commit, the retry starts meanwhile. Each event must be stored once, in
    order: the retry waits for the first transaction (PostgreSQL: a per-conversation advisory
    lock; SQLite: its single writer) and counts what that one stored.
    """
    import threading
    import time

    from cartguard.stores import tracker_store

    store = RedactingSQLTrackerStore(domain=domain, host=tracker_db_url)
    tracker, _ = _conversation(sender_id, domain)
    calls: dict[str, int] = {}
    real_in_time = tracker_store._in_time

    def stalling_in_time(deadline: float) -> None:
        name = threading.current_thread().name
        calls[name] = calls.get(name, 0) + 1
        if name == "first" and calls[name] == 2:  # its check right before the commit
            time.sleep(1.5)
        real_in_time(deadline)

    monkeypatch.setattr(tracker_store, "_in_time", stalling_in_time)
    far = time.monotonic() + 60
    first = threading.Thread(target=store._save_sync, args=(far, tracker), name="first")
    retry = threading.Thread(target=store._save_sync, args=(far, tracker), name="retry")
    first.start()
    time.sleep(0.3)
    retry.start()
    first.join(30)
    retry.join(30)

    rows = _rows(store, sender_id)
    assert len(rows) == len(tracker.events), [r[0] for r in rows]
    timestamps = [json.loads(data)["timestamp"] for _, data in rows]
    assert timestamps == sorted(timestamps)
