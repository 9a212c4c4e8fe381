"""The vault against the test shop database: round trips, expiry, tampering, rotation, erasure."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
import time_machine
from faker import Faker
from sqlalchemy import select

from cartguard.pii.tokens import TOKEN_RE
from cartguard.settings import get_settings
from cartguard.shop.db import make_engine, session_scope
from cartguard.shop.models.vault import VaultEntry
from cartguard.vault import Vault, VaultError, get_vault

fake = Faker()


@pytest.fixture()
def vault(data_dir: Path) -> Vault:
    get_vault.cache_clear()
    return get_vault()


def _entry(token: str) -> VaultEntry:
    import hashlib

    with session_scope() as session:
        return session.execute(
            select(VaultEntry).where(
                VaultEntry.token_hash == hashlib.sha256(token.encode()).hexdigest()
            )
        ).scalar_one()


def test_round_trip_and_token_shape(vault: Vault) -> None:
    email = fake.email()
    token = vault.tokenize(email, "EMAIL_ADDRESS", customer_id=1, conversation_id="c-1")
    assert TOKEN_RE.fullmatch(token) and token.startswith("tok_email_")
    assert len(token.split("_", 2)[2]) >= 22
    assert vault.detokenize(token) == email
    assert vault.label_of(token) == "EMAIL_ADDRESS"


def test_tokens_are_random_and_reveal_nothing(vault: Vault) -> None:
    value = fake.phone_number()
    first = vault.tokenize(value, "PHONE_NUMBER")
    second = vault.tokenize(value, "PHONE_NUMBER")
    assert first != second
    row = _entry(first)
    assert value.encode() not in row.ciphertext
    assert first not in json.dumps({"h": row.token_hash})  # only a hash is stored


def test_ciphertext_names_its_key(vault: Vault) -> None:
    token = vault.tokenize("123456", "OTP_CODE")
    row = _entry(token)
    kid = row.key_id
    assert row.ciphertext[2 : 2 + row.ciphertext[1]].decode() == kid
    assert kid == vault.key_ids[-1]


@pytest.mark.parametrize("garbage", ["", "tok_email_short", "hello", "tok_email_" + "A" * 22, None])
def test_unknown_or_garbage_tokens_resolve_to_none(vault: Vault, garbage: object) -> None:
    assert vault.detokenize(garbage) is None  # type: ignore[arg-type]


def test_tampered_ciphertext_or_swapped_rows_do_not_decrypt(vault: Vault) -> None:
    a = vault.tokenize(fake.email(), "EMAIL_ADDRESS")
    b = vault.tokenize(fake.email(), "EMAIL_ADDRESS")
    with session_scope() as session:
        row_a = session.get(VaultEntry, _entry(a).id)
        row_b = session.get(VaultEntry, _entry(b).id)
        row_a.ciphertext, row_b.ciphertext = row_b.ciphertext, row_a.ciphertext
    assert vault.detokenize(a) is None  # bound to its own token by the associated data
    c = vault.tokenize(fake.email(), "EMAIL_ADDRESS")
    with session_scope() as session:
        row = session.get(VaultEntry, _entry(c).id)
        blob = bytearray(row.ciphertext)
        blob[-1] ^= 1
        row.ciphertext = bytes(blob)
    assert vault.detokenize(c) is None


def test_otp_tokens_expire_and_purge(vault: Vault) -> None:
    token = vault.tokenize("654321", "OTP_CODE")
    assert vault.detokenize(token) == "654321"
    with time_machine.travel(_entry(token).created_at.timestamp() + 16 * 60, tick=False):
        assert vault.detokenize(token) is None
        assert vault.purge_expired() >= 1
    assert vault.label_of(token) is None


def test_cvv_and_invalid_input_are_refused(vault: Vault) -> None:
    for label in ("CVV", "cvc"):
        with pytest.raises(VaultError, match="never stored"):
            vault.tokenize("123", label)
    with pytest.raises(VaultError):
        vault.tokenize("", "EMAIL_ADDRESS")
    with pytest.raises(VaultError):
        vault.tokenize("x", "EMAIL ADDRESS; drop")
    with pytest.raises(VaultError, match="expires"):
        vault.tokenize("a@b.co", "EMAIL_ADDRESS", ttl_seconds=0)


@pytest.mark.parametrize("label", ["CREDIT_CARD", "credit_card", "CARD_NUMBER", "PAN"])
def test_card_numbers_are_refused_and_nothing_is_written(vault: Vault, label: str) -> None:
    """Card numbers belong to the payment provider: the shop's vault keeps none, not even
    encrypted (valid or not, spaced or not)."""
    pan = fake.credit_card_number()
    with session_scope() as session:
        before = session.execute(select(VaultEntry.id)).scalars().all()
    for value in (pan, " ".join(pan[i : i + 4] for i in range(0, len(pan), 4)), pan[:-1] + "0"):
        with pytest.raises(VaultError, match="payment provider"):
            vault.tokenize(value, label, customer_id=1)
    with session_scope() as session:
        assert session.execute(select(VaultEntry.id)).scalars().all() == before


def test_forget_customer_and_conversation(vault: Vault) -> None:
    mine = [vault.tokenize(fake.email(), "EMAIL_ADDRESS", customer_id=3) for _ in range(2)]
    other = vault.tokenize(fake.email(), "EMAIL_ADDRESS", customer_id=4, conversation_id="conv-x")
    assert vault.forget_customer(3) >= 2
    assert all(vault.detokenize(t) is None for t in mine)
    assert vault.detokenize(other) is not None
    assert vault.forget_conversation("conv-x") == 1
    assert vault.detokenize(other) is None


def test_rotation_with_explicit_keys_reencrypts_under_newest(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    old = {"old-1": secrets.token_bytes(32)}
    v1 = Vault(engine, keys=old)
    token = v1.tokenize("DE89370400440532013000", "IBAN_CODE")
    both = {**old, "new-2": secrets.token_bytes(32)}
    v2 = Vault(engine, keys=both)
    assert v2.detokenize(token) == "DE89370400440532013000"  # old key still readable
    assert v2.rotate() >= 1
    assert v2.rotate() == 0
    v3 = Vault(engine, keys={"new-2": both["new-2"]})
    assert v3.detokenize(token) == "DE89370400440532013000"
    assert Vault(engine, keys=old).detokenize(token) is None  # old key alone no longer opens it


def test_add_key_and_rotate_updates_the_key_file(vault: Vault) -> None:
    tokens = {vault.tokenize(v, "EMAIL_ADDRESS"): v for v in (fake.email(), fake.email())}
    before = vault.key_ids
    new_kid = vault.add_key_and_rotate()
    keys_file = get_settings().keys_file
    stored = json.loads(keys_file.read_text())["vault_keys"]
    assert list(stored) == [new_kid] and new_kid not in before
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    for token, value in tokens.items():
        assert vault.detokenize(token) == value
        assert _entry(token).key_id == new_kid
    fresh = Vault()  # another process reading the file sees the same key
    assert all(fresh.detokenize(t) == v for t, v in tokens.items())


def test_add_key_refuses_when_keys_come_from_environment(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(os.environ, "CARTGUARD_VAULT_KEYS", "k1:" + "A" * 43)
    with pytest.raises(VaultError, match="CARTGUARD_VAULT_KEYS"):
        vault.add_key_and_rotate()
