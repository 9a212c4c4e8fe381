"""``python -m cartguard.rasa_main <rasa arguments>``: the ``rasa`` command, made strict and quiet.

A drop-in for the ``rasa`` CLI (``python -m cartguard.rasa_main run --enable-api ...``) that

1. checks before anything heavy loads that the tracker store and event broker named in
   ``endpoints.yml`` can be imported, and exits with status 2 and a readable message if not;
2. patches Rasa so a store or broker that fails to load or connect stops the server (status
   3) instead of falling back to memory (see :mod:`cartguard.stores.strict`);
3. redacts personal data from every log record, including after Rasa reconfigures logging
   (see :mod:`cartguard.stores.log_redaction`);
4. for ``run`` and ``shell``, fills in what a safe server needs from the settings instead of the
   command line (see :func:`server_arguments`): the listening address (``CARTGUARD_HOST``,
   127.0.0.1 by default, where Rasa's own default is 0.0.0.0), the JWT secret of the HTTP API
   (``CARTGUARD_RASA_JWT_SECRET`` or the key file: a ``--jwt-secret`` flag would be readable by
   every local user in ``ps`` and ``/proc/PID/cmdline``), and every allowed browser origin
   after ONE ``--cors`` (Rasa keeps only the last ``--cors`` flag);
5. for ``interactive``, listens on the same loopback address (Rasa hard-codes 0.0.0.0 there,
   with an unauthenticated HTTP API);

then hands over to ``rasa.__main__.main()``. What we add to Rasa's arguments lives only in this
process's memory, never in its command line.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cartguard.keys import Keys, KeysMissing, load_keys
from cartguard.settings import Settings, get_settings

EXIT_BAD_CONFIG = 2
EXIT_STORE_FAILED = 3

log = logging.getLogger("cartguard.rasa_main")


def _endpoints_file(argv: Sequence[str]) -> Path:
    for index, arg in enumerate(argv):
        if arg == "--endpoints" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--endpoints="):
            return Path(arg.split("=", 1)[1])
    return Path("endpoints.yml")


def preflight(argv: Sequence[str]) -> str | None:
    """Return an error message when a custom store/broker class in endpoints.yml is missing."""
    path = _endpoints_file(argv)
    if not path.exists():
        return None
    import yaml

    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        return f"{path} is not valid YAML: {exc}"
    for section in ("tracker_store", "event_broker"):
        type_name = (config.get(section) or {}).get("type")
        if not isinstance(type_name, str) or "." not in type_name:
            continue  # Rasa's built-in types ("sql", "redis", "pika", ...)
        module_name, _, class_name = type_name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            getattr(module, class_name)
        except Exception as exc:  # report any import problem the same way
            return (
                f"{section} '{type_name}' in {path} cannot be imported "
                f"({exc.__class__.__name__}: {exc}). Rasa was not started, so it cannot fall "
                f"back to an in-memory store; fix {path} and start again."
            )
    return None


def _patch_rasa() -> None:
    import rasa.__main__ as rasa_cli
    import rasa.core.run as rasa_run
    import rasa.utils.io as rasa_io

    from cartguard import rasa_auth
    from cartguard.stores.log_redaction import install_log_redaction
    from cartguard.stores.strict import make_rasa_strict

    make_rasa_strict()
    rasa_auth.install()  # malformed API tokens: 401, not a 500 with a traceback

    original_logging = rasa_cli.configure_logging_and_warnings
    original_colored = rasa_io.configure_colored_logging

    def configure_logging(*args: Any, **kwargs: Any) -> None:
        original_logging(*args, **kwargs)
        install_log_redaction()

    def configure_colored(*args: Any, **kwargs: Any) -> None:
        original_colored(*args, **kwargs)
        install_log_redaction()

    rasa_cli.configure_logging_and_warnings = configure_logging
    rasa_io.configure_colored_logging = configure_colored

    original_load = rasa_run.load_agent_on_start

    async def load_agent_or_exit(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original_load(*args, **kwargs)
        except Exception as exc:  # any start-up failure must stop the process
            log.critical("Rasa could not start its tracker store or event broker: %s", exc)
            print(f"cartguard: {exc}", file=sys.stderr, flush=True)
            logging.shutdown()
            os._exit(EXIT_STORE_FAILED)  # Sanic would otherwise keep serving without an agent

    rasa_run.load_agent_on_start = load_agent_or_exit


def _has_option(argv: Sequence[str], *names: str) -> bool:
    return any(arg in names or arg.split("=", 1)[0] in names for arg in argv)


def _option_value(argv: Sequence[str], *names: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg in names and index + 1 < len(argv):
            return argv[index + 1]
        name, sep, value = arg.partition("=")
        if sep and name in names:
            return value
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnsafeServerArguments(ValueError):
    """Rasa would listen in clear text on a public address."""


def server_arguments(argv: Sequence[str], settings: Settings, keys: Keys | None) -> list[str]:
    """Rasa's arguments for ``run``/``shell`` with the safe defaults filled in from settings.

    * ``--interface``: ``settings.host`` (``CARTGUARD_HOST``, default 127.0.0.1). An address
      that is not loopback needs TLS (``--ssl-certificate``) or ``CARTGUARD_BEHIND_TLS_PROXY=1``.
    * ``--jwt-secret``: the installation's ``rasa_jwt_secret`` whenever the HTTP API is enabled.
    * ``--cors``: every origin of ``settings.allowed_origins`` after one flag, unless given.
    """
    args = list(argv)
    if not _has_option(args, "-i", "--interface"):
        args += ["--interface", settings.host]
    host = _option_value(args, "-i", "--interface") or ""
    tls = _has_option(args, "--ssl-certificate")
    if not _is_loopback(host) and not tls and not settings.behind_tls_proxy:
        raise UnsafeServerArguments(
            f"refusing to run Rasa over plain HTTP on {host!r}, which is not a loopback "
            "address. Bind to 127.0.0.1 (CARTGUARD_HOST), give --ssl-certificate/--ssl-keyfile, "
            "or set CARTGUARD_BEHIND_TLS_PROXY=1 if a TLS-terminating proxy sits in front."
        )
    if _has_option(args, "--enable-api") and not _has_option(args, "--jwt-secret"):
        if keys is None:
            raise UnsafeServerArguments("the HTTP API needs a JWT secret: no keys were given")
        args += [f"--jwt-secret={keys.get('rasa_jwt_secret')}"]
        if not _has_option(args, "--jwt-method"):
            args += ["--jwt-method", "HS256"]
    if not _has_option(args, "--cors") and settings.allowed_origins:
        args += ["--cors", *settings.allowed_origins]
    return args


def _bind_to(host: str) -> None:
    """Make every Sanic app of this process listen on ``host`` (``rasa interactive``)."""
    from sanic import Sanic

    original_run = Sanic.run

    def run_on_host(self: Sanic, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (host, *args[1:])
        else:
            kwargs["host"] = host
        return original_run(self, *args, **kwargs)

    Sanic.run = run_on_host  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from cartguard.stores.log_redaction import install_log_redaction

    install_log_redaction()
    problem = preflight(argv)
    if problem:
        print(f"cartguard: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    command = argv[0] if argv else ""
    settings = get_settings()
    if command in {"run", "shell"}:
        if _has_option(argv, "--jwt-secret", "--auth-token"):
            print(
                "cartguard: warning: a secret on the command line is readable by every local "
                "user (ps, /proc/PID/cmdline); leave it out and set CARTGUARD_RASA_JWT_SECRET",
                file=sys.stderr,
            )
        try:
            keys = load_keys() if _has_option(argv, "--enable-api") else None
            argv = server_arguments(argv, settings, keys)
        except (UnsafeServerArguments, KeysMissing) as exc:
            print(f"cartguard: Rasa was not started: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG
    elif command == "interactive":
        _bind_to("127.0.0.1")  # a designer's tool with an unauthenticated API: never public
    _patch_rasa()
    import rasa.__main__ as rasa_cli

    sys.argv = ["rasa", *argv]
    rasa_cli.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
