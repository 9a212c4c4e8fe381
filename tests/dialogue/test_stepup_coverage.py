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
#: only the stories and rules where a sensitive action appears: each case asserts something
SENSITIVE_BLOCKS = [
    (name, steps)
    for name, steps in BLOCKS
    if any(step.get("action") in POLICY.sensitive_actions for step in steps)
]


def test_there_are_stories_and_rules_to_walk():
    assert len(BLOCKS) > 30
    # every sensitive action is reached by at least one story or rule (its fresh-gate rule)
    reached = {s.get("action") for _, steps in SENSITIVE_BLOCKS for s in steps}
    assert POLICY.sensitive_actions <= reached


@pytest.mark.parametrize("name,steps", SENSITIVE_BLOCKS, ids=[b[0] for b in SENSITIVE_BLOCKS])
def test_sensitive_actions_follow_a_fresh_gate(name, steps):
    positions = [i for i, s in enumerate(steps) if s.get("action") in POLICY.sensitive_actions]
    assert positions  # the block was selected for containing one
    for index in positions:
        action = steps[index]["action"]
        assert guarded(steps, index, action), f"{name}: {action} reachable without step-up"


@pytest.mark.parametrize("intent", sorted(POLICY.sensitive_intents))
def test_every_sensitive_intent_goes_through_the_gate(intent):
    followers = [
        (name, steps[index + 1].get("action"))
        for name, steps in BLOCKS
        for index, step in enumerate(steps[:-1])
        if step.get("intent") == intent
    ]
    assert followers, f"no story or rule handles {intent}"
    for name, follower in followers:
        assert follower == "action_stepup_gate", f"{name}: {intent} -> {follower}"


def test_generated_gate_rules_match_security_yml():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/gen_stepup_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "data/rules/stepup.yml").read_text()
    assert committed == module.render(), "data/rules/stepup.yml is stale: run `make rules`"


@pytest.mark.parametrize(
    "steps",
    [
        [{"intent": "check_balance"}, {"action": "action_check_balance"}],
        [  # a gate for another intent does not guard this one
            {"intent": "track_order"},
            {"action": "action_stepup_gate"},
            {"slot_was_set": [{"stepup_status": "fresh"}]},
            {"action": "action_check_balance"},
        ],
        [  # the gate said "required", not "fresh"
            {"intent": "check_balance"},
            {"action": "action_stepup_gate"},
            {"slot_was_set": [{"stepup_status": "required"}]},
            {"action": "action_check_balance"},
        ],
    ],
)
def test_the_walk_catches_an_unguarded_story(steps):
    assert not guarded(steps, len(steps) - 1, "action_check_balance")


# --- the action server itself refuses: every sensitive action, run without a step-up ----------

CUSTOMER = 2  # the seeded shop gives this customer an open and a delivered order


def _one(query) -> str:
    from cartguard.shop.db import session_scope

    with session_scope() as session:
        return session.execute(query.limit(1)).scalar_one()


def slots_that_would_make_it_act(action: str) -> dict[str, str]:
    """The slots with which the action would change something, were step-up fresh."""
    from sqlalchemy import select

    from cartguard.shop.models import Order

    orders = select(Order.id).where(Order.customer_id == CUSTOMER).order_by(Order.id)
    open_order = orders.where(Order.status.in_(("placed", "processing")))
    return {
        "action_cancel_order": {"order_id": _one(open_order)},
        "action_change_shipping_address": {"order_id": _one(open_order)},
        "action_request_refund": {"order_id": _one(orders.where(Order.status == "delivered"))},
        "action_check_balance": {"balance_type": "store_credit"},
    }.get(action, {})


def database_snapshot() -> dict[str, object]:
    """Row counts of every table, and every order's status: what a sensitive action changes."""
    from sqlalchemy import func, select

    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Order
    from cartguard.shop.models._common import Base

    with session_scope() as session:
        counts = {
            name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }
        statuses = dict(session.execute(select(Order.id, Order.status)).all())
    return {"counts": counts, "statuses": statuses}


@pytest.mark.parametrize("action_name", sorted(POLICY.sensitive_actions))
def test_every_sensitive_action_refuses_on_its_own(action_name, tracker_factory):
    """Defence in depth: run the action server's class straight, as a forged dialogue state
    (``stepup_status: fresh``) or a rule mistake would, for a signed-in customer who never
    typed a code in this conversation. It must refuse, say why, and change nothing."""
    from actions.stepup import SENSITIVE_ACTIONS  # the registry action_resume_request uses
    from cartguard.identity import issue_login_token
    from tests.dialogue.helpers import responses, run_action, slot_events, texts

    assert set(SENSITIVE_ACTIONS) == set(POLICY.sensitive_actions)
    tracker = tracker_factory(
        sender_id=f"conv-no-stepup-{action_name}",
        intent=next(i for i, a in POLICY.sensitive_intents.items() if a == action_name),
        slots={"stepup_status": "fresh", **slots_that_would_make_it_act(action_name)},
        metadata={"auth_token": issue_login_token(CUSTOMER, ttl_seconds=300)},
    )
    before = database_snapshot()
    messages, events = run_action(SENSITIVE_ACTIONS[action_name](), tracker)
    assert responses(messages) == ["utter_not_verified"]
    assert "verify it's you" in texts(messages)
    assert slot_events(events).get("stepup_status", "unset") is None
    assert database_snapshot() == before  # no cancel, refund, link, export or erasure
