"""Demo shop data generated with Faker: several customers, dozens of orders and invoices each.

The generator is seeded, so every fresh install gets the same demo shop (customer 1 is always
the demo login that ``make run`` prints), yet no real person's data is involved. A customer's
e-mail address is made from their own name, on a reserved ``example.*`` domain.
"""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartguard.shop.models import (
    Balance,
    Customer,
    Invoice,
    Order,
    OrderItem,
    OrderStatusEvent,
    PaymentMethod,
    Refund,
)
from cartguard.shop.models._common import utcnow

PRODUCTS = [
    ("Trail running shoes", Decimal("89.00")),
    ("Merino wool socks", Decimal("14.50")),
    ("Waterproof jacket", Decimal("159.00")),
    ("Insulated bottle", Decimal("24.00")),
    ("Daypack 22L", Decimal("69.90")),
    ("Headlamp", Decimal("34.95")),
    ("Camping mug", Decimal("9.99")),
    ("Fleece pullover", Decimal("59.00")),
    ("Hiking poles", Decimal("79.00")),
    ("Sun hat", Decimal("22.00")),
]
CARRIERS = ("UPS", "FedEx", "DHL", "USPS")


def _email_of(first: str, last: str, domain: str, used: set[str]) -> str:
    """``first.last@domain`` of the same person (reserved example.* domains), unique in the shop.

    A demo login reads as one person: "Sheri Boyd, sheri.boyd@example.org", not a name next
    to someone else's address.
    """
    local = re.sub(r"[^a-z0-9.]", "", unicodedata.normalize("NFKD", f"{first}.{last}").lower())
    email, number = f"{local}@{domain}", 1
    while email in used:
        number += 1
        email = f"{local}{number}@{domain}"
    used.add(email)
    return email


def _status_for_age(days: int, rng: random.Random) -> str:
    if days > 14:
        return rng.choice(["delivered"] * 8 + ["cancelled"])
    if days > 5:
        return rng.choice(["shipped", "delivered", "delivered"])
    if days > 1:
        return rng.choice(["processing", "shipped"])
    return "placed"


def seed_shop(
    session: Session, customers: int = 5, orders_per_customer: int = 24, seed: int = 20261125
) -> list[Customer]:
    """Fill an empty shop; returns the customers. Does nothing when customers already exist."""
    if session.execute(select(func.count(Customer.id))).scalar_one():
        return list(session.execute(select(Customer).order_by(Customer.id)).scalars())
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    now = utcnow()
    created: list[Customer] = []
    used_order_ids: set[str] = set()
    invoice_seq = 0
    used_emails: set[str] = set()
    for index in range(customers):
        first, last = fake.first_name(), fake.last_name()
        customer = Customer(
            id=index + 1,
            name=f"{first} {last}",
            email=_email_of(first, last, fake.safe_domain_name(), used_emails),
            phone=fake.numerify("+1-202-555-0###"),
            created_at=now - timedelta(days=400 + index),
        )
        session.add(customer)
        created.append(customer)
        for kind, amount, currency in (
            ("store_credit", Decimal(rng.randrange(0, 20000)) / 100, "USD"),
            ("gift_card", Decimal(rng.randrange(0, 15000)) / 100, "USD"),
            ("loyalty_points", Decimal(rng.randrange(100, 5000)), None),
        ):
            session.add(
                Balance(customer_id=customer.id, kind=kind, amount=amount, currency=currency)
            )
        brand, bin6, last4 = rng.choice(
            [("visa", "424242", "4242"), ("mastercard", "555555", "4444")]
        )
        session.add(
            PaymentMethod(
                customer_id=customer.id,
                brand=brand,
                mask=f"{bin6}******{last4}",
                last4=last4,
                expiry=f"{rng.randint(1, 12):02d}/{now.year + rng.randint(1, 4)}",
                vault_token=None,
            )
        )
        for _ in range(orders_per_customer):
            age = rng.randint(0, 120)
            placed = now - timedelta(days=age, hours=rng.randint(0, 23))
            order_id = f"CG-{rng.randint(100000, 999999)}"
            while order_id in used_order_ids:
                order_id = f"CG-{rng.randint(100000, 999999)}"
            used_order_ids.add(order_id)
            status = _status_for_age(age, rng)
            lines = rng.sample(PRODUCTS, rng.randint(1, 3))
            items = [
                OrderItem(
                    sku=f"SKU-{PRODUCTS.index((name, price)) + 1:04d}",
                    name=name,
                    quantity=rng.randint(1, 2),
                    unit_price=price,
                )
                for name, price in lines
            ]
            total = sum((i.unit_price * i.quantity for i in items), Decimal("0"))
            order = Order(
                id=order_id,
                customer_id=customer.id,
                status=status,
                placed_at=placed,
                total=total,
                carrier=rng.choice(CARRIERS) if status in ("shipped", "delivered") else None,
                tracking_number=fake.bothify("1Z########??").upper()
                if status in ("shipped", "delivered")
                else None,
                estimated_delivery=placed + timedelta(days=rng.randint(3, 7)),
                ship_name=customer.name,
                ship_street=fake.street_address(),
                ship_city=fake.city(),
                ship_postcode=fake.postcode(),
                ship_country="US",
                items=items,
            )
            session.add(order)
            order.history.append(OrderStatusEvent(status="placed", at=placed))
            if status != "placed":
                order.history.append(
                    OrderStatusEvent(status=status, at=placed + timedelta(days=min(age, 3)))
                )
            if status in ("shipped", "delivered"):
                invoice_seq += 1
                session.add(
                    Invoice(
                        id=f"INV-{placed.year}-{invoice_seq:05d}",
                        customer_id=customer.id,
                        order_id=order_id,
                        issued_on=date(placed.year, placed.month, placed.day),
                        amount=total,
                        status="paid",
                        billing_name=customer.name,
                    )
                )
            if status == "delivered" and rng.random() < 0.15:
                session.add(
                    Refund(
                        id=f"RF-{rng.randint(100000, 999999)}",
                        order_id=order_id,
                        amount=total,
                        status=rng.choice(["requested", "approved", "paid"]),
                        reason="item not as described",
                        requested_at=placed + timedelta(days=age // 2 + 1),
                        updated_at=placed + timedelta(days=age // 2 + 2),
                    )
                )
    session.flush()
    return created
