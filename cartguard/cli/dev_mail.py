"""``cartguard dev mail``: read the e-mail the development mail catcher kept (dev keys only).

``python -m devtools.mail_catcher`` stores each message the shop sends as a file under
``$CARTGUARD_DATA_DIR/mail/``. ``cartguard dev mail`` lists them (oldest first, numbered);
``cartguard dev mail 3`` or ``cartguard dev mail last`` prints one, with its link. Messages can
hold single-use links, so like ``login-token`` this works only with generated dev keys.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import typer

from cartguard.control_chars import strip_control_chars
from cartguard.keys import load_keys
from cartguard.settings import get_settings

MAIL_DIR = "mail"

dev_app = typer.Typer(no_args_is_help=True, help="Development helpers (dev keys only).")


def mail_files(data_dir: Path | None = None) -> list[Path]:
    """The kept messages, oldest first (their names start with the time they arrived)."""
    directory = (data_dir or get_settings().data_dir) / MAIL_DIR
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.eml"))


def read_message(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)  # type: ignore[return-value]


def _header(message: EmailMessage, name: str) -> str:
    return strip_control_chars(" ".join(str(message.get(name, "")).split()))


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    return strip_control_chars(text)


@dev_app.command("mail")
def mail(
    which: str = typer.Argument(None, help="a number from the list, or 'last'; none: list all"),
) -> None:
    """List the e-mail the development mail catcher kept, or print one (with its link)."""
    if not load_keys().dev:
        typer.echo("refused: kept e-mail is shown only with generated dev keys", err=True)
        raise typer.Exit(code=2)
    files = mail_files()
    if which is None:
        if not files:
            typer.echo(
                "no e-mail kept yet (is the catcher running? .venv/bin/python -m "
                "devtools.mail_catcher)"
            )
            return
        for number, path in enumerate(files, start=1):
            message = read_message(path)
            to, subject = _header(message, "To"), _header(message, "Subject")
            typer.echo(f"{number:>3}  {_header(message, 'Date'):<31}  {to:<30}  {subject}")
        return
    index = len(files) if which == "last" else int(which) if which.isdigit() else 0
    if not 1 <= index <= len(files):
        typer.echo(f"no message {which!r}: there are {len(files)} (see `cartguard dev mail`)")
        raise typer.Exit(code=1)
    message = read_message(files[index - 1])
    for name in ("Date", "From", "To", "Subject"):
        typer.echo(f"{name}: {_header(message, name)}")
    typer.echo("")
    typer.echo(_body(message))
