"""Export holds exactly one customer's data; erasure leaves nothing findable but invoices."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from faker import Faker
from sqlalchemy import MetaData, select

from cartguard.privacy import CustomerNotFound, erase_customer, export_customer, forget_conversation
from cartguard.privacy.transcripts import redacted_transcript
from cartguard.settings import get_settings
from cartguard.shop.db import get_engine, session_scope
from cartguard.shop.models import AuditEntry, Invoice, PaymentMethod
from cartguard.shop.models._common import utcnow
from cartguard.vault import get_vault


def _turns(person: dict) -> list[tuple[str, str]]:
    return [
        (f"hi, I'm {person['name']}", "Hello! I'm the shop's assistant."),
        (f"send it to {person['street']}, {person['city']} {person['postcode']}", "Noted."),
        (f"call me on {person['phone']} or mail {person['email']}", "Thanks."),
    ]


@pytest.fixture(scope="module")
def people(privacy_env, make_customer, add_conversation):
    fake = Faker()
    fake.seed_instance(4242)
    created = []
    with session_scope() as session:
        for _ in range(3):
            person = make_customer(session, fake)
            person["conversation"] = add_conversation(
                session, person["id"], _turns(person), utcnow() - timedelta(days=1)
            )
            created.append(person)
    return created


PERSONAL = ("name", "email", "phone", "street", "city", "postcode")


def test_export_contains_exactly_that_customers_data(people) -> None:
    me, other, third = people
    with session_scope() as session:
        data = export_customer(session, me["id"])
        my_invoices = set(
            session.execute(select(Invoice.id).where(Invoice.customer_id == me["id"])).scalars()
        )
    dumped = json.dumps(data)  # must be JSON-serialisable as is

    assert data["profile"]["name"] == me["name"]
    assert data["profile"]["email"] == me["email"]
    assert {o["id"] for o in data["orders"]} == set(me["order_ids"])
    assert {i["id"] for i in data["invoices"]} == my_invoices
    assert data["orders"][0]["shipping_address"]["street"] == me["street"]
    assert data["orders"][0]["items"] and data["orders"][0]["status_history"]
    assert {b["kind"] for b in data["balances"]} <= {"store_credit", "gift_card", "loyalty_points"}
    assert [c["mask"] for c in data["payment_methods"]] == ["424242******4242"]
    assert "vault_token" not in dumped and "tok_card_" not in dumped
    assert len(data["support_tickets"]) == 1
    [conversation] = data["conversations"]
    assert conversation["conversation_id"] == me["conversation"]
    assert [line["speaker"] for line in conversation["transcript"][:2]] == [
        "customer",
        "assistant",
    ]
    # transcripts are redacted: contact details typed in the chat do not come back out
    transcript_text = json.dumps(conversation["transcript"])
    assert me["email"] not in transcript_text and me["phone"] not in transcript_text

    for stranger in (other, third):
        for field in PERSONAL:
            assert stranger[field] not in dumped, f"another customer's {field} leaked"
        for order_id in stranger["order_ids"]:
            assert order_id not in dumped
        assert stranger["conversation"] not in dumped


def test_export_of_unknown_customer_is_refused(privacy_env) -> None:
    with session_scope() as session, pytest.raises(CustomerNotFound):
        export_customer(session, 987_654_321)


def _rows_containing(url: str, needles: dict[str, str]) -> list[tuple[str, str, str]]:
    """Every (table, column, needle name) where a cell contains a needle, any column type."""
    engine = get_engine(url)
    metadata = MetaData()
    metadata.reflect(bind=engine)
    hits = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(table.select()).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    cell = str(value).lower()
                    for label, needle in needles.items():
                        if needle.lower() in cell:
                            hits.append((table.name, column, label))
    return hits


def test_erasure_leaves_nothing_but_the_kept_invoices(people, privacy_env) -> None:
    me, other, _ = people
    needles = {field: me[field] for field in PERSONAL}
    with session_scope() as session:
        invoices_before = [
            (i.id, i.order_id, i.amount, i.billing_name, i.issued_on, i.status)
            for i in session.execute(select(Invoice).where(Invoice.customer_id == me["id"]))
            .scalars()
            .all()
        ]
    assert invoices_before and _rows_containing(get_settings().tracker_database_url, needles)
    vault = get_vault()
    tokens = [
        vault.tokenize(me["email"], "EMAIL_ADDRESS", customer_id=me["id"]),
        vault.tokenize(me["phone"], "PHONE_NUMBER", conversation_id=me["conversation"]),
    ]
    assert vault.detokenize(tokens[0]) == me["email"]

    with session_scope() as session:
        report = erase_customer(session, me["id"], actor="staff:test-admin")
    assert report.tracker_events > 0 and report.payment_methods == 1
    assert report.invoices_kept == len(invoices_before) and report.orders_pseudonymized == 2
    assert report.vault_tokens >= 2 and [vault.detokenize(t) for t in tokens] == [None, None]

    # every table, every column, both databases
    shop_hits = _rows_containing(get_settings().database_url, needles)
    assert set(shop_hits) == {("invoices", "billing_name", "name")}
    assert len(shop_hits) == len(invoices_before)
    assert _rows_containing(get_settings().tracker_database_url, needles) == []

    # every file under the data directory, raw bytes (deleted rows must not linger on disk)
    for path in privacy_env.rglob("*"):
        if not path.is_file():
            continue
        blob = path.read_bytes().lower()
        for label, needle in needles.items():
            count = blob.count(needle.lower().encode())
            if label == "name" and path.name == "shop.db":
                assert count <= len(invoices_before), f"name left in {path.name} beyond invoices"
            else:
                assert count == 0, f"{label} still readable in {path}"

    with session_scope() as session:
        invoices_after = [
            (i.id, i.order_id, i.amount, i.billing_name, i.issued_on, i.status)
            for i in session.execute(select(Invoice).where(Invoice.customer_id == me["id"]))
            .scalars()
            .all()
        ]
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "privacy.erase")
        ).scalar_one()
        other_cards = session.execute(
            select(PaymentMethod).where(PaymentMethod.customer_id == other["id"])
        ).all()
    assert invoices_after == invoices_before
    assert entry.actor == "staff:test-admin" and entry.subject == f"customer:{me['id']}"
    for needle in needles.values():
        assert needle.lower() not in entry.details.lower()
    # the neighbour is untouched
    assert other_cards and redacted_transcript(other["conversation"])
    with session_scope() as session:
        assert export_customer(session, other["id"])["profile"]["email"] == other["email"]


def test_forget_conversation_removes_only_that_conversation(
    people,
    add_conversation,
) -> None:
    _, _, third = people
    with session_scope() as session:
        extra = add_conversation(session, third["id"], [("hello", "hi")], utcnow())
    result = forget_conversation(third["conversation"])
    assert result.tracker_events > 0
    assert redacted_transcript(third["conversation"]) == []
    assert [line.text for line in redacted_transcript(extra)] == ["hello", "hi"]
    assert forget_conversation(third["conversation"]).tracker_events == 0
