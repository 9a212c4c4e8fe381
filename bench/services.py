"""PostgreSQL, Redis and RabbitMQ for the load and fault runs: addresses, and our own instances.

Two ways to get them:

* :class:`OwnServices` (what every fault scenario uses): a PostgreSQL cluster, a Redis server
  and a RabbitMQ node of our own, each on a free loopback port with its own data directory
  under a temporary root (RabbitMQ also with its own node name and distribution port). The
  faults are pulled on these instances only - stop and start the RabbitMQ application,
  restart PostgreSQL - so a test run never disturbs the machine's shared services or another
  engineer's run. Everything is stopped and removed on exit, and the processes are asked to
  die with the thread that started them (``PR_SET_PDEATHSIG``) should the harness crash.
* :meth:`Services.from_env`: already running services (``CARTGUARD_SCALE_PG``,
  ``CARTGUARD_SCALE_REDIS``, ``CARTGUARD_SCALE_AMQP``; defaults: this machine's shared ones),
  for trying things out with ``python -m bench.launcher``. Nothing here restarts them.

The binaries come from Debian's packages: ``/usr/lib/postgresql/<version>/bin``,
``redis-server``, and RabbitMQ's ``/usr/lib/rabbitmq/bin``. PostgreSQL refuses to run as root,
so as root its processes run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class ServiceError(RuntimeError):
    """A service of our own could not be started, or a fault could not be pulled."""


@dataclass(frozen=True)
class Services:
    """Where PostgreSQL, Redis and RabbitMQ listen (and, for our own node, its name)."""

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
    def pg_address(self) -> tuple[str, int]:
        parts = urlsplit(self.pg_url)
        return parts.hostname or "127.0.0.1", parts.port or 5432

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing_services(services: Services | None = None) -> list[str]:
    """Human-readable names of the services that do not answer (empty when all do)."""
    services = services or Services.from_env()
    host, port, _, _ = services.amqp
    pg_host, pg_port = services.pg_address
    checks = {
        f"PostgreSQL at {pg_host}:{pg_port}": (pg_host, pg_port),
        f"Redis at {services.redis_host}:{services.redis_port}": (
            services.redis_host,
            services.redis_port,
        ),
        f"RabbitMQ at {host}:{port}": (host, port),
    }
    return [name for name, (h, p) in checks.items() if not port_open(h, p)]


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``PR_SET_PDEATHSIG``: the child gets SIGTERM when the thread that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so every child of the
# harness is started from this one thread, which lives as long as the harness process: a
# restart pulled from a short-lived worker thread (asyncio.to_thread) would otherwise be
# killed as soon as that thread is retired.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-spawner")


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in its own session, dying with the harness process."""
    kwargs.setdefault("start_new_session", True)
    kwargs["preexec_fn"] = die_with_parent
    return _SPAWNER.submit(subprocess.Popen, argv, **kwargs).result()


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
    raise ServiceError(f"cannot reach PostgreSQL at {services.pg_url}: {last}")


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


def wait_for_postgres(services: Services, timeout: float = 60.0) -> None:
    """Return once PostgreSQL accepts queries; raise with a clear message after ``timeout``."""
    import psycopg2

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(f"{services.pg_url}/postgres", connect_timeout=2).close()
            return
        except psycopg2.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise ServiceError(f"PostgreSQL did not answer within {timeout:.0f} s: {last}")


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise ServiceError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres)")
    return Path(found[-1]).parent


# ------------------------------------------------------------------------------ RabbitMQ


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


def wait_for_rabbitmq(services: Services, timeout: float = 60.0) -> None:
    """Return once RabbitMQ accepts an AMQP connection."""
    import pika

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            pika.BlockingConnection(_pika_parameters(services)).close()
            return
        except Exception as exc:  # pika raises many kinds while the node starts
            last = exc
            time.sleep(0.5)
    raise ServiceError(f"RabbitMQ did not answer within {timeout:.0f} s: {last!r}")


def drain_queue(queue: str, services: Services) -> list[bytes]:
    """Take every message currently in ``queue`` (declaring it durable if needed)."""
    return [body for body, _ in drain_queue_with_ids(queue, services)]


def drain_queue_with_ids(queue: str, services: Services) -> list[tuple[bytes, str | None]]:
    """Like :func:`drain_queue`, with each message's ``message_id`` property."""
    import pika

    connection = pika.BlockingConnection(_pika_parameters(services))
    try:
        channel = connection.channel()
        channel.queue_declare(_checked(queue), durable=True)
        messages: list[tuple[bytes, str | None]] = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((body, getattr(properties, "message_id", None)))
    finally:
        connection.close()


def delete_queue(queue: str, services: Services) -> None:
    """Delete ``queue`` and its messages; no error when absent."""
    import pika

    connection = pika.BlockingConnection(_pika_parameters(services))
    try:
        connection.channel().queue_delete(_checked(queue))
    finally:
        connection.close()


# ------------------------------------------------------------------------------ own instances


def _stop_process(process: subprocess.Popen | None, sig: int, grace: float) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _as_postgres_user() -> dict[str, Any]:
    """Popen arguments that run PostgreSQL's binaries as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root, but there is no 'postgres' user") from exc
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class OwnPostgres:
    """A throw-away PostgreSQL cluster: ``initdb`` into ``root``, listening on loopback only.

    ``fsync`` is off: the runs test what Cartguard does when PostgreSQL disappears, not the
    durability of PostgreSQL itself (a replica is killed, never this server).
    """

    def __init__(self, root: Path | None = None) -> None:
        # PostgreSQL's own user must reach the directory: a fresh one under /tmp, never below
        # a caller's private (0700) directory such as pytest's tmp_path
        self.root = Path(tempfile.mkdtemp(prefix="cg-postgres-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        who = _as_postgres_user()
        if who:
            for path in (self.root, self.sockets):
                os.chown(path, who["user"], who["group"])
        result = subprocess.run(
            [
                str(postgres_bin() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            **who,
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def spawn(self) -> None:
        log = self.log.open("ab")
        try:
            self.process = spawn(
                [
                    str(postgres_bin() / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "shared_buffers=64MB",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **_as_postgres_user(),
            )
        finally:
            log.close()

    def wait(self, timeout: float = 60.0) -> None:
        wait_for_postgres(Services(pg_url=self.url), timeout)

    def stop(self) -> None:
        self._shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    def _shutdown(self) -> None:
        _stop_process(self.process, signal.SIGINT, 30)  # SIGINT: PostgreSQL's fast shutdown
        self.process = None

    def restart(self) -> None:
        """Fast shutdown and start again on the same port (a restart or fail-over)."""
        self._shutdown()
        self.spawn()
        self.wait()


class OwnRedis:
    """A Redis server on a free loopback port, nothing persisted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "redis.log").open("ab")
        try:
            self.process = spawn(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()

    def wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port, 0.5):
                return
            time.sleep(0.1)
        raise ServiceError(f"redis-server did not listen on {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        _stop_process(self.process, signal.SIGTERM, 10)
        self.process = None


class OwnRabbitMQ:
    """A RabbitMQ node of our own: node name, AMQP and distribution ports, data, cookie.

    ``stop_app`` / ``start_app`` (``rabbitmqctl -n <node>``) make the broker outage: the node
    stays up, AMQP connections are closed and refused until the application starts again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"cg{self.port}@localhost"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        root = str(self.root)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=root,  # the Erlang cookie of this node lives here
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=f"{root}/mnesia",
            RABBITMQ_LOG_BASE=f"{root}/log",
            RABBITMQ_ENABLED_PLUGINS_FILE=f"{root}/enabled_plugins",
            RABBITMQ_CONFIG_FILE=f"{root}/rabbitmq",
            RABBITMQ_ADVANCED_CONFIG_FILE=f"{root}/advanced.config",
            RABBITMQ_PID_FILE=f"{root}/rabbitmq.pid",
            RABBITMQ_FEATURE_FLAGS_FILE=f"{root}/feature_flags",
        )
        return env

    def spawn(self) -> None:
        binary = RABBITMQ_BIN / "rabbitmq-server"
        if not binary.exists():
            raise ServiceError(f"RabbitMQ is not installed ({binary} missing)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "enabled_plugins").write_text("[].\n")
        log = (self.root / "rabbitmq.log").open("ab")
        try:
            self.process = spawn(
                [str(binary)],
                env=self.env(),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceError(
                    f"RabbitMQ node {self.node} exited while starting; see {self.root}/log"
                )
            if port_open("127.0.0.1", self.port, 0.5):
                wait_for_rabbitmq(
                    Services(amqp_url=self.url), max(5.0, deadline - time.monotonic())
                )
                return
            time.sleep(0.5)
        raise ServiceError(f"RabbitMQ node {self.node} did not start within {timeout:.0f} s")

    def ctl(self, action: str) -> None:
        """``stop_app`` / ``start_app`` on this node only."""
        if action not in {"stop_app", "start_app"}:
            raise ValueError(action)
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, action],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise ServiceError(f"rabbitmqctl {action} failed: {result.stderr.strip()[-300:]}")

    def stop(self) -> None:
        _stop_process(self.process, signal.SIGTERM, 30)
        self.process = None


@contextlib.contextmanager
def started(service: OwnPostgres | OwnRedis | OwnRabbitMQ) -> Iterator[Any]:
    """One instance of our own for as long as the block runs (a test's fixture)."""
    service.spawn()
    try:
        service.wait()
        yield service
    finally:
        service.stop()


class OwnServices:
    """PostgreSQL + Redis + RabbitMQ of our own, as a context manager.

    Start from a thread that outlives the run (the processes die with it). ``services`` is
    the :class:`Services` that points at them.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="cg-services-")).resolve()
        self.root.chmod(0o755)  # PostgreSQL's user must reach its directory below
        self.postgres = OwnPostgres()
        self.redis = OwnRedis(self.root / "redis")
        self.rabbitmq = OwnRabbitMQ(self.root / "rabbitmq")

    @property
    def services(self) -> Services:
        return Services(
            pg_url=self.postgres.url, redis_url=self.redis.url, amqp_url=self.rabbitmq.url
        )

    def start(self) -> OwnServices:
        try:
            self.rabbitmq.spawn()  # the slowest (about 10 s): first
            self.redis.spawn()
            self.postgres.init()
            self.postgres.spawn()
            self.redis.wait()
            self.postgres.wait()
            self.rabbitmq.wait()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for service in (self.rabbitmq, self.redis, self.postgres):
            with contextlib.suppress(Exception):
                service.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OwnServices:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def own_services(root: Path | None = None) -> Iterator[OwnServices]:
    """``with own_services() as own: ... own.services ...``"""
    with OwnServices(root) as own:
        yield own
