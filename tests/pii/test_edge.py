"""The channel edge: masks, vault tokens and placeholders; the text Rasa gets holds no PII."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartguard.channels.tokenize import protect_incoming
from cartguard.pii import detect, redact
from cartguard.pii.tokens import TOKEN_RE
from cartguard.pii.validators import card_mask
from cartguard.vault import get_vault
from tests.pii.strategies import luhn_check_digit

PAN = "4730518294" + "61739"
PAN += luhn_check_digit(PAN)
EMAIL = "ines.okafor+shop@mail.example.org"


@pytest.fixture(autouse=True)
def _vault(data_dir: Path) -> None:
    get_vault.cache_clear()


def test_cards_masked_contacts_and_expected_codes_tokenized() -> None:
    text = f"card {PAN} mail {EMAIL} code 246810 ssn 512-68-3391"
    result = protect_incoming(text, customer_id=2, conversation_id="conv-edge", expect={"OTP_CODE"})
    assert card_mask(PAN) in result.text and PAN not in result.text
    assert EMAIL not in result.text and "246810" not in result.text
    assert "<US_SSN>" in result.text
    tokens = TOKEN_RE.findall(result.text)
    assert len(tokens) == 2
    assert {get_vault().detokenize(t) for t in tokens} == {EMAIL, "246810"}
    assert result.card_typed and result.secret_typed
    assert result.labels == {"CREDIT_CARD", "EMAIL_ADDRESS", "OTP_CODE", "US_SSN"}


def test_bare_six_digits_stay_when_no_code_is_expected() -> None:
    result = protect_incoming("deliver 246810 units to zip 730518")
    assert result.text == "deliver 246810 units to zip 730518" and not result.labels


def test_second_pass_changes_nothing() -> None:
    result = protect_incoming(f"it's 135790 and {EMAIL} and {PAN}", expect={"OTP_CODE"})
    again = protect_incoming(result.text, expect={"OTP_CODE"})
    assert again.text == result.text and again.labels == frozenset()
    assert redact(result.text).text == result.text
    assert detect(result.text, expect={"OTP_CODE"}) == []


def test_expected_otp_with_space_and_order_ids_untouched() -> None:
    result = protect_incoming("123 456", expect={"OTP_CODE"})
    assert TOKEN_RE.fullmatch(result.text)
    assert get_vault().detokenize(result.text) == "123 456"
    plain = protect_incoming("track CG-482913 and INV-2026-00012 please", expect={"OTP_CODE"})
    assert plain.text == "track CG-482913 and INV-2026-00012 please" and not plain.labels


def test_whole_original_value_is_replaced_invisible_characters_included() -> None:
    shown = (
        "\u200b".join(PAN[:8])
        + "\u00a0"
        + PAN[8:].translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    )
    result = protect_incoming(f"card:{shown}!")
    assert result.text == f"card:{card_mask(PAN)}!"


def test_password_is_a_placeholder_never_a_token() -> None:
    result = protect_incoming("hunter2-Secret", expect={"PASSWORD"})
    assert result.text == "<PASSWORD>" and result.secret_typed and not result.card_typed


def test_vault_failure_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr("cartguard.vault.get_vault", broken)
    result = protect_incoming(f"mail {EMAIL}")
    assert result.text == "mail <EMAIL_ADDRESS>"
