"""The demo shop reads as real people: each customer's e-mail address is made from their name."""

from __future__ import annotations

import re

from cartguard.shop.seed import _email_of


def test_every_seeded_customer_has_an_address_from_their_own_name(db_session) -> None:
    from sqlalchemy import select

    from cartguard.shop.models import Customer

    people = db_session.execute(select(Customer)).scalars().all()
    assert len(people) >= 3
    for person in people:
        first, last = person.name.lower().split()[:2]
        local = re.sub(r"[^a-z0-9.]", "", f"{first}.{last}")
        assert re.fullmatch(rf"{re.escape(local)}\d*@example\.(com|org|net)", person.email), person
    assert len({p.email for p in people}) == len(people)


def test_namesakes_get_distinct_addresses_and_accents_are_dropped() -> None:
    used: set[str] = set()
    first = _email_of("Zoë", "O'Brien", "example.com", used)
    second = _email_of("Zoe", "OBrien", "example.com", used)
    assert (first, second) == ("zoe.obrien@example.com", "zoe.obrien2@example.com")
