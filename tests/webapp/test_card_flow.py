"""The card form: what is saved, what the conversation hears, and that PAN and CVV leave no trace."""

from __future__ import annotations

import random
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

from faker import Faker
from sqlalchemy import select
from webharness import Browser, FakeRasa, issue, wait_for

from cartguard.pii.validators import card_mask
from cartguard.shop.db import session_scope
from cartguard.shop.models import PaymentMethod
from cartguard.shop.models._common import utcnow
from cartguard.vault import get_vault

fake_data = Faker()


def _future_expiry() -> tuple[str, str]:
    moment = utcnow() + timedelta(days=random.randint(60, 1500))
    return f"{moment.month:02d}/{moment.year % 100:02d}", f"{moment.month:02d}/{moment.year}"


def _visa() -> str:
    return fake_data.credit_card_number(card_type="visa16")


def _spaced(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))


def test_a_valid_card_is_tokenized_saved_as_default_and_announced(
    browser: Browser, fake: FakeRasa
) -> None:
    pan = _visa()
    typed_expiry, stored_expiry = _future_expiry()
    token, conversation = issue("card", 2)
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200 and 'autocomplete="cc-number"' in page.text
    done = browser.submit(
        f"/s/{token}",
        {"number": _spaced(pan), "expiry": typed_expiry, "name": fake_data.name(), "cvv": "123"},
    )
    assert done.status_code == 200
    assert f"ending in {pan[-4:]}" in done.text and pan not in done.text

    with session_scope() as session:
        methods = (
            session.execute(
                select(PaymentMethod)
                .where(PaymentMethod.customer_id == 2)
                .order_by(PaymentMethod.id)
            )
            .scalars()
            .all()
        )
        newest = methods[-1]
        assert (newest.mask, newest.last4, newest.brand, newest.expiry) == (
            card_mask(pan),
            pan[-4:],
            "visa",
            stored_expiry,
        )
        assert newest.is_default and not any(m.is_default for m in methods[:-1])
        assert newest.vault_token.startswith("tok_card_")
        vault_token = newest.vault_token
    assert get_vault().detokenize(vault_token) == pan  # only the vault can turn it back

    calls = wait_for(lambda: fake.calls_for(conversation))
    assert calls == [
        {
            "conversation_id": conversation,
            "auth_in_url": False,
            "name": "EXTERNAL_card_saved",
            "entities": {"card_last4": pan[-4:]},
        }
    ]
    assert not fake.rejected
    reuse = browser.post(
        f"/s/{token}",
        {"number": pan, "expiry": typed_expiry, "cvv": "123", "csrf_token": browser.csrf()},
    )
    assert reuse.status_code == 410


def _field_value(page: str, name: str) -> str:
    """The ``value`` the page pre-fills into the input called ``name`` ("" when none)."""
    tags = re.findall(r"<input\b[^>]*>", page)
    [tag] = [tag for tag in tags if re.search(rf'\bname="{name}"', tag)]
    found = re.search(r'\bvalue="([^"]*)"', tag)
    return found.group(1) if found else ""


def test_card_mistakes_are_explained_and_never_echo_number_or_cvv(browser: Browser) -> None:
    token, _ = issue("card", 3)
    typed_expiry, _ = _future_expiry()
    good = _visa()
    bad_luhn = good[:-1] + str((int(good[-1]) + 1) % 10)
    past = utcnow() - timedelta(days=40)
    cases = [
        ({"number": bad_luhn}, "number", "doesn&#39;t look right"),
        ({"expiry": f"{past.month:02d}/{past.year % 100:02d}"}, "expiry", "in the future"),
        ({"expiry": "13/30"}, "expiry", "in the future"),
        ({"cvv": "12"}, "cvv", "3 digits"),
        ({"cvv": "12a"}, "cvv", "3 digits"),
        ({"name": ""}, "name", "name on the card"),
        ({"number": "3714 496353 98431", "cvv": "123"}, "cvv", "4 digits"),  # Amex wants 4
    ]
    for change, field, message in cases:
        data = {"number": good, "expiry": typed_expiry, "name": "Sam Doe", "cvv": "987"}
        data.update(change)
        response = browser.submit(f"/s/{token}", data)
        assert response.status_code == 400, change
        assert message in response.text, (change, field)
        assert 'id="e-' + field + '"' in response.text
        assert good not in response.text and _spaced(good) not in response.text
        for name in ("number", "cvv"):  # the fields themselves, not the whole page (CSRF token)
            assert _field_value(response.text, name) == "", (change, name)
    assert browser.get(f"/s/{token}").status_code == 200  # mistakes do not use the link up


# --- no trace of PAN or CVV anywhere ---------------------------------------------------------


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _unused_cvv(root: Path) -> str:
    """A 4-digit code that appears nowhere under ``root`` yet, so any later hit is a leak."""
    blobs = [path.read_bytes() for path in _files(root)]
    for _ in range(1000):
        candidate = f"{random.randint(1000, 9999)}"
        if not any(candidate.encode() in blob for blob in blobs):
            return candidate
    raise AssertionError("could not find an unused 4-digit code")


def _sqlite_values(path: Path) -> list[str]:
    """Every value of every table of a SQLite database, as text (includes the WAL's content)."""
    values: list[str] = []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                values.extend(str(value) for value in row if value is not None)
    finally:
        connection.close()
    return values


def test_pan_and_cvv_are_in_no_database_log_or_file(browser: Browser, data_dir: Path) -> None:
    pan = fake_data.credit_card_number(card_type="amex")  # random, so no other test has it
    amex = f"{pan[:4]} {pan[4:10]} {pan[10:]}"
    cvv = _unused_cvv(data_dir)
    typed_expiry, _ = _future_expiry()

    token, _ = issue("card", 4)
    rejected = browser.submit(  # the error path sees the same values
        f"/s/{token}", {"number": amex, "expiry": "01/20", "name": "A Shopper", "cvv": cvv}
    )
    assert rejected.status_code == 400
    done = browser.submit(
        f"/s/{token}", {"number": amex, "expiry": typed_expiry, "name": "A Shopper", "cvv": cvv}
    )
    assert done.status_code == 200 and f"ending in {pan[-4:]}" in done.text

    forms_of_pan = {pan, amex}
    whole_cvv = re.compile(rf"(?<![0-9A-Za-z]){cvv}(?![0-9A-Za-z])")
    searched = 0
    for path in _files(data_dir):
        raw = path.read_bytes()
        for form in forms_of_pan:
            assert form.encode() not in raw, f"card number found in {path}"
        if path.suffix == ".db":
            for value in _sqlite_values(path):
                assert pan not in value, f"card number stored in {path}"
                assert not whole_cvv.search(value), f"CVV stored in {path}"
        else:
            text = raw.decode("utf-8", "replace")
            assert not whole_cvv.search(text), f"CVV found in {path}"
        searched += 1
    names = {p.name for p in _files(data_dir)}
    assert "shop.db" in names and "cartguard.log" in names and searched >= 3
    log = (data_dir / "logs" / "cartguard.log").read_text()
    assert "POST" in log and "/s/<hidden>" in log and token not in log  # links are credentials
