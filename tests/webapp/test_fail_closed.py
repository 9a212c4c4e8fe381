"""Fail closed: the web service does not start when its log redaction cannot load.

Before, a failed import of the redacting log filter was logged ("logging without it") and the
service went on writing shoppers' data into its logs. Each case starts ``python -m
cartguard.webapp`` as a real process, breaks ``cartguard.stores.log_redaction`` first (its
import, or installing it), and proves the process exits without ever answering. The control
case starts the same way with nothing broken and must answer, so a harness that could never
see a start cannot pass the test by accident.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from webharness import free_port

PROJECT = Path(__file__).resolve().parents[2]

RUNNER = r"""
import importlib.abc, sys

mode = sys.argv[1]
if mode == "import":
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "cartguard.stores.log_redaction":
                raise ImportError("simulated: the log redaction module cannot load")
            return None

    sys.meta_path.insert(0, Refuse())
elif mode == "install":
    import cartguard.stores.log_redaction as redaction

    def broken(*args, **kwargs):
        raise RuntimeError("simulated: the log redaction filter cannot be installed")

    redaction.install_log_redaction = broken

from cartguard.webapp.__main__ import main

sys.exit(main())
"""


def _start(data_dir: Path, mode: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env.update(CARTGUARD_DATA_DIR=str(data_dir), WEB_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, mode],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _outcome(proc: subprocess.Popen, port: int, limit: float = 120) -> str:
    """'exited' or 'serving', whichever happens first (no claim about how long it took)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        if _answers(port):
            return "serving"
        time.sleep(0.3)
    return "neither"


@pytest.mark.parametrize("mode", ["import", "install"])
def test_the_web_service_refuses_to_start_without_log_redaction(data_dir: Path, mode: str) -> None:
    proc, port = _start(data_dir, mode)
    try:
        outcome = _outcome(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=20)[0]
    assert outcome == "exited", f"the service kept running without log redaction:\n{output}"
    assert proc.returncode != 0
    assert not _answers(port)
    assert "simulated: the log redaction" in output  # the operator sees why


def test_control_the_same_start_serves_when_nothing_is_broken(data_dir: Path) -> None:
    proc, port = _start(data_dir, "none")
    try:
        outcome = _outcome(proc, port)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert outcome == "serving", output
