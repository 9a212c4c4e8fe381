"""The ``cartguard`` command line: developer set-up commands and (per area) staff tools.

Each area registers its commands in its own module below; this file only assembles them.
"""

from __future__ import annotations

import typer

from cartguard.cli import audit as audit_cli
from cartguard.cli import channels as channels_cli
from cartguard.cli import db as db_cli
from cartguard.cli import dev
from cartguard.cli import privacy as privacy_cli
from cartguard.cli import security as security_cli
from cartguard.cli import staff as staff_cli
from cartguard.cli import stepup as stepup_cli
from cartguard.cli import tickets as tickets_cli
from cartguard.cli import vault as vault_cli
from cartguard.cli import web as web_cli

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Cartguard command line.")
dev.register(app)
staff_cli.register(app)
privacy_cli.register(app)
audit_cli.register(app)
tickets_cli.register(app)
stepup_cli.register(app)
web_cli.register(app)
vault_cli.register(app)
security_cli.register(app)
channels_cli.register(app)
db_cli.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
