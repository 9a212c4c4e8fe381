"""Start the action server: rasa-sdk with our actions, and only with Rasa-only authentication.

``python -m cartguard.action_server`` is the supported way to run the actions. It builds
rasa-sdk's Sanic app, lets rasa-sdk's plugin manager attach ``rasa_sdk_plugins`` (the shared
token middleware), and then *checks* that the middleware is really attached before serving.
If the plugin was not found (``rasa_sdk`` silently skips a missing ``rasa_sdk_plugins``) or the
``action_token`` secret is not configured, it exits with a message saying what to fix rather
than serve actions to anyone who can reach the port.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types

from sanic import Sanic

from cartguard.keys import KeysMissing
from cartguard.settings import get_settings

logger = logging.getLogger(__name__)


class ActionServerUnprotected(RuntimeError):
    """The Rasa-only authentication could not be attached; the server must not start."""


def ensure_protected(app: Sanic) -> None:
    """Raise :class:`ActionServerUnprotected` unless the token middleware is attached."""
    try:
        from rasa_sdk_plugins.action_auth import is_protected
    except ImportError as exc:
        raise ActionServerUnprotected(
            "refusing to start the action server: the package `rasa_sdk_plugins` (Rasa-only "
            "authentication) cannot be imported. Install the project with `pip install -e .` "
            "or start from the repository root."
        ) from exc
    if not is_protected(app):
        raise ActionServerUnprotected(
            "refusing to start the action server: rasa-sdk did not load the `rasa_sdk_plugins` "
            "authentication plugin, so any caller could run actions. Install the project with "
            "`pip install -e .` (or start from the repository root) and try again."
        )


def create_app(actions: str | types.ModuleType = "actions") -> Sanic:
    """rasa-sdk's app with our actions and the auth plugin, verified to be protected."""
    from rasa_sdk.endpoint import create_app as create_sdk_app
    from rasa_sdk.plugin import plugin_manager

    # No CORS: browsers never call the action server, only Rasa does.
    app = create_sdk_app(actions, cors_origins=None)
    try:
        plugin_manager().hook.attach_sanic_app_extensions(app=app)
    except KeysMissing as exc:
        raise ActionServerUnprotected(
            f"refusing to start the action server: {exc}. Rasa must present this token "
            "(endpoints.yml: action_endpoint.headers.X-Cartguard-Action-Token)."
        ) from exc
    ensure_protected(app)
    from cartguard.monitoring.service import instrument_action_server

    instrument_action_server(app)  # /metrics and per-action latency
    return app


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m cartguard.action_server",
        description="Run the Cartguard action server (accepts calls only from Rasa).",
    )
    parser.add_argument("--actions", default="actions", help="package with the actions")
    parser.add_argument("--host", default=settings.host, help="address to listen on")
    parser.add_argument("--port", type=int, default=settings.action_port, help="port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = create_app(args.actions)
    except ActionServerUnprotected as exc:
        print(f"cartguard action server: {exc}", file=sys.stderr)
        return 2
    ssl = None
    if settings.tls_cert and settings.tls_key:
        ssl = {"cert": settings.tls_cert, "key": settings.tls_key}
    logger.info("action server listening on %s:%s (Rasa-only)", args.host, args.port)
    app.run(args.host, args.port, ssl=ssl, workers=1, access_log=False, motd=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
