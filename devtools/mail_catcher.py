"""A local mail catcher for development and tests: an SMTP server that keeps every message.

The shop sends enrolment confirmation links and security notices by e-mail
(``cartguard.notify``). In development nothing may leave the machine, so this stands in for the
mail server:

* it listens on ``127.0.0.1`` only (port ``SMTP_PORT``, default 8025), the default of
  ``CARTGUARD_SMTP_HOST`` / ``CARTGUARD_SMTP_PORT``;
* it accepts any sender and recipient and stores each message, as received, in
  ``$CARTGUARD_DATA_DIR/mail/<time>-<random>.eml`` (directory 0700, files 0600: a message can
  hold a single-use link);
* it refuses messages over 1 MB.

Run it with ``.venv/bin/python -m devtools.mail_catcher`` (``make run`` starts it); read what
arrived with ``.venv/bin/cartguard dev mail`` (list) and ``cartguard dev mail <n>`` (one message
with its link). Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
DEFAULT_PORT = 8025
MAIL_DIR = "mail"
MAX_MESSAGE_BYTES = 1024 * 1024


def mail_dir(data_dir: Path | None = None) -> Path:
    """Where messages are kept: ``<data dir>/mail``."""
    base = data_dir or Path(os.environ.get("CARTGUARD_DATA_DIR", "var"))
    return base.resolve() / MAIL_DIR


class KeepMessages:
    """aiosmtpd handler: write each message to its own private file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "replace")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{time.time_ns() % 1_000_000_000:09d}-{secrets.token_hex(3)}.eml"
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        return "250 Message accepted for delivery"


def start(port: int = DEFAULT_PORT, directory: Path | None = None) -> Controller:
    """Start the catcher in a background thread (tests use this with a free port)."""
    controller = Controller(
        KeepMessages(directory or mail_dir()),
        hostname=HOST,
        port=port,
        data_size_limit=MAX_MESSAGE_BYTES,
    )
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMTP_PORT", DEFAULT_PORT)))
    parser.add_argument("--dir", type=Path, default=None, help="default: $CARTGUARD_DATA_DIR/mail")
    args = parser.parse_args(argv)
    directory = args.dir or mail_dir()
    try:
        controller = start(args.port, directory)
    except OSError as exc:
        print(f"mail catcher: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"mail catcher on smtp://{HOST}:{args.port}, keeping messages in {directory}", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
