"""Shared-token authentication for the action server, as Sanic request middleware.

Rasa presents ``X-Cartguard-Action-Token`` on every call (``endpoints.yml``:
``action_endpoint.headers``); the middleware compares it in constant time with the
``action_token`` secret and answers 401 otherwise. Only ``GET /health`` (and ``GET /metrics``,
which checks its own credential) stay open so that
health checks work without the secret. The token is read once, when the server starts:
rotating it means restarting Rasa and the action server together.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

import pluggy
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from cartguard.keys import load_keys

logger = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("rasa_sdk")

PLUGIN_NAME = "cartguard-action-auth"
HEADER = "X-Cartguard-Action-Token"
#: /metrics checks its own credential (cartguard.monitoring.metrics: bearer token or loopback)
OPEN_ROUTES = frozenset({("GET", "/health"), ("GET", "/metrics")})
#: set on the middleware function and on ``app.ctx`` so the launcher can check it is attached
MARKER = "cartguard_action_auth"

Middleware = Callable[[Request], Awaitable[HTTPResponse | None]]


def make_middleware(expected: str) -> Middleware:
    """Request middleware that lets through only calls carrying ``expected``."""
    if not expected:
        raise ValueError("the action token is empty; set CARTGUARD_ACTION_TOKEN")
    expected_bytes = expected.encode()

    async def require_action_token(request: Request) -> HTTPResponse | None:
        if (request.method, request.path) in OPEN_ROUTES:
            return None
        presented = request.headers.get(HEADER, "")
        if hmac.compare_digest(presented.encode(), expected_bytes):
            return None
        logger.warning(
            "action server: refused %s %s without a valid %s header",
            request.method,
            request.path,
            HEADER,
        )
        return response.json(
            {"error": "This action server accepts calls only from the Cartguard assistant."},
            status=401,
        )

    setattr(require_action_token, MARKER, True)
    return require_action_token


class ActionAuthPlugin:
    """The pluggy plugin rasa-sdk calls with its Sanic app."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        # KeysMissing propagates: an action server without a token must not start.
        app.register_middleware(make_middleware(load_keys().get("action_token")), "request")
        setattr(app.ctx, MARKER, True)


def is_protected(app: Sanic) -> bool:
    """True when the token middleware is attached to ``app``."""
    return bool(getattr(app.ctx, MARKER, False)) and any(
        getattr(m, MARKER, False) for m in app.request_middleware
    )
