"""Development only: talk to the assistant in a terminal as a chosen demo customer.

The shop's real channels take identity from a signed login token (webchat) or an account link
(Messenger), so ``rasa shell`` (Rasa's REST channel, deliberately absent from credentials.yml)
can never reach an order, a balance or a step-up flow. This module gives designers that, and
nothing more:

* :class:`DevShellInput` is a Rasa input channel, configured only in ``credentials.dev.yml``. It
  names itself ``cmdline``, so ``rasa run`` opens Rasa's own shell prompt against it (the prompt
  posts to ``/webhooks/rest/webhook``, which this channel serves). Every message gets a fresh
  login token of the configured demo customer and goes through the same edge redaction as the
  real channels (:func:`cartguard.channels.edge.protect`: card numbers masked, codes and e-mail
  addresses replaced by vault tokens) and the same length cap.
* It refuses to start unless the keys are the generated development keys (``cartguard
  init-keys``: ``"dev": true`` and no key overridden from the environment), unless Rasa listens
  on loopback only (``CARTGUARD_HOST``) with no proxy in front, and unless the customer exists.
  Requests from any address other than loopback are refused.
* ``python -m devtools.shell_channel shell --customer 1`` (``make shell CUSTOMER=1``) starts an
  action server and Rasa with this channel on free loopback ports; ``... interactive`` runs
  ``rasa interactive`` with the same identity: every call to the action server carries that
  customer's login token in the latest user message, as the channels would have put it there.

This module lives outside the installed ``cartguard`` package on purpose: a production install
has no way to load it.
"""

from __future__ import annotations

import argparse
import inspect
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.rest import RestInput

from cartguard.identity import issue_login_token
from cartguard.keys import Keys, KeysMissing, load_keys
from cartguard.settings import Settings, get_settings

PROJECT = Path(__file__).resolve().parents[1]
CREDENTIALS = PROJECT / "credentials.dev.yml"
MODEL = PROJECT / "models" / "cartguard.tar.gz"
CUSTOMER_ENV = "CARTGUARD_DEV_CUSTOMER"
#: a dev login token lives as long as one turn needs it
TOKEN_TTL_SECONDS = 300
EXIT_REFUSED = 2


class DevChannelRefused(RuntimeError):
    """The development channel must not run here (production keys, public address, ...)."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _customer_exists(customer_id: int) -> bool:
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import Customer

    with session_scope() as session:
        return session.get(Customer, customer_id) is not None


def check_may_run(
    customer_id: object, *, keys: Keys | None = None, settings: Settings | None = None
) -> int:
    """Return the customer id if the development channel may run; raise why not otherwise."""
    settings = settings or get_settings()
    try:
        keys = keys or load_keys(settings)
    except KeysMissing as exc:
        raise DevChannelRefused(f"{exc}. Run `make setup` first.") from exc
    if not keys.dev:
        raise DevChannelRefused(
            "refused: the development channel runs only with the generated development keys "
            "(`cartguard init-keys`). These keys come from the environment or a production "
            "key file, so a terminal conversation could act on real customers' accounts."
        )
    if not _is_loopback(settings.host) or settings.behind_tls_proxy:
        raise DevChannelRefused(
            f"refused: the development channel listens on loopback only, but CARTGUARD_HOST is "
            f"{settings.host!r}"
            + (" and CARTGUARD_BEHIND_TLS_PROXY is set" if settings.behind_tls_proxy else "")
        )
    try:
        number = int(str(customer_id))
    except ValueError as exc:
        raise DevChannelRefused(
            f"refused: {customer_id!r} is not a customer number (see `cartguard customers`)"
        ) from exc
    if not _customer_exists(number):
        raise DevChannelRefused(
            f"refused: there is no demo customer {number} (see `.venv/bin/cartguard customers`)"
        )
    return number


class DevShellInput(RestInput):
    """Rasa's console channel with a demo customer's identity and our edge redaction."""

    @classmethod
    def name(cls) -> str:
        # Rasa runs its `rasa shell` prompt whenever a channel of this name is configured.
        return "cmdline"

    def url_prefix(self) -> str:
        return "rest"  # where Rasa's prompt posts: /webhooks/rest/webhook

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DevShellInput:
        credentials = credentials or {}
        return cls(credentials.get("customer_id", os.environ.get(CUSTOMER_ENV)))

    def __init__(self, customer_id: object) -> None:
        self.customer_id = check_may_run(customer_id)

    def _metadata(self, pii_removed: tuple[str, ...]) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "auth_token": issue_login_token(self.customer_id, ttl_seconds=TOKEN_TTL_SECONDS)
        }
        if pii_removed:
            metadata["pii_removed"] = list(pii_removed)
        return metadata

    def blueprint(self, on_new_message: Callable[[Any], Awaitable[Any]]) -> Any:
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
        from sanic import Blueprint, response
        from sanic.request import Request

        from cartguard.channels import replies
        from cartguard.channels.edge import EdgeUnavailable, protect
        from cartguard.channels.edge import warm_up as edge_warm_up

        settings = get_settings()
        hook = Blueprint("cartguard_dev_shell", inspect.getmodule(self).__name__)

        @hook.listener("after_server_start")
        async def warm_up(app: Any, loop: Any) -> None:
            edge_warm_up()

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> Any:
            return response.json({"status": "ok", "channel": "development shell"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Any:
            if not _is_loopback(request.ip) or "x-forwarded-for" in request.headers:
                return response.json({"error": "the development channel is loopback only"}, 403)
            body = request.json if isinstance(request.json, dict) else {}
            text, sender = body.get("message"), body.get("sender")
            if not isinstance(text, str) or not isinstance(sender, str) or not sender:
                return response.json({"error": "send JSON with 'sender' and 'message'"}, 400)
            if len(text) > settings.message_max_chars:
                return response.json([{"text": replies.too_long(settings.message_max_chars)}])
            try:
                safe = await protect(text, customer_id=self.customer_id, conversation_id=sender)
            except EdgeUnavailable:
                return response.json([{"text": replies.UNAVAILABLE}])
            metadata = self._metadata(safe.pii_removed)
            if body.get("stream") or request.args.get("stream") in {"true", "1"}:
                return response.stream(
                    self.stream_response(on_new_message, safe.text, sender, self.name(), metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    safe.text, collector, sender, input_channel=self.name(), metadata=metadata
                )
            )
            return response.json(collector.messages)

        return hook


# --------------------------------------------------------------------- rasa interactive


def attach_identity_to_action_calls(customer_id: int) -> None:
    """Make every action-server call of this process carry ``customer_id``'s login token.

    ``rasa interactive`` adds messages through Rasa's HTTP API, which records no metadata, and
    runs each action in its own request; so the token is put where a channel would have put it
    (the latest user message's metadata) in the request that goes to the action server.
    """
    from rasa.core.actions.action import RemoteAction

    original = RemoteAction._action_call_format

    def with_identity(self: Any, tracker: Any, domain: Any) -> dict[str, Any]:
        payload = original(self, tracker, domain)
        token = issue_login_token(customer_id, ttl_seconds=TOKEN_TTL_SECONDS)
        state = payload["tracker"]
        for event in reversed(state.get("events") or []):
            if event.get("event") == "user":
                event["metadata"] = {**(event.get("metadata") or {}), "auth_token": token}
                break
        latest = state.get("latest_message")
        if isinstance(latest, dict):
            latest["metadata"] = {**(latest.get("metadata") or {}), "auth_token": token}
        return payload

    RemoteAction._action_call_format = with_identity  # type: ignore[method-assign]


# --------------------------------------------------------------------- launcher


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the child is sent SIGTERM when the launcher dies, even when it is killed."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevChannelRefused(f"the action server stopped while starting; see {log}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise DevChannelRefused(f"the action server did not start within {seconds:.0f} s; see {log}")


def _start_action_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    with open(log, "a") as handle:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "cartguard.action_server", "--port", str(port)],
            cwd=PROJECT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    _wait_http(f"http://127.0.0.1:{port}/health", process, log)
    return process, f"http://127.0.0.1:{port}/webhook"


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def _endpoint_env(customer_id: int) -> dict[str, str]:
    """The environment endpoints.yml expands (what `cartguard shell-env` exports for run.sh)."""
    settings = get_settings()
    return {
        **os.environ,
        CUSTOMER_ENV: str(customer_id),
        "CARTGUARD_DATA_DIR": str(settings.data_dir),
        "CARTGUARD_ACTION_TOKEN": load_keys(settings).get("action_token"),
    }


def shell(customer_id: int, model: Path, logs: Path) -> int:
    """Rasa with the development channel: its shell prompt, as ``customer_id``."""
    env = _endpoint_env(customer_id)
    actions, action_url = _start_action_server(env, logs / "shell-actions.log")
    env["CARTGUARD_ACTION_URL"] = action_url
    rasa_log = logs / "shell-rasa.log"
    print(f"==> loading the model (about a minute); Rasa's log: {rasa_log}")
    try:
        with open(rasa_log, "a") as handle:
            # stdin/stdout stay the terminal (Rasa's prompt); Rasa's log lines go to the file
            return subprocess.call(  # noqa: S603 - our own module, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "cartguard.rasa_main",
                    "run",
                    "--model",
                    str(model),
                    "--endpoints",
                    "endpoints.yml",
                    "--credentials",
                    str(CREDENTIALS),
                    "--port",
                    str(_free_port()),
                ],
                cwd=PROJECT,
                env=env,
                stderr=handle,
                preexec_fn=_die_with_parent,
            )
    finally:
        _stop(actions)


def interactive(customer_id: int, model: Path, logs: Path, extra: list[str]) -> int:
    """``rasa interactive`` (on loopback) whose actions see ``customer_id`` as the shopper."""
    env = _endpoint_env(customer_id)
    actions, action_url = _start_action_server(env, logs / "interactive-actions.log")
    os.environ.update(env)
    os.environ["CARTGUARD_ACTION_URL"] = action_url
    try:
        attach_identity_to_action_calls(customer_id)
        from cartguard import rasa_main

        argv = ["interactive", "--model", str(model), "--endpoints", "endpoints.yml"]
        return rasa_main.main([*argv, "--port", str(_free_port()), *extra])
    finally:
        _stop(actions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.shell_channel", description=__doc__)
    parser.add_argument("mode", choices=["shell", "interactive"])
    parser.add_argument("--customer", default="1", help="demo customer number (default 1)")
    parser.add_argument("--model", type=Path, default=MODEL)
    args, extra = parser.parse_known_args(argv)
    try:
        customer_id = check_may_run(args.customer)
    except DevChannelRefused as exc:
        print(f"cartguard dev shell: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if not args.model.exists():
        print(f"cartguard dev shell: no model at {args.model}: run `make train`", file=sys.stderr)
        return EXIT_REFUSED
    logs = get_settings().data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.chdir(PROJECT)
    print(f"==> talking as demo customer {customer_id} (development keys, loopback only)")
    if args.mode == "shell":
        return shell(customer_id, args.model, logs)
    return interactive(customer_id, args.model, logs, extra)


if __name__ == "__main__":
    raise SystemExit(main())
