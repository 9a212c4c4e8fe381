"""The shared services of a multi-replica install, as this machine runs them.

Addresses come from ``CARTGUARD_SCALE_PG`` (a PostgreSQL server URL without a database,
default ``postgresql://postgres@127.0.0.1:5432``), ``CARTGUARD_SCALE_REDIS`` (default
``redis://127.0.0.1:6379``) and ``CARTGUARD_SCALE_AMQP`` (default
``amqp://guest:guest@127.0.0.1:5672/``). Besides reachability checks (so tests skip with a
clear reason when a service is absent) this module creates and drops databases and queues,
and holds the switches the fault tests pull: restart PostgreSQL, stop and start RabbitMQ.
Those switches always wait until the service answers again, or say plainly that it did not.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Services:
    """Where PostgreSQL, Redis and RabbitMQ listen."""

    pg_url: str = "postgresql://postgres@127.0.0.1:5432"
    redis_url: str = "redis://127.0.0.1:6379"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"

    @classmethod
    def from_env(cls) -> Services:
        return cls(
            pg_url=os.environ.get("CARTGUARD_SCALE_PG", cls.pg_url).rstrip("/"),
            redis_url=os.environ.get("CARTGUARD_SCALE_REDIS", cls.redis_url).rstrip("/"),
            amqp_url=os.environ.get("CARTGUARD_SCALE_AMQP", cls.amqp_url),
        )

    def pg_database_url(self, database: str) -> str:
        return f"{self.pg_url}/{_checked(database)}"

    @property
    def redis_host(self) -> str:
        return urlsplit(self.redis_url).hostname or "127.0.0.1"

    @property
    def redis_port(self) -> int:
        return urlsplit(self.redis_url).port or 6379

    @property
    def redis_password(self) -> str:
        return urlsplit(self.redis_url).password or ""

    @property
    def amqp(self) -> tuple[str, int, str, str]:
        """(host, port, user, password) of RabbitMQ."""
        parts = urlsplit(self.amqp_url)
        return (
            parts.hostname or "127.0.0.1",
            parts.port or 5672,
            parts.username or "guest",
            parts.password or "guest",
        )


def _checked(name: str) -> str:
    """Database and queue names go into SQL and shell-free commands: keep them plain."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case name (letters, digits, _)")
    return name


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing_services(services: Services | None = None) -> list[str]:
    """Human-readable names of the services that do not answer (empty when all do)."""
    services = services or Services.from_env()
    pg = urlsplit(services.pg_url)
    host, port, _, _ = services.amqp
    checks = {
        f"PostgreSQL at {pg.hostname}:{pg.port or 5432}": (pg.hostname or "", pg.port or 5432),
        f"Redis at {services.redis_host}:{services.redis_port}": (
            services.redis_host,
            services.redis_port,
        ),
        f"RabbitMQ at {host}:{port}": (host, port),
    }
    return [name for name, (h, p) in checks.items() if not port_open(h, p)]


# ------------------------------------------------------------------------------ PostgreSQL


def _admin_connection(services: Services) -> Any:
    import psycopg2

    last: Exception | None = None
    for database in ("postgres", "test"):
        try:
            conn = psycopg2.connect(f"{services.pg_url}/{database}", connect_timeout=5)
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError as exc:
            last = exc
    raise RuntimeError(f"cannot reach PostgreSQL at {services.pg_url}: {last}")


def create_database(name: str, services: Services | None = None) -> bool:
    """Create database ``name`` unless it exists; True when it was created."""
    services = services or Services.from_env()
    conn = _admin_connection(services)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_checked(name),))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        conn.close()


def drop_database(name: str, services: Services | None = None) -> None:
    """Drop database ``name`` (closing other sessions on it first); no error when absent."""
    services = services or Services.from_env()
    conn = _admin_connection(services)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (_checked(name),),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def _pg_version() -> str:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise RuntimeError("no local PostgreSQL cluster found under /etc/postgresql")
    return versions[-1]


def wait_for_postgres(services: Services | None = None, timeout: float = 60.0) -> None:
    """Return once PostgreSQL accepts queries; raise with a clear message after ``timeout``."""
    import psycopg2

    services = services or Services.from_env()
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            conn = psycopg2.connect(f"{services.pg_url}/postgres", connect_timeout=2)
            conn.close()
            return
        except psycopg2.OperationalError as exc:
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"PostgreSQL did not come back within {timeout:.0f} s: {last}")


def pg_ctl(action: str) -> None:
    """``start`` / ``stop`` / ``restart`` the local cluster (needs root or the postgres user)."""
    if action not in {"start", "stop", "restart"}:
        raise ValueError(action)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action],
        check=True,
        capture_output=True,
        timeout=90,
    )


def ensure_postgres_running(services: Services | None = None) -> None:
    """Start the local cluster if it is down and wait until it answers (used in ``finally``)."""
    services = services or Services.from_env()
    pg = urlsplit(services.pg_url)
    if not port_open(pg.hostname or "127.0.0.1", pg.port or 5432):
        try:
            pg_ctl("start")
        except subprocess.CalledProcessError as exc:
            if b"already running" not in (exc.stderr or b""):
                raise
    wait_for_postgres(services)


# ------------------------------------------------------------------------------ RabbitMQ


def rabbitmqctl(action: str) -> None:
    """``stop_app`` / ``start_app`` on the local RabbitMQ node."""
    if action not in {"stop_app", "start_app"}:
        raise ValueError(action)
    subprocess.run(
        ["rabbitmqctl", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_for_rabbitmq(services: Services | None = None, timeout: float = 60.0) -> None:
    """Return once RabbitMQ accepts an AMQP connection."""
    import pika

    services = services or Services.from_env()
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            pika.BlockingConnection(_pika_parameters(services)).close()
            return
        except Exception as exc:  # pika raises many kinds while the node starts
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"RabbitMQ did not come back within {timeout:.0f} s: {last!r}")


def ensure_rabbitmq_running(services: Services | None = None) -> None:
    """Start the RabbitMQ application if it was stopped, and wait for it (used in ``finally``)."""
    services = services or Services.from_env()
    try:
        rabbitmqctl("start_app")  # a no-op when it is running
    except (subprocess.CalledProcessError, FileNotFoundError):
        pass
    wait_for_rabbitmq(services)


def _pika_parameters(services: Services) -> Any:
    import pika

    host, port, user, password = services.amqp
    return pika.ConnectionParameters(
        host=host,
        port=port,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
        socket_timeout=3,
        blocked_connection_timeout=5,
    )


def drain_queue(queue: str, services: Services | None = None) -> list[bytes]:
    """Take every message currently in ``queue`` (declaring it durable if needed)."""
    import pika

    services = services or Services.from_env()
    connection = pika.BlockingConnection(_pika_parameters(services))
    try:
        channel = connection.channel()
        channel.queue_declare(_checked(queue), durable=True)
        bodies: list[bytes] = []
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)
    finally:
        connection.close()


def delete_queue(queue: str, services: Services | None = None) -> None:
    """Delete ``queue`` and its messages; no error when absent."""
    import pika

    services = services or Services.from_env()
    connection = pika.BlockingConnection(_pika_parameters(services))
    try:
        connection.channel().queue_delete(_checked(queue))
    finally:
        connection.close()
