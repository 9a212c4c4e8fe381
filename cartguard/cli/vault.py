"""``cartguard vault ...``: key rotation and housekeeping of the token vault (audited).

Both commands sign in and check the role table; the audit entry names the signed-in staff
account (or the service credential) and how many values were touched. Key ids are recorded
(they are not secret), keys and values never are. Rotation re-seals the vault entries *and*
every secret sealed elsewhere with vault keys (staff authenticator secrets) in one
transaction, with its audit entry, and drops an old key only when nothing uses it any more.
"""

from __future__ import annotations

import typer
from sqlalchemy.orm import Session

from cartguard.audit import record
from cartguard.cli.signin import staff_identity
from cartguard.shop.db import session_scope
from cartguard.staff.roles import Permission

vault_app = typer.Typer(no_args_is_help=True, help="Token vault: key rotation and clean-up.")


@vault_app.command("rotate")
def rotate(
    new_key: bool = typer.Option(
        False,
        "--new-key",
        help="first generate a new key into the key file; old keys are dropped once unused",
    ),
) -> None:
    """Re-seal every vault entry and staff authenticator secret under the newest key."""
    from cartguard.vault import RotationReport, VaultError, get_vault

    with staff_identity(Permission.KEYS_ROTATE) as who:
        vault = get_vault()
        done: list[RotationReport] = []

        def audited(session: Session, report: RotationReport) -> None:
            done.append(report)
            record(
                session,
                who.actor,
                "vault.rotate",
                subject=report.active_key,
                details={
                    "new_key": new_key,
                    "resealed": report.resealed,
                    "resealed_fields": report.resealed_fields,
                    "unreadable": len(report.unreadable),
                },
            )

        try:
            if new_key:
                key_id = vault.add_key_and_rotate(on_rotated=audited)
            else:
                key_id = get_vault().key_ids[-1]
                vault.rotate(on_rotated=audited)
        except VaultError as exc:
            typer.echo(f"vault rotation failed: {exc}", err=True)
            raise typer.Exit(code=1) from exc
    report = done[-1]
    if report.unreadable:
        typer.echo(
            f"warning: {len(report.unreadable)} sealed values could not be read (tampered or "
            "sealed with a missing key) and were left as they are; see the log",
            err=True,
        )
    if new_key:
        typer.echo(
            f"new vault key {key_id} is active; {report.resealed} values re-sealed "
            f"(staff secrets: {report.resealed_fields.get('staff_accounts', 0)}), old keys removed"
        )
    else:
        typer.echo(f"{report.resealed} values re-sealed under key {key_id}")
        _report_old_keys(key_id)


def _report_old_keys(active: str) -> None:
    """With keys in the environment the operator removes old keys: say which are free."""
    from cartguard.vault import get_vault

    usage = get_vault().keys_in_use()
    for kid in get_vault().key_ids:
        if kid != active:
            count = usage.get(kid, 0)
            state = f"still seals {count} values: keep it" if count else "unused: may be removed"
            typer.echo(f"old key {kid}: {state}")


@vault_app.command("purge-expired")
def purge_expired() -> None:
    """Delete expired vault entries (the retention job runs this too)."""
    from cartguard.vault import get_vault

    with staff_identity(Permission.RETENTION_PURGE) as who:
        count = get_vault().purge_expired()
        with session_scope() as session:
            record(session, who.actor, "vault.purge_expired", details={"deleted": count})
    typer.echo(f"{count} expired vault entries deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(vault_app, name="vault")
