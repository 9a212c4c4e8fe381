"""How long an operator waits for the ``cartguard`` command: ``--help`` and ``customers``.

Run by ``make bench`` (``python bench/cli_startup.py``). Each command runs as a fresh process
(what an operator types), several times, against a temporary data directory with a seeded demo
shop; the figure is the median wall time, with the slowest run and the CPU time beside it
(on a machine shared with other work the wall time includes waiting for a core). Goal (issue
15): both under 1 s on the 2-core machine. Heavy libraries (spaCy and, through it,
TensorFlow; Faker; argon2) must load only in the commands that use them. The figures are
printed and written to ``results/bench-cli.json``; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CARTGUARD = PROJECT / ".venv" / "bin" / "cartguard"
COMMANDS = {"cartguard --help": ["--help"], "cartguard customers": ["customers"]}
GOAL_SECONDS = 1.0


def _time(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(CARTGUARD), *args], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run(repeats: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="cartguard-bench-cli-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
        env["CARTGUARD_DATA_DIR"] = data
        for setup in (["init-keys"], ["seed"]):
            subprocess.run([str(CARTGUARD), *setup], env=env, check=True, capture_output=True)
        figures: dict[str, dict[str, float]] = {}
        for label, args in COMMANDS.items():
            _time(args, env)  # warm the file cache once, as a second invocation would be
            measured = [_time(args, env) for _ in range(repeats)]
            runs = [wall for wall, _ in measured]
            cpu = statistics.median(cpu for _, cpu in measured)
            figures[label] = {
                "median_seconds": round(statistics.median(runs), 2),
                "max_seconds": round(max(runs), 2),
                "median_cpu_seconds": round(cpu, 2),
                "runs": repeats,
            }
            verdict = "meets" if statistics.median(runs) < GOAL_SECONDS else "MISSES"
            print(
                f"  {label:<22} median {statistics.median(runs):.2f} s, slowest {max(runs):.2f} s,"
                f" CPU {cpu:.2f} s ({repeats} runs; goal < {GOAL_SECONDS:.0f} s: {verdict})"
            )
        figures["load_average"] = {"one_minute": round(os.getloadavg()[0], 2)}  # type: ignore[dict-item]
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=PROJECT / "results" / "bench-cli.json")
    args = parser.parse_args(argv)
    print("==> operator commands: time to answer")
    figures = run(args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"==> written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
