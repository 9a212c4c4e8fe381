"""Every command that docs/staff-roles.md marks "dev keys only" refuses a production installation.

A production installation takes its secrets from the environment (never the generated dev key
file). On such a machine `seed` would enrol real customers and set demo passwords, `customers`
would list names, `login-token` would mint a shopper's identity: each must refuse, from the
installed command with no terminal attached, and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from cartguard.keys import SECRET_NAMES
from cartguard.settings import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "staff-roles.md"
#: sample arguments, so that a command that did run would have something to act on
ARGS = {
    "channels sign-webhook": ["{}"],
    "login-token": ["1"],
    "totp-code": ["1"],
    "totp-secret": ["1"],
    "dev mail": [],
    "seed": ["--customers", "2"],
    "stepup enrol-demo": ["1"],
}


def _dev_only_commands() -> list[str]:
    rows = re.findall(r"^\| `([^`]+)` \| none: dev keys only \|", DOC.read_text(), re.MULTILINE)
    assert len(rows) >= 8, "the docs table lost its dev-only commands"
    return rows


def _production_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
    env["CARTGUARD_DATA_DIR"] = str(data_dir)
    for name in SECRET_NAMES:
        env[f"CARTGUARD_{name.upper()}"] = secrets.token_urlsafe(32)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env["CARTGUARD_VAULT_KEYS"] = f"prod1:{key}"
    return env


def _digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("production-var")
    env = _production_env(data_dir)
    cartguard = str(Path(sys.executable).with_name("cartguard"))
    subprocess.run(
        [cartguard, "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return data_dir, env


@pytest.mark.parametrize("command", _dev_only_commands())
def test_a_dev_only_command_refuses_production_keys(production, command: str) -> None:
    data_dir, env = production
    before = _digest(data_dir)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("cartguard")),
            *command.split(),
            *ARGS.get(command, []),
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode != 0, (command, result.stdout)
    assert "dev keys" in (result.stdout + result.stderr), (command, result.stdout, result.stderr)
    assert _digest(data_dir) == before, f"{command} changed the data directory"
