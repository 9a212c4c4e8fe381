"""``cartguard vault ...``: key rotation and housekeeping of the token vault (audited).

Every command records who ran it and how many entries it touched in the audit log; key ids
are recorded (they are not secret), keys and values never are.
"""

from __future__ import annotations

import getpass

import typer

from cartguard.audit import record
from cartguard.shop.db import session_scope
from cartguard.vault import VaultError, get_vault

vault_app = typer.Typer(no_args_is_help=True, help="Token vault: key rotation and clean-up.")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@vault_app.command("rotate")
def rotate(
    new_key: bool = typer.Option(
        False,
        "--new-key",
        help="first generate a new key into the dev key file; old keys are dropped after",
    ),
) -> None:
    """Re-encrypt every vault entry under the newest key."""
    vault = get_vault()
    try:
        if new_key:
            key_id = vault.add_key_and_rotate()
            count = None
        else:
            count = vault.rotate()
            key_id = vault.key_ids[-1]
    except VaultError as exc:
        typer.echo(f"vault rotation failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    with session_scope() as session:
        record(
            session,
            _actor(),
            "vault.rotate",
            subject=key_id,
            details={
                "new_key": new_key,
                "re_encrypted": count,
                "unreadable": vault.last_rotation_unreadable,
            },
        )
    if vault.last_rotation_unreadable:
        typer.echo(
            f"warning: {vault.last_rotation_unreadable} entries could not be read (tampered or "
            "sealed with a missing key) and were left as they are; see the log",
            err=True,
        )
    if new_key:
        typer.echo(f"new vault key {key_id} is active; every entry re-encrypted, old keys removed")
    else:
        typer.echo(f"{count} vault entries re-encrypted under key {key_id}")


@vault_app.command("purge-expired")
def purge_expired() -> None:
    """Delete expired vault entries (the retention job runs this too)."""
    count = get_vault().purge_expired()
    with session_scope() as session:
        record(session, _actor(), "vault.purge_expired", details={"deleted": count})
    typer.echo(f"{count} expired vault entries deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(vault_app, name="vault")
