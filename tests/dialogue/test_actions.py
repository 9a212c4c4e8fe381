"""Every action against the seeded shop, with trackers shaped like the ones Rasa sends.

Identity comes only from the login token in the message metadata, so most tests sign one for
customer 1 and check that customer 2's data stays invisible.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cartguard.identity import issue_login_token
from cartguard.shop.db import session_scope
from cartguard.shop.models import Order, SupportTicket
from tests.dialogue.helpers import run_action, slot_events, texts


@pytest.fixture()
def token_for(data_dir):
    return lambda customer_id: {"auth_token": issue_login_token(customer_id, ttl_seconds=300)}


def first_order(customer_id: int, status: str | None = None) -> str:
    with session_scope() as session:
        query = select(Order.id).where(Order.customer_id == customer_id)
        if status:
            query = query.where(Order.status == status)
        return session.execute(query.order_by(Order.id).limit(1)).scalar_one()


def test_track_own_order_describes_it(tracker_factory, token_for):
    from actions.orders import ActionTrackOrder

    order_id = first_order(1)
    tracker = tracker_factory(
        intent="track_order", slots={"order_id": order_id}, metadata=token_for(1)
    )
    messages, events = run_action(ActionTrackOrder(), tracker)
    assert f"Order {order_id}" in texts(messages)
    assert "Items:" in texts(messages)
    assert slot_events(events)["customer_id"] == 1


def test_another_customers_order_answers_exactly_like_an_unknown_one(tracker_factory, token_for):
    from actions.orders import ActionTrackOrder

    foreign = first_order(2)
    unknown = "CG-000001"
    foreign_reply = texts(
        run_action(
            ActionTrackOrder(), tracker_factory(slots={"order_id": foreign}, metadata=token_for(1))
        )[0]
    )
    unknown_reply = texts(
        run_action(
            ActionTrackOrder(), tracker_factory(slots={"order_id": unknown}, metadata=token_for(1))
        )[0]
    )
    assert foreign_reply.replace(foreign, "X") == unknown_reply.replace(unknown, "X")
    assert "can't find" in foreign_reply


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"auth_token": "not-a-token"},
        {"customer_id": 1},  # a client naming a customer is not an identity
    ],
)
def test_anonymous_or_forged_identity_is_asked_to_log_in(tracker_factory, metadata):
    from actions.orders import ActionTrackOrder

    tracker = tracker_factory(slots={"order_id": first_order(1)}, metadata=metadata)
    messages, _ = run_action(ActionTrackOrder(), tracker)
    assert [m.get("response") for m in messages] == ["utter_please_login"]


def test_token_signed_with_another_key_is_refused(tracker_factory):
    import jwt

    from actions.orders import ActionTrackOrder

    forged = jwt.encode(
        {
            "sub": "1",
            "aud": "cartguard-webchat",
            "iss": "cartguard-shop-login",
            "iat": 1,
            "exp": 4102444800,
        },
        "guessed-key",
        algorithm="HS256",
    )
    messages, events = run_action(
        ActionTrackOrder(),
        tracker_factory(metadata={"auth_token": forged}, slots={"customer_id": 1}),
    )
    assert [m.get("response") for m in messages] == ["utter_please_login"]
    assert slot_events(events)["customer_id"] is None


def open_order() -> tuple[int, str]:
    with session_scope() as session:
        row = session.execute(
            select(Order.customer_id, Order.id)
            .where(Order.status.in_(("placed", "processing")))
            .order_by(Order.id)
            .limit(1)
        ).one()
        return row.customer_id, row.id


def test_sensitive_action_refuses_without_fresh_stepup_and_changes_nothing(
    tracker_factory, token_for
):
    from actions.orders import ActionCancelOrder

    customer_id, order_id = open_order()
    tracker = tracker_factory(
        sender_id="conv-no-stepup",
        intent="cancel_order",
        slots={"order_id": order_id},
        metadata=token_for(customer_id),
    )
    messages, _ = run_action(ActionCancelOrder(), tracker)
    assert "verify" in texts(messages)
    with session_scope() as session:
        assert session.get(Order, order_id).status != "cancelled"


def test_handoff_ticket_carries_a_redacted_transcript(tracker_factory, token_for):
    from actions.support import ActionContactHumanAgent

    prior = [
        {"event": "user", "text": "my card 4111 1111 1111 1111 was charged twice"},
        {"event": "bot", "text": "Sorry to hear that."},
    ]
    tracker = tracker_factory(
        sender_id="conv-handoff",
        intent="contact_human_agent",
        text="let me talk to a person",
        metadata=token_for(1),
        prior_events=prior,
    )
    messages, _ = run_action(ActionContactHumanAgent(), tracker)
    assert "ticket TK-" in texts(messages)
    with session_scope() as session:
        ticket = session.execute(
            select(SupportTicket).where(SupportTicket.conversation_id == "conv-handoff")
        ).scalar_one()
    assert ticket.customer_id == 1
    assert "4111 1111 1111 1111" not in ticket.transcript
    assert "charged twice" in ticket.transcript


def test_database_down_gives_a_polite_answer(tracker_factory, token_for, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import actions.base
    from actions.orders import ActionTrackOrder

    class Broken:
        def __enter__(self):
            raise actions.base.DatabaseUnavailable("the shop database is unavailable: refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(actions.base, "session_scope", lambda: Broken())
    assert OperationalError  # the real scope converts OperationalError into DatabaseUnavailable
    messages, _ = run_action(ActionTrackOrder(), tracker_factory(metadata=token_for(1)))
    assert "can't reach our order system" in texts(messages)
    assert "nothing was changed" in texts(messages)


def test_a_turn_triggered_by_the_web_service_keeps_the_verified_identity(tracker_factory):
    """trigger_intent turns carry no login token but the web service's signed identity
    (tests/dialogue/test_external_identity.py plays the attacks on it)."""
    from actions.payments import ActionCardSaved
    from cartguard.identity import EXTERNAL_IDENTITY_ENTITY, issue_external_identity

    token = issue_external_identity(1, "conv-test", "EXTERNAL_card_saved")
    tracker = tracker_factory(
        intent="EXTERNAL_card_saved",
        text="EXTERNAL: EXTERNAL_card_saved",
        metadata={"is_external": True},
        entities=[{"entity": EXTERNAL_IDENTITY_ENTITY, "value": token}],
        slots={"customer_id": 1, "card_last4": "4242"},
        input_channel=None,
    )
    messages, events = run_action(ActionCardSaved(), tracker)
    assert "card ending 4242 is saved" in texts(messages)
    assert "customer_id" not in slot_events(events)


def test_a_typed_message_posing_as_external_does_not_inherit_identity(tracker_factory):
    from actions.payments import ActionCardSaved

    tracker = tracker_factory(
        intent="EXTERNAL_card_saved",
        text="/EXTERNAL_card_saved",
        metadata={},
        slots={"customer_id": 1, "card_last4": "4242"},
    )
    messages, events = run_action(ActionCardSaved(), tracker)
    assert [m.get("response") for m in messages] == ["utter_please_login"]
    assert slot_events(events)["customer_id"] is None
