"""What the assistant says lives in domain.yml, and actions only choose it by name.

Designers edit wording in ``domain.yml``; these checks keep it that way: every response an
action names exists, every placeholder a response has is one the actions fill (the other tests
render each reply and fail on a missing value), and no action module carries a sentence of
its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.dialogue.helpers import DOMAIN, ROOT

SPEAKING_CODE = sorted((ROOT / "actions").glob("*.py")) + [ROOT / "cartguard/stepup/service.py"]
RESPONSE_NAME = re.compile(r"[\"'](utter_\w+)[\"']")


def named_responses(path: Path) -> set[str]:
    return set(RESPONSE_NAME.findall(path.read_text()))


def string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals of a module, without docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def looks_like_a_sentence(text: str) -> bool:
    """Four words or more ending like a sentence (what a shopper would read)."""
    words = re.findall(r"[A-Za-z']+", text)
    return len(words) >= 4 and bool(re.search(r"[.?!]\s*$|[.?!] [A-Z]", text))


@pytest.mark.parametrize("path", SPEAKING_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_response_named_in_code_exists_in_the_domain(path):
    missing = named_responses(path) - set(DOMAIN["responses"])
    assert not missing, f"{path.name} names responses domain.yml lacks: {sorted(missing)}"


@pytest.mark.parametrize("path", SPEAKING_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shopper_facing_sentence_is_written_in_code(path):
    sentences = [(line, s) for line, s in string_constants(path) if looks_like_a_sentence(s)]
    assert not sentences, f"{path.name}: move these into domain.yml responses: {sentences}"


def test_the_sentence_check_catches_a_sentence():
    assert looks_like_a_sentence("Sorry, I can't reach our order system right now.")
    assert looks_like_a_sentence("Your refunds are on their way! Ask me any time")
    assert not looks_like_a_sentence("utter_order_not_found")
    assert not looks_like_a_sentence("Shopper asked to talk to a person: ")


def test_the_code_prompt_and_the_failure_read_the_same_in_chat_and_on_the_secure_page():
    """The web service's code form shows the chat's own response, read from domain.yml."""
    from cartguard.responses import response_text
    from cartguard.stepup.service import VerifyOutcome

    assert VerifyOutcome(ok=False).response == "utter_stepup_failed"
    assert VerifyOutcome(ok=False).message == response_text("utter_stepup_failed")
    assert VerifyOutcome(ok=False, locked=True).message == VerifyOutcome(ok=False).message
    assert DOMAIN["responses"]["utter_stepup_failed"][0]["text"] == VerifyOutcome(ok=False).message


def test_a_missing_placeholder_value_is_an_error_not_a_half_sentence():
    from cartguard.responses import ResponseMissing, response_text

    with pytest.raises(ResponseMissing, match="order_id"):
        response_text("utter_order_not_found")
    with pytest.raises(ResponseMissing, match="utter_no_such_thing"):
        response_text("utter_no_such_thing")
