"""A Messenger shopper end to end: the running assistant (Rasa with the trained model, the action
server, the web service), a local fake Graph API, signed webhooks only, the pages in Chromium.

An anonymous PSID asks "where is my order?" and gets Messenger's log-in button; the link opened
by another Messenger user is refused; opened by its own user in Chromium, the shop sign-in
(password and authenticator code) links the PSID and the fake Graph API receives the answer
about that customer's orders without the shopper asking again. "What's my store credit?" gets a
step-up link; the code is typed on our page and the balance arrives in Messenger. "Unlink my
account" ends the link, and the next account question is anonymous again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from contextlib import closing
from typing import Any

import jwt
import pytest
import requests

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Messenger:
    """Plays Facebook: posts signed webhook events for a PSID, reads what the page sent back."""

    def __init__(self, stack, psid: str) -> None:
        self.stack, self.psid = stack, psid
        self.secret = stack.env["CARTGUARD_MESSENGER_APP_SECRET"].encode()
        self.url = f"{stack.rasa_url}/webhooks/facebook/webhook"

    def say(self, text: str) -> int:
        """Type ``text``; returns how many messages the PSID had received before it."""
        before = len(self.stack.graph.messages_to(self.psid))
        event = {
            "sender": {"id": self.psid},
            "recipient": {"id": "PAGE"},
            "timestamp": int(time.time() * 1000),
            "message": {"mid": f"m_{secrets.token_hex(8)}", "text": text},
        }
        body = json.dumps({"object": "page", "entry": [{"id": "PAGE", "messaging": [event]}]})
        signature = hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()
        response = requests.post(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": f"sha256={signature}",
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return before

    def received(self, pattern: str, after: int, timeout: float = 120.0) -> dict[str, Any]:
        """The first message (from index ``after`` on) whose JSON matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.stack.graph.messages_to(self.psid)[after:]:
                if re.search(pattern, json.dumps(message), re.I):
                    return message
            if time.monotonic() > deadline:
                sent = json.dumps(self.stack.graph.messages_to(self.psid)[after:], indent=1)
                raise AssertionError(f"nothing matching {pattern!r} arrived; got {sent[-3000:]}")
            time.sleep(0.3)

    def texts_since(self, after: int) -> str:
        return json.dumps(self.stack.graph.messages_to(self.psid)[after:])


def rasa_api(stack, method: str, path: str, body: Any = None) -> requests.Response:
    """Rasa's HTTP API as someone holding its JWT secret (and nothing else) calls it."""
    token = jwt.encode(
        {"user": {"username": "intruder", "role": "admin"}, "exp": int(time.time()) + 60},
        stack.env["CARTGUARD_RASA_JWT_SECRET"],
        algorithm="HS256",
    )
    response = requests.request(
        method,
        f"{stack.rasa_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.ok, response.text[:500]
    return response


def trigger(stack, psid: str, intent: str, entities: dict[str, Any]) -> None:
    rasa_api(
        stack,
        "POST",
        f"/conversations/{psid}/trigger_intent?output_channel=latest",
        {"name": intent, "entities": entities},
    )


def button_of(message: dict[str, Any]) -> dict[str, Any]:
    [button] = message["attachment"]["payload"]["buttons"]
    return button


def orders_of(stack, customer_id: int) -> set[str]:
    with closing(sqlite3.connect(stack.data_dir / "shop.db")) as db:
        rows = db.execute("SELECT id FROM orders WHERE customer_id = ?", (customer_id,))
        return {row[0] for row in rows}


def fresh_code(stack, used: set[str]) -> str:
    """A code the account has not used yet (each code works once): wait for the next step."""
    deadline = time.monotonic() + 70
    while time.monotonic() < deadline:
        code = stack.cli("totp-code", "1")
        if code not in used:
            used.add(code)
            return code
        time.sleep(2)
    raise AssertionError("the authenticator code did not change within 70 s")


def test_a_messenger_shopper_links_gets_answers_steps_up_and_unlinks(chromium, stack) -> None:
    psid, stranger = (str(10**15 + secrets.randbelow(10**15)) for _ in range(2))
    shopper = Messenger(stack, psid)
    email, password = stack.logins[1]
    used_codes: set[str] = set()

    # 1. anonymous: an account question gets Messenger's log-in button, nothing about orders
    before = shopper.say("where is my order?")
    offer = shopper.received(r"account_link", before)
    sign_in = button_of(offer)
    assert sign_in["type"] == "account_link"
    assert sign_in["url"].startswith(f"{stack.web_url}/s/")
    assert not re.search(r"CG-\d{6}", shopper.texts_since(before))

    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()

    # 2. the same link presented by another Messenger user is refused
    refused = page.goto(f"{sign_in['url']}?account_linking_token={stack.graph.tap(stranger)}")
    assert refused.status == 403
    assert "belongs to another Messenger conversation" in page.inner_text("main")
    assert page.locator("input[name=password]").count() == 0

    # 3. its own user opens it (Messenger adds their account-linking token) and signs in
    opened = page.goto(f"{sign_in['url']}?account_linking_token={stack.graph.tap(psid)}")
    assert opened.status == 200
    before = len(stack.graph.messages_to(psid))
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.fill("#f-code", fresh_code(stack, used_codes))
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Messenger linked")

    # 4. ... and Messenger hears the answer to the pending question, about that customer
    shopper.received(r"linked as", before)
    answer = shopper.received(r"CG-\d{6}", before)
    shown = set(re.findall(r"CG-\d{6}", json.dumps(answer)))
    assert shown and shown <= orders_of(stack, 1)

    # 4b. someone holding Rasa's API secret replays the identity of that turn: nobody is served
    replayed = rasa_api(stack, "GET", f"/conversations/{psid}/tracker").json()
    [identity] = [
        entity["value"]
        for event in replayed["events"]
        if event.get("event") == "user"
        and event.get("text") == "EXTERNAL: EXTERNAL_messenger_linked"
        for entity in (event.get("parse_data") or {}).get("entities", [])
        if entity.get("entity") == "cartguard_identity"
    ]
    before = len(stack.graph.messages_to(psid))
    trigger(stack, psid, "EXTERNAL_messenger_linked", {"cartguard_identity": identity})
    shopper.received(r"account_link", before)  # asked to sign in, as an anonymous shopper
    assert not re.search(r"CG-\d{6}|linked as", shopper.texts_since(before))

    # 5. a balance needs a step-up: a link in Messenger, the code on our page
    before = shopper.say("what's my store credit?")
    verify = button_of(shopper.received(r"Verify securely", before))
    assert verify["type"] == "web_url" and verify["url"].startswith(f"{stack.web_url}/s/")
    assert not re.search(r"\$\d", shopper.texts_since(before))
    page.goto(verify["url"])
    if page.locator("input[name=code]").count() == 0:  # links work for their signed-in owner
        page.click("main a[href^='/login']")
        page.fill("#f-email", email)
        page.fill("#f-password", password)
        page.click("main button[type=submit]")
    page.fill("input[name=code]", fresh_code(stack, used_codes))
    page.click("main button[type=submit]")
    page.wait_for_selector("text=verified")
    balance = shopper.received(r"store credit", before)
    assert re.search(r"\$\d", json.dumps(balance))

    # 6. unlink: the link is gone and the next account question is anonymous again
    before = shopper.say("unlink my account")
    shopper.received(r"no longer linked", before)
    before = shopper.say("where is my order?")
    assert button_of(shopper.received(r"account_link", before))["type"] == "account_link"
    assert not re.search(r"CG-\d{6}", shopper.texts_since(before))
    context.close()


def test_rasas_api_secret_alone_cannot_speak_for_a_customer(stack) -> None:
    """The attacker holds Rasa's API secret: they pick any conversation, set ``customer_id``,
    trigger EXTERNAL turns with identities they made, and read the answers from the API."""
    now = int(time.time())

    def forged(conversation: str) -> str:
        claims = {"sub": "1", "aud": "cartguard-external", "iss": "cartguard-web-service",
                  "conv": conversation, "intent": "EXTERNAL_messenger_linked", "iat": now,
                  "exp": now + 60, "jti": secrets.token_hex(8)}  # fmt: skip
        return jwt.encode(claims, stack.env["CARTGUARD_RASA_JWT_SECRET"], algorithm="HS256")

    def plant_identity(conversation: str) -> None:
        rasa_api(
            stack,
            "POST",
            f"/conversations/{conversation}/tracker/events",
            [{"event": "slot", "name": "customer_id", "value": 1},
             {"event": "slot", "name": "pending_action", "value": "action_track_order"}],
        )  # fmt: skip

    # a conversation of their own, answers collected in the HTTP response
    own = f"intruder-{secrets.token_hex(6)}"
    rasa_api(stack, "POST", f"/conversations/{own}/trigger_intent", {"name": "greet"})
    plant_identity(own)  # after the session started (a new session would reset the slot)
    for entities in ({}, {"cartguard_identity": forged(own)}):
        answer = rasa_api(
            stack,
            "POST",
            f"/conversations/{own}/trigger_intent",
            {"name": "EXTERNAL_messenger_linked", "entities": entities},
        ).json()
        said = json.dumps(answer.get("messages"))
        assert "log in" in said.lower()  # asked to sign in, as anybody anonymous is
        assert not re.search(r"CG-\d{6}|linked as", said), said

    # a Messenger conversation: the answers would go to the PSID
    psid = str(10**15 + secrets.randbelow(10**15))
    shopper = Messenger(stack, psid)
    shopper.received(r"account_link", shopper.say("where is my order?"))
    plant_identity(psid)
    for entities in ({}, {"cartguard_identity": forged(psid)}):
        before = len(stack.graph.messages_to(psid))
        trigger(stack, psid, "EXTERNAL_messenger_linked", entities)
        shopper.received(r"account_link", before)
        assert not re.search(r"CG-\d{6}|linked as", shopper.texts_since(before))
