"""`make test` hides no skips: with CI=true a skipped browser or services test fails the run.

A small test project whose conftest uses our hook runs in a subprocess: three tests skip, one
marked ``browser``, one ``services``, one plain.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

SKIPPING_TESTS = """
import pytest

@pytest.mark.browser
def test_needs_chromium():
    pytest.skip("Chromium is not installed")

@pytest.mark.services
def test_needs_postgresql():
    pytest.skip("PostgreSQL is not running")

def test_plain_skip():
    pytest.skip("nothing to do here")

@pytest.mark.browser
@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_skips.py").write_text(SKIPPING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    browser: b\n    services: s\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(PROJECT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )


def test_in_ci_a_skipped_browser_or_services_test_fails_the_run(tmp_path: Path) -> None:
    result = _run(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "2 failed, 1 skipped, 1 xfailed" in result.stdout, result.stdout
    assert "skipped in CI, where browser and services tests must run" in result.stdout
    assert "Chromium is not installed" in result.stdout
    assert "PostgreSQL is not running" in result.stdout
    assert "SKIPPED [1]" in result.stdout and "nothing to do here" in result.stdout  # -rs


def test_outside_ci_the_same_skips_are_listed_with_their_reasons(tmp_path: Path) -> None:
    result = _run(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "3 skipped, 1 xfailed" in result.stdout, result.stdout
    assert "Chromium is not installed" in result.stdout  # -rs shows why
