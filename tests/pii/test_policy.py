"""One table per policy: every reader of "what happens to a PII label" agrees with
cartguard.pii.policy, and the detector package stays free of spaCy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cartguard.pii import policy


def test_vault_reads_kinds_lifetimes_and_refusals_from_the_table() -> None:
    from cartguard import vault

    assert vault.TOKEN_KINDS == policy.token_kinds()
    assert vault.DEFAULT_TTL_SECONDS == policy.token_lifetimes()
    assert vault.NEVER_STORED | vault.CARD_NUMBER_LABELS == policy.never_stored()
    assert {"CVV", "CREDIT_CARD"} <= policy.never_stored()


@pytest.mark.parametrize("label", sorted(policy.never_stored()))
def test_the_vault_refuses_every_never_stored_label(label: str, data_dir) -> None:
    from cartguard.vault import Vault, VaultError

    with pytest.raises(VaultError):
        Vault(keys={"k1": b"k" * 32}).tokenize("4111111111111111", label)


def test_step_up_metrics_and_analyzer_read_the_table() -> None:
    from cartguard.monitoring import metrics
    from cartguard.pii.analyzer import EXPECTABLE
    from cartguard.stepup import service

    assert metrics.PII_LABELS == policy.counted_labels()
    assert "SECURE_LINK" not in metrics.PII_LABELS
    assert EXPECTABLE == policy.expectable() == {"OTP_CODE", "PASSWORD"}
    assert service.OTP_TOKEN_PREFIX == f"tok_{policy.token_kind('OTP_CODE')}_"
    assert service.CODE_EXPECTED_SECONDS == policy.policy_for("OTP_CODE").expected_for_seconds


@pytest.mark.parametrize(
    "removed,expected",
    [
        (["CREDIT_CARD", "PASSWORD", "US_SSN"], "card"),
        (["US_SSN", "PASSWORD"], "credentials"),
        (["US_SSN", "EMAIL_ADDRESS"], "ssn"),
        (["OTP_CODE", "EMAIL_ADDRESS"], None),
    ],
)
def test_channel_tips_follow_the_table_order(removed: list[str], expected: str | None) -> None:
    from cartguard.channels import replies

    assert policy.tip_for(removed) == expected
    tip = replies.security_tip(removed)
    texts = {
        "card": replies.TIP_CARD,
        "credentials": replies.TIP_CREDENTIALS,
        "ssn": replies.TIP_SSN,
    }
    assert (tip[0] if tip else None) == texts.get(expected)


def test_edge_operators_follow_the_table(data_dir) -> None:
    from cartguard.channels.tokenize import protect_incoming
    from cartguard.vault import get_vault

    get_vault.cache_clear()
    result = protect_incoming("mail ines@example.org from 81.17.30.122, ssn 512-68-3391")
    assert result.text.startswith("mail tok_email_")
    assert result.text.endswith("from <IP_ADDRESS>, ssn <US_SSN>")
    assert policy.policy_for("EMAIL_ADDRESS").operator is policy.Operator.TOKEN
    assert policy.policy_for("NOT_A_LABEL").operator is policy.Operator.PLACEHOLDER


def test_registry_is_an_explicit_tuple_with_one_recognizer_per_label() -> None:
    from cartguard.pii import registry

    assert isinstance(registry.RECOGNIZERS, tuple)
    labels = [r.label for r in registry.RECOGNIZERS]
    assert len(labels) == len(set(labels))
    assert set(labels) <= set(policy.POLICIES)


def test_importing_the_detector_loads_neither_spacy_nor_tensorflow() -> None:
    code = (
        "import sys, cartguard.pii, cartguard.channels.tokenize, cartguard.stores.log_redaction;"
        "print(sorted(m for m in ('spacy', 'tensorflow', 'thinc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
