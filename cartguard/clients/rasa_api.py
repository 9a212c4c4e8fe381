"""The one client for Rasa's HTTP API (what the web service uses to talk back to a conversation).

Rasa runs with ``--jwt-secret``; this client signs a short-lived HS256 token with the
installation's ``rasa_jwt_secret`` and sends it in the ``Authorization`` header. Rasa's other
option, ``?token=...``, would put the secret into URLs and access logs, so it is not offered.
Every failure (refused connection, timeout, a non-2xx answer) surfaces as :class:`RasaUnavailable`
with a message an operator can act on; callers keep the result in the outbox and retry.

An ``EXTERNAL_*`` turn says nothing about who it concerns, and Rasa's secret lets anyone create
one, so :meth:`RasaClient.trigger_intent` adds, for the customer it is about, a signed identity
made for this conversation and intent only (:func:`cartguard.identity.issue_external_identity`,
signed with the login key that Rasa never holds); the actions verify and use it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jwt
import requests

from cartguard.identity import EXTERNAL_IDENTITY_ENTITY, issue_external_identity
from cartguard.keys import Keys, load_keys
from cartguard.settings import Settings, get_settings

#: the identity the web service presents to Rasa; ``admin`` is the role Rasa requires to act on
#: any conversation (the ``user`` role may only touch a conversation named after itself)
SERVICE_USERNAME = "cartguard-web"
TOKEN_TTL_SECONDS = 60


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached or refused the request; the caller should retry later."""


@dataclass(frozen=True)
class RasaClient:
    """Calls Rasa's HTTP API with a JWT in the ``Authorization`` header."""

    base_url: str
    jwt_secret: str
    timeout_seconds: float = 5.0
    #: the keys that sign external identities (the installation's, unless a test passes some)
    identity_keys: Keys | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, keys: Keys | None = None
    ) -> RasaClient:
        settings = settings or get_settings()
        keys = keys or load_keys(settings)
        return cls(
            base_url=settings.rasa_url.rstrip("/"),
            jwt_secret=keys.get("rasa_jwt_secret"),
            identity_keys=keys,
        )

    def _auth_header(self) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "user": {"username": SERVICE_USERNAME, "role": "admin"},
            "iat": now,
            "exp": now + TOKEN_TTL_SECONDS,
        }
        token = jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    def _post(self, path: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            response = requests.post(
                url,
                json=body,
                params=params,
                headers=self._auth_header(),
                timeout=self.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(
                f"Rasa at {self.base_url} could not be reached ({type(exc).__name__}); "
                "is `rasa run --enable-api` running?"
            ) from exc
        if response.status_code in (401, 403):
            raise RasaUnavailable(
                f"Rasa refused our credentials (HTTP {response.status_code}): check that Rasa "
                "was started with --jwt-secret set to this installation's rasa_jwt_secret"
            )
        if response.status_code == 409:
            raise RasaUnavailable("Rasa is running but has no model loaded yet (HTTP 409)")
        if not response.ok:
            raise RasaUnavailable(
                f"Rasa answered HTTP {response.status_code} to {path.split('/')[-1]}: "
                f"{response.text[:200]}"
            )
        try:
            return response.json()
        except ValueError:
            return {}

    def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: dict[str, Any] | None = None,
        output_channel: str = "latest",
        *,
        customer_id: int | None = None,
    ) -> dict[str, Any]:
        """Inject ``intent`` into the conversation; the bot's answer goes to its latest channel.

        ``customer_id`` is who the turn is about: it travels as a signed, single-use identity
        bound to this conversation and intent. Without it the turn is anonymous.
        """
        body_entities = dict(entities or {})
        if EXTERNAL_IDENTITY_ENTITY in body_entities:
            raise ValueError(f"{EXTERNAL_IDENTITY_ENTITY!r} is set by the client, never passed in")
        if customer_id is not None:
            body_entities[EXTERNAL_IDENTITY_ENTITY] = issue_external_identity(
                customer_id, conversation_id, intent, keys=self.identity_keys
            )
        path = f"/conversations/{quote(conversation_id, safe='')}/trigger_intent"
        return self._post(
            path,
            {"name": intent, "entities": body_entities},
            {"output_channel": output_channel},
        )

    def status(self) -> dict[str, Any]:
        """Rasa's ``/status`` (model loaded, fingerprint), for health checks."""
        try:
            response = requests.get(
                f"{self.base_url}/status", headers=self._auth_header(), timeout=self.timeout_seconds
            )
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise RasaUnavailable(f"Rasa status unavailable at {self.base_url}: {exc}") from exc
