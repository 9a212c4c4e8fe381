"""EXTERNAL_* turns (the web service's ``trigger_intent``) identify the shopper only by a signed,
single-use identity bound to the conversation and the intent.

The attacker here holds Rasa's HTTP API JWT secret: they can append any event to any
conversation (an ``EXTERNAL_*`` user event, a ``customer_id`` slot, entities of their choice),
but they do not hold the shop's login-token key. Every attack below must leave them anonymous.
"""

from __future__ import annotations

import time

import jwt
import pytest

from cartguard.keys import load_keys
from tests.dialogue.helpers import run_action, slot_events, texts

CONVERSATION = "conv-external"


def external_tracker(tracker_factory, intent: str, entities: list[dict], **kwargs):
    """A tracker whose latest user event is shaped exactly like Rasa's ``create_external``."""
    return tracker_factory(
        sender_id=kwargs.pop("sender_id", CONVERSATION),
        intent=intent,
        text=f"EXTERNAL: {intent}",
        metadata={"is_external": True},
        entities=entities,
        input_channel=kwargs.pop("input_channel", "socketio"),
        **kwargs,
    )


def identity_entity(token: str) -> list[dict]:
    from cartguard.identity import EXTERNAL_IDENTITY_ENTITY

    return [{"entity": EXTERNAL_IDENTITY_ENTITY, "value": token}]


def card_saved(tracker_factory, entities, **kwargs):
    """Run ``action_card_saved`` on an EXTERNAL turn. The ``customer_id`` slot says customer 1,
    as an attacker with the Rasa API would set it: only the identity entity may decide."""
    from actions.payments import ActionCardSaved

    tracker = external_tracker(
        tracker_factory,
        "EXTERNAL_card_saved",
        entities,
        slots={"card_last4": "4242", "customer_id": 1},
        **kwargs,
    )
    return run_action(ActionCardSaved(), tracker)


def anonymous(messages: list[dict]) -> bool:
    """The shopper was asked to sign in (on Messenger: the linking button), nothing else."""
    responses = [m.get("response") for m in messages]
    return responses in (["utter_please_login"], ["utter_messenger_link"])


# --- attacks -------------------------------------------------------------------------------


def test_a_customer_id_slot_alone_identifies_nobody(tracker_factory):
    """The attacker appends an EXTERNAL event and sets ``customer_id`` themselves."""
    messages, events = card_saved(tracker_factory, [])
    assert anonymous(messages)
    assert slot_events(events)["customer_id"] is None


def test_an_identity_signed_with_the_rasa_api_secret_is_refused(tracker_factory, data_dir):
    """All the attacker can sign with is Rasa's JWT secret (and any claims they like)."""
    now = int(time.time())
    forged = jwt.encode(
        {
            "sub": "1",
            "aud": "cartguard-external",
            "iss": "cartguard-web-service",
            "conv": CONVERSATION,
            "intent": "EXTERNAL_card_saved",
            "iat": now,
            "exp": now + 60,
            "jti": "forged",
        },
        load_keys().get("rasa_jwt_secret"),
        algorithm="HS256",
    )
    messages, _ = card_saved(tracker_factory, [{"entity": "cartguard_identity", "value": forged}])
    assert anonymous(messages)


def test_a_webchat_login_token_is_not_an_external_identity(tracker_factory, data_dir):
    """A login token (a different audience) pasted into the entity does not pass."""
    from cartguard.identity import issue_login_token

    messages, _ = card_saved(tracker_factory, identity_entity(issue_login_token(1, 60)))
    assert anonymous(messages)


def test_an_unsigned_identity_is_refused(tracker_factory, data_dir):
    from cartguard.identity import issue_external_identity

    good = issue_external_identity(1, CONVERSATION, "EXTERNAL_card_saved")
    header, payload, _ = good.split(".")
    none_alg = jwt.encode(jwt.decode(good, options={"verify_signature": False}), None, "none")
    for token in (f"{header}.{payload}.", none_alg, "garbage", "x" * 10_000):
        messages, _ = card_saved(tracker_factory, identity_entity(token))
        assert anonymous(messages), token[:40]


def test_a_replayed_identity_is_refused(tracker_factory, data_dir):
    """The attacker reads a used identity from the tracker and triggers the intent again."""
    from cartguard.identity import issue_external_identity

    token = issue_external_identity(1, CONVERSATION, "EXTERNAL_card_saved")
    first, _ = card_saved(tracker_factory, identity_entity(token))
    assert "card ending 4242 is saved" in texts(first)
    again, events = card_saved(tracker_factory, identity_entity(token))
    assert anonymous(again)
    assert slot_events(events)["customer_id"] is None


def test_an_identity_for_another_conversation_is_refused(tracker_factory, data_dir):
    from cartguard.identity import issue_external_identity

    token = issue_external_identity(1, "conv-of-the-victim", "EXTERNAL_card_saved")
    messages, _ = card_saved(tracker_factory, identity_entity(token))
    assert anonymous(messages)


def test_an_identity_for_another_intent_is_refused(tracker_factory, data_dir):
    """An identity minted for "enrolled" cannot confirm a card, or anything else."""
    from cartguard.identity import issue_external_identity

    token = issue_external_identity(1, CONVERSATION, "EXTERNAL_enrolled")
    messages, _ = card_saved(tracker_factory, identity_entity(token))
    assert anonymous(messages)


def test_an_expired_identity_is_refused(tracker_factory, data_dir):
    import time_machine

    from cartguard.identity import EXTERNAL_TTL_SECONDS, issue_external_identity

    token = issue_external_identity(1, CONVERSATION, "EXTERNAL_card_saved")
    with time_machine.travel(time.time() + EXTERNAL_TTL_SECONDS + 5, tick=False):
        messages, _ = card_saved(tracker_factory, identity_entity(token))
    assert anonymous(messages)


def test_an_identity_typed_by_a_shopper_is_not_an_external_turn(tracker_factory, data_dir):
    """``/EXTERNAL_card_saved{...}`` typed in a chat has no ``is_external`` marker."""
    from actions.payments import ActionCardSaved
    from cartguard.identity import issue_external_identity

    token = issue_external_identity(1, CONVERSATION, "EXTERNAL_card_saved")
    tracker = tracker_factory(
        sender_id=CONVERSATION,
        intent="EXTERNAL_card_saved",
        text="/EXTERNAL_card_saved",
        entities=identity_entity(token),
        slots={"card_last4": "4242"},
    )
    messages, _ = run_action(ActionCardSaved(), tracker)
    assert anonymous(messages)


@pytest.mark.parametrize("ttl", [0, -1, 3600])
def test_an_identity_cannot_be_issued_for_long(data_dir, ttl):
    from cartguard.identity import issue_external_identity

    with pytest.raises(ValueError):
        issue_external_identity(1, CONVERSATION, "EXTERNAL_card_saved", ttl_seconds=ttl)


# --- the honest path -----------------------------------------------------------------------


def test_a_signed_identity_identifies_the_customer_once(tracker_factory, data_dir):
    from cartguard.identity import issue_external_identity

    token = issue_external_identity(1, "conv-honest", "EXTERNAL_card_saved")
    messages, events = card_saved(tracker_factory, identity_entity(token), sender_id="conv-honest")
    assert "card ending 4242 is saved" in texts(messages)
    assert "customer_id" not in slot_events(events)  # the slot already said 1


def test_on_messenger_the_identity_needs_a_live_link(tracker_factory, data_dir):
    """A result that arrives after the shopper unlinked their Messenger account is anonymous."""
    from cartguard.account_links import complete_linking, unlink
    from cartguard.identity import issue_external_identity
    from cartguard.shop.db import session_scope

    psid = "9000000000000001"
    with session_scope() as session:
        complete_linking(session, 1, psid)
    token = issue_external_identity(1, psid, "EXTERNAL_card_saved")
    linked, _ = card_saved(
        tracker_factory, identity_entity(token), sender_id=psid, input_channel="facebook"
    )
    assert "card ending 4242 is saved" in texts(linked)

    with session_scope() as session:
        unlink(session, 1)
    token = issue_external_identity(1, psid, "EXTERNAL_card_saved")
    unlinked, _ = card_saved(
        tracker_factory, identity_entity(token), sender_id=psid, input_channel="facebook"
    )
    assert anonymous(unlinked)
