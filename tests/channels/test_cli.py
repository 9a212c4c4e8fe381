"""``cartguard channels`` commands: purge keeps what is still needed, sign-webhook signs."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from cartguard.channels.messenger import valid_signature
from cartguard.cli import app
from cartguard.keys import load_keys
from cartguard.shop.conversations import (
    claim_webchat_session,
    load_webchat_session,
    register_webchat_session,
)
from cartguard.shop.db import session_scope
from cartguard.shop.models import ConversationOwner
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.channels import MessengerSeenEvent, WebchatSession
from tests.staffcli import service_token_file

runner = CliRunner()


def test_purge_removes_only_expired_and_unused_state(channel_db, tmp_path) -> None:
    old = utcnow() - timedelta(days=2)
    with session_scope() as session:
        for conversation_id in ("a" * 32, "b" * 32, "c" * 32):
            register_webchat_session(session, conversation_id)
        session.flush()
        claim_webchat_session(session, "b" * 32, channel_db[0])
        for row in session.execute(select(WebchatSession)).scalars():
            if row.conversation_id in ("a" * 32, "b" * 32):
                row.issued_at = old
        session.add(MessengerSeenEvent(event_key="1" * 64, seen_at=old))
        session.add(MessengerSeenEvent(event_key="2" * 64, seen_at=utcnow()))

    # cron runs it with a service credential scoped to retention.purge
    token_file = service_token_file(tmp_path, "retention.purge")
    result = runner.invoke(
        app, ["channels", "purge"], env={"CARTGUARD_SERVICE_TOKEN_FILE": str(token_file)}
    )
    assert result.exit_code == 0, result.output

    with session_scope() as session:
        assert load_webchat_session(session, "a" * 32) is None  # old and never used
        assert session.get(ConversationOwner, "a" * 32) is None
        assert load_webchat_session(session, "b" * 32).customer_id == channel_db[0]  # in use
        assert load_webchat_session(session, "c" * 32) is not None  # still fresh
        keys = set(session.execute(select(MessengerSeenEvent.event_key)).scalars())
    assert "1" * 64 not in keys and "2" * 64 in keys


def test_sign_webhook_prints_a_valid_signature(channel_db, tmp_path) -> None:
    body = json.dumps({"object": "page", "entry": []}).encode()
    path = tmp_path / "body.json"
    path.write_bytes(body)

    result = runner.invoke(app, ["channels", "sign-webhook", str(path)])
    assert result.exit_code == 0, result.output
    header = result.output.strip().split(": ", 1)[1]
    assert valid_signature(load_keys().get("messenger_app_secret"), body, header)
