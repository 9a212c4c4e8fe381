"""Codes at the edge: a bare six-digit number is tokenized only while a step-up is pending in
that conversation, as recorded in the shop database by the step-up gate (never by the client).

Attack first (issue 16): ``code:123456``, ``#123456``, ``+123456``, ``code.123456`` were
accepted by the code form but not tokenized at the edge, so a valid code reached tracker.db
and the logs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cartguard.channels.edge import protect_sync
from cartguard.pii.tokens import TOKEN_RE
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.stepup.service import StepUpService, code_pending
from cartguard.vault import get_vault

SHAPES = ("730518", "code:730518", "#730518", "+730518", "code.730518", "it's 730 518")


@pytest.fixture(autouse=True)
def _vault(data_dir: Path) -> None:
    get_vault.cache_clear()


def ask(conversation: str, customer: int = 1) -> None:
    with session_scope() as session:
        StepUpService(session).ask_for_code(customer, conversation)


@pytest.mark.parametrize("shape", SHAPES)
def test_code_shapes_are_tokenized_while_a_step_up_is_pending(shape: str) -> None:
    ask("conv-pending-1")
    result = protect_sync(shape, customer_id=1, conversation_id="conv-pending-1")
    assert "730" not in result.text and TOKEN_RE.search(result.text), result.text
    assert result.pii_removed == ("OTP_CODE",)
    token = TOKEN_RE.search(result.text).group(0)
    assert get_vault().detokenize(token).replace(" ", "") == "730518"


@pytest.mark.parametrize("shape", SHAPES[:5])
def test_six_digits_are_left_alone_in_a_conversation_without_a_pending_step_up(shape: str) -> None:
    ask("conv-pending-2")  # another conversation's step-up does not count here
    result = protect_sync(shape, customer_id=1, conversation_id="conv-other")
    assert result.text == shape and result.pii_removed == ()


def test_withdrawn_ended_and_expired_requests_no_longer_count() -> None:
    ask("conv-pending-3")
    with session_scope() as session:
        assert code_pending(session, "conv-pending-3")
        StepUpService(session).withdraw_code_request("conv-pending-3")
    assert protect_sync("730518", customer_id=1, conversation_id="conv-pending-3").text == "730518"
    ask("conv-pending-4")
    with session_scope() as session:
        StepUpService(session).end("conv-pending-4")
        assert not code_pending(session, "conv-pending-4")
    ask("conv-pending-5")
    with session_scope() as session:
        assert not code_pending(session, "conv-pending-5", now=utcnow() + timedelta(minutes=11))
        assert code_pending(session, "conv-pending-5", now=utcnow() + timedelta(minutes=9))


def test_the_request_stays_open_through_a_lockout() -> None:
    """After five wrong codes the bot stops asking, but shoppers keep typing codes: those must
    still be tokenized, not stored in clear (seen in the end-to-end run)."""
    from cartguard.stepup.enrolment import enroll_demo_customers

    customer = 4
    with session_scope() as session:
        enroll_demo_customers(session, [customer])
    ask("conv-pending-7", customer)
    outcome = None
    for _ in range(5):
        with session_scope() as session:
            outcome = StepUpService(session).verify(customer, "conv-pending-7", "000000")
    assert outcome is not None and outcome.locked
    result = protect_sync("code:730518", customer_id=customer, conversation_id="conv-pending-7")
    assert "730518" not in result.text and result.pii_removed == ("OTP_CODE",)


def test_an_anonymous_conversation_cannot_have_a_pending_code() -> None:
    with session_scope() as session:
        StepUpService(session).ask_for_code(None, "conv-pending-6")  # type: ignore[arg-type]
        assert not code_pending(session, "conv-pending-6")
