"""The shopper's first turn, through the running assistant: one question at a time.

A shopper opens the chat (greeting and the transcript question) and, instead of answering,
asks for a balance. They must see only the code prompt (which says the transcript question will
come back), then the balance as a sentence, then the transcript question with a worded link to
the privacy notice, and their "yes" must be taken as consent.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from cartguard.responses import response_text
from tests.e2e.test_pii_end_to_end import Shopper

pytestmark = pytest.mark.slow

CUSTOMER = 2  # the browser tests sign in as 2 but never type a code


def test_a_sensitive_first_request_gets_one_question_at_a_time(stack):
    token = stack.cli("login-token", str(CUSTOMER))

    async def talk() -> list[list[str]]:
        async with Shopper(stack.rasa_url, token) as shopper:
            replies = [await shopper.say("hello")]
            replies.append(await shopper.say("what's my gift card balance?"))
            replies.append(await shopper.say(stack.cli("totp-code", str(CUSTOMER))))
            replies.append(await shopper.say("yes"))
            return replies

    greeting, prompt, answer, consent = asyncio.run(talk())
    assert any("may I keep a transcript" in text for text in greeting), greeting
    assert any("[privacy notice](http" in text for text in greeting)  # worded, not a bare URL
    # only the code prompt, saying the open question comes back: no second question beside it
    assert len(prompt) == 1 and "I'll come back to the transcript question" in prompt[0], prompt
    assert re.fullmatch(r"Your gift card balance is \$[\d,]+\.\d\d\.", answer[0]), answer
    assert len(answer) == 2 and answer[1].startswith("One more thing: may I keep a transcript")
    assert consent == [response_text("utter_consent_granted")]
