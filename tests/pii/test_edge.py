"""The channel edge: masks, vault tokens and placeholders; the text Rasa gets holds no PII."""

from __future__ import annotations

from pathlib import Path

import pytest
from faker import Faker

from cartguard.pii import detect, redact
from cartguard.pii.edge import protect_incoming
from cartguard.pii.tokens import TOKEN_RE
from cartguard.pii.validators import card_mask
from cartguard.vault import get_vault

fake = Faker()


@pytest.fixture(autouse=True)
def _vault(data_dir: Path) -> None:
    get_vault.cache_clear()


def test_cards_masked_contacts_and_codes_tokenized() -> None:
    pan = fake.credit_card_number(card_type="visa16")
    email = f"{fake.user_name()}+shop@{fake.domain_name()}"
    text = f"card {pan} mail {email} code 246810 ssn {fake.ssn()}"
    result = protect_incoming(text, customer_id=2, conversation_id="conv-edge")
    assert card_mask(pan) in result.text and pan not in result.text
    assert email not in result.text and "246810" not in result.text
    assert "<US_SSN>" in result.text
    tokens = TOKEN_RE.findall(result.text)
    assert len(tokens) == 2
    resolved = {get_vault().detokenize(t) for t in tokens}
    assert resolved == {email, "246810"}
    assert result.card_typed and result.secret_typed
    assert result.labels == {"CREDIT_CARD", "EMAIL_ADDRESS", "OTP_CODE", "US_SSN"}


def test_second_pass_changes_nothing() -> None:
    result = protect_incoming(f"it's 135790 and {fake.email()} and 5555555555554444")
    again = protect_incoming(result.text)
    assert again.text == result.text and again.labels == frozenset()
    assert redact(result.text).text == result.text
    assert detect(result.text) == []


def test_expected_otp_with_space_and_order_ids_untouched() -> None:
    result = protect_incoming("123 456", expect={"OTP_CODE"})
    assert TOKEN_RE.fullmatch(result.text)
    assert get_vault().detokenize(result.text) == "123 456"
    plain = protect_incoming("track CG-482913 and INV-2026-00012 please")
    assert plain.text == "track CG-482913 and INV-2026-00012 please" and not plain.labels


def test_password_is_a_placeholder_never_a_token() -> None:
    result = protect_incoming("hunter2-Secret", expect={"PASSWORD"})
    assert result.text == "<PASSWORD>" and result.secret_typed and not result.card_typed


def test_vault_failure_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr("cartguard.vault.get_vault", broken)
    email = fake.email()
    result = protect_incoming(f"mail {email}")
    assert result.text == "mail <EMAIL_ADDRESS>"
