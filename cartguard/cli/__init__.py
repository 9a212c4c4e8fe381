"""The ``cartguard`` command line: developer set-up commands and (per area) staff tools.

Each area registers its commands in its own module below; this file only assembles them.
"""

from __future__ import annotations

import typer

from cartguard.cli import dev

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Cartguard command line.")
dev.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
