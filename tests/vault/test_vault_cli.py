"""Vault key rotation from the command line: everything sealed is re-sealed, staff can still
sign in afterwards, a key still in use is never dropped, and the last Administrator has an
audited way back (break-glass).

The attack of issue 14: `vault rotate --new-key` re-encrypted the vault entries but not the
staff authenticator secrets sealed with the same key, then dropped the old key, so every
staff sign-in failed and `create-admin` refused because accounts existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faker import Faker
from sqlalchemy import select

from cartguard.audit import verify
from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models import AuditEntry
from cartguard.shop.models.staff import StaffAccount
from cartguard.staff import accounts as staff
from cartguard.staff.roles import Role
from cartguard.vault import RotationReport, VaultError, get_vault
from tests.conftest import own_shop_database
from tests.staffcli import PASSWORD, cli_as, make_staff

fake = Faker()


@pytest.fixture()
def admin(data_dir: Path) -> dict[str, str]:
    get_vault.cache_clear()
    return make_staff(Role.ADMINISTRATOR)


def _vault_key_ids() -> list[str]:
    return list(json.loads(get_settings().keys_file.read_text())["vault_keys"])


def _sealed_key_of(username: str) -> str:
    with session_scope() as session:
        row = session.execute(
            select(StaffAccount).where(StaffAccount.username == username)
        ).scalar_one()
        return row.totp_secret_enc.partition(":")[0]


@pytest.mark.parametrize(
    "command", [["vault", "rotate", "--new-key"], ["security", "rotate-vault"]]
)
def test_rotation_then_staff_sign_in_works(admin, command) -> None:
    email = fake.email()
    token = get_vault().tokenize(email, "EMAIL_ADDRESS")
    customer_secret = get_vault().tokenize("JBSWY3DPEHPK3PXPJBSWY3DP", "TOTP_SECRET")
    old_keys = _vault_key_ids()

    rotated = cli_as(admin, command)
    assert rotated.exit_code == 0, rotated.stderr

    new_keys = _vault_key_ids()
    assert len(new_keys) == 1 and new_keys[0] not in old_keys  # the old key is gone
    assert _sealed_key_of(admin["user"]) == new_keys[0]  # staff secret re-sealed
    signed_in = cli_as(admin, ["staff", "whoami"])  # the sign-in that used to fail
    assert signed_in.exit_code == 0, signed_in.stderr
    assert f"staff:{admin['user']}" in signed_in.stdout
    fresh = type(get_vault())()  # another process reading the key file
    assert fresh.detokenize(token) == email
    assert fresh.detokenize(customer_secret) == "JBSWY3DPEHPK3PXPJBSWY3DP"  # customer TOTP too


def test_rotate_command_is_audited_as_the_staff_member_in_one_transaction(admin) -> None:
    email = fake.email()
    token = get_vault().tokenize(email, "EMAIL_ADDRESS")
    result = cli_as(admin, ["vault", "rotate", "--new-key"], LOGNAME="someone-else")
    assert result.exit_code == 0, result.stderr
    assert "new vault key" in result.stdout
    again = cli_as(admin, ["vault", "rotate"])
    assert again.exit_code == 0 and "0 values re-sealed" in again.stdout
    assert get_vault().detokenize(token) == email
    with session_scope() as session:
        rows = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "vault.rotate")
                .order_by(AuditEntry.seq.desc())
                .limit(2)
            )
            .scalars()
            .all()
        )
        assert {r.actor for r in rows} == {f"staff:{admin['user']}"}
        assert json.loads(rows[1].details)["resealed_fields"]["staff_accounts"] >= 1
        assert all(email not in (r.details or "") and token not in (r.details or "") for r in rows)
        assert verify(session).ok


def test_rotation_without_sign_in_changes_nothing(data_dir) -> None:
    before = get_settings().keys_file.read_bytes()
    for command in (["vault", "rotate", "--new-key"], ["security", "rotate-vault"]):
        result = cli_as(None, command, LOGNAME="anyone")
        assert result.exit_code == 4
    assert get_settings().keys_file.read_bytes() == before


def test_a_key_still_in_use_is_not_dropped(admin) -> None:
    """A value sealed with the old key while rotating (another process) keeps that key."""
    vault = get_vault()
    old_kid = vault.key_ids[-1]
    old_key = vault._ring.get(old_kid)
    stale = {}

    def concurrent_writer(session, report: RotationReport) -> None:
        # as if a process that had not noticed the new key sealed a secret just now
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = b"\0" * 12
        stale["blob"] = (
            f"{old_kid}:"
            + __import__("base64")
            .urlsafe_b64encode(nonce + AESGCM(old_key).encrypt(nonce, b"SECRETSECRET", b"x"))
            .decode()
        )
        account = staff.find_account(session, admin["user"])
        account.totp_secret_enc = stale["blob"]

    with pytest.raises(VaultError, match="still sealed with old keys"):
        vault.add_key_and_rotate(on_rotated=concurrent_writer)
    assert old_kid in _vault_key_ids()  # kept: the value is still readable
    assert vault.open_field(stale["blob"], b"x") == "SECRETSECRET"
    # the next rotation re-seals it; only then does the old key go
    vault.rotate()
    with session_scope() as session:
        account = staff.find_account(session, admin["user"])
        account.totp_secret_enc = staff.seal_totp_secret(admin["user"], admin["secret"])
    vault.add_key_and_rotate()
    assert old_kid not in _vault_key_ids()


@pytest.fixture()
def lone_admin(data_dir, tmp_path) -> dict[str, str]:
    """A database whose only Administrator's authenticator secret no key opens any more."""
    with own_shop_database(tmp_path / "shop.db"):
        account = make_staff(Role.ADMINISTRATOR, "last-admin")
        with session_scope() as session:
            row = staff.find_account(session, "last-admin")
            row.totp_secret_enc = "k0-gone:" + row.totp_secret_enc.partition(":")[2]
        yield account


def test_break_glass_recovers_the_last_administrator_and_is_audited(lone_admin) -> None:
    locked_out = cli_as(lone_admin, ["staff", "whoami"])
    assert locked_out.exit_code == 4 and "break-glass" in locked_out.stderr.lower()

    refused = cli_as(
        None,
        ["staff", "break-glass", "last-admin", "--reason", "lost key", "--confirm", "last-admin"],
        CARTGUARD_NEW_STAFF_PASSWORD=PASSWORD,
    )
    assert refused.exit_code == 1 and "at least 10 characters" in refused.stderr
    mistyped = cli_as(
        None,
        ["staff", "break-glass", "last-admin", "--reason", "vault key lost in rotation"],
        CARTGUARD_NEW_STAFF_PASSWORD=PASSWORD,
    )
    assert mistyped.exit_code != 0  # no terminal to confirm on, no --confirm: nothing done

    recovered = cli_as(
        None,
        [
            "staff",
            "break-glass",
            "last-admin",
            "--reason",
            "vault key lost in rotation",
            "--confirm",
            "last-admin",
        ],
        CARTGUARD_NEW_STAFF_PASSWORD=PASSWORD,
    )
    assert recovered.exit_code == 0, recovered.stderr
    secret = recovered.stdout.split("secret: ", 1)[1].split()[0]
    signed_in = cli_as({"user": "last-admin", "secret": secret}, ["staff", "whoami"])
    assert signed_in.exit_code == 0, signed_in.stderr
    with session_scope() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "staff.break_glass")
        ).scalar_one()
        assert entry.actor == "break-glass:host-operator"
        assert entry.subject == "staff:last-admin"
        assert "vault key lost" in entry.details
        assert verify(session).ok


def test_break_glass_is_refused_while_another_administrator_can_sign_in(lone_admin) -> None:
    make_staff(Role.ADMINISTRATOR, "other-admin")
    result = cli_as(
        None,
        [
            "staff",
            "break-glass",
            "last-admin",
            "--reason",
            "trying to take over an account",
            "--confirm",
            "last-admin",
        ],
        CARTGUARD_NEW_STAFF_PASSWORD=PASSWORD,
    )
    assert result.exit_code == 1 and "other-admin can still sign in" in result.stderr
    assert "reset-2fa last-admin" in result.stderr
