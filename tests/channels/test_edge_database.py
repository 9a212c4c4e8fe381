"""A shop database that does not answer holds up only the messages that need it.

The edge's database work (the step-up lookup for six-digit numbers, the vault's tokens for
e-mail addresses and phone numbers) used to run on the detector's single lane: one message
waiting for a blackholed database kept every other message of the replica waiting behind it,
until the channel gave up on them after 15 s (the soak's blackhole phase: "try again" after
15 s, p95 20 s while the fault lasted). The stuck database is a threading.Event here: the
test releases it only once the other message got through, so the old code never finishes.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from cartguard.channels import edge

STUCK_SECONDS = 20.0  # how long a test lets the stuck "database" wait before giving up


@pytest.fixture()
def stuck() -> SimpleNamespace:
    state = SimpleNamespace(entered=threading.Event(), release=threading.Event())
    yield state
    state.release.set()  # never leave an edge thread blocked for the next test


def _blocking(state: SimpleNamespace, answer: object):
    def wait(*_args: object, **_kwargs: object) -> object:
        state.entered.set()
        state.release.wait(STUCK_SECONDS)
        return answer

    return wait


async def _entered(state: SimpleNamespace) -> None:
    await asyncio.wait_for(asyncio.to_thread(state.entered.wait, STUCK_SECONDS), STUCK_SECONDS)


async def test_a_message_whose_token_waits_for_the_database_does_not_hold_up_others(
    stuck: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = SimpleNamespace(tokenize=_blocking(stuck, "tok_EMAIL_waited"))
    monkeypatch.setattr("cartguard.vault.get_vault", lambda: vault)
    waiting = asyncio.create_task(
        edge.protect("mail me at shopper@example.org", customer_id=1, conversation_id="c-db-1")
    )
    await _entered(stuck)

    plain = await asyncio.wait_for(
        edge.protect("where is my order?", customer_id=1, conversation_id="c-db-2"), 10
    )
    assert plain.text == "where is my order?" and plain.pii_removed == ()
    stuck.release.set()
    done = await asyncio.wait_for(waiting, 10)
    assert "shopper@example.org" not in done.text and "tok_EMAIL_waited" in done.text


async def test_a_code_lookup_waiting_for_the_database_does_not_hold_up_others(
    stuck: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge, "expected_in", _blocking(stuck, frozenset()))
    waiting = asyncio.create_task(
        edge.protect("my code is 482 913", customer_id=1, conversation_id="c-db-3")
    )
    await _entered(stuck)

    plain = await asyncio.wait_for(
        edge.protect("has my parcel left?", customer_id=1, conversation_id="c-db-4"), 10
    )
    assert plain.text == "has my parcel left?"
    stuck.release.set()
    done = await asyncio.wait_for(waiting, 10)
    assert done.text == "my code is 482 913"  # no step-up pending: left alone
