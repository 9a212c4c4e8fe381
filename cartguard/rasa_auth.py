"""Every malformed token on Rasa's HTTP API is a plain 401, never a server error.

Rasa 3.6 checks ``Authorization: Bearer`` JWTs through sanic-jwt, which turns a bad signature or
an expired token into "not authenticated" but lets PyJWT's other refusals escape: a token with
``alg: none`` or signed with another algorithm than the configured one raises
``InvalidAlgorithmError`` and the request ends in a 500 with a traceback in the log (seen in
``tests/e2e/test_rasa_api_auth.py``). Nothing is granted either way, but a probe should learn
nothing and an operator's log should not fill with tracebacks: this maps every PyJWT refusal to
the decode error sanic-jwt already answers with 401.

sanic-jwt also accepts a token for three minutes after its ``exp`` (its default leeway): a token
that expired two minutes ago still read trackers and triggered intents (seen in the same test).
Our own tokens live 60 seconds; expiry is enforced here with a few seconds of clock skew only.
"""

from __future__ import annotations

import functools
import time
from typing import Any

_INSTALLED = "_cartguard_all_refusals_are_401"
#: clock skew tolerated between the web service and Rasa (same machine or same cluster)
LEEWAY_SECONDS = 5


def install() -> None:
    """Patch sanic-jwt's decoder once per process (idempotent)."""
    import jwt
    from sanic_jwt.authentication import Authentication

    original = Authentication._decode
    if getattr(original, _INSTALLED, False):
        return

    @functools.wraps(original)
    async def decode(self: Authentication, token: str, *args: Any, **kwargs: Any) -> Any:
        try:
            payload = await original(self, token, *args, **kwargs)
        except jwt.exceptions.DecodeError:
            raise
        except (jwt.exceptions.ExpiredSignatureError, jwt.exceptions.ImmatureSignatureError):
            raise  # sanic-jwt answers these with 401 itself
        except jwt.exceptions.InvalidTokenError as exc:
            raise jwt.exceptions.DecodeError(f"token refused: {type(exc).__name__}") from exc
        expires = payload.get("exp") if isinstance(payload, dict) else None
        if not isinstance(expires, (int, float)) or expires + LEEWAY_SECONDS < time.time():
            raise jwt.exceptions.DecodeError("token refused: expired or without an expiry")
        return payload

    setattr(decode, _INSTALLED, True)
    Authentication._decode = decode
