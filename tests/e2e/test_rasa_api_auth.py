"""Attacks on the Rasa HTTP API that `make run` enables (`--enable-api` with a JWT secret).

The web service is the only legitimate caller (``trigger_intent`` after a secure form). Anyone
else who reaches the port - another local user, a request smuggled through a proxy - must be
refused whatever they try: no token, a token signed with another secret, an unsigned token
(``alg: none``), the right secret with another algorithm, the secret as a query-string token, or
a conversation-scoped token used on someone else's conversation.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
import requests

pytestmark = pytest.mark.slow


def _claims(username: str = "cartguard-web", role: str = "admin") -> dict:
    now = int(time.time())
    return {"user": {"username": username, "role": role}, "iat": now, "exp": now + 60}


def _unsigned(claims: dict) -> str:
    """An ``alg: none`` token, built by hand (PyJWT refuses to make one on purpose)."""
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{body}."


def _attempts(secret: str) -> dict[str, dict]:
    """Request options per attack; none of them may be accepted."""
    return {
        "no token": {},
        "another secret": {"headers": _bearer(jwt.encode(_claims(), "x" * 48, "HS256"))},
        "alg none": {"headers": _bearer(_unsigned(_claims()))},
        "right secret, HS512": {"headers": _bearer(jwt.encode(_claims(), secret, "HS512"))},
        "secret in the query string": {"params": {"token": secret}},
        "expired": {
            "headers": _bearer(
                jwt.encode({**_claims(), "exp": int(time.time()) - 120}, secret, "HS256")
            )
        },
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _endpoints(conversation: str) -> dict[str, tuple[str, str, dict]]:
    return {
        "trigger_intent": (
            "POST",
            f"/conversations/{conversation}/trigger_intent",
            {"name": "EXTERNAL_card_saved", "entities": {"card_last4": "4242"}},
        ),
        "append events": (
            "POST",
            f"/conversations/{conversation}/tracker/events",
            {"event": "slot", "name": "customer_id", "value": 1},
        ),
        "execute": (
            "POST",
            f"/conversations/{conversation}/execute",
            {"name": "action_check_balance"},
        ),
        "read tracker": ("GET", f"/conversations/{conversation}/tracker", {}),
        "replace model": ("PUT", "/model", {"model_file": "/tmp/evil.tar.gz"}),
    }


def _call(rasa_url: str, method: str, path: str, body: dict, **options: object) -> int:
    kwargs = {"timeout": 30, **options}
    if method != "GET":
        kwargs["json"] = body
    return requests.request(method, rasa_url + path, **kwargs).status_code


def test_every_forged_or_missing_token_is_refused_on_every_endpoint(stack) -> None:
    secret = stack.env["CARTGUARD_RASA_JWT_SECRET"]
    conversation = f"attack-{uuid.uuid4().hex}"
    accepted = {
        (attack, endpoint): status
        for attack, options in _attempts(secret).items()
        for endpoint, (method, path, body) in _endpoints(conversation).items()
        if (status := _call(stack.rasa_url, method, path, body, **options)) != 401
    }
    assert accepted == {}
    # nothing reached the conversation
    status = _call(
        stack.rasa_url,
        "GET",
        f"/conversations/{conversation}/tracker",
        {},
        headers=_bearer(jwt.encode(_claims(), secret, "HS256")),
    )
    assert status == 200


def test_the_real_token_is_accepted_so_the_refusals_above_mean_something(stack) -> None:
    secret = stack.env["CARTGUARD_RASA_JWT_SECRET"]
    headers = _bearer(jwt.encode(_claims(), secret, "HS256"))
    response = requests.get(
        f"{stack.rasa_url}/conversations/control-{uuid.uuid4().hex}/tracker",
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_a_conversation_token_cannot_reach_another_conversation(stack) -> None:
    """Rasa lets a ``user`` role act on the conversation named by its username only."""
    secret = stack.env["CARTGUARD_RASA_JWT_SECRET"]
    mine, theirs = f"mine-{uuid.uuid4().hex}", f"theirs-{uuid.uuid4().hex}"
    headers = _bearer(jwt.encode(_claims(username=mine, role="user"), secret, "HS256"))
    response = requests.post(
        f"{stack.rasa_url}/conversations/{theirs}/trigger_intent",
        json={"name": "EXTERNAL_card_saved", "entities": {"card_last4": "4242"}},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 403
