"""Every sensitive action is unreachable without a fresh step-up, in every story and rule.

Walks all training stories and rules (``data/``) and test stories (``tests/stories``): each
time a sensitive action from ``security.yml`` appears, the steps before it in the same block
must be the gate for its own intent with ``stepup_status: fresh``. The only other way to reach
sensitive work is ``action_resume_request``, which re-checks step-up on the server (tested in
test_stepup_flow.py). The committed gate rules must also match the policy file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from cartguard.stepup.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "security.yml")


def story_blocks() -> list[tuple[str, list[dict]]]:
    blocks = []
    files = sorted((ROOT / "data").rglob("*.yml")) + sorted((ROOT / "tests/stories").glob("*.yml"))
    for path in files:
        data = yaml.safe_load(path.read_text()) or {}
        for key in ("stories", "rules"):
            for block in data.get(key) or []:
                name = block.get("story") or block.get("rule")
                blocks.append((f"{path.relative_to(ROOT)}: {name}", block.get("steps") or []))
    return blocks


def guarded(steps: list[dict], index: int, action: str) -> bool:
    """True when steps[index] (the sensitive action) follows its gate with a fresh verdict."""
    before = steps[:index]
    if len(before) < 3:
        return False
    slot, gate, user = before[-1], before[-2], before[-3]
    intents = {user.get("intent")} | {o.get("intent") for o in user.get("or", [])}
    expected_intents = {i for i, a in POLICY.sensitive_intents.items() if a == action}
    return (
        gate.get("action") == "action_stepup_gate"
        and {"stepup_status": "fresh"} in (slot.get("slot_was_set") or [])
        and bool(intents & expected_intents)
    )


BLOCKS = story_blocks()


def test_there_are_stories_and_rules_to_walk():
    assert len(BLOCKS) > 30


@pytest.mark.parametrize("name,steps", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_sensitive_actions_follow_a_fresh_gate(name, steps):
    for index, step in enumerate(steps):
        action = step.get("action")
        if action in POLICY.sensitive_actions:
            assert guarded(steps, index, action), f"{name}: {action} reachable without step-up"


@pytest.mark.parametrize("intent", sorted(POLICY.sensitive_intents))
def test_every_sensitive_intent_goes_through_the_gate(intent):
    for name, steps in BLOCKS:
        for index, step in enumerate(steps[:-1]):
            if step.get("intent") == intent:
                follower = steps[index + 1].get("action")
                assert follower == "action_stepup_gate", f"{name}: {intent} -> {follower}"


def test_generated_gate_rules_match_security_yml():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/gen_stepup_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "data/rules/stepup.yml").read_text()
    assert committed == module.render(), "data/rules/stepup.yml is stale: run `make rules`"


def test_the_walk_catches_an_unguarded_story():
    steps = [{"intent": "check_balance"}, {"action": "action_check_balance"}]
    assert not guarded(steps, 1, "action_check_balance")


def test_every_sensitive_action_refuses_on_its_own():
    """Defence in depth: the action server class checks step-up itself (not only the rules)."""
    import actions.balances
    import actions.invoices
    import actions.orders
    import actions.payments
    import actions.privacy  # noqa: F401
    from actions.sensitive import SENSITIVE_ACTIONS

    assert set(SENSITIVE_ACTIONS) == set(POLICY.sensitive_actions)
