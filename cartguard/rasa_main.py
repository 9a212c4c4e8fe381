"""``python -m cartguard.rasa_main <rasa arguments>``: the ``rasa`` command, made strict and quiet.

A drop-in for the ``rasa`` CLI (``python -m cartguard.rasa_main run --enable-api ...``) that

1. checks before anything heavy loads that the tracker store and event broker named in
   ``endpoints.yml`` can be imported, and exits with status 2 and a readable message if not;
2. patches Rasa so a store or broker that fails to load or connect stops the server (status
   3) instead of falling back to memory (see :mod:`cartguard.stores.strict`);
3. redacts personal data from every log record, including after Rasa reconfigures logging
   (see :mod:`cartguard.stores.log_redaction`);

then hands over to ``rasa.__main__.main()``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

    from cartguard.stores.log_redaction import install_log_redaction
    from cartguard.stores.strict import make_rasa_strict

    make_rasa_strict()

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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from cartguard.stores.log_redaction import install_log_redaction

    install_log_redaction()
    problem = preflight(argv)
    if problem:
        print(f"cartguard: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    _patch_rasa()
    import rasa.__main__ as rasa_cli

    sys.argv = ["rasa", *argv]
    rasa_cli.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
