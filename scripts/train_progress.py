"""Run ``rasa train`` with a short, honest console: which component trains, and its epochs.

Rasa prints hundreds of lines while it trains (library warnings, its own notes, a progress bar
per component). All of it goes to a log file; the console gets one line when a component starts
or is restored from the training cache, and the epoch count of the component that trains
(updated in place on a terminal, every 25 % otherwise). On failure the log's last lines are shown.

Usage: ``python scripts/train_progress.py --out DIR --log FILE [--name cartguard]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

STARTING = re.compile(r"Starting to train component '(\w+)'")
RESTORED = re.compile(r"Restored component '(\w+)' from cache")
EPOCHS = re.compile(r"Epochs:\s+(\d+)%\|[^|]*\|\s*(\d+)/(\d+)")


class Console:
    """Writes the progress lines; ``\\r`` updates in place only on a terminal."""

    def __init__(self, stream: object = sys.stdout) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.component: str | None = None
        self.restored: list[str] = []
        self.trained: list[str] = []
        self._last_quarter = -1
        self._open_line = False

    def _write(self, text: str) -> None:
        self.stream.write(text)  # type: ignore[attr-defined]
        self.stream.flush()  # type: ignore[attr-defined]

    def _end_line(self) -> None:
        if self._open_line:
            self._write("\n")
            self._open_line = False

    def feed(self, line: str) -> None:
        if match := RESTORED.search(line):
            self.restored.append(match.group(1))
        elif match := STARTING.search(line):
            self._end_line()
            self.component = match.group(1)
            self.trained.append(self.component)
            self._last_quarter = -1
            self._write(f"    training {self.component}\n")
        elif (match := EPOCHS.search(line)) and self.component:
            percent, done, total = (int(group) for group in match.groups())
            text = f"    {self.component}: epoch {done}/{total} ({percent} %)"
            if self.tty:
                self._write(f"\r{text}   ")
                self._open_line = True
            elif percent // 25 > self._last_quarter:
                self._last_quarter = percent // 25
                self._write(text + "\n")

    def close(self) -> None:
        self._end_line()


def _command(out: Path, name: str) -> list[str]:
    """``rasa train`` for a complete model (never ``rasa train core``: no NLU, all fallbacks).

    ``--augmentation 0``: Rasa's default glues stories into hundreds of random combinations
    (504 training trackers instead of 58 here) for the dialogue policies; our flows are rules
    and short stories, every test story passes without it, and TED trains several times faster.
    ``--skip-validation``: ``make validate`` (and ``make test``) run a stricter check.
    """
    return [
        sys.executable,
        "-m",
        "rasa",
        "train",
        "--fixed-model-name",
        name,
        "--out",
        str(out),
        "--augmentation",
        "0",
        "--skip-validation",
    ]


def train(out: Path, log_path: Path, name: str = "cartguard") -> int:
    """Run the training; return Rasa's exit status. Everything Rasa prints goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console = Console()
    started = time.monotonic()
    with open(log_path, "ab") as log:
        log.write(f"\n==== rasa train at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        process = subprocess.Popen(
            _command(out, name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        pending = b""
        while chunk := process.stdout.read1(4096):  # type: ignore[attr-defined]
            log.write(chunk)
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                console.feed(line.decode("utf-8", "replace"))
        status = process.wait()
    console.close()
    if console.restored:
        names = ", ".join(sorted(set(console.restored)))
        print(f"    restored from the training cache: {names}")
    if status != 0:
        print(f"!! rasa train failed (status {status}) after {time.monotonic() - started:.0f} s;")
        print(f"!! last lines of {log_path}:")
        tail = log_path.read_bytes().decode("utf-8", "replace").splitlines()[-25:]
        print("\n".join(f"   | {line}" for line in tail))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the new model")
    parser.add_argument("--log", type=Path, required=True, help="file for Rasa's own output")
    parser.add_argument("--name", default="cartguard", help="model file name, without .tar.gz")
    args = parser.parse_args(argv)
    return train(args.out, args.log, args.name)


if __name__ == "__main__":
    raise SystemExit(main())
