"""Step-up commands: demo helpers for testers and incident-response tools for staff.

``totp-code`` and ``totp-secret`` print secrets, so they work only with generated dev keys:
the same binary pointed at a production installation refuses. The staff commands under
``cartguard stepup`` sign in (:mod:`cartguard.cli.signin`), check the role table and are
audited as the signed-in staff account.
"""

from __future__ import annotations

import typer

from cartguard.cli.signin import staff_session
from cartguard.keys import load_keys
from cartguard.shop.db import session_scope
from cartguard.shop.models._common import utcnow
from cartguard.staff.roles import Permission

stepup_app = typer.Typer(no_args_is_help=True, help="Step-up (2FA) staff tools.")


def _require_dev_keys(what: str) -> None:
    if not load_keys().dev:
        typer.echo(f"refused: {what} can be printed only with generated dev keys", err=True)
        raise typer.Exit(code=2)


def _demo_secret_or_exit(customer_id: int) -> str:
    from cartguard.stepup.enrolment import demo_secret

    with session_scope() as session:
        secret = demo_secret(session, customer_id)
    if secret is None:
        typer.echo(
            f"customer {customer_id} has no active step-up enrolment "
            f"(enrol demo customers with `cartguard stepup enrol-demo {customer_id}`)",
            err=True,
        )
        raise typer.Exit(code=1)
    return secret


def totp_code(customer_id: int) -> None:
    """Print a demo customer's current step-up code (dev keys only)."""
    from cartguard.stepup import totp

    _require_dev_keys("step-up codes")
    typer.echo(totp.current_code(_demo_secret_or_exit(customer_id), utcnow()))


def totp_secret(customer_id: int) -> None:
    """Print a demo customer's step-up secret, to add to an authenticator app (dev keys only)."""
    _require_dev_keys("step-up secrets")
    typer.echo(_demo_secret_or_exit(customer_id))


def _run_staff(action: str, customer_id: int, done: str) -> None:
    from cartguard.stepup import admin

    operation = {"disable": admin.disable, "unlock": admin.unlock, "reset": admin.reset}[action]
    with staff_session(Permission.STEPUP_MANAGE) as (session, who):
        operation(session, customer_id, actor=who.actor)
    typer.echo(done)


@stepup_app.command("disable")
def disable(customer_id: int) -> None:
    """Suspend step-up for one customer pending review: sensitive requests are refused."""
    _run_staff(
        "disable",
        customer_id,
        f"step-up disabled for customer {customer_id}; their sensitive requests are refused "
        f"until `cartguard stepup unlock {customer_id}`",
    )


@stepup_app.command("unlock")
def unlock(customer_id: int) -> None:
    """Clear a lockout and lift a disable for one customer."""
    _run_staff("unlock", customer_id, f"step-up unlocked for customer {customer_id}")


@stepup_app.command("reset")
def reset(customer_id: int) -> None:
    """Remove a customer's authenticator (lost phone); they must enrol again."""
    _run_staff("reset", customer_id, f"step-up enrolment removed for customer {customer_id}")


@stepup_app.command("status")
def status(customer_id: int) -> None:
    """Show one customer's step-up state (never the secret)."""
    from cartguard.stepup import admin

    with staff_session(Permission.STEPUP_READ) as (session, _who):
        state = admin.describe(session, customer_id)
    typer.echo(
        f"customer {state.customer_id}: enrolled={state.enrolled} disabled={state.disabled} "
        f"failures={state.failures} locked_until={state.locked_until or '-'}"
    )


@stepup_app.command("enrol-demo")
def enrol_demo(customer_ids: list[int]) -> None:
    """Enrol demo customers directly and print their secrets (dev keys only)."""
    from cartguard.stepup.enrolment import enroll_demo_customers

    _require_dev_keys("step-up secrets")
    with session_scope() as session:
        secrets = enroll_demo_customers(session, customer_ids)
    for customer_id, secret in secrets.items():
        typer.echo(f"{customer_id:>3}  {secret}")


def register(app: typer.Typer) -> None:
    app.command("totp-code")(totp_code)
    app.command("totp-secret")(totp_secret)
    app.add_typer(stepup_app, name="stepup")
