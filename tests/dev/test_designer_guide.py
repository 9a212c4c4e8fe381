"""docs/designer-guide.md, followed step by step on a temporary copy of the project.

The file snippets are read out of the guide itself (the ``<!-- step: ... -->`` markers), so the
guide and this test cannot drift apart. After steps 1 to 4 (intent and examples, ``security.yml``,
``make rules``, a story), step 5's checks run: ``rasa data validate`` through
``scripts/validate_data.py`` and the step-up coverage walk. Then the point of it all: the new
intent is behind step-up, in the generated rules, in every story, and in the action server's
gate, which asks for a code. A variant of the story without the gate must be caught.

No training: step 6 onwards (train, ``make shell``, ``rasa test``) is covered by the training
benchmark, tests/dev/test_shell_channel.py and ``make rasa-test``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # rasa data validate loads Rasa: about a minute on 2 cores

PROJECT = Path(__file__).resolve().parents[2]
GUIDE = PROJECT / "docs" / "designer-guide.md"
STEP = re.compile(r"<!-- step: (?P<what>[^>]+?) -->\s*```yaml\n(?P<body>.*?)```", re.S)
INTENT, ACTION = "check_gift_card", "action_check_balance"


def guide_steps() -> list[tuple[list[str], str]]:
    return [(m["what"].split(), m["body"]) for m in STEP.finditer(GUIDE.read_text())]


def _insert_after(path: Path, key_line: str, new_line: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.rstrip() == key_line)
    lines.insert(index + 1, new_line + "\n")
    path.write_text("".join(lines))


def follow_guide(root: Path) -> None:
    """Apply the guide's steps 1, 2 and 4 to the project copy at ``root``."""
    for what, body in guide_steps():
        if what[0] == "create":
            (root / what[1]).write_text(body)
        elif what[0] == "add-intent":
            assert f"- {what[1]}" in body
            _insert_after(root / "domain.yml", "intents:", f"  - {what[1]}")
        elif what[0] == "add-sensitive":
            assert f"{what[1]}: {what[2]}" in body
            _insert_after(root / "security.yml", "sensitive_intents:", f"  {what[1]}: {what[2]}")
        else:
            raise AssertionError(f"unknown step in the guide: {what}")


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("designer-project")
    for name in ("config.yml", "domain.yml", "security.yml"):
        shutil.copy2(PROJECT / name, root / name)
    for name in ("data", "tests/stories"):
        shutil.copytree(PROJECT / name, root / name)
    (root / "scripts").mkdir()
    for name in ("gen_stepup_rules.py", "validate_data.py"):
        shutil.copy2(PROJECT / "scripts" / name, root / "scripts" / name)
    (root / "tests" / "dialogue").mkdir(parents=True)
    shutil.copy2(PROJECT / "tests/dialogue/test_stepup_coverage.py", root / "tests/dialogue")
    for name in (".venv", "actions", "cartguard"):  # code, unchanged by a designer
        (root / name).symlink_to(PROJECT / name)
    follow_guide(root)
    return root


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "CARTGUARD_SECURITY_POLICY": str(root / "security.yml")}


def _coverage_module(root: Path, monkeypatch: pytest.MonkeyPatch):
    """The project's step-up coverage test, loaded from the copy (it walks the copy's data)."""
    monkeypatch.setenv("CARTGUARD_SECURITY_POLICY", str(root / "security.yml"))
    path = root / "tests/dialogue/test_stepup_coverage.py"
    spec = importlib.util.spec_from_file_location(f"coverage_{id(path)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_has_the_steps_this_test_follows() -> None:
    kinds = [what[0] for what, _ in guide_steps()]
    assert kinds == ["create", "add-intent", "add-sensitive", "create"], kinds


def test_make_rules_puts_the_new_intent_behind_the_gate(project_copy: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/gen_stepup_rules.py"],
        cwd=project_copy,
        env=_env(project_copy),
        check=True,
        capture_output=True,
    )
    rules = yaml.safe_load((project_copy / "data/rules/stepup.yml").read_text())["rules"]
    names = {rule["rule"] for rule in rules}
    assert {
        f"{INTENT} with a fresh step-up",
        f"{INTENT} needs a code first",
        f"{INTENT} refused by the gate",
    } <= names


def test_rasa_data_validate_passes(project_copy: Path) -> None:
    result = subprocess.run(
        [sys.executable, "scripts/validate_data.py"],
        cwd=project_copy,
        env=_env(project_copy),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_coverage_walk_finds_the_new_intent_gated_everywhere(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coverage = _coverage_module(project_copy, monkeypatch)
    assert coverage.POLICY.sensitive_intents[INTENT] == ACTION
    coverage.test_generated_gate_rules_match_security_yml()
    coverage.test_every_sensitive_intent_goes_through_the_gate(INTENT)
    story = [(n, s) for n, s in coverage.SENSITIVE_BLOCKS if n.startswith("data/stories/gift")]
    assert len(story) == 1  # the guide's story is walked
    for name, steps in coverage.SENSITIVE_BLOCKS:
        coverage.test_sensitive_actions_follow_a_fresh_gate(name, steps)


def test_a_story_that_skips_the_gate_is_caught(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    careless = tmp_path / "careless"
    shutil.copytree(project_copy, careless, symlinks=True)
    story = careless / "data/stories/gift_cards.yml"
    data = yaml.safe_load(story.read_text())
    steps = data["stories"][0]["steps"]
    data["stories"][0]["steps"] = [steps[0], {"action": ACTION}, *steps[4:]]  # no gate
    story.write_text(yaml.safe_dump(data, sort_keys=False))
    coverage = _coverage_module(careless, monkeypatch)
    name, steps = next(
        (n, s) for n, s in coverage.SENSITIVE_BLOCKS if n.startswith("data/stories/gift")
    )
    with pytest.raises(AssertionError, match="reachable without step-up"):
        coverage.test_sensitive_actions_follow_a_fresh_gate(name, steps)


def test_the_action_servers_gate_asks_for_a_code(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch, tracker_factory
) -> None:
    from actions.stepup import ActionStepUpGate
    from cartguard.identity import issue_login_token
    from cartguard.shop.db import session_scope
    from cartguard.stepup.enrolment import enroll_demo_customers
    from cartguard.stepup.policy import get_policy
    from tests.dialogue.helpers import run_action, slot_events

    with session_scope() as session:
        enroll_demo_customers(session, [1])
    monkeypatch.setenv("CARTGUARD_SECURITY_POLICY", str(project_copy / "security.yml"))
    get_policy.cache_clear()
    try:
        metadata = {"auth_token": issue_login_token(1, ttl_seconds=300)}
        tracker = tracker_factory(sender_id="conv-guide", intent=INTENT, metadata=metadata)
        _, events = run_action(ActionStepUpGate(), tracker)
    finally:
        monkeypatch.delenv("CARTGUARD_SECURITY_POLICY")
        get_policy.cache_clear()
    slots = slot_events(events)
    assert slots["stepup_status"] == "required"
    assert slots["pending_action"] == ACTION
