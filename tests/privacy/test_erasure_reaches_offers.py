"""Erasure and retention reach the channels' record of offered buttons.

The intent guard keeps a digest of every button payload the bot offered in a conversation (so
a tap is accepted on any replica, days later). Those rows belong to the conversation: erasing
the customer, or the conversation ageing out, must take them along.
"""

from __future__ import annotations

from datetime import timedelta

from faker import Faker
from sqlalchemy import func, select

from cartguard.privacy import erase_customer
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.offers import OfferedPayload


def _offers(conversation_id: str) -> int:
    with session_scope() as session:
        return session.execute(
            select(func.count()).where(OfferedPayload.conversation_id == conversation_id)
        ).scalar_one()


def test_erasing_a_customer_removes_the_offers_of_their_conversations(
    privacy_env, make_customer, add_conversation
) -> None:
    fake = Faker()
    fake.seed_instance(9117)
    with session_scope() as session:
        me, other = make_customer(session, fake), make_customer(session, fake)
        mine = add_conversation(
            session, me["id"], [("hi", "Hello!")], utcnow() - timedelta(hours=1)
        )
        theirs = add_conversation(
            session, other["id"], [("hi", "Hello!")], utcnow() - timedelta(hours=1)
        )
        for conversation in (mine, theirs):
            session.add_all(
                OfferedPayload(conversation_id=conversation, payload_digest=f"{n:064x}")
                for n in range(3)
            )
    assert _offers(mine) == 3 and _offers(theirs) == 3

    with session_scope() as session:
        erase_customer(session, me["id"], actor="staff:test-admin")

    assert _offers(mine) == 0
    assert _offers(theirs) == 3  # another customer's conversation is untouched
