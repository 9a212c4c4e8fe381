"""Checks on the NLU training data, the held-out split and config.yml (no model training).

These guard the promises the rest of Cartguard relies on: the intent and entity names of the
contract, an evaluation that stays honest (held-out and Bitext sentences never trained on, not
even with a word or a number changed: see ``similarity.py``), and
training data that never teaches the model what a raw one-time code looks like.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from cartguard.shop.ids import normalize_invoice_id, normalize_order_id
from tests.nlu_checks.similarity import near_duplicates

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "data" / "nlu"
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
EVAL_DIR = Path(os.environ.get("CARTGUARD_EVAL_DIR", ROOT.parent / "shared" / "eval"))

CONTRACT_INTENTS = {
    "track_order", "cancel_order", "change_shipping_address", "request_refund", "track_refund",
    "check_balance", "get_invoice", "update_payment_method", "payment_issue",
    "contact_human_agent", "complaint", "export_my_data", "delete_my_data", "forget_conversation",
    "provide_otp", "greet", "goodbye", "affirm", "deny", "thank", "bot_challenge", "out_of_scope",
    "unlink_account",  # Messenger account linking (data/nlu/messenger.yml)
}  # fmt: skip
CONTRACT_ENTITIES = {"order_id", "invoice_id", "amount", "balance_type"}
BALANCE_TYPES = {"store_credit", "gift_card", "loyalty_points"}
FEATURE_FILES = {
    "orders.yml", "balances.yml", "invoices.yml", "payments.yml", "support.yml", "privacy.yml",
    "stepup.yml", "general.yml", "messenger.yml",
}  # fmt: skip
OTP_TOKEN = re.compile(r"\btok_otp_[A-Za-z0-9_-]{22}\b")


def normalise(text: str) -> str:
    """Lower-case, drop punctuation and squeeze spaces: 'Where's my order?' == 'wheres my order'."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


@pytest.fixture(scope="module")
def training():
    from rasa.shared.nlu.training_data.loading import load_data

    return load_data(str(NLU_DIR))


@pytest.fixture(scope="module")
def heldout():
    from rasa.shared.nlu.training_data.loading import load_data

    return load_data(str(HELDOUT))


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yml").read_text())


def by_intent(data) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for message in data.intent_examples:
        grouped[message.get("intent")].append(message.get("text"))
    return grouped


def test_one_file_per_feature() -> None:
    assert {p.name for p in NLU_DIR.glob("*.yml")} == FEATURE_FILES


def test_training_uses_exactly_the_contract_intents_with_enough_examples(training) -> None:
    grouped = by_intent(training)
    assert set(grouped) == CONTRACT_INTENTS
    thin = {intent: len(texts) for intent, texts in grouped.items() if len(texts) < 20}
    assert not thin, f"intents with fewer than 20 examples: {thin}"


def test_confusable_and_sensitive_intents_have_thirty_examples(training) -> None:
    import cartguard.stepup.policy as policy

    grouped = by_intent(training)
    sensitive = set(policy.load_policy(ROOT / "security.yml").sensitive_intents)
    assert sensitive <= CONTRACT_INTENTS, "security.yml names an intent the NLU does not know"
    for intent in sensitive | {"track_order", "track_refund", "payment_issue", "provide_otp"}:
        assert len(grouped[intent]) >= 30, intent
    # out_of_scope must outnumber any single intent: it guards every sensitive one.
    assert len(grouped["out_of_scope"]) > 3 * max(
        len(v) for k, v in grouped.items() if k != "out_of_scope"
    )


def test_no_sentence_is_trained_under_two_intents(training) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for message in training.intent_examples:
        key = normalise(message.get("text"))
        if key in seen and seen[key] != message.get("intent"):
            clashes.append((message.get("text"), seen[key], message.get("intent")))
        seen[key] = message.get("intent")
    assert not clashes


def test_heldout_covers_every_intent_and_shares_no_sentence_with_training(training, heldout):
    assert set(by_intent(heldout)) == CONTRACT_INTENTS
    trained = {normalise(m.get("text")) for m in training.intent_examples}
    leaked = [m.get("text") for m in heldout.intent_examples if normalise(m.get("text")) in trained]
    assert not leaked, f"held-out sentences also in data/nlu: {leaked}"


def test_heldout_is_not_under_data() -> None:
    assert NLU_DIR not in HELDOUT.parents


def bitext_rows() -> list[str]:
    path = EVAL_DIR / "bitext_customer_support.csv"
    # Not a skip: without the file this check would silently stop guarding the evaluation.
    assert path.exists(), f"Bitext evaluation file not found at {path} (set CARTGUARD_EVAL_DIR)"
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def test_nothing_copied_from_bitext(training, heldout) -> None:
    rows = bitext_rows()
    exact = {normalise(text) for text in rows}
    # Same words in a different order is still a copy.
    shuffled = {tuple(sorted(normalise(text).split())) for text in rows}
    copied = []
    for message in [*training.intent_examples, *heldout.intent_examples]:
        text = normalise(message.get("text"))
        if text in exact or tuple(sorted(text.split())) in shuffled:
            copied.append(message.get("text"))
    assert not copied, f"sentences copied from the Bitext evaluation set: {copied}"


def _texts(data) -> list[str]:
    return [message.get("text") for message in data.intent_examples]


def test_no_heldout_sentence_has_a_near_duplicate_in_training(training, heldout) -> None:
    """A held-out sentence one typo or one word away from a training one measures memory."""
    close = near_duplicates(_texts(heldout), _texts(training))
    assert not close, (
        "held-out sentences too close to training ones (rewrite the training one):\n"
        + ("\n".join(map(str, close)))
    )


def test_no_sentence_is_a_near_copy_of_a_bitext_row(training, heldout) -> None:
    """Catches a Bitext row with its order number or one word changed (exact match cannot)."""
    rows = bitext_rows()
    close = near_duplicates([*_texts(training), *_texts(heldout)], rows)
    assert not close, "sentences too close to Bitext rows (write your own):\n" + "\n".join(
        map(str, close)
    )


@pytest.mark.parametrize(
    ("text", "pool"),
    [
        ("how can i cancel purchase 9120344751", ["how can I cancel purchase 113542617735902?"]),
        ("whre is my ordr", ["where is my order"]),  # typos
        ("my order where is", ["where is my order"]),  # same words, another order
        ("refund 120 dollars", ["Refund 1200 dollars!"]),  # a number changed
    ],
)
def test_the_near_duplicate_check_catches_edited_copies(text, pool) -> None:
    assert near_duplicates([text], pool), (text, pool)


def test_the_near_duplicate_check_lets_different_sentences_pass() -> None:
    pool = ["where is my order", "cancel order 00004587345", "what are the termination fees"]
    assert not near_duplicates(["has my parcel left your warehouse yet"], pool)
    assert not near_duplicates(["does leaving my plan early cost extra"], pool)


def test_otp_examples_carry_vault_tokens_never_raw_codes(training, heldout) -> None:
    tokens = []
    for data in (training, heldout):
        for text in by_intent(data)["provide_otp"]:
            found = OTP_TOKEN.findall(text)
            assert len(found) == 1, f"provide_otp example without exactly one token: {text!r}"
            tokens.extend(found)
            assert not re.search(r"\d{6}", OTP_TOKEN.sub("", text)), text
    assert len(tokens) == len(set(tokens)), "OTP tokens must be varied, not repeated"


def test_no_raw_six_digit_code_anywhere_in_training(training) -> None:
    """Outside CG order ids, six digits on their own look like a one-time code: keep them out."""
    offenders = []
    for message in training.intent_examples:
        text = re.sub(r"\bCG[- ]?\d{6}\b", "", message.get("text"), flags=re.IGNORECASE)
        if re.search(r"(?<![\w*])\d{6}(?![\w*])", text):
            offenders.append(message.get("text"))
    assert not offenders


def test_entities_are_the_contract_ones_and_parse(training, heldout) -> None:
    for data in (training, heldout):
        for message in data.intent_examples:
            for entity in message.get("entities") or []:
                assert entity["entity"] in CONTRACT_ENTITIES, entity
                raw = message.get("text")[entity["start"] : entity["end"]]
                if entity["entity"] == "order_id":
                    assert normalize_order_id(raw), raw
                if entity["entity"] == "invoice_id":
                    assert normalize_invoice_id(raw), raw


def test_every_pattern_match_is_annotated(training, heldout) -> None:
    """RegexEntityExtractor will find every match, so the data must annotate every match
    (otherwise the entity F1 on the held-out split is measured against the wrong answer)."""
    from rasa.nlu.utils.pattern_utils import extract_patterns

    patterns = extract_patterns(training, use_only_entities=True)
    assert {p["name"] for p in patterns} == CONTRACT_ENTITIES
    problems = []
    for data in (training, heldout):
        for message in data.intent_examples:
            text = message.get("text")
            found = {
                (p["name"], m.start(), m.end())
                for p in patterns
                for m in re.finditer(p["pattern"], text, flags=re.IGNORECASE)
            }
            annotated = {(e["entity"], e["start"], e["end"]) for e in message.get("entities") or []}
            if found != annotated:
                problems.append((text, sorted(found ^ annotated)))
    assert not problems


def test_balance_types_normalise_to_the_three_values(training, heldout) -> None:
    synonyms = training.entity_synonyms
    assert set(synonyms.values()) == BALANCE_TYPES
    for entry in training.lookup_tables:
        if entry["name"] == "balance_type":
            for element in entry["elements"]:
                assert synonyms.get(element.lower(), element) in BALANCE_TYPES, element
    assert "credit" not in synonyms, "a bare 'credit' would turn 'credit card' into a balance"
    for message in heldout.intent_examples:
        for entity in message.get("entities") or []:
            if entity["entity"] == "balance_type":
                assert entity["value"] in BALANCE_TYPES, entity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is CG-482913", "CG-482913"),
        ("where is cg482913", "cg482913"),
        ("where is CG 482913?", "CG 482913"),
        ("where is order 482913", None),
        ("my code is 482913", None),
        ("CG-4829131", None),
    ],
)
def test_order_id_pattern_needs_the_cg_prefix(training, text, expected) -> None:
    pattern = next(p for p in training.regex_features if p["name"] == "order_id")["pattern"]
    match = re.search(pattern, text, flags=re.IGNORECASE)
    assert (match.group(0) if match else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refund $25 please", "$25"),
        ("refund 25 dollars", "25 dollars"),
        ("I paid 40.50 for it", "40.50"),
        ("it cost $12.99", "$12.99"),
        ("order CG-482913", None),
        ("invoice INV-2026-00012", None),
        ("card 424242******4242", None),
    ],
)
def test_amount_pattern(training, text, expected) -> None:
    pattern = next(p for p in training.regex_features if p["name"] == "amount")["pattern"]
    match = re.search(pattern, text, flags=re.IGNORECASE)
    assert (match.group(0) if match else None) == expected


def test_otp_regex_feature_exists(training) -> None:
    names = {p["name"]: p["pattern"] for p in training.regex_features}
    assert re.search(names["otp_token"], "code tok_otp_Q3k9dX0aLmT2pW8vYr1sZb")
    assert not re.search(names["otp_token"], "code 482913")


def test_out_of_scope_is_broad(training) -> None:
    """Topics the shop's customers ask about that this assistant does not handle."""
    texts = " | ".join(by_intent(training)["out_of_scope"]).lower()
    topics = {
        "delivery options": ["ship to", "deliver to"],
        "delivery period": ["how long does", "delivery time"],
        "accounts": ["create", "switch", "sign up"],
        "password": ["password"],
        "newsletter": ["newsletter"],
        "reviews": ["review", "feedback"],
        "order items": ["add", "remove", "swap"],
        "payment methods accepted": ["payment methods", "do you accept"],
        "refund policy": ["refund policy", "return policy"],
        "cancellation fees": ["cancellation fee", "penalty"],
        "chit-chat": ["joke", "weather"],
    }
    missing = [name for name, words in topics.items() if not any(w in texts for w in words)]
    assert not missing
    counts = Counter(
        t for name, words in topics.items() for w in words for t in [name] if w in texts
    )
    assert len(counts) == len(topics)


def test_config_pipeline_and_policies(config) -> None:
    assert config["recipe"] == "default.v1"
    assert config["language"] == "en"
    assert config["assistant_id"] == "cartguard"
    steps = {step["name"]: step for step in config["pipeline"]}
    assert steps["FallbackClassifier"]["threshold"] == 0.6
    assert 0.05 <= steps["FallbackClassifier"]["ambiguity_threshold"] <= 0.15
    assert steps["DIETClassifier"]["constrain_similarities"] is True
    assert steps["RegexEntityExtractor"]["use_regexes"] is True
    assert "EntitySynonymMapper" in steps
    # Nothing that would need a download: no pretrained language models.
    assert not {"SpacyNLP", "MitieNLP", "LanguageModelFeaturizer"} & set(steps)
    policies = {policy["name"]: policy for policy in config["policies"]}
    assert policies["MemoizationPolicy"]["max_history"] == 5
    rule = policies["RulePolicy"]
    assert rule["core_fallback_threshold"] == 0.3
    assert rule["core_fallback_action_name"] == "action_default_fallback"
    assert rule["enable_fallback_prediction"] is True
    ted = policies["TEDPolicy"]
    assert (ted["max_history"], ted["epochs"], ted["constrain_similarities"]) == (5, 20, True)
