"""Train the NLU once and check the behaviour the security model depends on (marked slow).

Run with ``.venv/bin/pytest tests/nlu_checks -m slow``. The figures themselves (accuracy, F1,
false alarms on Bitext) come from ``scripts/eval_nlu.py``; this test pins the cases that must
never regress: policy questions must not open a sensitive flow, vault tokens are codes, ids
need their CG prefix, and "credit card" is not a balance.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SENSITIVE = {
    "cancel_order", "change_shipping_address", "request_refund", "check_balance", "get_invoice",
    "update_payment_method", "export_my_data", "delete_my_data",
}  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    from rasa.core.agent import Agent

    # The model `make train` keeps fresh (it retrains whenever config, domain or data change),
    # so this checks exactly what `make run` serves without a second training.
    model = ROOT / "models" / "cartguard.tar.gz"
    assert model.exists(), "no trained model: run `make train` first"
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    yield lambda text: loop.run_until_complete(agent.parse_message(text))
    loop.close()


@pytest.mark.parametrize(
    "text",
    [
        "is there a fee if I cancel my order?",
        "what is your refund policy",
        "which payment methods do you accept",
        "remove the charger from my order",
        "I forgot my password",
        "create a new account for me",
        "unsubscribe me from the newsletter",
        "do you deliver to Ireland?",
        "tell me a joke",
    ],
)
def test_policy_questions_never_open_a_sensitive_flow(parse, text) -> None:
    result = parse(text)
    assert result["intent"]["name"] not in SENSITIVE, result["intent"]


def test_vault_token_is_an_otp(parse) -> None:
    result = parse("my code is tok_otp_Zq3Xk9dL0aPmT2wW8vYr1s")
    assert result["intent"]["name"] == "provide_otp"


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("where is my order CG-123456", "track_order", {("order_id", "CG-123456")}),
        ("please cancel cg654321", "cancel_order", {("order_id", "cg654321")}),
        ("where is order 123456", "track_order", set()),
        ("I want a refund of $25", "request_refund", {("amount", "$25")}),
        ("download invoice INV-2026-00012", "get_invoice", {("invoice_id", "INV-2026-00012")}),
        ("how many reward points do I have", "check_balance", {("balance_type", "loyalty_points")}),
        ("what's left on my gift cards", "check_balance", {("balance_type", "gift_card")}),
        ("update my credit card", "update_payment_method", set()),
    ],
)
def test_intents_and_entities(parse, text, intent, entities) -> None:
    result = parse(text)
    assert result["intent"]["name"] == intent
    assert {(e["entity"], e["value"]) for e in result["entities"]} == entities
