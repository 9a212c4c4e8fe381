"""Measure Cartguard's NLU: held-out accuracy, Bitext transfer, and sensitive false alarms.

Three numbers decide whether the NLU data is good enough to ship:

1. the held-out split (``tests/nlu/heldout.yml``, never trained on): intent accuracy, macro F1
   and entity F1 (exact type + span);
2. the Bitext customer-support sample (``$CARTGUARD_EVAL_DIR/bitext_customer_support.csv``, by
   default ``../shared/eval`` next to the repository): intent accuracy and macro F1 over the rows
   whose ``cartguard_intent`` is filled in;
3. the Bitext rows with NO Cartguard intent that still come out as a SENSITIVE intent (from
   ``security.yml``) after the FallbackClassifier, i.e. above its threshold. Each such row is a
   shopper question that would open a step-up flow for no reason; the goal is 0.

The Bitext text is parsed exactly as given (raw numbers, ``{{Order Number}}`` placeholders): it is
measurement data, never training data, and must not be cleaned up to flatter the model.

Before any figure, it counts near duplicates (``tests/nlu_checks/similarity.py``: difflib
ratio or word-set Jaccard >= 0.85 after lower-casing, dropping punctuation and masking numbers)
between held-out and training sentences, and between our sentences and the Bitext rows: a
figure measured on sentences the model was practically taught is not worth reporting.

Usage::

    .venv/bin/python scripts/eval_nlu.py                 # train on data/nlu, then evaluate
    .venv/bin/python scripts/eval_nlu.py --model models/nlu.tar.gz --json results/nlu.json
    .venv/bin/python scripts/eval_nlu.py --duplicates    # only the near-duplicate report
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FALLBACK_INTENT = "nlu_fallback"


@dataclass
class Prediction:
    """What the assistant would act on, plus the classifier's own top guess."""

    text: str
    intent: str  # after FallbackClassifier: may be nlu_fallback
    confidence: float
    raw_intent: str  # DIET's top intent, ignoring the fallback
    raw_confidence: float
    entities: list[dict[str, Any]] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="evaluate this model instead of training one")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "config.yml")
    parser.add_argument("--nlu", type=Path, default=REPO_ROOT / "data" / "nlu")
    parser.add_argument("--heldout", type=Path, default=REPO_ROOT / "tests" / "nlu" / "heldout.yml")
    parser.add_argument(
        "--eval-dir",
        type=Path,
        default=Path(os.environ.get("CARTGUARD_EVAL_DIR", REPO_ROOT.parent / "shared" / "eval")),
        help="directory holding bitext_customer_support.csv (env CARTGUARD_EVAL_DIR)",
    )
    parser.add_argument("--security", type=Path, default=REPO_ROOT / "security.yml")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument(
        "--predictions", type=Path, help="write every parsed sentence and its intent to this CSV"
    )
    parser.add_argument(
        "--show-errors", type=int, default=15, help="how many misclassified examples to print"
    )
    parser.add_argument(
        "--duplicates", action="store_true", help="print only the near-duplicate report"
    )
    return parser.parse_args(argv)


def train_model(config: Path, nlu: Path, out_dir: Path) -> tuple[Path, float]:
    """Train an NLU-only model the way ``rasa train nlu`` does; returns its path and seconds."""
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu), str(out_dir), fixed_model_name="nlu-eval")
    seconds = time.perf_counter() - started
    if not model:
        raise SystemExit(f"training failed: no model was written to {out_dir}")
    return Path(model), seconds


def read_heldout(path: Path) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(text, intent, gold entities) for every held-out example."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        (m.get("text"), m.get("intent"), list(m.get("entities") or []))
        for m in data.intent_examples
    ]


def read_bitext(eval_dir: Path) -> list[tuple[str, str, str]]:
    """(text, bitext_intent, cartguard_intent) rows; cartguard_intent is '' when unmapped."""
    path = eval_dir / "bitext_customer_support.csv"
    if not path.exists():
        raise SystemExit(
            f"Bitext evaluation file not found at {path}; set CARTGUARD_EVAL_DIR to its folder"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            (row["text"], row["bitext_intent"], (row["cartguard_intent"] or "").strip())
            for row in csv.DictReader(handle)
        ]


def sensitive_intents(security: Path) -> frozenset[str]:
    """Read through the project's own policy loader so the script and the bot agree."""
    sys.path.insert(0, str(REPO_ROOT))
    from cartguard.stepup.policy import load_policy

    return frozenset(load_policy(security).sensitive_intents)


async def predict_all(model: Path, texts: list[str]) -> list[Prediction]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    predictions = []
    for text in texts:
        parsed = await agent.parse_message(text)
        intent = parsed.get("intent") or {}
        ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != FALLBACK_INTENT]
        raw = ranking[0] if ranking else {"name": intent.get("name"), "confidence": 0.0}
        predictions.append(
            Prediction(
                text=text,
                intent=intent.get("name") or FALLBACK_INTENT,
                confidence=float(intent.get("confidence") or 0.0),
                raw_intent=raw["name"],
                raw_confidence=float(raw["confidence"]),
                entities=list(parsed.get("entities") or []),
            )
        )
    return predictions


def intent_scores(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy and macro F1 over the gold labels (a fallback counts as a miss)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    per_intent = {
        label: {
            "precision": round(float(p), 3),
            "recall": round(float(r), 3),
            "f1": round(float(f), 3),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(sum(f1) / len(labels)), 4) if labels else 0.0,
        "fallbacks": sum(1 for p in predicted if p == FALLBACK_INTENT),
        "per_intent": per_intent,
    }


def entity_scores(
    gold: list[list[dict[str, Any]]], predicted: list[list[dict[str, Any]]]
) -> dict[str, Any]:
    """Micro F1 on exact (type, start, end); values of balance_type must also be normalised."""
    tp = fp = fn = 0
    per_type: Counter[str] = Counter()
    value_errors = []
    for gold_entities, predicted_entities in zip(gold, predicted, strict=True):
        gold_spans = {(e["entity"], e["start"], e["end"]): e.get("value") for e in gold_entities}
        predicted_spans = {
            (e["entity"], e["start"], e["end"]): e.get("value") for e in predicted_entities
        }
        for key in predicted_spans:
            if key in gold_spans:
                tp += 1
                per_type[f"{key[0]}:tp"] += 1
                if key[0] == "balance_type" and predicted_spans[key] != gold_spans[key]:
                    value_errors.append((key, predicted_spans[key], gold_spans[key]))
            else:
                fp += 1
                per_type[f"{key[0]}:fp"] += 1
        for key in gold_spans.keys() - predicted_spans.keys():
            fn += 1
            per_type[f"{key[0]}:fn"] += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "counts": dict(per_type),
        "balance_type_value_errors": len(value_errors),
    }


def print_intent_table(title: str, scores: dict[str, Any]) -> None:
    print(f"\n{title}: n={scores['n']}  accuracy={scores['accuracy']:.4f}  ", end="")
    print(f"macro F1={scores['macro_f1']:.4f}  fallbacks={scores['fallbacks']}")
    print(f"  {'intent':<26}{'prec':>7}{'recall':>8}{'f1':>7}{'n':>6}")
    for label, row in scores["per_intent"].items():
        print(
            f"  {label:<26}{row['precision']:>7.3f}{row['recall']:>8.3f}"
            f"{row['f1']:>7.3f}{row['support']:>6}"
        )


def print_errors(title: str, rows: list[tuple[str, str, Prediction]], limit: int) -> None:
    if not rows or limit <= 0:
        return
    print(f"\n{title} (first {min(limit, len(rows))} of {len(rows)}):")
    for gold, source, prediction in rows[:limit]:
        print(
            f"  [{source} -> {prediction.intent} {prediction.confidence:.2f}"
            f" / raw {prediction.raw_intent} {prediction.raw_confidence:.2f}] {prediction.text!r}"
            f"{'' if gold == source else f' (want {gold})'}"
        )


def write_predictions(
    path: Path,
    heldout: list[tuple[str, str, list[dict[str, Any]]]],
    bitext: list[tuple[str, str, str]],
    held_predictions: list[Prediction],
    bitext_predictions: list[Prediction],
) -> None:
    """One row per parsed sentence, for a designer hunting weak spots in a spreadsheet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "source",
                "label",
                "expected",
                "intent",
                "confidence",
                "raw_intent",
                "raw_confidence",
                "text",
            ]
        )
        rows = [
            ("heldout", intent, intent, p)
            for (_, intent, _), p in zip(heldout, held_predictions, strict=True)
        ]
        rows += [("bitext", r[1], r[2], p) for r, p in zip(bitext, bitext_predictions, strict=True)]
        for source, label, expected, p in rows:
            writer.writerow(
                [
                    source,
                    label,
                    expected,
                    p.intent,
                    f"{p.confidence:.3f}",
                    p.raw_intent,
                    f"{p.raw_confidence:.3f}",
                    p.text,
                ]
            )


def read_training(nlu: Path) -> list[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    return [m.get("text") for m in load_data(str(nlu)).intent_examples]


def duplicate_report(
    training: list[str], heldout: list[str], bitext: list[str], show: int
) -> dict[str, int]:
    """Count (and print a few of) the near duplicates between the three sets of sentences."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.nlu_checks.similarity import THRESHOLD, near_duplicates

    pairs = {
        "heldout_vs_training": near_duplicates(heldout, training),
        "training_vs_bitext": near_duplicates(training, bitext),
        "heldout_vs_bitext": near_duplicates(heldout, bitext),
    }
    print(f"\nNear duplicates (similarity >= {THRESHOLD}, numbers masked):")
    for name, found in pairs.items():
        print(f"  {name}: {len(found)}")
        for duplicate in found[:show]:
            print(f"    {duplicate}")
    return {name: len(found) for name, found in pairs.items()}


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    sensitive = sensitive_intents(args.security)
    heldout = read_heldout(args.heldout)
    bitext = read_bitext(args.eval_dir)
    report: dict[str, Any] = {"sensitive_intents": sorted(sensitive)}
    report["near_duplicates"] = duplicate_report(
        read_training(args.nlu),
        [text for text, _, _ in heldout],
        [text for text, _, _ in bitext],
        args.show_errors,
    )
    if args.duplicates:
        return report

    with tempfile.TemporaryDirectory(prefix="cartguard-nlu-") as tmp:
        model = args.model
        if model is None:
            model, seconds = train_model(args.config, args.nlu, Path(tmp))
            report["training_seconds"] = round(seconds, 1)
        report["model"] = str(model)
        texts = [text for text, _, _ in heldout] + [text for text, _, _ in bitext]
        started = time.perf_counter()
        predictions = asyncio.run(predict_all(model, texts))
        report["parse_ms_per_message"] = round(
            1000 * (time.perf_counter() - started) / max(len(texts), 1), 2
        )

    held_predictions, bitext_predictions = predictions[: len(heldout)], predictions[len(heldout) :]

    # 1. held-out split
    held_gold = [intent for _, intent, _ in heldout]
    report["heldout"] = intent_scores(held_gold, [p.intent for p in held_predictions])
    report["heldout"]["entities"] = entity_scores(
        [entities for _, _, entities in heldout], [p.entities for p in held_predictions]
    )
    held_errors = [
        (gold, gold, p)
        for gold, p in zip(held_gold, held_predictions, strict=True)
        if p.intent != gold
    ]

    # 2. Bitext rows that map onto a Cartguard intent
    mapped = [(row, p) for row, p in zip(bitext, bitext_predictions, strict=True) if row[2]]
    report["bitext_mapped"] = intent_scores(
        [r[2] for r, _ in mapped], [p.intent for _, p in mapped]
    )
    mapped_errors = [(r[2], r[1], p) for r, p in mapped if p.intent != r[2]]

    # 3. Bitext rows with no Cartguard intent that would still start a sensitive flow
    unmapped = [(row, p) for row, p in zip(bitext, bitext_predictions, strict=True) if not row[2]]
    alarms = [(r, p) for r, p in unmapped if p.intent in sensitive]
    report["bitext_unmapped"] = {
        "n": len(unmapped),
        "sensitive_above_threshold": len(alarms),
        "sensitive_raw_top_intent": sum(1 for _, p in unmapped if p.raw_intent in sensitive),
        "predicted": dict(Counter(p.intent for _, p in unmapped).most_common()),
        "alarms_by_bitext_intent": dict(Counter(r[1] for r, _ in alarms).most_common()),
    }

    print_intent_table("Held-out split (tests/nlu/heldout.yml)", report["heldout"])
    ent = report["heldout"]["entities"]
    print(
        f"  entities: precision={ent['precision']:.4f} recall={ent['recall']:.4f} "
        f"F1={ent['f1']:.4f} balance_type value errors={ent['balance_type_value_errors']}"
    )
    print_errors("Held-out misses", held_errors, args.show_errors)
    print_intent_table("Bitext mapped rows", report["bitext_mapped"])
    print_errors("Bitext mapped misses", mapped_errors, args.show_errors)
    unm = report["bitext_unmapped"]
    print(
        f"\nBitext unmapped rows: n={unm['n']}  predicted SENSITIVE above the fallback threshold="
        f"{unm['sensitive_above_threshold']}  (DIET's raw top guess sensitive: "
        f"{unm['sensitive_raw_top_intent']})"
    )
    print(f"  predicted as: {unm['predicted']}")
    if alarms:
        print(f"  alarms by Bitext intent: {unm['alarms_by_bitext_intent']}")
        print_errors(
            "Unmapped rows predicted sensitive",
            [("", r[1], p) for r, p in alarms],
            args.show_errors,
        )
    if args.predictions:
        write_predictions(args.predictions, heldout, bitext, held_predictions, bitext_predictions)
    if "training_seconds" in report:
        print(f"\ntraining: {report['training_seconds']} s", end="; ")
    print(f"parsing: {report['parse_ms_per_message']} ms per message")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parsed message at debug level; thousands of lines hide the report.
    configure_structlog(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    report = evaluate(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
