"""Set-up and tester commands: keys, schema, demo data, login tokens.

``login-token`` (and other printing of secrets) works only with generated dev keys, so the
same command cannot mint tokens for a production installation.
"""

from __future__ import annotations

import shlex

import typer
from sqlalchemy import select

from cartguard.keys import generate_dev_keys, load_keys
from cartguard.settings import get_settings
from cartguard.shop.db import session_scope
from cartguard.shop.models import Customer, Order
from cartguard.shop.schema import create_schema

# Faker (demo data), argon2 (demo logins) and the web service load only in the commands that
# use them: `cartguard --help` and `cartguard customers` answer at once (docs/benchmarks.md).


def _require_dev_keys(what: str) -> None:
    """Development commands refuse a production installation (keys from the environment):
    seeding would enrol real customers and set demo passwords, listing would show names."""
    if not load_keys().dev:
        typer.echo(f"refused: {what} works only with generated dev keys", err=True)
        raise typer.Exit(code=2)


def init_keys() -> None:
    """Generate local development keys into the data directory (never overwrites a key)."""
    settings = get_settings()
    created = generate_dev_keys(settings.keys_file)
    state = "created" if created else "already present"
    typer.echo(f"dev keys {state}: {settings.keys_file}")


def init_db() -> None:
    """Create any missing tables in the configured database."""
    create_schema()
    typer.echo(f"schema ready: {get_settings().database_url}")


def seed(customers: int = typer.Option(5, help="how many demo customers")) -> None:
    """Create the schema and fill an empty shop with generated demo data (idempotent)."""
    from cartguard.shop.seed import seed_shop
    from cartguard.stepup.enrolment import enroll_demo_customers
    from cartguard.webapp.auth import create_demo_logins

    _require_dev_keys("seeding demo data")
    create_schema()
    with session_scope() as session:
        people = seed_shop(session, customers=customers)
        ids = [person.id for person in people]
        enroll_demo_customers(session, ids)
        create_demo_logins(session, ids)
        typer.echo(f"demo shop ready: {len(people)} customers, authenticators enrolled, logins set")


def demo_info() -> None:
    """Print the demo logins and the first demo customer's TOTP secret (dev keys only)."""
    from cartguard.stepup.enrolment import demo_secret
    from cartguard.webapp.auth import create_demo_logins

    if not load_keys().dev:
        typer.echo("refused: demo credentials are shown only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    with session_scope() as session:
        people = session.execute(select(Customer).order_by(Customer.id).limit(3)).scalars().all()
        logins = create_demo_logins(session, [person.id for person in people])
        secret = demo_secret(session, people[0].id) if people else None
    typer.echo(" Demo logins (log in with the e-mail and password):")
    for person in people:
        password = logins.get(person.email.lower(), "")
        typer.echo(f"   {person.id}  {person.name:<22} {person.email.lower():<34} {password}")
    if secret:
        typer.echo("")
        typer.echo(f" Step-up codes for {people[0].name}: add this secret to an authenticator app")
        typer.echo(f"   {secret}")
        typer.echo(f"   or run: .venv/bin/cartguard totp-code {people[0].id}")


def customers() -> None:
    """List the demo customers with their ids (for testers; dev keys only)."""
    _require_dev_keys("listing customers")
    with session_scope() as session:
        rows = session.execute(select(Customer).order_by(Customer.id)).scalars().all()
        for customer in rows:
            orders = session.execute(
                select(Order.id).where(Order.customer_id == customer.id).limit(2)
            ).scalars()
            typer.echo(f"{customer.id:>3}  {customer.name:<28} orders e.g. {', '.join(orders)}")


def login_token(
    customer_id: int,
    ttl: int = typer.Option(3600, help="lifetime in seconds"),
) -> None:
    """Print a webchat login token for a demo customer (only with generated dev keys)."""
    from cartguard.identity import issue_login_token

    keys = load_keys()
    if not keys.dev:
        typer.echo("refused: login tokens can be printed only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    typer.echo(issue_login_token(customer_id, ttl_seconds=ttl, keys=keys))


def shell_env() -> None:
    """Print ``export`` lines for the secrets Rasa's YAML files reference (for scripts/run.sh)."""
    settings = get_settings()
    keys = load_keys()
    values = {
        "CARTGUARD_DATA_DIR": str(settings.data_dir),
        "CARTGUARD_ACTION_URL": settings.action_url,
        "CARTGUARD_ACTION_TOKEN": keys.get("action_token"),
        "CARTGUARD_RASA_JWT_SECRET": keys.get("rasa_jwt_secret"),
        "CARTGUARD_MESSENGER_VERIFY_TOKEN": keys.get("messenger_verify_token"),
        "CARTGUARD_MESSENGER_APP_SECRET": keys.get("messenger_app_secret"),
        "CARTGUARD_MESSENGER_PAGE_TOKEN": keys.get("messenger_page_token"),
    }
    for name, value in values.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


def register(app: typer.Typer) -> None:
    from cartguard.cli.dev_mail import dev_app  # `cartguard dev mail` (the mail catcher's inbox)

    app.add_typer(dev_app, name="dev")
    app.command("init-keys")(init_keys)
    app.command("init-db")(init_db)
    app.command("seed")(seed)
    app.command("customers")(customers)
    app.command("login-token")(login_token)
    app.command("shell-env")(shell_env)
    app.command("demo-info")(demo_info)
