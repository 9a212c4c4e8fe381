"""`make shell CUSTOMER=1` end to end: Rasa's shell prompt in a terminal, as demo customer 1.

The launcher (``python -m devtools.shell_channel shell``) runs in a pseudo-terminal, as a designer
would run it, against its own data directory. The conversation reaches an account flow that an
anonymous shopper never sees: the orders of customer 1, then a balance behind a step-up code.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # loads the trained model: one to three minutes on 2 cores

PROJECT = Path(__file__).resolve().parents[2]
CARTGUARD = Path(sys.executable).parent / "cartguard"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""

    def expect(self, pattern: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    break
                text = ANSI.sub(b"", self.screen).decode("utf-8", "replace")
                if re.search(pattern, text):
                    return text
        tail = ANSI.sub(b"", self.screen).decode("utf-8", "replace")[-3000:]
        raise AssertionError(f"no {pattern!r} within {seconds:.0f} s; the terminal shows:\n{tail}")

    def type(self, line: str) -> None:
        self.screen = b""
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        os.close(self.master)


@pytest.fixture()
def shell_env(tmp_path: Path) -> dict[str, str]:
    assert (PROJECT / "models" / "cartguard.tar.gz").exists(), "run `make train` first"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env["CARTGUARD_DATA_DIR"] = str(tmp_path)
    for setup in (["init-keys"], ["seed", "--customers", "2"]):
        subprocess.run([str(CARTGUARD), *setup], env=env, check=True, capture_output=True)
    return env


@pytest.fixture()
def terminal(shell_env: dict[str, str]) -> Iterator[Terminal]:
    command = [sys.executable, "-m", "devtools.shell_channel", "shell", "--customer", "1"]
    term = Terminal(command, shell_env)
    yield term
    term.close()


def test_make_shell_talks_as_the_chosen_customer(terminal: Terminal, shell_env) -> None:
    terminal.expect(r"Your input", 600)
    terminal.type("where is my order?")
    orders = terminal.expect(r"CG-\d{6}", 180)
    assert "log in" not in orders.lower()  # not the anonymous answer
    terminal.type("what's my store credit?")
    terminal.expect(r"6-digit code", 180)
    code = subprocess.run(
        [str(CARTGUARD), "totp-code", "1"], env=shell_env, capture_output=True, text=True
    ).stdout.split()[-1]
    terminal.type(code)
    terminal.expect(r"\$\d", 180)
    terminal.type("/stop")
    assert terminal.process.wait(60) == 0
