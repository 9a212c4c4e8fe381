"""Metric labels come from fixed sets: nothing a shopper or attacker sends becomes a label."""

from __future__ import annotations

from faker import Faker

from cartguard.channels import replies
from cartguard.monitoring import metrics

fake = Faker()


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_unknown_label_values_are_folded_into_other() -> None:
    email = fake.email()
    before = sample("cartguard_pii_redactions_total", label="other")
    metrics.record_pii([email, "CREDIT_CARD"])
    metrics.record_message(email)
    metrics.record_guard_refusal("socketio", email)
    metrics.record_link(email)
    metrics.observe_action(f"action_{email}", 0.01)  # not an action name
    assert sample("cartguard_pii_redactions_total", label="other") == before + 1
    exposition = metrics.render()[0].decode()
    assert email not in exposition
    assert 'cartguard_pii_redactions_total{label="CREDIT_CARD"}' in exposition


def test_step_up_audit_action_names_map_to_outcomes() -> None:
    before = sample("cartguard_stepup_total", outcome="lockout")
    metrics.record_stepup("stepup.lockout")
    metrics.record_stepup("stepup.enrolled")  # not an outcome: ignored
    assert sample("cartguard_stepup_total", outcome="lockout") == before + 1
    assert sample("cartguard_stepup_total", outcome="enrolled") == 0


def test_action_names_are_capped() -> None:
    for index in range(metrics.MAX_ACTION_NAMES + 5):
        metrics.action_label(f"action_generated_{index}")
    assert metrics.action_label("action_one_too_many") == metrics.OTHER


def test_tips_only_for_card_password_and_ssn() -> None:
    text, buttons = replies.security_tip(["CREDIT_CARD", "OTP_CODE"])
    assert "secure form" in text and buttons == [replies.TIP_CARD_BUTTON]
    assert replies.security_tip(["PASSWORD"]) == (replies.TIP_CREDENTIALS, [])
    assert replies.security_tip(["US_SSN"]) == (replies.TIP_SSN, [])
    assert replies.security_tip(["OTP_CODE"]) is None
    assert replies.security_tip(["EMAIL_ADDRESS"]) is None
    assert replies.security_tip(None) is None
