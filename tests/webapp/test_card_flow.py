"""The card form: the payment provider gets the number, the shop keeps only its token, the brand,
the last four digits and the expiry, and neither PAN nor CVV leaves a trace on the shop's side."""

from __future__ import annotations

import dataclasses
import random
import re
import socket
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from faker import Faker
from sqlalchemy import func, select
from webharness import Browser, FakeRasa, ServerThread, free_port, issue, wait_for

from cartguard.clients.payment_provider import PaymentProviderClient
from cartguard.shop.db import session_scope
from cartguard.shop.models import PaymentMethod
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.vault import VaultEntry
from cartguard.vault import _aad, get_vault
from cartguard.webapp.forms import CARD_NOT_SAVED
from devtools.payment_provider import DECLINED_CARD, STORE_DIR, RunningProvider

fake_data = Faker()
WHAT_IS_KEPT = (
    "We send your card number to our payment provider; we keep only the brand, the last four "
    "digits and the expiry date."
)


def _future_expiry() -> tuple[str, str]:
    moment = utcnow() + timedelta(days=random.randint(60, 1500))
    return f"{moment.month:02d}/{moment.year % 100:02d}", f"{moment.month:02d}/{moment.year}"


def _visa() -> str:
    return fake_data.credit_card_number(card_type="visa16")


def _spaced(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))


@pytest.fixture()
def shopper(web: ServerThread, demo_logins) -> Callable[[int], Browser]:
    """A browser signed in to the shop as the given customer (the link's owner)."""

    def sign_in(customer_id: int) -> Browser:
        browser = Browser(web.base_url)
        browser.login(*demo_logins[customer_id])
        return browser

    return sign_in


def _methods(customer_id: int) -> list[PaymentMethod]:
    with session_scope() as session:
        return list(
            session.execute(
                select(PaymentMethod)
                .where(PaymentMethod.customer_id == customer_id)
                .order_by(PaymentMethod.id)
            ).scalars()
        )


def _vault_rows() -> int:
    with session_scope() as session:
        return session.execute(select(func.count()).select_from(VaultEntry)).scalar_one()


def test_the_form_says_exactly_what_is_kept(shopper) -> None:
    browser = shopper(1)
    token, _ = issue("card", 1)
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert WHAT_IS_KEPT in text
    assert "encrypted straight away" not in text  # the old promise described the vault


def test_a_valid_card_goes_to_the_provider_and_only_its_token_is_saved(
    shopper, fake: FakeRasa, payment_provider: RunningProvider
) -> None:
    browser = shopper(2)
    pan = _visa()
    typed_expiry, stored_expiry = _future_expiry()
    token, conversation = issue("card", 2)
    vault_before = _vault_rows()
    page = browser.get(f"/s/{token}")
    assert page.status_code == 200 and 'autocomplete="cc-number"' in page.text
    done = browser.submit(
        f"/s/{token}",
        {"number": _spaced(pan), "expiry": typed_expiry, "name": fake_data.name(), "cvv": "123"},
    )
    assert done.status_code == 200
    assert f"Visa card ending in {pan[-4:]}" in done.text and pan not in done.text

    methods = _methods(2)
    newest = methods[-1]
    assert (newest.mask, newest.last4, newest.brand, newest.expiry) == (
        "*" * 12 + pan[-4:],
        pan[-4:],
        "visa",
        stored_expiry,
    )
    assert newest.is_default and not any(m.is_default for m in methods[:-1])
    assert newest.vault_token.startswith("card_")  # the provider's token, not a vault token
    assert get_vault().detokenize(newest.vault_token) is None
    assert _vault_rows() == vault_before  # the vault was not asked to keep anything
    # only the provider can turn the token back into the number it will charge
    assert payment_provider.store.reveal_number(newest.vault_token) == pan

    calls = wait_for(lambda: fake.calls_for(conversation))
    assert [(c["name"], c["auth_in_url"]) for c in calls] == [("EXTERNAL_card_saved", False)]
    assert calls[0]["entities"]["card_last4"] == pan[-4:]
    assert pan not in str(calls) and newest.vault_token not in str(calls)
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


def test_card_mistakes_are_explained_and_never_echo_number_or_cvv(shopper) -> None:
    browser = shopper(3)
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


# --- the provider says no, or is not there ---------------------------------------------------


def test_a_card_the_provider_declines_is_explained_and_nothing_is_saved(shopper) -> None:
    browser = shopper(3)
    token, _ = issue("card", 3)
    typed_expiry, _ = _future_expiry()
    before = len(_methods(3))
    response = browser.submit(
        f"/s/{token}",
        {"number": DECLINED_CARD, "expiry": typed_expiry, "name": "Sam Doe", "cvv": "555"},
    )
    assert response.status_code == 400
    assert "Your bank declined this card" in response.text
    assert DECLINED_CARD not in response.text and _field_value(response.text, "cvv") == ""
    assert len(_methods(3)) == before
    assert browser.get(f"/s/{token}").status_code == 200  # the link still works


class _Silent:
    """A provider that accepts connections and never answers (a hung upstream)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def swap_provider(web: ServerThread) -> Iterator:
    """Point the running web service at another provider client for one test."""
    original = web.app.ctx.payment_provider

    def swap(client: PaymentProviderClient) -> None:
        web.app.ctx.payment_provider = client

    yield swap
    web.app.ctx.payment_provider = original


@pytest.mark.parametrize("outage", ["refused", "hangs", "wrong key"])
def test_a_provider_outage_stores_nothing_and_the_shopper_can_try_again(
    shopper, web: ServerThread, swap_provider, outage: str
) -> None:
    browser = shopper(4)
    original: PaymentProviderClient = web.app.ctx.payment_provider
    silent = _Silent()
    broken = {
        "refused": dataclasses.replace(original, base_url=f"http://127.0.0.1:{free_port()}"),
        "hangs": dataclasses.replace(original, base_url=silent.url, read_timeout=0.5),
        "wrong key": dataclasses.replace(original, api_key="not-the-key"),
    }[outage]
    pan = _visa()
    typed_expiry, _ = _future_expiry()
    token, _ = issue("card", 4)
    before = len(_methods(4))
    form = {"number": pan, "expiry": typed_expiry, "name": "Kim Test", "cvv": "246"}
    try:
        swap_provider(broken)
        failed = browser.submit(f"/s/{token}", form)
    finally:
        swap_provider(original)
        silent.close()
    assert failed.status_code == 503
    assert CARD_NOT_SAVED.replace("'", "&#39;") in failed.text
    assert pan not in failed.text and _field_value(failed.text, "cvv") == ""
    assert len(_methods(4)) == before  # nothing stored
    retried = browser.submit(f"/s/{token}", form)  # the same link, once the provider is back
    assert retried.status_code == 200 and f"ending in {pan[-4:]}" in retried.text
    assert len(_methods(4)) == before + 1


# --- no trace of PAN or CVV on the shop's side -----------------------------------------------


def _files(root: Path, *, skip: Path | None = None) -> dict[Path, bytes]:
    """Path -> content of every file under ``root`` (SQLite's -shm/-journal files come and go)."""
    found: dict[Path, bytes] = {}
    for path in root.rglob("*"):
        if skip is not None and skip in path.parents:
            continue
        try:
            if path.is_file():
                found[path] = path.read_bytes()
        except FileNotFoundError:
            continue
    return found


def _unused_cvv(root: Path) -> str:
    """A 4-digit code that appears nowhere under ``root`` yet, so any later hit is a leak."""
    blobs = list(_files(root).values())
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


def _every_vault_plaintext(since: datetime) -> list[tuple[str, str]]:
    """(label, value) of every vault entry, decrypted with the vault's own keys.

    Every entry written since ``since`` must open. Older entries of the shared test database
    that other suites sealed under keys they later replaced cannot be opened by anyone holding
    today's keys; they count only by their label (a card would be labelled CREDIT_CARD).
    """
    vault = get_vault()
    with session_scope() as session:
        rows = session.execute(select(VaultEntry)).scalars().all()
        assert all(
            vault._ring.get(row.key_id) is not None for row in rows if row.created_at >= since
        )
        return [
            (
                row.label,
                vault._open(row.ciphertext, _aad(row.label, row.token_hash)).decode()
                if vault._ring.get(row.key_id) is not None
                else "",
            )
            for row in rows
        ]


def test_no_card_number_on_the_shop_side_in_any_form(
    shopper, data_dir: Path, payment_provider: RunningProvider
) -> None:
    started = utcnow() - timedelta(seconds=1)
    browser = shopper(4)
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

    provider_dir = data_dir / STORE_DIR
    forms_of_pan = {pan, amex, _spaced(pan), "-".join(amex.split())}
    whole_cvv = re.compile(rf"(?<![0-9A-Za-z]){cvv}(?![0-9A-Za-z])")
    shop_files = _files(data_dir, skip=provider_dir)
    for path, raw in shop_files.items():
        for form in forms_of_pan:
            assert form.encode() not in raw, f"card number found in {path}"
        if path.suffix == ".db":
            for value in _sqlite_values(path):
                assert pan not in re.sub(r"\D", "", value), f"card number stored in {path}"
                assert not whole_cvv.search(value), f"CVV stored in {path}"
        else:
            text = raw.decode("utf-8", "replace")
            assert not whole_cvv.search(text), f"CVV found in {path}"
    # encrypted counts too: open every vault entry with the vault's own keys
    plaintexts = _every_vault_plaintext(started)
    assert all(label != "CREDIT_CARD" for label, _ in plaintexts)
    assert not any(pan in re.sub(r"\D", "", value) for _, value in plaintexts)
    names = {p.name for p in shop_files}
    assert "shop.db" in names and "cartguard.log" in names and len(shop_files) >= 3
    log = (data_dir / "logs" / "cartguard.log").read_text()
    assert "POST" in log and "/s/<hidden>" in log and token not in log  # links are credentials

    # the provider's side holds the number, encrypted, owner-only, and never the CVV
    assert stat.S_IMODE(provider_dir.stat().st_mode) == 0o700
    provider_files = _files(provider_dir)
    assert provider_files
    for path, raw in provider_files.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not any(form.encode() in raw for form in forms_of_pan), path
        assert not whole_cvv.search(raw.decode("latin-1")), path
    [saved] = [m for m in _methods(4) if m.last4 == pan[-4:]]
    assert payment_provider.store.reveal_number(saved.vault_token) == pan
