"""The house rules that keep the layers apart, checked on the source.

* no import circle among our own modules, counting imports inside functions too;
* each package imports only what ``docs/architecture.md``'s package map says it may;
* nothing in ``cartguard/`` imports ``actions/``, and the security core imports nothing from Rasa;
* the built wheel ships production code only (no benchmark, fault or development harness).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.architecture.import_graph import REPO, cycles, graph

DOC = REPO / "docs" / "architecture.md"
SECURITY_CORE = ("pii", "vault", "stepup", "links", "privacy", "staff", "audit", "identity")


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "cartguard" and len(parts) > 1 else parts[0]


def package_map() -> dict[str, set[str]]:
    """``| `name` | what it owns | may import |`` rows of the package map in the docs."""
    section = DOC.read_text().split("## Package map", 1)[1].split("\n## ", 1)[0]
    declared: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        name = re.match(r"`([\w./]+)`", cells[0]).group(1)
        declared[name.strip("/")] = set(re.findall(r"`([\w./]+)`", cells[2]))
    return declared


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        source = area(module)
        edges.setdefault(source, set()).update(area(t) for t in targets if area(t) != source)
    edges.pop("cartguard", None)
    return edges


def test_no_import_circle_among_our_modules() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    """The check above can fail: a two-module circle is reported."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_every_package_is_on_the_map_and_imports_only_what_it_may() -> None:
    declared = package_map()
    actual = package_graph()
    assert set(actual) - set(declared) == set(), "packages missing from docs/architecture.md"
    assert set(declared) - set(actual) == set(), "the map lists packages that do not exist"
    undeclared = {
        name: sorted(targets - declared[name])
        for name, targets in actual.items()
        if targets - declared[name]
    }
    assert undeclared == {}, "imports the package map does not allow"


def test_the_library_never_imports_the_actions() -> None:
    offenders = [
        m
        for m, targets in graph().items()
        if m.startswith("cartguard") and any(t.startswith("actions") for t in targets)
    ]
    assert offenders == []


def test_the_security_core_imports_nothing_from_rasa() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+rasa(_sdk)?\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(REPO))
        for name in SECURITY_CORE
        for path in (REPO / "cartguard").glob(f"{name}*")
        for path in ([path] if path.is_file() else sorted(path.rglob("*.py")))
        if path.suffix == ".py" and pattern.search(path.read_text())
    ]
    assert offenders == []


@pytest.mark.slow
def test_the_wheel_ships_no_harness(tmp_path: Path) -> None:
    build_dir = REPO / "build"
    existed = build_dir.exists()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    if not existed:  # setuptools builds in the source tree; leave nothing behind
        shutil.rmtree(build_dir, ignore_errors=True)
    [wheel] = tmp_path.glob("cartguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    assert tops - {"cartguard", "actions", "rasa_sdk_plugins"} == {
        next(t for t in tops if t.endswith(".dist-info"))
    }
    assert not [n for n in names if re.search(r"(^|/)(bench|devtools|tests|scripts)/", n)]
    # what production needs at run time is in it
    assert "cartguard/shop/migrations/script.py.mako" in names
    assert any(n.startswith("cartguard/shop/migrations/versions/0001") for n in names)
    assert "cartguard/webapp/templates/base.html" in names
