"""Fixtures for the privacy tests: a private data directory per test module.

Erasure and retention delete and rebuild database files, and the leak check reads every file
under the data directory, so these tests run in their own directory (own keys, own seeded
shop, own tracker database) instead of the session-wide one other areas share.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from faker import Faker


def _clear_caches() -> None:
    from cartguard.settings import get_settings
    from cartguard.shop.db import get_engine

    get_engine.cache_clear()
    get_settings.cache_clear()
    try:
        from cartguard.vault import get_vault
    except ImportError:
        return
    clear = getattr(get_vault, "cache_clear", None)
    if clear is not None:
        clear()


@pytest.fixture(scope="module")
def privacy_env(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point every component at a fresh data directory with keys and a small seeded shop."""
    from cartguard.keys import generate_dev_keys
    from cartguard.settings import get_settings
    from cartguard.shop.db import session_scope
    from cartguard.shop.schema import create_schema
    from cartguard.shop.seed import seed_shop

    root = tmp_path_factory.mktemp("privacy-var")
    saved = os.environ.get("CARTGUARD_DATA_DIR")
    os.environ["CARTGUARD_DATA_DIR"] = str(root)
    _clear_caches()
    generate_dev_keys(get_settings().keys_file)
    create_schema()
    with session_scope() as session:
        seed_shop(session, customers=3, orders_per_customer=4)
    try:
        yield root
    finally:
        from cartguard.shop.db import get_engine

        get_engine().dispose()
        os.environ["CARTGUARD_DATA_DIR"] = saved or str(data_dir)
        _clear_caches()


# --- tracker events written the way Rasa writes them --------------------------------------


def _save_conversation(conversation_id: str, turns: list[tuple[str, str]], at: datetime) -> None:
    """Store a conversation in the tracker DB through Rasa's own ``SQLTrackerStore``.

    ``turns`` are (user text, bot text) pairs; events get timestamps from ``at`` onwards.
    """
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from cartguard.settings import get_settings

    db = get_settings().tracker_database_url.split("///", 1)[1]
    store = SQLTrackerStore(dialect="sqlite", db=db)
    tracker = DialogueStateTracker(conversation_id, slots=[])
    ts = at.replace(tzinfo=timezone.utc).timestamp() if at.tzinfo is None else at.timestamp()
    for user_text, bot_text in turns:
        tracker.update(UserUttered(user_text, timestamp=ts))
        tracker.update(ActionExecuted("utter_reply", timestamp=ts + 1))
        tracker.update(BotUttered(bot_text, timestamp=ts + 2))
        ts += 10
    asyncio.run(store.save(tracker))
    store.engine.dispose()


def _add_conversation(
    session,
    customer_id: int | None,
    turns: list[tuple[str, str]],
    at: datetime,
    channel: str = "socketio",
) -> str:
    """An owned conversation: a ``conversations`` row plus its tracker events."""
    from cartguard.shop.models import ConversationOwner

    conversation_id = secrets.token_hex(16)
    session.add(
        ConversationOwner(
            conversation_id=conversation_id,
            customer_id=customer_id,
            channel=channel,
            created_at=at,
            last_seen_at=at,
            transcript_consent=True,
        )
    )
    _save_conversation(conversation_id, turns, at)
    return conversation_id


def _make_customer(session, fake: Faker) -> dict:
    """A new customer with orders, invoices, a card, a ticket; returns its personal values.

    Each value carries a random marker so a search cannot confuse it with seeded data.
    """
    from cartguard.shop.models import (
        Customer,
        Invoice,
        Order,
        OrderItem,
        OrderStatusEvent,
        PaymentMethod,
        SupportTicket,
    )
    from cartguard.shop.models._common import utcnow

    marker = secrets.token_hex(3)
    customer_id = 1000 + secrets.randbelow(8_000_000)
    name = f"{fake.first_name()} Zq{marker}"
    email = f"{fake.user_name()}.{marker}@example.org"
    phone = f"+1-202-555-{1000 + secrets.randbelow(9000)}"  # the seed uses 555-0xxx
    street = f"{secrets.randbelow(900) + 100} {fake.street_name()} Ykl{marker}"
    city = f"Wq{marker}ton"
    postcode = f"ZX{marker.upper()}"
    now = utcnow()
    session.add(Customer(id=customer_id, name=name, email=email, phone=phone, created_at=now))
    session.flush()
    order_ids = []
    for n in range(2):
        order_id = f"CG-{secrets.randbelow(900000) + 100000}"
        order_ids.append(order_id)
        order = Order(
            id=order_id,
            customer_id=customer_id,
            status="delivered",
            placed_at=now - timedelta(days=n + 3),
            total=Decimal("25.00"),
            ship_name=name,
            ship_street=street,
            ship_city=city,
            ship_postcode=postcode,
            items=[
                OrderItem(sku="SKU-0001", name="Headlamp", quantity=1, unit_price=Decimal("25"))
            ],
        )
        session.add(order)
        order.history.append(
            OrderStatusEvent(status="placed", at=now, note=f"address changed to {street}, {city}")
        )
        session.add(
            Invoice(
                id=f"INV-2026-{secrets.randbelow(90000) + 10000}",
                customer_id=customer_id,
                order_id=order_id,
                issued_on=date.today(),
                amount=Decimal("25.00"),
                billing_name=name,
            )
        )
    session.add(
        PaymentMethod(
            customer_id=customer_id,
            brand="visa",
            mask="424242******4242",
            last4="4242",
            expiry="12/2030",
            vault_token=f"tok_card_{marker}",
        )
    )
    session.add(
        SupportTicket(
            id=f"TK-{secrets.randbelow(90000) + 10000}",
            customer_id=customer_id,
            kind="handoff",
            summary=f"{name} wants a call on {phone}",
            transcript=f"customer: my e-mail is {email}",
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    return {
        "id": customer_id,
        "name": name,
        "email": email,
        "phone": phone,
        "street": street,
        "city": city,
        "postcode": postcode,
        "order_ids": order_ids,
    }


@pytest.fixture(scope="session")
def save_conversation():
    return _save_conversation


@pytest.fixture(scope="session")
def add_conversation():
    return _add_conversation


@pytest.fixture(scope="session")
def make_customer():
    return _make_customer


# --- staff accounts and CLI runs ----------------------------------------------------------

STAFF_PASSWORD = "Copper-thimble-63-orchard"
_CLOCK_START = datetime(2030, 6, 1, 9, 0, 0)


@pytest.fixture(scope="module")
def staff_accounts(privacy_env: Path) -> Iterator[dict]:
    """One account per role, hashed cheaply (hash parameters are tested in test_staff.py)."""
    from argon2 import PasswordHasher

    from cartguard.shop.db import session_scope
    from cartguard.staff import accounts as staff
    from cartguard.staff import passwords
    from cartguard.staff.roles import Role

    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    made = {}
    with session_scope() as session:
        for role in Role:
            name = "role-" + role.value.lower().replace(" ", "-")
            created = staff._create(session, name, STAFF_PASSWORD, role, actor="system:test")
            made[role] = {"user": created.username, "secret": created.totp_secret}
    yield made
    passwords._hasher = saved


class _CliClock:
    """Runs the CLI as a staff member, moving the clock 30 s each time so codes are fresh."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self, account: dict, args: list[str], **env_overrides: str):
        import pyotp
        import time_machine
        from typer.testing import CliRunner

        from cartguard.cli import app

        self.ticks += 1
        at = _CLOCK_START + timedelta(seconds=30 * self.ticks)
        with time_machine.travel(at, tick=False):
            env = {
                "CARTGUARD_STAFF_USER": account["user"],
                "CARTGUARD_STAFF_PASSWORD": STAFF_PASSWORD,
                "CARTGUARD_STAFF_OTP": pyotp.TOTP(account["secret"]).now(),
            }
            env.update(env_overrides)
            return CliRunner(mix_stderr=False).invoke(app, args, env=env)


@pytest.fixture(scope="session")
def run_cli() -> _CliClock:
    return _CliClock()
