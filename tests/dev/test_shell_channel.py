"""The development shell channel (``make shell``): dev keys and loopback only, a demo identity.

Attacks first: production keys (an environment override, or a key file not marked dev), a
public bind address, a proxy in front, an unknown customer, and a request that claims to come
through a proxy must all be refused. Then the identity: a message through the channel reaches
Rasa with a login token that the actions verify as the chosen customer, after the same edge
redaction as the real channels; ``rasa interactive``'s action calls carry the same identity.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from faker import Faker

from tests.webapp.webharness import ServerThread

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def fresh_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from cartguard.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_production_keys_from_the_environment_are_refused(fresh_settings) -> None:
    from devtools.shell_channel import DevChannelRefused, DevShellInput

    fresh_settings.setenv("CARTGUARD_LOGIN_KEY", "a-production-login-key-from-a-secret-store")
    with pytest.raises(DevChannelRefused, match="generated development keys"):
        DevShellInput.from_credentials({"customer_id": 1})


def test_a_key_file_not_marked_dev_is_refused(fresh_settings, tmp_path: Path) -> None:
    from cartguard.settings import get_settings
    from devtools.shell_channel import DevChannelRefused, check_may_run

    production = json.loads(get_settings().keys_file.read_text())
    production["dev"] = False
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(production))
    fresh_settings.setenv("CARTGUARD_KEYS_FILE", str(path))
    get_settings.cache_clear()
    with pytest.raises(DevChannelRefused, match="generated development keys"):
        check_may_run(1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CARTGUARD_HOST", "0.0.0.0"),
        ("CARTGUARD_HOST", "10.1.2.3"),
        ("CARTGUARD_BEHIND_TLS_PROXY", "1"),
    ],
)
def test_a_public_address_or_a_proxy_is_refused(fresh_settings, variable: str, value: str) -> None:
    from devtools.shell_channel import DevChannelRefused, check_may_run

    fresh_settings.setenv(variable, value)
    with pytest.raises(DevChannelRefused, match="loopback only"):
        check_may_run(1)


@pytest.mark.parametrize("customer", [999, "1; drop table", ""])
def test_an_unknown_customer_is_refused(fresh_settings, customer: object) -> None:
    from devtools.shell_channel import DevChannelRefused, check_may_run

    with pytest.raises(DevChannelRefused, match="customer"):
        check_may_run(customer)


def test_make_shell_with_production_keys_exits_before_starting_anything(data_dir: Path) -> None:
    env = {**os.environ, "CARTGUARD_ACTION_TOKEN": "a-production-token-from-a-secret-store"}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.shell_channel", "shell", "--customer", "1"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2
    assert "refused" in result.stderr and "development keys" in result.stderr
    assert "loading the model" not in result.stdout  # nothing was started


# --------------------------------------------------------------------- identity


class Captured:
    def __init__(self) -> None:
        self.messages: list = []

    async def __call__(self, message) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "ok")


@pytest.fixture()
def channel_server(fresh_settings):
    from sanic import Sanic

    from devtools.shell_channel import DevShellInput

    channel = DevShellInput.from_credentials({"customer_id": 2})
    captured = Captured()
    app = Sanic(f"dev_shell_test_{id(captured)}")
    app.blueprint(channel.blueprint(captured), url_prefix=f"/webhooks/{channel.url_prefix()}")
    server = ServerThread(app).start()
    yield server.base_url + "/webhooks/rest/webhook", captured
    server.stop()


def test_a_message_carries_the_chosen_customer_after_edge_redaction(channel_server) -> None:
    from rasa_sdk import Tracker

    from actions.identity import identify

    url, captured = channel_server
    card = "4242 4242 4242 4242"
    email = Faker().email()
    reply = requests.post(
        url,
        json={
            "sender": "designer-1",
            "message": f"my card {card}, mail me at {email}",
            "metadata": {"auth_token": "forged"},
            "input_channel": "socketio",
        },
        timeout=60,
    )
    assert reply.status_code == 200 and reply.json() == [
        {"recipient_id": "designer-1", "text": "ok"}
    ]
    (message,) = captured.messages
    assert card not in message.text and "4242" in message.text  # masked, last 4 kept
    assert email not in message.text  # the address became a vault token
    assert "CREDIT_CARD" in message.metadata["pii_removed"]
    assert message.input_channel == "cmdline"  # not what the client claimed
    event = {
        "event": "user",
        "text": message.text,
        "metadata": message.metadata,
        "parse_data": {"intent": {"name": "check_balance"}},
    }
    tracker = Tracker("designer-1", {}, {}, [event], False, None, {}, "action_listen")
    customer_id, _ = identify(tracker)
    assert customer_id == 2  # the token the actions verify names the chosen customer


def test_the_stream_mode_of_rasas_shell_prompt_carries_the_identity_too(channel_server) -> None:
    from cartguard.identity import verify_login_token

    url, captured = channel_server
    reply = requests.post(
        url + "?stream=true&token=", json={"sender": "s", "message": "hi"}, timeout=60
    )
    assert reply.status_code == 200
    assert json.loads(reply.text.splitlines()[0])["text"] == "ok"
    assert verify_login_token(captured.messages[-1].metadata["auth_token"]) == 2


def test_a_request_through_a_proxy_is_refused(channel_server) -> None:
    url, captured = channel_server
    reply = requests.post(
        url,
        json={"sender": "s", "message": "hi"},
        headers={"X-Forwarded-For": "203.0.113.9"},
        timeout=30,
    )
    assert reply.status_code == 403
    assert captured.messages == []


def test_a_flood_is_cut_at_the_length_cap(channel_server) -> None:
    url, captured = channel_server
    reply = requests.post(url, json={"sender": "s", "message": "x" * 10_000}, timeout=30)
    assert reply.status_code == 200 and "too long" in reply.text.lower()
    assert captured.messages == []


def test_rasa_interactive_action_calls_carry_the_chosen_customer(
    fresh_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa_sdk import Tracker

    from actions.identity import identify
    from devtools.shell_channel import attach_identity_to_action_calls

    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)
    domain = Domain.from_yaml("version: '3.1'\nactions: [action_check_balance]")
    tracker = DialogueStateTracker.from_events(
        "interactive-1",
        [
            ActionExecuted("action_listen"),
            UserUttered("what's my store credit?", {"name": "check_balance"}),
        ],
    )
    action = RemoteAction("action_check_balance", None)
    before = action._action_call_format(tracker, domain)["tracker"]
    assert identify(Tracker.from_dict(before))[0] is None  # interactive alone is anonymous

    attach_identity_to_action_calls(3)
    after = action._action_call_format(tracker, domain)["tracker"]
    assert identify(Tracker.from_dict(after))[0] == 3
