"""Step-up lockout, proven through the running assistant (not by a story that sets the slot).

``tests/stories/test_stepup.yml`` checks only the dialogue policy (``rasa test`` never calls
the action server). Here a shopper types codes into the real webchat channel of a running Rasa
with the real action server and shop database: after five wrong codes the assistant stops
asking; a sixth wrong code, and then the right one, are refused the same way, and the balance
is never shown. The lockout is also visible where staff look for it: the enrolment is locked
and the audit log has a ``stepup.lockout`` entry.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import pytest

from cartguard.responses import response_text
from tests.e2e.test_pii_end_to_end import Shopper

pytestmark = pytest.mark.slow

CUSTOMER = 3  # not used by the other full-stack tests that need a step-up
FAILED = response_text("utter_stepup_failed")
STOPPED = response_text("utter_stepup_stopped")
CODE_PROMPT = response_text("utter_ask_otp_code")


def wrong_code(right: str, n: int) -> str:
    """Six digits that are not the current code (nor, practically, a neighbouring one)."""
    return f"{(int(right) + 111111 * n) % 1_000_000:06d}"


def test_six_wrong_codes_lock_step_up_and_then_the_right_code_is_refused(stack):
    token = stack.cli("login-token", str(CUSTOMER))

    async def talk() -> dict[str, list[list[str]]]:
        seen: dict[str, list[list[str]]] = {"wrong": [], "after": []}
        async with Shopper(stack.rasa_url, token) as shopper:
            asked = await shopper.say("what's my store credit?")
            assert CODE_PROMPT in asked, asked  # the test must really be at the code prompt
            right = stack.cli("totp-code", str(CUSTOMER))
            for n in range(1, 6):
                seen["wrong"].append(await shopper.say(wrong_code(right, n)))
            # locked: asking again and typing a sixth wrong code, then the right one
            assert CODE_PROMPT in await shopper.say("what's my store credit?")
            seen["after"].append(await shopper.say(wrong_code(right, 6)))
            assert CODE_PROMPT in await shopper.say("what's my store credit?")
            seen["after"].append(await shopper.say(stack.cli("totp-code", str(CUSTOMER))))
        return seen

    try:
        seen = asyncio.run(talk())
        for reply in seen["wrong"][:4]:  # wrong codes 1-4: the same failure, asked again
            assert FAILED in reply and STOPPED not in reply and CODE_PROMPT in reply, reply
        assert FAILED in seen["wrong"][4] and STOPPED in seen["wrong"][4]  # the fifth locks
        sixth_wrong, right_code = seen["after"]
        assert FAILED in sixth_wrong and STOPPED in sixth_wrong
        # the right code while locked reads exactly like a wrong one, and shows nothing
        assert right_code == sixth_wrong
        assert not any("store credit" in text for text in right_code)

        with closing(sqlite3.connect(stack.data_dir / "shop.db")) as db:
            locked_until = db.execute(
                "SELECT locked_until FROM stepup_enrolments WHERE customer_id = ?", (CUSTOMER,)
            ).fetchone()[0]
            lockouts = db.execute(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'stepup.lockout' AND subject = ?",
                (f"customer:{CUSTOMER}",),
            ).fetchone()[0]
            sessions = db.execute(
                "SELECT COUNT(*) FROM stepup_sessions WHERE customer_id = ?", (CUSTOMER,)
            ).fetchone()[0]
        assert locked_until is not None and lockouts >= 1 and sessions == 0
    finally:
        # The stack is shared by the session's other full-stack tests: leave no lockout behind.
        with closing(sqlite3.connect(stack.data_dir / "shop.db")) as db, db:
            db.execute(
                "UPDATE stepup_enrolments SET failures = 0, locked_until = NULL "
                "WHERE customer_id = ?",
                (CUSTOMER,),
            )
