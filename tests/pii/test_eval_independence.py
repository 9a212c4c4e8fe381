"""Honest evaluation: no value, sentence or rule of the evaluation data in the detector or its
tests. ``../shared/eval`` is for measuring (bench/pii.py); issue 16 found phone cue words, a
card prefix and test values copied from it, which made the published figures no measurement."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
EVAL = Path(os.environ.get("CARTGUARD_EVAL_DIR", PROJECT.parent / "shared" / "eval"))
CHECKED = [
    *sorted((PROJECT / "cartguard" / "pii").rglob("*.py")),
    *sorted((PROJECT / "tests" / "pii").rglob("*.py")),
    PROJECT / "tests" / "e2e" / "test_pii_end_to_end.py",
    PROJECT / "docs" / "pii.md",
]


def _eval_values() -> set[str]:
    path = EVAL / "presidio_synth_dataset_v2.json"
    assert path.exists(), f"evaluation data not found at {path} (set CARTGUARD_EVAL_DIR)"
    values = set()
    for record in json.loads(path.read_text()):
        text = record["full_text"]
        for span in record["spans"]:
            value = text[span["start_position"] : span["end_position"]].strip()
            if len(value) >= 6 and re.search(r"[\d@]", value):
                values.add(value)
    return values


def test_no_evaluation_value_in_the_detector_its_tests_or_docs() -> None:
    values = _eval_values()
    assert len(values) > 300  # the data set was read
    found = [
        f"{path.relative_to(PROJECT)}: {value!r}"
        for path in CHECKED
        for value in values
        if value in path.read_text()
    ]
    assert found == []


def test_the_named_eval_rules_are_gone() -> None:
    from cartguard.pii.recognizers import card, phone
    from cartguard.pii.validators import card_number_valid

    for cue in ("answering at", "messages to", "registered", "desk"):
        assert cue not in phone._CUE.pattern
    assert "0604" not in Path(card.__file__).read_text()
    assert not card_number_valid("0604" + "000000000000")  # no such issuer range
