"""The action server's event loop never waits for the shop database.

Every action asks the database who the shopper is (a login token bound to a shop session needs
the session to be live; a Messenger link is re-checked; an EXTERNAL identity is used up). The
action server runs all conversations' actions on one event loop: a lookup made on it stops every
other conversation for as long as the database takes - with a silent database, until the
driver's timeout. The lookups run in worker threads, like the actions' own work.

The stand-in lookup below answers only once the event loop has run something else: made on the
loop it could never be answered (it gives up after 5 s and the test fails).
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from rasa_sdk.executor import CollectingDispatcher

from tests.dialogue.helpers import DOMAIN, extracted


def _answered_once_the_loop_moves(
    monkeypatch: pytest.MonkeyPatch, module: object
) -> threading.Event:
    loop_ran = threading.Event()

    def identify(tracker: object) -> tuple[None, list]:
        if not loop_ran.wait(5):
            raise AssertionError("the identity lookup held the event loop")
        return None, []

    monkeypatch.setattr(module, "identify", identify)
    return loop_ran


async def _run_beside_the_loop(loop_ran: threading.Event, work) -> object:
    asyncio.get_running_loop().call_soon(loop_ran.set)  # runs only while the loop is free
    return await work


def test_an_action_looks_up_the_shopper_off_the_event_loop(monkeypatch, tracker_factory):
    import actions.base
    from actions.orders import ActionTrackOrder

    loop_ran = _answered_once_the_loop_moves(monkeypatch, actions.base)
    dispatcher = CollectingDispatcher()
    asyncio.run(
        _run_beside_the_loop(
            loop_ran, ActionTrackOrder().run(dispatcher, tracker_factory(), DOMAIN)
        )
    )
    assert [m.get("response") for m in dispatcher.messages] == ["utter_please_login"]


def test_the_code_form_looks_up_the_shopper_off_the_event_loop(monkeypatch, tracker_factory):
    import actions.stepup
    from actions.stepup import ValidateStepUpForm

    loop_ran = _answered_once_the_loop_moves(monkeypatch, actions.stepup)
    tracker = extracted(
        tracker_factory(
            intent="provide_otp",
            text="123456",
            slots={"requested_slot": "otp_code"},
            active_loop="stepup_form",
        ),
        otp_code="123456",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(
        _run_beside_the_loop(loop_ran, ValidateStepUpForm().run(dispatcher, tracker, DOMAIN))
    )
    assert any(e.get("name") == "otp_code" for e in events)
