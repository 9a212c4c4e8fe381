"""``cartguard vault rotate`` re-encrypts and leaves an audit entry without secrets."""

from __future__ import annotations

from pathlib import Path

from faker import Faker
from sqlalchemy import select
from typer.testing import CliRunner

from cartguard.audit import verify
from cartguard.cli import app
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.vault import get_vault


def test_rotate_command_is_audited(data_dir: Path) -> None:
    get_vault.cache_clear()
    email = Faker().email()
    token = get_vault().tokenize(email, "EMAIL_ADDRESS")
    result = CliRunner().invoke(app, ["vault", "rotate", "--new-key"])
    assert result.exit_code == 0, result.output
    assert "new vault key" in result.output
    result = CliRunner().invoke(app, ["vault", "rotate"])
    assert result.exit_code == 0 and "0 vault entries re-encrypted" in result.output
    assert get_vault().detokenize(token) == email
    with session_scope() as session:
        rows = (
            session.execute(select(AuditEntry).where(AuditEntry.action == "vault.rotate"))
            .scalars()
            .all()
        )
        assert len(rows) >= 2
        assert all(email not in (r.details or "") and token not in (r.details or "") for r in rows)
        assert verify(session).ok
