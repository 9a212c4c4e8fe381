"""HAProxy (Debian's ``/usr/sbin/haproxy``) on loopback in front of the Rasa replicas.

:class:`Balancer` renders ``bench/haproxy.cfg`` with the replicas' addresses, checks it with
``haproxy -c`` and runs HAProxy in the foreground, its request log in ``haproxy.log``:
``public_url`` is what shoppers' browsers reach (socket.io, sticky by cookie), ``internal_url``
what the web service uses for Rasa's HTTP API (round robin). :func:`routed` reads the log back:
which replica served each request, so a test can show a confirmation crossed replicas.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.services import free_port, port_open, spawn

TEMPLATE = Path(__file__).with_name("haproxy.cfg")
HAPROXY = "/usr/sbin/haproxy"
#: httplog lines: ... frontend backend/server timers status ... "METHOD PATH HTTP/1.1"
_LOG_LINE = re.compile(
    r" (?P<frontend>\S+) (?P<backend>[\w-]+)/(?P<server>[\w<>-]+) "
    r".*\"(?P<method>[A-Z]+) (?P<path>\S+)"
)


def server_name(index: int) -> str:
    return f"rasa{index + 1}"


def render(
    replicas: Sequence[tuple[str, int]], public_port: int, internal_port: int, stats: Path
) -> str:
    """The configuration for these replica addresses (``(host, port)``, in replica order)."""
    public = "\n".join(
        f"    server {server_name(i)} {host}:{port} check cookie r{i + 1}"
        for i, (host, port) in enumerate(replicas)
    )
    api = "\n".join(
        f"    server {server_name(i)} {host}:{port} check"
        for i, (host, port) in enumerate(replicas)
    )
    return (
        TEMPLATE.read_text()
        .replace("@PUBLIC_BIND@", f"    bind 127.0.0.1:{public_port}")
        .replace("@INTERNAL_BIND@", f"    bind 127.0.0.1:{internal_port}")
        .replace("@PUBLIC_SERVERS@", public)
        .replace("@API_SERVERS@", api)
        .replace("@STATS_SOCKET@", str(stats))
    )


def check_config(path: Path) -> None:
    """``haproxy -c``: raise with HAProxy's own words when the file is not valid."""
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"haproxy rejected {path}: {(result.stdout + result.stderr).strip()}")


@dataclass
class Route:
    """One request as HAProxy logged it."""

    frontend: str
    backend: str
    server: str
    method: str
    path: str


def routed(log: Path) -> list[Route]:
    """Every request HAProxy logged so far, in order."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text(errors="replace").splitlines():
        match = _LOG_LINE.search(line)
        if match:
            out.append(Route(**match.groupdict()))
    return out


class Balancer:
    """A running HAProxy; ``start()`` from a thread that outlives it (it dies with that thread)."""

    def __init__(self, replicas: Sequence[tuple[str, int]], workdir: Path) -> None:
        self.replicas = list(replicas)
        self.workdir = workdir
        self.public_port = free_port()
        self.internal_port = free_port()
        self.config = workdir / "haproxy.cfg"
        self.log = workdir / "haproxy.log"
        self.stats = workdir / "haproxy.sock"
        self.process: subprocess.Popen | None = None

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    def start(self) -> Balancer:
        if shutil.which(HAPROXY) is None and not Path(HAPROXY).exists():
            raise RuntimeError(f"HAProxy is not installed ({HAPROXY}); apt-get install haproxy")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            render(self.replicas, self.public_port, self.internal_port, self.stats)
        )
        check_config(self.config)
        log = self.log.open("ab")
        try:
            self.process = spawn(
                [HAPROXY, "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 20
        while not (
            port_open("127.0.0.1", self.public_port, 0.5)
            and port_open("127.0.0.1", self.internal_port, 0.5)
        ):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start; see {self.log}")
            time.sleep(0.1)
        return self

    def command(self, line: str) -> str:
        """One command on HAProxy's stats socket (e.g. ``show stat``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[tuple[str, str], str]:
        """``{(backend, server): "UP" | "DOWN" | ...}`` from ``show stat``."""
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("svname") not in (None, "FRONTEND", "BACKEND"):
                states[(row["pxname"], row["svname"])] = row.get("status", "")
        return states

    def server_up(self, index: int) -> bool:
        """True once HAProxy's health checks see replica ``index`` up in both backends."""
        try:
            states = self.server_states()
        except OSError:
            return False
        name = server_name(index)
        return all(
            states.get((backend, name), "").startswith("UP")
            for backend in ("rasa_public", "rasa_api")
        )

    def routes(self) -> list[Route]:
        return routed(self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
