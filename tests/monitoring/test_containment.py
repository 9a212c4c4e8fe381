"""Every containment command of the runbook, run through the CLI, and proof that it holds.

Revocation and vault rotation replace keys, so these tests work on a private copy of the
key file: the rest of the test session keeps its keys. Every command runs the way an operator
in an incident runs it: one `cartguard staff login`, then the commands on that session, each
audited as the signed-in Administrator.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from faker import Faker
from typer.testing import CliRunner

from cartguard.cli import app
from cartguard.identity import issue_login_token, verify_login_token
from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.staff.roles import Role
from tests.dialogue.helpers import run_action, slot_events
from tests.staffcli import cli_as, make_staff

fake = Faker()
runner = CliRunner()


def cli(*args: str) -> str:
    env = {"CARTGUARD_STAFF_USER": "", "CARTGUARD_SERVICE_TOKEN_FILE": "", "LOGNAME": "anyone"}
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(autouse=True)
def operator(mon_db) -> str:
    """An Administrator signed in for this test (a 15-minute staff session)."""
    from cartguard.cli.signin import session_file

    admin = make_staff(Role.ADMINISTRATOR)
    login = cli_as(admin, ["staff", "login"], at=datetime.now(timezone.utc))
    assert login.exit_code == 0, login.stderr
    yield f"staff:{admin['user']}"
    cli("staff", "logout")
    session_file().unlink(missing_ok=True)


def audited(action: str) -> list[AuditEntry]:
    with session_scope() as session:
        return list(session.query(AuditEntry).filter(AuditEntry.action == action))


@pytest.fixture()
def private_keys(mon_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the key file for this test only."""
    from cartguard.monitoring import signals
    from cartguard.settings import get_settings
    from cartguard.vault import get_vault

    copy = tmp_path / "keys.json"
    shutil.copy(get_settings().keys_file, copy)
    monkeypatch.setenv("CARTGUARD_KEYS_FILE", str(copy))
    get_settings.cache_clear()
    get_vault.cache_clear()
    yield copy
    monkeypatch.delenv("CARTGUARD_KEYS_FILE")
    get_settings.cache_clear()
    get_vault.cache_clear()
    signals.forget_cached_key()


def test_revoke_sessions_refuses_old_tokens_session_ids_and_logins(
    private_keys, mon_db, clean_slate, operator
):
    from cartguard.channels.sessions import issue_ticket, verify_ticket
    from cartguard.shop.conversations import load_webchat_session, register_webchat_session
    from cartguard.webapp import auth

    customer = mon_db[0]
    old_keys = load_keys()
    token = issue_login_token(customer, 600, keys=old_keys)
    ticket = issue_ticket(old_keys.raw("session_key"))
    web_key = b"w" * 32
    with session_scope() as session:
        register_webchat_session(session, ticket.conversation_id)
        cookie = auth.start_session(session, customer, web_key, timedelta(hours=1))
    assert verify_login_token(token) == customer

    output = cli("security", "revoke-sessions", "--yes")
    assert "1 webchat sessions" in output and "login_key, session_key" in output

    new_keys = load_keys()
    assert new_keys.get("login_key") != old_keys.get("login_key")
    assert verify_login_token(token) is None  # old token: bad signature now
    assert verify_login_token(issue_login_token(customer, 600)) == customer  # new ones work
    assert verify_ticket(new_keys.raw("session_key"), ticket.value) is None
    with session_scope() as session:
        # a process that still holds the old key finds no session behind the old id either
        assert load_webchat_session(session, ticket.conversation_id) is None
        assert auth.identify(session, cookie, web_key) is None
    [entry] = audited("security.revoke_sessions")
    assert json.loads(entry.details)["webchat_sessions_ended"] == 1
    assert entry.actor == operator


def test_vault_rotation_keeps_every_token_and_removes_the_old_key(private_keys, mon_db):
    from cartguard.vault import get_vault

    vault = get_vault()
    values = {vault.tokenize(fake.email(), "EMAIL_ADDRESS"): None for _ in range(3)}
    values = {token: vault.detokenize(token) for token in values}
    old_ids = list(load_keys().vault_keys)

    output = cli("security", "rotate-vault")

    file_keys = json.loads(private_keys.read_text())["vault_keys"]
    [new_id] = file_keys
    assert new_id not in old_ids and new_id in output
    assert not set(old_ids) & set(load_keys().vault_keys)
    for token, value in values.items():
        assert value and vault.detokenize(token) == value
    assert audited("vault.rotate")[-1].subject == new_id
    assert cli("staff", "whoami")  # the session survives; the staff secret was re-sealed


@pytest.fixture()
def enrolled_customer(mon_db, clean_slate) -> int:
    from cartguard.stepup.enrolment import enroll_demo_customers

    with session_scope() as session:
        enroll_demo_customers(session, [mon_db[1]])
    return mon_db[1]


def gate(tracker_factory, customer: int, intent: str) -> tuple[list[dict], dict]:
    from actions.stepup import ActionStepUpGate

    tracker = tracker_factory(
        sender_id=f"conv-{fake.uuid4()}",
        intent=intent,
        metadata={"auth_token": issue_login_token(customer, 300)},
    )
    messages, events = run_action(ActionStepUpGate(), tracker)
    return messages, slot_events(events)


def test_maintenance_mode_pauses_exactly_the_sensitive_intents(enrolled_customer, tracker_factory):
    from actions.orders import ActionTrackOrder
    from cartguard.stepup.policy import get_policy

    sensitive = sorted(get_policy().sensitive_intents)
    assert {"check_balance", "get_invoice", "request_refund"} <= set(sensitive)

    cli("maintenance", "on")
    try:
        assert "ON" in cli("maintenance", "status")
        for intent in sensitive:
            messages, slots = gate(tracker_factory, enrolled_customer, intent)
            assert [m.get("response") for m in messages] == ["utter_maintenance"], intent
            assert slots["stepup_status"] == "refused"
        # a non-sensitive request is answered as usual
        tracker = tracker_factory(
            intent="track_order",
            metadata={"auth_token": issue_login_token(enrolled_customer, 300)},
        )
        messages, _ = run_action(ActionTrackOrder(), tracker)
        assert messages and all(m.get("response") != "utter_maintenance" for m in messages)
    finally:
        cli("maintenance", "off")
    messages, slots = gate(tracker_factory, enrolled_customer, "check_balance")
    assert slots["stepup_status"] == "required" and messages == []
    assert [e.action for e in audited("maintenance.on")] == ["maintenance.on"]


def test_disable_step_up_for_one_customer_pending_review(enrolled_customer, tracker_factory):
    cli("stepup", "disable", str(enrolled_customer))
    messages, slots = gate(tracker_factory, enrolled_customer, "check_balance")
    assert [m.get("response") for m in messages] == ["utter_stepup_unavailable"]
    assert slots["stepup_status"] == "refused"
    cli("stepup", "unlock", str(enrolled_customer))
    _, slots = gate(tracker_factory, enrolled_customer, "check_balance")
    assert slots["stepup_status"] == "required"


def test_blocked_address_and_sender_are_refused_by_the_channel_guard(mon_db, clean_slate):
    from cartguard.channels.guard import MessageGuard
    from cartguard.channels.ratelimit import MemoryRateLimiter, Rate

    guard = MessageGuard(
        ip_limiter=MemoryRateLimiter(Rate(100, 100)),
        sender_limiter=MemoryRateLimiter(Rate(100, 100)),
    )
    bad_ip, good_ip = fake.ipv4_public(), fake.ipv4_public()
    bad_psid, good_psid = str(fake.random_number(16)), str(fake.random_number(16))

    async def refusals() -> list[str | None]:
        checks = [
            guard.check_ip("socketio", bad_ip),
            guard.check_ip("facebook", bad_ip),
            guard.check_ip("socketio", good_ip),
            guard.check_message("facebook", bad_psid, "hello"),
            guard.check_message("facebook", good_psid, "hello"),
        ]
        return [(r.reason if r else None) for r in await asyncio.gather(*checks)]

    assert asyncio.run(refusals()) == [None] * 5
    assert "blocked ip:" in cli("security", "block-ip", bad_ip, "--reason", "stuffing")
    cli("security", "block-sender", bad_psid, "--hours", "2")
    assert asyncio.run(refusals()) == ["blocked", "blocked", None, "blocked", None]
    listing = cli("security", "blocks")
    assert bad_ip not in listing and bad_psid not in listing and "ip:" in listing

    cli("security", "unblock", "ip", bad_ip)
    cli("security", "unblock", "sender", bad_psid)
    assert asyncio.run(refusals()) == [None] * 5
    assert len(audited("security.block")) == 2 and len(audited("security.unblock")) == 2


def test_containment_commands_refuse_without_sign_in(mon_db, clean_slate):
    from cartguard.cli.signin import session_file

    session_file().unlink()  # nobody signed in; LOGNAME=anyone changes nothing
    for args in (
        ["maintenance", "on"],
        ["security", "block-ip", "198.51.100.7"],
        ["security", "revoke-sessions", "--yes"],
        ["security", "rotate-vault"],
        ["security", "ack", "1"],
        ["stepup", "disable", str(mon_db[1])],
    ):
        result = runner.invoke(app, args, env={"CARTGUARD_STAFF_USER": "", "LOGNAME": "anyone"})
        assert result.exit_code == 4, args
    assert audited("maintenance.on") == [] and audited("security.block") == []


def test_events_and_scan_commands(mon_db, clean_slate):
    from cartguard.monitoring import signals

    assert "no security events" in cli("security", "events")
    for _ in range(25):
        signals.note(signals.INVALID_TOKEN, ip="203.0.113.9")
    assert "invalid_login_tokens" in cli("security", "scan")
    assert cli("security", "scan").strip() == ""  # idempotent: nothing new
    listing = cli("security", "events", "--open")
    assert "invalid_login_tokens" in listing and "203.0.113.9" not in listing
    event_id = listing.split()[0].lstrip("#")
    cli("security", "ack", event_id)
    assert "invalid_login_tokens" not in cli("security", "events", "--open")
