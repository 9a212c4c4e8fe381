"""An operator's command answers at once: heavy libraries load only in the commands that use them.

``cartguard --help`` took over 10 s when the PII pipeline (spaCy, and TensorFlow through it) was
imported at module level. The time itself is measured in ``make bench`` (bench/cli_startup.py,
docs/benchmarks.md); this test pins the cause: which modules a command imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: never needed to list commands or customers; each costs from 0.1 s (Faker) to 10 s (spaCy)
HEAVY = (
    "spacy",
    "thinc",
    "tensorflow",
    "rasa",
    "sanic",
    "faker",
    "jinja2",
    "qrcode",
    "prometheus_client",
    "cartguard.privacy",
    "cartguard.monitoring",
    "cartguard.webapp",
)

RUN = """
import json, sys
from cartguard.cli import app
sys.argv = ["cartguard", *json.loads(sys.argv[1])]
try:
    app()
except SystemExit:
    pass
loaded = sorted({name.split(".")[0] if not name.startswith("cartguard.") else
                 ".".join(name.split(".")[:2]) for name in sys.modules})
print("MODULES=" + json.dumps(loaded))
"""


def _modules_after(args: list[str], data_dir: Path) -> set[str]:
    env = {**os.environ, "CARTGUARD_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


@pytest.mark.parametrize("args", [["--help"], ["customers"]])
def test_an_operator_command_loads_no_heavy_library(args: list[str], data_dir: Path) -> None:
    loaded = _modules_after(args, data_dir)
    assert "cartguard.cli" in loaded  # the command really ran
    assert sorted(set(HEAVY) & loaded) == []
