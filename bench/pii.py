#!/usr/bin/env python
"""Measure cartguard.pii on Presidio's synthetic data set: per-label precision, recall, F2, latency.

Measurement only: the data set is never used to build rules. It is found at
``<repo>/../shared/eval/presidio_synth_dataset_v2.json`` (override the directory with
``CARTGUARD_EVAL_DIR``).

Matching follows presidio-research's span evaluation: a prediction is a true positive when it
has the gold span's label and their overlap ratio (shared characters / the longer span) is at
least ``--overlap`` (default 0.5); every gold and predicted span is matched at most once.
Only labels the detector produces and the data set annotates are scored.

    .venv/bin/python bench/pii.py [--overlap 0.5] [--errors PHONE_NUMBER]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cartguard.pii import detect  # noqa: E402

SCORED = (
    "CREDIT_CARD",
    "EMAIL_ADDRESS",
    "IBAN_CODE",
    "PHONE_NUMBER",
    "US_SSN",
    "IP_ADDRESS",
    "PERSON",
    "STREET_ADDRESS",
)
GOALS = {"CREDIT_CARD": 0.98, "EMAIL_ADDRESS": 0.99, "IBAN_CODE": 0.99, "PHONE_NUMBER": 0.85}
PRESIDIO = {
    "CREDIT_CARD": 0.81,
    "EMAIL_ADDRESS": 1.0,
    "IBAN_CODE": 1.0,
    "US_SSN": 1.0,
    "PHONE_NUMBER": 0.27,
    "PERSON": 0.63,
}


def dataset_path() -> Path:
    base = Path(os.environ.get("CARTGUARD_EVAL_DIR", REPO.parent / "shared" / "eval"))
    return base / "presidio_synth_dataset_v2.json"


def overlap_ratio(a: tuple[int, int], b: tuple[int, int]) -> float:
    shared = min(a[1], b[1]) - max(a[0], b[0])
    return max(0, shared) / max(a[1] - a[0], b[1] - b[0])


def f_beta(precision: float, recall: float, beta: float = 2.0) -> float:
    if precision == 0 and recall == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overlap", type=float, default=0.5, help="minimum overlap ratio")
    parser.add_argument("--errors", default="", help="print misses/false hits of this label")
    args = parser.parse_args()

    path = dataset_path()
    if not path.exists():
        print(f"evaluation data not found at {path}; set CARTGUARD_EVAL_DIR", file=sys.stderr)
        return 2
    records = json.loads(path.read_text())

    detect("warm up: my name is Jane, 4242 4242 4242 4242")  # build pipelines outside timing
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    latencies: list[float] = []
    for record in records:
        text = record["full_text"]
        started = time.perf_counter()
        found = detect(text)
        latencies.append(time.perf_counter() - started)
        gold = [
            (s["start_position"], s["end_position"], s["entity_type"])
            for s in record["spans"]
            if s["entity_type"] in SCORED
        ]
        predicted = [(s.start, s.end, s.label) for s in found if s.label in SCORED]
        unmatched_pred = list(predicted)
        for g in gold:
            match = next(
                (
                    p
                    for p in unmatched_pred
                    if p[2] == g[2] and overlap_ratio(p[:2], g[:2]) >= args.overlap
                ),
                None,
            )
            if match:
                tp[g[2]] += 1
                unmatched_pred.remove(match)
            else:
                fn[g[2]] += 1
                if args.errors == g[2]:
                    print(f"MISS {text[g[0] : g[1]]!r} in {text[:120]!r}")
        for p in unmatched_pred:
            fp[p[2]] += 1
            if args.errors == p[2]:
                print(f"FALSE {text[p[0] : p[1]]!r} in {text[:120]!r}")

    print(f"{len(records)} sentences, overlap ratio >= {args.overlap}\n")
    print(f"{'label':<16}{'gold':>6}{'prec':>8}{'recall':>8}{'F2':>8}{'goal':>7}{'presidio':>10}")
    for label in SCORED:
        gold_n = tp[label] + fn[label]
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / gold_n if gold_n else 0.0
        goal = f"{GOALS[label]:.2f}" if label in GOALS else "-"
        base = f"{PRESIDIO[label]:.2f}" if label in PRESIDIO else "-"
        print(
            f"{label:<16}{gold_n:>6}{precision:>8.3f}{recall:>8.3f}"
            f"{f_beta(precision, recall):>8.3f}{goal:>7}{base:>10}"
        )
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000
    worst = latencies[-1] * 1000
    print(f"\nlatency per sentence: p50 {p50:.3f} ms, p95 {p95:.3f} ms, max {worst:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
