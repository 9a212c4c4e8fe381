"""``python -m bench.launcher --replicas 2``: N Rasa + N action servers on one machine.

A small stand-in for a Kubernetes deployment, for tests, benchmarks and trying things out:

* a data directory of its own (a temporary one unless ``--data-dir``) with dev keys;
* PostgreSQL, Redis and RabbitMQ of its own on free loopback ports (:class:`bench.services.
  OwnServices`), unless ``StackConfig.services`` names running ones (``--shared-services``);
* the shop and tracker databases: PostgreSQL databases ``<name>`` and ``<name>_tracker``
  (migrated with ``cartguard db upgrade``, seeded once), or SQLite files in the data directory;
* optionally HAProxy in front of the replicas (``balancer``: sticky socket.io for browsers,
  round robin for the web service's calls to Rasa's HTTP API), the web service (``web``,
  its Rasa URL pointing at the balancer), and one TCP proxy per replica on its way to
  PostgreSQL (``db_proxies``: one replica's network path can be blackholed);
* ``--replicas N`` action servers and ``N`` Rasa servers on free loopback ports. Rasa's
  ``action_endpoint`` names one URL, so replica *i* talks to action server *i* (a sidecar, as
  one pod would hold both); any action server can serve any conversation because all state
  is in the shared databases. On Kubernetes a Service spreads the calls instead;
* flavour ``cartguard`` (``python -m cartguard.rasa_main``, ``endpoints.scale.yml``: redacting
  store on PostgreSQL, Redis locks, RabbitMQ broker, Redis rate limits; or the default
  ``endpoints.yml`` on SQLite) or ``stock`` (``python -m rasa``, stock ``socketio`` channel,
  plain ``SQLTrackerStore``, rasa-sdk without our plugin): the baseline of the benchmark.

Everything it starts is stopped when it exits: on Ctrl-C, on SIGTERM, after
``--max-seconds``, and (Linux) when the launcher itself dies, through ``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import services as svc
from bench.balancer import Balancer
from bench.services import free_port, spawn
from bench.tcpproxy import ProxyProcess
from cartguard.settings import PROJECT_ROOT

PYTHON = Path(sys.executable)
CARTGUARD_CLI = PYTHON.parent / "cartguard"
DEFAULT_MODEL = PROJECT_ROOT / "models" / "cartguard.tar.gz"
SCALE_ENDPOINTS = PROJECT_ROOT / "endpoints.scale.yml"
SQLITE_ENDPOINTS = PROJECT_ROOT / "endpoints.yml"
CREDENTIALS = PROJECT_ROOT / "credentials.yml"

#: generous limits, for runs whose shoppers all come from 127.0.0.1 (``rate_limits="generous"``);
#: the load driver gives each shopper its own loopback address, so the defaults hold otherwise
LOAD_TEST_RATES = {
    "CARTGUARD_RATE_IP_BURST": "100000",
    "CARTGUARD_RATE_IP_PER_MINUTE": "1000000",
    "CARTGUARD_RATE_SENDER_BURST": "1000",
    "CARTGUARD_RATE_SENDER_PER_MINUTE": "100000",
}

_STOCK_CREDENTIALS = """\
socketio:
  user_message_evt: user_uttered
  bot_message_evt: bot_uttered
  session_persistence: true
  metadata_key: customData
"""

# rasa-sdk imports a top-level ``rasa_sdk_plugins`` package when it finds one; this empty one
# shadows ours so the stock action server really is stock.
_NO_PLUGINS = (
    '"""Shadows Cartguard\'s plugins: a stock rasa-sdk."""\n\ndef init_hooks(manager):\n    pass\n'
)


_QUOTED_ENV = re.compile(r"([\"'])([^\"'\s#]*\$\{[A-Za-z_][A-Za-z0-9_]*\}[^\"'\s#]*)\1")


def _unquote_env(text: str) -> str:
    """Rasa 3.6 expands ``${X}`` only in plain YAML scalars; a quoted one stays literal."""
    return _QUOTED_ENV.sub(r"\2", text)


def _expandable_copy(source: Path, target: Path) -> Path:
    """A copy of a Rasa YAML file whose ``${X}`` values Rasa will really expand."""
    target.write_text(_unquote_env(source.read_text()))
    return target


class StackError(RuntimeError):
    """The stack could not be prepared or did not come up."""


@dataclass
class StackConfig:
    """What to start. The defaults are the multi-replica Cartguard stack on PostgreSQL."""

    replicas: int = 2
    flavour: str = "cartguard"  # "cartguard" | "stock"
    database: str = "postgresql"  # "postgresql" | "sqlite"
    name: str = "cartguard_scale"  # PostgreSQL database (+ "_tracker"), RabbitMQ queue
    broker: bool = True  # RabbitMQ event broker (PostgreSQL set-ups only)
    data_dir: Path | None = None
    model: Path = DEFAULT_MODEL
    customers: int = 5
    start_timeout: float = 420.0
    outage_grace_seconds: float = 20.0
    redis_db: int = 3  # lock store; rate limits use redis_db + 1, socket.io fan-out + 2
    extra_env: dict[str, str] = field(default_factory=dict)
    #: running services to use; None: start PostgreSQL, Redis and RabbitMQ of our own
    services: svc.Services | None = None
    balancer: bool = False  # HAProxy in front of the replicas
    web: bool = False  # the web service (secure forms), talking to Rasa through the balancer
    db_proxies: bool = False  # a TCP proxy per replica between it and PostgreSQL
    #: the socket.io Redis client manager (cartguard flavour on PostgreSQL); False: main's
    #: behaviour, rooms in each process only
    socketio_redis: bool = True
    rate_limits: str = "default"  # "default" (per-shopper addresses) | "generous"
    #: copy the processes' logs here when the stack is cleaned up (they go with its data dir)
    keep_logs: Path | None = None

    def __post_init__(self) -> None:
        if self.flavour not in {"cartguard", "stock"}:
            raise ValueError("flavour must be 'cartguard' or 'stock'")
        if self.database not in {"postgresql", "sqlite"}:
            raise ValueError("database must be 'postgresql' or 'sqlite'")
        if self.replicas < 1:
            raise ValueError("replicas must be at least 1")
        if self.database == "sqlite" and self.replicas > 1:
            raise ValueError("several replicas need PostgreSQL: SQLite is one machine's file")
        if self.rate_limits not in {"default", "generous"}:
            raise ValueError("rate_limits must be 'default' or 'generous'")

    @property
    def queue(self) -> str:
        return f"{self.name}_events"


@dataclass
class Replica:
    """One Rasa server and the action server it calls."""

    index: int
    rasa_port: int
    action_port: int

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}"


def _get(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback
            return 200 <= reply.status < 500
    except (urllib.error.URLError, OSError):
        return False


class Stack:
    """A running set of replicas; use as a context manager (``with Stack(cfg) as stack``)."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self._own_data_dir = self.config.data_dir is None
        self.data_dir = Path(
            self.config.data_dir or tempfile.mkdtemp(prefix=f"{self.config.name}-")
        ).resolve()
        self.logs = self.data_dir / "logs"
        self.replicas: list[Replica] = []
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.env: dict[str, str] = {}
        self.own: svc.OwnServices | None = None
        self.balancer: Balancer | None = None
        self.proxies: list[ProxyProcess] = []
        self.web_port = free_port()

    # ------------------------------------------------------------------ URLs

    @property
    def services(self) -> svc.Services:
        if self.config.services is not None:
            return self.config.services
        if self.own is None:
            raise StackError("the stack's own services are not started yet")
        return self.own.services

    @property
    def shop_database_url(self) -> str:
        if self.config.database == "sqlite":
            return f"sqlite:///{self.data_dir / 'shop.db'}"
        return self.services.pg_database_url(self.config.name)

    @property
    def tracker_database_url(self) -> str:
        if self.config.database == "sqlite":
            return f"sqlite:///{self.data_dir / 'tracker.db'}"
        return self.services.pg_database_url(f"{self.config.name}_tracker")

    @property
    def rasa_urls(self) -> list[str]:
        """Where shoppers connect: the balancer when there is one, else each replica."""
        if self.balancer is not None:
            return [self.balancer.public_url]
        return [r.rasa_url for r in self.replicas]

    @property
    def replica_urls(self) -> list[str]:
        return [r.rasa_url for r in self.replicas]

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def rasa_api_url(self) -> str:
        """Where the web service reaches Rasa's HTTP API."""
        if self.balancer is not None:
            return self.balancer.internal_url
        return self.replicas[0].rasa_url if self.replicas else ""

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    # ------------------------------------------------------------------ set-up

    def base_env(self) -> dict[str, str]:
        """The environment every process of this stack shares (secrets included)."""
        cfg = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTGUARD_", "RASA_"))}
        env.update(
            {
                "CARTGUARD_DATA_DIR": str(self.data_dir),
                "CARTGUARD_DATABASE_URL": self.shop_database_url,
                "CARTGUARD_TRACKER_DATABASE_URL": self.tracker_database_url,
                "RASA_TELEMETRY_ENABLED": "false",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONUNBUFFERED": "1",
                "WEB_PORT": str(self.web_port),
                "CARTGUARD_PUBLIC_WEB_URL": self.web_url,
            }
        )
        if cfg.rate_limits == "generous":
            env.update(LOAD_TEST_RATES)
        if cfg.database == "postgresql":
            services = self.services
            host, port, user, password = services.amqp
            env.update(
                {
                    "CARTGUARD_REDIS_HOST": services.redis_host,
                    "CARTGUARD_REDIS_PORT": str(services.redis_port),
                    "CARTGUARD_REDIS_PASSWORD": services.redis_password,
                    "CARTGUARD_REDIS_LOCK_DB": str(cfg.redis_db),
                    "CARTGUARD_RABBITMQ_HOST": host,
                    "CARTGUARD_RABBITMQ_PORT": str(port),
                    "CARTGUARD_RABBITMQ_USER": user,
                    "CARTGUARD_RABBITMQ_PASSWORD": password,
                    "CARTGUARD_EVENT_QUEUE": cfg.queue,
                    "CARTGUARD_DB_OUTAGE_GRACE_SECONDS": str(cfg.outage_grace_seconds),
                }
            )
            if cfg.flavour == "cartguard":
                env["CARTGUARD_REDIS_URL"] = f"{services.redis_url}/{cfg.redis_db + 1}"
                if cfg.socketio_redis:
                    env["CARTGUARD_SOCKETIO_REDIS_URL"] = f"{services.redis_url}/{cfg.redis_db + 2}"
        env.update(cfg.extra_env)
        return env

    def _run_cli(self, *args: str) -> None:
        result = subprocess.run(
            [str(CARTGUARD_CLI), *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise StackError(f"`cartguard {' '.join(args)}` failed: {result.stderr.strip()}")

    def start_services(self) -> None:
        """Start PostgreSQL, Redis and RabbitMQ of our own (unless the config names some)."""
        if self.config.database != "postgresql" or self.config.services is not None:
            return
        if self.own is None:
            self.own = svc.OwnServices().start()

    def prepare(self) -> None:
        """Data directory, keys, databases, seeded shop, endpoint files. Idempotent."""
        cfg = self.config
        if not cfg.model.exists():
            raise StackError(f"no trained model at {cfg.model}: run `make train` first")
        if cfg.database == "postgresql":
            self.start_services()
            missing = svc.missing_services(self.services)
            if missing:
                raise StackError("not reachable: " + ", ".join(missing))
            svc.create_database(cfg.name, self.services)
            svc.create_database(f"{cfg.name}_tracker", self.services)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = self.base_env()
        self._run_cli("init-keys")
        self.env.update(self._secret_env())
        if cfg.flavour == "cartguard":
            self._run_cli("db", "upgrade")  # the deployment step: migrations before any process
        self._run_cli("seed", "--customers", str(cfg.customers))
        if cfg.flavour == "stock":
            (self.data_dir / "credentials.stock.yml").write_text(_STOCK_CREDENTIALS)
            self._write_stock_endpoints()
            shim = self.data_dir / "stock-shim" / "rasa_sdk_plugins"
            shim.mkdir(parents=True, exist_ok=True)
            (shim / "__init__.py").write_text(_NO_PLUGINS)

    def totp_code(self, customer_id: int) -> str:
        """The current step-up code of a seeded customer (dev keys only, like the CLI)."""
        result = subprocess.run(
            [str(CARTGUARD_CLI), "totp-code", str(customer_id)],
            env=self.base_env(),  # without the secrets in the environment: dev keys only
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise StackError(f"`cartguard totp-code` failed: {result.stderr.strip()}")
        return result.stdout.strip().splitlines()[-1]

    def _secret_env(self) -> dict[str, str]:
        """Secrets Rasa's YAML files reference, as `cartguard shell-env` would export them."""
        data = json.loads(self.keys_file.read_text())
        names = {
            "CARTGUARD_ACTION_TOKEN": "action_token",
            "CARTGUARD_RASA_JWT_SECRET": "rasa_jwt_secret",
            "CARTGUARD_MESSENGER_VERIFY_TOKEN": "messenger_verify_token",
            "CARTGUARD_MESSENGER_APP_SECRET": "messenger_app_secret",
            "CARTGUARD_MESSENGER_PAGE_TOKEN": "messenger_page_token",
        }
        return {env: str(data[key]) for env, key in names.items() if key in data}

    def _write_stock_endpoints(self) -> None:
        cfg = self.config
        lines = ['action_endpoint:\n  url: "${CARTGUARD_ACTION_URL}"\n']
        lines.append(f'tracker_store:\n  type: sql\n  url: "{self.tracker_database_url}"\n')
        if cfg.database == "postgresql":
            lines.append(
                "lock_store:\n  type: redis\n"
                '  url: "${CARTGUARD_REDIS_HOST}"\n  port: "${CARTGUARD_REDIS_PORT}"\n'
                '  db: "${CARTGUARD_REDIS_LOCK_DB}"\n  key_prefix: stock\n'
            )
            if cfg.broker:
                lines.append(
                    "event_broker:\n  type: pika\n"
                    '  url: "${CARTGUARD_RABBITMQ_HOST}"\n  port: "${CARTGUARD_RABBITMQ_PORT}"\n'
                    '  username: "${CARTGUARD_RABBITMQ_USER}"\n'
                    '  password: "${CARTGUARD_RABBITMQ_PASSWORD}"\n'
                    "  queues:\n    - ${CARTGUARD_EVENT_QUEUE}\n"
                )
        else:
            lines.append("lock_store:\n  type: in_memory\n")
        (self.data_dir / "endpoints.stock.yml").write_text(_unquote_env("".join(lines)))

    def endpoints_file(self) -> Path:
        cfg = self.config
        if cfg.flavour == "stock":
            return self.data_dir / "endpoints.stock.yml"
        if cfg.database == "sqlite":
            return _expandable_copy(SQLITE_ENDPOINTS, self.data_dir / "endpoints.sqlite.yml")
        if not cfg.broker:
            path = self.data_dir / "endpoints.nobroker.yml"
            text = SCALE_ENDPOINTS.read_text().split("\nevent_broker:")[0]
            path.write_text(text + "\n")
            return path
        return SCALE_ENDPOINTS

    def credentials_file(self) -> Path:
        if self.config.flavour == "stock":
            return self.data_dir / "credentials.stock.yml"
        return _expandable_copy(CREDENTIALS, self.data_dir / "credentials.yml")

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        process = spawn(
            argv,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        with self._lock:
            self._processes[name] = process

    def _replica_env(self, replica: Replica) -> dict[str, str]:
        """One replica's environment: its PostgreSQL path goes through its own proxy."""
        env = dict(self.env)
        if self.proxies:
            proxy = self.proxies[replica.index]
            host, port = self.services.pg_address
            direct = f"@{host}:{port}/"
            via = f"@127.0.0.1:{proxy.port}/"
            for name in ("CARTGUARD_DATABASE_URL", "CARTGUARD_TRACKER_DATABASE_URL"):
                env[name] = env[name].replace(direct, via)
        if self.config.balancer:
            env["CARTGUARD_BEHIND_TLS_PROXY"] = "1"  # count shoppers by X-Forwarded-For
        return env

    def _action_argv(self, replica: Replica) -> tuple[list[str], dict[str, str], Path]:
        port = replica.action_port
        env = dict(self._replica_env(replica), ACTION_PORT=str(port))
        env.pop("CARTGUARD_BEHIND_TLS_PROXY", None)
        if self.config.flavour == "stock":
            shim = self.data_dir / "stock-shim"
            env["PYTHONPATH"] = f"{shim}{os.pathsep}{PROJECT_ROOT}"
            argv = [str(PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]
            return argv, env, self.data_dir  # cwd: so the repository's plugin is not found
        argv = [str(PYTHON), "-m", "cartguard.action_server", "--port", str(port)]
        return argv, env, PROJECT_ROOT

    def _rasa_argv(self, replica: Replica) -> tuple[list[str], dict[str, str]]:
        cfg = self.config
        env = dict(
            self._replica_env(replica),
            RASA_PORT=str(replica.rasa_port),
            CARTGUARD_ACTION_URL=f"{replica.action_url}/webhook",
        )
        stock = cfg.flavour == "stock"
        module = ["-m", "rasa"] if stock else ["-m", "cartguard.rasa_main"]
        credentials = self.credentials_file()
        argv = [
            str(PYTHON),
            *module,
            "run",
            "--model",
            str(cfg.model),
            "--endpoints",
            str(self.endpoints_file()),
            "--credentials",
            str(credentials),
            "--port",
            str(replica.rasa_port),
            "--interface",
            "127.0.0.1",
            "--enable-api",
            # one argument: a secret starting with "-" would otherwise read as an option
            f"--jwt-secret={self.env['CARTGUARD_RASA_JWT_SECRET']}",
            "--jwt-method",
            "HS256",
        ]
        return argv, env

    def start(self) -> Stack:
        """Prepare, start every process and wait until all answer (or raise and stop all)."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Prepare and start the processes without waiting for them.

        Call it from a thread that outlives the stack: children are asked to die with the
        thread that started them (``PR_SET_PDEATHSIG``), so that nothing outlives a crash.
        """
        try:
            self.prepare()
            cfg = self.config
            self.replicas = [Replica(i, free_port(), free_port()) for i in range(cfg.replicas)]
            if cfg.db_proxies and cfg.database == "postgresql":
                self.proxies = [
                    ProxyProcess(self.services.pg_address, self.logs / f"dbproxy-{i}.log").start()
                    for i in range(cfg.replicas)
                ]
            for replica in self.replicas:
                argv, env, cwd = self._action_argv(replica)
                self._spawn(f"actions-{replica.index}", argv, env, cwd)
            for replica in self.replicas:
                argv, env = self._rasa_argv(replica)
                self._spawn(f"rasa-{replica.index}", argv, env, PROJECT_ROOT)
            if cfg.balancer:
                self.balancer = Balancer(
                    [("127.0.0.1", r.rasa_port) for r in self.replicas], self.data_dir / "haproxy"
                ).start()
            if cfg.web:
                env = dict(self.env, CARTGUARD_RASA_URL=self.rasa_api_url)
                self._spawn("web", [str(PYTHON), "-m", "cartguard.webapp"], env, PROJECT_ROOT)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Wait until every process answers; on failure or timeout stop them all and raise."""
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        pending = {f"{r.action_url}/health" for r in self.replicas}
        pending |= {f"{r.rasa_url}/" for r in self.replicas}
        if self.config.web:
            pending.add(f"{self.web_url}/healthz")
        if self.balancer is not None:  # every replica must be up in HAProxy's eyes too
            pending |= {
                f"{self.balancer.public_url}/socket.io/?replica={r.index}" for r in self.replicas
            }
        while pending:
            self._check_alive()
            pending = {url for url in pending if not self._ready(url)}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"not up after {self.config.start_timeout:.0f} s: {sorted(pending)}; "
                    f"see the logs in {self.logs}"
                )
            time.sleep(1.0)

    def _ready(self, url: str) -> bool:
        if self.balancer is not None and "?replica=" in url:
            index = int(url.rsplit("=", 1)[1])
            return self.balancer.server_up(index)
        return _get(url)

    def _check_alive(self) -> None:
        for name, process in list(self._processes.items()):
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise StackError(
                    f"{name} exited with status {process.returncode} while starting; "
                    f"last lines of its log:\n{tail}"
                )

    def alive(self) -> bool:
        return all(p.poll() is None for p in self._processes.values())

    def kill_replica(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Kill replica ``index`` (Rasa and its action server, like a pod) without warning."""
        for name in (f"rasa-{index}", f"actions-{index}"):
            process = self._processes.get(name)
            if process is not None and process.poll() is None:
                os.killpg(process.pid, sig)
                process.wait(timeout=30)

    def replica_log(self, index: int) -> str:
        return (self.logs / f"rasa-{index}.log").read_text(errors="replace")

    def stop(self, grace: float = 15.0) -> None:
        """Stop every process of the stack (SIGTERM, then SIGKILL after ``grace``)."""
        with self._lock:
            processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        if self.balancer is not None:
            self.balancer.stop()
        for proxy in self.proxies:
            proxy.stop()

    def cleanup(self) -> None:
        """Stop, drop this stack's queue and services, and remove a temporary data directory."""
        self.stop()
        if self.config.keep_logs is not None and self.logs.exists():
            shutil.copytree(self.logs, self.config.keep_logs, dirs_exist_ok=True)
            if self.balancer is not None and self.balancer.log.exists():
                shutil.copy(self.balancer.log, self.config.keep_logs / "haproxy.log")
        if self.own is not None:
            self.own.stop()
            self.own = None
        elif self.config.database == "postgresql" and self.config.broker and self.replicas:
            try:
                svc.delete_queue(self.config.queue, self.services)
            except Exception:  # noqa: S110 - RabbitMQ may be the thing that is down
                pass
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def drop_databases(self) -> None:
        """Drop the databases from shared services (our own services are gone with cleanup)."""
        if self.config.database == "postgresql" and self.config.services is not None:
            svc.drop_database(self.config.name, self.config.services)
            svc.drop_database(f"{self.config.name}_tracker", self.config.services)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextmanager
def running(config: StackConfig, *, drop: bool = True) -> Iterator[Stack]:
    """Start a stack; stop it and remove its services, queue, temp dir and databases after."""
    stack = Stack(config)
    try:
        stack.start()
        yield stack
    finally:
        stack.cleanup()
        if drop:
            try:
                stack.drop_databases()
            except Exception:  # noqa: S110 - never hide the test's own error behind this
                pass


def print_env(config: StackConfig) -> None:
    """``export`` lines for ``endpoints.scale.yml`` (secrets excluded; shared services)."""
    if config.services is None:
        config.services = svc.Services.from_env()
    stack = Stack(config)
    env = stack.base_env()
    for name in sorted(env):
        if name.startswith("CARTGUARD_") and "PASSWORD" not in name:
            print(f"export {name}={env[name]}")
    print('# plus the secrets: eval "$(.venv/bin/cartguard shell-env)"')
    shutil.rmtree(stack.data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.launcher", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--flavour", choices=["cartguard", "stock"], default="cartguard")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--name", default="cartguard_scale", help="database and queue name")
    parser.add_argument("--no-broker", action="store_true", help="no RabbitMQ event broker")
    parser.add_argument(
        "--shared-services",
        action="store_true",
        help="use running services (CARTGUARD_SCALE_PG/_REDIS/_AMQP, default: this machine's) "
        "instead of starting our own",
    )
    parser.add_argument(
        "--balancer", action="store_true", help="HAProxy in front (and the web service)"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--max-seconds", type=float, default=1800, help="stop everything after this long"
    )
    parser.add_argument(
        "--conversations", type=int, default=0, help="drive this many demo conversations"
    )
    parser.add_argument("--print-env", action="store_true", help="print the environment, exit")
    args = parser.parse_args(argv)
    config = StackConfig(
        replicas=args.replicas,
        flavour=args.flavour,
        database=args.database,
        name=args.name,
        broker=not args.no_broker,
        data_dir=args.data_dir,
        model=args.model,
        services=svc.Services.from_env() if args.shared_services else None,
        balancer=args.balancer,
        web=args.balancer,
    )
    if args.print_env:
        print_env(config)
        return 0
    stack = Stack(config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"==> starting {args.replicas} replica(s); logs in {stack.logs}", flush=True)
    try:
        stack.start()
        for replica in stack.replicas:
            print(f"    rasa {replica.rasa_url}  ->  actions {replica.action_url}", flush=True)
        if stack.balancer is not None:
            print(f"    shoppers: {stack.balancer.public_url}  web: {stack.web_url}", flush=True)
        if args.conversations:
            from bench.driver import drive_demo

            print(drive_demo(stack, args.conversations), flush=True)
        print(f"==> up; stopping after {args.max_seconds:.0f} s or on Ctrl-C", flush=True)
        deadline = time.monotonic() + args.max_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if not stack.alive():
                print("!! a process exited; stopping the rest", file=sys.stderr)
                return 1
            stop.wait(1.0)
        return 0
    except (StackError, svc.ServiceError) as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 1
    finally:
        print("==> stopping", flush=True)
        stack.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
