"""Codes that reach the action server as vault tokens (``tok_otp_...``), as webchat sends them."""

from __future__ import annotations

from cartguard.stepup import service as service_module
from cartguard.stepup.service import StepUpService, StepUpStatus


class FakeVault:
    """Stands in for the vault: resolves tokens it issued, refuses everything else."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def tokenize(self, value: str, label: str, **_: object) -> str:
        token = f"tok_{label}_{len(self.values):08d}"
        self.values[token] = value
        return token

    def detokenize(self, token: str, *, session: object = None) -> str | None:
        return self.values.get(token)  # like the real vault: None for unknown tokens


def test_token_is_resolved_through_the_vault(
    db_session, secrets_by_customer, code_for, monkeypatch
):
    vault = FakeVault()
    monkeypatch.setattr(service_module, "_vault", lambda: vault)
    service = StepUpService(db_session)
    token = vault.tokenize(code_for(secrets_by_customer[1]), "otp")
    assert service.verify(1, "c-tok", token).ok
    assert service.status(1, "c-tok") is StepUpStatus.FRESH


def test_unknown_token_counts_as_a_failure(db_session, secrets_by_customer, monkeypatch):
    monkeypatch.setattr(service_module, "_vault", FakeVault)
    outcome = StepUpService(db_session).verify(1, "c-tok", "tok_otp_doesnotexist")
    assert not outcome.ok and outcome.remaining_attempts == 4


def test_token_for_something_else_than_a_code_is_refused(
    db_session, secrets_by_customer, monkeypatch
):
    vault = FakeVault()
    monkeypatch.setattr(service_module, "_vault", lambda: vault)
    token = vault.tokenize("someone@example.test", "otp")
    assert not StepUpService(db_session).verify(1, "c-tok", token).ok


def test_real_vault_token_round_trip(db_session, secrets_by_customer, code_for):
    from cartguard.vault import get_vault

    code = code_for(secrets_by_customer[1])
    token = get_vault().tokenize(code, "OTP_CODE", customer_id=1, session=db_session)
    assert token.startswith("tok_otp_")
    assert StepUpService(db_session).verify(1, "c-vault", token).ok
