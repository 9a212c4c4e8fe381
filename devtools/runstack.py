"""Start the assistant exactly as ``make run`` does, for a test or a script (development only).

``scripts/run.sh`` is started after ``cartguard init-keys`` and ``cartguard seed`` (what ``make
setup`` runs), with free loopback ports in RASA_PORT, ACTION_PORT, WEB_PORT and
PAYMENT_PROVIDER_PORT and a data directory of its own, so it never meets a developer's running
``make run``. What the script prints is read back: the URL to open and the demo logins.

Used by ``tests/browser/test_run_script.py`` (the newcomer's path in Chromium) and
``scripts/screenshots.py`` (the pictures in docs/screenshots/).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RUN_SCRIPT = PROJECT / "scripts" / "run.sh"
CARTGUARD = Path(sys.executable).parent / "cartguard"
READY_LINE = "Stop: Ctrl-C"
#: "   1  Megan Smith            megan.smith@example.com            <password>"
LOGIN_LINE = re.compile(r"^\s+(\d+)\s+(.+?)\s{2,}(\S+@\S+)\s+(\S+)\s*$")


class StackDidNotStart(RuntimeError):
    """run.sh stopped or did not print its URL in time; the message holds its output and logs."""


@dataclass(frozen=True)
class DemoLogin:
    customer_id: int
    name: str
    email: str
    password: str


@dataclass
class RunningStack:
    """A running ``scripts/run.sh`` and what it printed."""

    process: subprocess.Popen
    data_dir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.output)

    @property
    def url(self) -> str:
        """The URL the script printed after "Open:"."""
        match = re.search(r"Open:\s+(\S+)", self.text)
        if not match:
            raise StackDidNotStart(f"run.sh printed no URL:\n{self.text}")
        return match.group(1)

    @property
    def logins(self) -> list[DemoLogin]:
        """The demo logins the script printed, in order."""
        found = []
        for line in self.text.splitlines():
            if match := LOGIN_LINE.match(line):
                found.append(DemoLogin(int(match[1]), match[2].strip(), match[3], match[4]))
        return found

    def cli(self, *args: str) -> str:
        """Run ``cartguard`` against this stack's data directory."""
        return subprocess.run(  # noqa: S603 - our own command
            [str(CARTGUARD), *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout.strip()

    def descendants(self) -> list[int]:
        """Every process below run.sh (the servers it started), found through /proc."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def servers(self) -> list[int]:
        """The long-running Python servers among the descendants (not a passing curl)."""
        return [pid for pid in self.descendants() if b"python" in cmdline(pid)]

    def stop(self) -> None:
        """Ctrl-C's effect, then force: nothing it started outlives it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self.descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its exit status is left


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_output(process: subprocess.Popen, sink: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line)


def start(data_dir: Path, customers: int = 3, timeout_seconds: float = 420) -> RunningStack:
    """Set up ``data_dir`` like ``make setup`` and start run.sh on free ports; wait for its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env.update(
        CARTGUARD_DATA_DIR=str(data_dir),
        RASA_PORT=str(free_port()),
        ACTION_PORT=str(free_port()),
        WEB_PORT=str(free_port()),
        PAYMENT_PROVIDER_PORT=str(free_port()),
        SMTP_PORT=str(free_port()),
    )
    for setup in (["init-keys"], ["seed", "--customers", str(customers)]):
        subprocess.run([str(CARTGUARD), *setup], env=env, check=True, capture_output=True)  # noqa: S603
    process = subprocess.Popen(  # noqa: S603 - our own script
        ["bash", str(RUN_SCRIPT)],  # noqa: S607
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    stack = RunningStack(process, data_dir, env)
    threading.Thread(target=_read_output, args=(process, stack.output), daemon=True).start()
    deadline = time.monotonic() + timeout_seconds
    while READY_LINE not in stack.text:
        if process.poll() is not None or time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
                for log in sorted((data_dir / "logs").glob("*.log"))
            )
            stack.stop()
            raise StackDidNotStart(f"run.sh did not come up:\n{stack.text}\n{logs}")
        time.sleep(1)
    return stack
