"""Every action against the seeded shop, with trackers shaped like the ones Rasa sends.

Identity comes only from the login token in the message metadata, so most tests sign one for
customer 1 and check that customer 2's data stays invisible. Replies are read as the shopper
reads them: rendered from domain.yml with the values the action passed (``helpers.texts``).
"""

from __future__ import annotations

import logging
import secrets

import pytest
from sqlalchemy import func, select

from cartguard.identity import issue_login_token
from cartguard.shop.db import session_scope
from cartguard.shop.models import Invoice, Order, Refund, SupportTicket
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.stepup import StepUpSession
from cartguard.stepup.enrolment import enroll_demo_customers
from tests.dialogue.helpers import responses, run_action, slot_events, texts


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
    assert " × " in texts(messages) and "in total" in texts(messages)  # items and total
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
    assert responses(messages) == ["utter_not_verified"]
    with session_scope() as session:
        assert session.get(Order, order_id).status != "cancelled"


# --- another customer's ids, after a fresh step-up, answer exactly like unknown ids ---------

ATTACKER = 1
VICTIM = 2


def fresh_stepup(customer_id: int, conversation_id: str) -> None:
    """Record a step-up verified just now (what a right code does) for this conversation."""
    with session_scope() as session:
        enroll_demo_customers(session, [customer_id])
        now = utcnow()
        session.merge(
            StepUpSession(
                conversation_id=conversation_id,
                customer_id=customer_id,
                verified_at=now,
                last_active_at=now,
            )
        )


def victim_ids() -> dict[str, str]:
    """Ids that exist, but belong to the victim: an open order, a delivered one, an invoice."""
    with session_scope() as session:

        def one(query):
            return session.execute(query.limit(1)).scalar_one()

        orders = select(Order.id).where(Order.customer_id == VICTIM).order_by(Order.id)
        return {
            "open": one(orders.where(Order.status.in_(("placed", "processing")))),
            "delivered": one(orders.where(Order.status == "delivered")),
            "invoice": one(
                select(Invoice.id).where(Invoice.customer_id == VICTIM).order_by(Invoice.id)
            ),
            "invoiced_order": one(
                select(Invoice.order_id)
                .where(Invoice.customer_id == VICTIM, Invoice.order_id.is_not(None))
                .order_by(Invoice.id)
            ),
        }


def victim_state() -> tuple:
    with session_scope() as session:
        statuses = tuple(
            session.execute(
                select(Order.id, Order.status).where(Order.customer_id == VICTIM).order_by(Order.id)
            ).all()
        )
        refunds = session.execute(
            select(func.count())
            .select_from(Refund)
            .join(Order, Refund.order_id == Order.id)
            .where(Order.customer_id == VICTIM)
        ).scalar_one()
    return statuses, refunds


def ask(tracker_factory, action, conversation: str, typed: str, **slots) -> str:
    """What the attacker reads, with the id they typed written as ``<id>``: two replies that
    differ only by the typed id then compare equal, and any other difference shows."""
    tracker = tracker_factory(
        sender_id=conversation,
        slots={"stepup_status": "fresh", **slots},
        metadata={"auth_token": issue_login_token(ATTACKER, ttl_seconds=300)},
    )
    messages = run_action(action, tracker)[0]
    masked = [{k: "<id>" if v == typed else v for k, v in m.items()} for m in messages]
    return texts(masked)


def victim_order_with_a_refund() -> str:
    """One of the victim's orders with a refund in progress (opened here if the seed has none)."""
    with session_scope() as session:
        found = session.execute(
            select(Refund.order_id)
            .join(Order, Refund.order_id == Order.id)
            .where(Order.customer_id == VICTIM)
            .limit(1)
        ).scalar_one_or_none()
        if found:
            return found
        from cartguard.shop import queries

        delivered = victim_ids()["delivered"]
        assert queries.request_refund(session, VICTIM, delivered).outcome == "requested"
        return delivered


@pytest.mark.parametrize(
    ("action_path", "slot", "victim_key", "unknown"),
    [
        ("actions.orders.ActionCancelOrder", "order_id", "open", "CG-000001"),
        ("actions.orders.ActionRequestRefund", "order_id", "delivered", "CG-000001"),
        ("actions.orders.ActionChangeShippingAddress", "order_id", "open", "CG-000001"),
        ("actions.invoices.ActionGetInvoice", "invoice_id", "invoice", "INV-2026-99999"),
        ("actions.invoices.ActionGetInvoice", "order_id", "invoiced_order", "CG-000001"),
    ],
    ids=["cancel", "refund", "address", "invoice by number", "invoice by order"],
)
def test_another_customers_ids_answer_like_unknown_ones_after_a_fresh_stepup(
    tracker_factory, data_dir, action_path, slot, victim_key, unknown
):
    """The attacker is verified (a real step-up of their own) and types the victim's ids."""
    import importlib

    module, _, name = action_path.rpartition(".")
    action = getattr(importlib.import_module(module), name)()
    conversation = f"conv-cross-{name}-{slot}"
    fresh_stepup(ATTACKER, conversation)
    foreign = victim_ids()[victim_key]
    before = victim_state()
    foreign_reply = ask(tracker_factory, action, conversation, foreign, **{slot: foreign})
    unknown_reply = ask(tracker_factory, action, conversation, unknown, **{slot: unknown})
    assert foreign_reply == unknown_reply
    assert "can't find" in foreign_reply and "<id>" in foreign_reply
    assert victim_state() == before  # nothing of the victim's was cancelled or refunded


def test_another_customers_refund_tracking_answers_like_an_unknown_order(tracker_factory, data_dir):
    from actions.orders import ActionTrackRefund

    conversation = "conv-cross-track-refund"
    fresh_stepup(ATTACKER, conversation)
    foreign, unknown = victim_order_with_a_refund(), "CG-000001"
    track = ActionTrackRefund()
    foreign_reply = ask(tracker_factory, track, conversation, foreign, order_id=foreign)
    unknown_reply = ask(tracker_factory, track, conversation, unknown, order_id=unknown)
    assert foreign_reply == unknown_reply
    assert "I don't see a refund for order <id>" in foreign_reply


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


def test_database_down_gives_a_polite_answer(tracker_factory, token_for, database_down, caplog):
    """The driver's OperationalError becomes one polite sentence and one operator log line."""
    from actions.orders import ActionTrackOrder

    metadata = token_for(1)  # signed before the database went away
    with caplog.at_level(logging.ERROR, logger="actions.base"):
        messages, events = run_action(ActionTrackOrder(), tracker_factory(metadata=metadata))
    assert responses(messages) == ["utter_db_unavailable"]
    assert "nothing was changed" in texts(messages)
    assert any("the shop database is unavailable" in r.getMessage() for r in caplog.records)
    assert slot_events(events) == {"customer_id": 1}  # identity is still recorded


def test_a_signed_in_shopper_is_not_taken_for_anonymous_while_the_database_is_down(
    tracker_factory, database_down
):
    """A chat token bound to a shop session needs the database to say the session is live.

    Without an answer the shopper is neither signed out ("please sign in", which sent
    shoppers to log in again during a database restart) nor trusted: the action says the
    shop's system is unavailable and records no identity.
    """
    from actions.orders import ActionTrackOrder

    token = issue_login_token(1, ttl_seconds=300, session_ref=secrets.token_hex(32))
    messages, events = run_action(
        ActionTrackOrder(), tracker_factory(metadata={"auth_token": token})
    )
    assert responses(messages) == ["utter_db_unavailable"]
    assert slot_events(events) == {}


def test_a_code_typed_while_the_database_is_down_stops_the_form_politely(
    tracker_factory, token_for, database_down
):
    from actions.stepup import ValidateStepUpForm
    from tests.dialogue.helpers import extracted

    tracker = extracted(
        tracker_factory(
            sender_id="conv-db-down-form",
            intent="provide_otp",
            text="tok_otp_Zp0Lq8vT3mN6rS1xW4yK2a",
            slots={"requested_slot": "otp_code"},
            metadata=token_for(1),
            active_loop="stepup_form",
        ),
        otp_code="tok_otp_Zp0Lq8vT3mN6rS1xW4yK2a",
    )
    messages, events = run_action(ValidateStepUpForm(), tracker)
    assert responses(messages) == ["utter_db_unavailable"]
    slots = slot_events(events)
    assert (slots["otp_code"], slots["stepup_status"]) == ("unavailable", "refused")


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
