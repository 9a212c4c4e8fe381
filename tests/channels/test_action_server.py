"""The real rasa-sdk action server, started in-process the way the launcher builds it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from rasa_sdk import Action
from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.plugin import plugin_manager

from cartguard.action_server import ActionServerUnprotected, create_app, ensure_protected
from cartguard.keys import Keys, load_keys
from rasa_sdk_plugins.action_auth import HEADER, PLUGIN_NAME
from tests.channels.harness import running


class ActionPing(Action):
    """A trivial action: proves a call got through to the executor."""

    def name(self) -> str:
        return "action_cartguard_test_ping"

    async def run(self, dispatcher, tracker, domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="pong")
        return []


CALL = {
    "next_action": "action_cartguard_test_ping",
    "sender_id": "abc",
    "tracker": {
        "sender_id": "abc",
        "slots": {},
        "latest_message": {"text": "hi", "intent": {}, "entities": []},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    },
    "domain": {},
    "version": "3.6.2",
}


@pytest.fixture()
async def action_server(data_dir) -> AsyncIterator[str]:
    app = create_app(sys.modules[__name__])
    async with running(app) as url:
        yield url


async def call(url: str, path: str, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http:
        method = http.post if path == "/webhook" else http.get
        kwargs = {"json": CALL} if path == "/webhook" else {}
        async with method(url + path, headers=headers or {}, **kwargs) as resp:
            return resp.status


def test_rasa_sdk_discovers_the_plugin() -> None:
    assert plugin_manager().get_plugin(PLUGIN_NAME) is not None


async def test_calls_without_the_token_are_refused(action_server) -> None:
    assert await call(action_server, "/webhook") == 401
    assert await call(action_server, "/actions") == 401


async def test_calls_with_a_wrong_token_are_refused(action_server) -> None:
    token = load_keys().get("action_token")
    for wrong in ["nope", token[:-1], token + "x", token.upper() if token.upper() != token else ""]:
        assert await call(action_server, "/webhook", {HEADER: wrong}) == 401


async def test_rasa_with_the_token_runs_the_action(action_server) -> None:
    headers = {HEADER: load_keys().get("action_token")}
    async with aiohttp.ClientSession() as http:
        async with http.post(action_server + "/webhook", json=CALL, headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["responses"][0]["text"] == "pong"


async def test_health_stays_open(action_server) -> None:
    assert await call(action_server, "/health") == 200


def test_unprotected_app_is_refused_at_start_up() -> None:
    bare = create_sdk_app(sys.modules[__name__], cors_origins=None)
    with pytest.raises(ActionServerUnprotected, match="rasa_sdk_plugins"):
        ensure_protected(bare)


def test_missing_action_token_stops_start_up(data_dir, monkeypatch) -> None:
    import rasa_sdk_plugins.action_auth as action_auth

    def keys_without_token() -> Keys:
        return Keys(values={}, vault_keys={}, dev=True)

    monkeypatch.setattr(action_auth, "load_keys", keys_without_token)
    with pytest.raises(ActionServerUnprotected, match="action_token"):
        create_app(sys.modules[__name__])


def test_launcher_exits_with_a_message_when_unprotected(data_dir, monkeypatch, capsys) -> None:
    import cartguard.action_server as launcher

    def unprotected(actions: object) -> None:
        raise ActionServerUnprotected("refusing to start the action server: test")

    monkeypatch.setattr(launcher, "create_app", unprotected)
    assert launcher.main(["--port", "0"]) == 2
    assert "refusing to start" in capsys.readouterr().err
