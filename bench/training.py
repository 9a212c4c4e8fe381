"""The designer's loop, measured: full training, retraining after a story or rule edit, model swap.

Run by ``make bench`` (``python bench/training.py``). It works on a temporary copy of the Rasa
project (config.yml, domain.yml, data/, the training scripts), so the project's model and
training cache are never touched, and measures what a designer waits for:

1. **full**: ``scripts/train-if-stale.sh`` (what ``make train`` runs) with an empty training
   cache, i.e. a first training on a fresh clone;
2. **stories-only**: a story is added to ``data/stories/`` (a copy of an existing one under a
   new name, so the dialogue policies must learn again), then the same script runs with the
   cache the full training left: from saving the file to the new *complete* model file (NLU
   and dialogue components both in the archive);
3. **rules-only**: the same with a rule added to ``data/rules/``;
4. **model replace**: Rasa (``python -m cartguard.rasa_main run``) is started on a free loopback
   port with the first model, and the stories-only model is loaded into it through Rasa's HTTP
   API (``PUT /model``, JWT-authenticated); the figure is that request's duration.

Goals on the 2-core machine (issue 15): full <= 90 s, stories-only <= 30 s. The figures are
printed and written as JSON to ``results/bench-training.json``; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import jwt
import requests
import yaml

PROJECT = Path(__file__).resolve().parents[1]
GOALS = {"full": 90.0, "stories_only": 30.0}
#: components a complete model must contain (NLU and dialogue), by their graph node prefix
REQUIRED_NODES = ("train_DIETClassifier", "train_TEDPolicy", "train_RulePolicy")


def _copy_project(root: Path) -> None:
    for name in ("config.yml", "domain.yml", "endpoints.yml", "credentials.yml"):
        shutil.copy2(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "data", root / "data")
    (root / "scripts").mkdir()
    for name in ("train-if-stale.sh", "train_progress.py"):
        shutil.copy2(PROJECT / "scripts" / name, root / "scripts" / name)
    (root / ".venv").symlink_to(PROJECT / ".venv")


def _model_nodes(model: Path) -> set[str]:
    with tarfile.open(model) as archive:  # members are /components/<node>/...
        parts = [Path(name.lstrip("/")).parts for name in archive.getnames()]
    return {p[1] for p in parts if len(p) > 1 and p[0] == "components"}


def _is_complete(model: Path) -> bool:
    nodes = _model_nodes(model)
    return all(any(node.startswith(prefix) for node in nodes) for prefix in REQUIRED_NODES)


def _train(root: Path, env: dict[str, str], label: str) -> dict[str, object]:
    """Run the training script as ``make train`` does; return its duration and what it did."""
    model = root / "models" / "cartguard.tar.gz"
    before = model.stat().st_mtime_ns if model.exists() else None
    log = root / "var" / "logs" / "train.log"
    offset = log.stat().st_size if log.exists() else 0
    before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "scripts/train-if-stale.sh"], cwd=root, env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    after_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after_cpu.ru_utime - before_cpu.ru_utime) + (after_cpu.ru_stime - before_cpu.ru_stime)
    load = os.getloadavg()[0]
    if result.returncode != 0:
        raise SystemExit(f"{label}: training failed\n{result.stdout}\n{result.stderr}")
    assert model.exists() and model.stat().st_mtime_ns != before, f"{label}: no new model"
    complete = _is_complete(model)
    text = log.read_text(errors="replace")[offset:]
    restored = sorted(set(re.findall(r"Restored component '(\w+)' from cache", text)))
    trained = sorted(set(re.findall(r"Starting to train component '(\w+)'", text)))
    print(
        f"  {label}: {seconds:.1f} s (CPU {cpu:.0f} s, load average {load:.1f}),"
        f" complete model: {complete}"
    )
    print(f"    trained: {', '.join(trained) or '-'}")
    print(f"    restored from cache: {', '.join(restored) or '-'}")
    if not complete:
        raise SystemExit(f"{label}: the model lacks NLU or dialogue components")
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average": round(load, 1),
        "trained": trained,
        "restored": restored,
    }


def _add_copy_of_first(path: Path, key: str, name_key: str) -> None:
    """Append a copy of the file's first story/rule under a new name (a designer's edit)."""
    document = yaml.safe_load(path.read_text())
    first = dict(document[key][0])
    first[name_key] = f"{first[name_key]} (bench copy {time.time_ns()})"
    document[key].append(first)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli_env(root: Path, env: dict[str, str]) -> dict[str, str]:
    cartguard = str(PROJECT / ".venv" / "bin" / "cartguard")
    subprocess.run([cartguard, "init-keys"], env=env, check=True, capture_output=True)
    exports = subprocess.run(
        [cartguard, "shell-env"], env=env, check=True, capture_output=True, text=True
    ).stdout
    full = dict(env)
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        full[name] = shlex.split(value)[0] if value else ""
    return full


def _model_replace(root: Path, env: dict[str, str], first: Path, second: Path) -> dict[str, float]:
    """Start Rasa with ``first``, then time ``PUT /model`` with ``second``."""
    port = _free_port()
    env = _cli_env(root, {**env, "RASA_PORT": str(port)})
    secret = env["CARTGUARD_RASA_JWT_SECRET"]
    log = root / "var" / "logs" / "rasa.log"
    command = [
        sys.executable,
        "-m",
        "cartguard.rasa_main",
        "run",
        "--model",
        str(first),
        "--endpoints",
        "endpoints.yml",
        "--credentials",
        "credentials.yml",
        "--port",
        str(port),
        "--enable-api",
    ]
    with open(log, "w") as handle:
        rasa = subprocess.Popen(command, cwd=root, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    now = int(time.time())
    token = jwt.encode(
        {"user": {"username": "bench", "role": "admin"}, "iat": now, "exp": now + 3600},
        secret,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        started = time.monotonic()
        while True:
            if rasa.poll() is not None:
                raise SystemExit(f"Rasa stopped while starting; see {log}")
            try:
                if requests.get(f"{url}/status", headers=headers, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - started > 600:
                raise SystemExit(f"Rasa did not start within 600 s; see {log}")
            time.sleep(1)
        load_seconds = time.monotonic() - started
        print(f"  Rasa loaded the first model in {load_seconds:.0f} s")
        started = time.monotonic()
        reply = requests.put(
            f"{url}/model", json={"model_file": str(second)}, headers=headers, timeout=600
        )
        replace_seconds = time.monotonic() - started
        reply.raise_for_status()
        status = requests.get(f"{url}/status", headers=headers, timeout=10).json()
        assert Path(status["model_file"]).name == second.name, status
        print(
            f"  PUT /model (load the new model into the running assistant): {replace_seconds:.1f} s"
        )
        return {"seconds": round(replace_seconds, 1), "first_load_seconds": round(load_seconds)}
    finally:
        rasa.terminate()
        try:
            rasa.wait(30)
        except subprocess.TimeoutExpired:
            rasa.kill()


def run(skip_replace: bool = False) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="cartguard-bench-training-"))
    try:
        _copy_project(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTGUARD_")}
        env["CARTGUARD_DATA_DIR"] = str(root / "var")
        figures: dict[str, object] = {"cores": os.cpu_count(), "load": os.getloadavg()[0]}
        print("==> training figures (a temporary copy of the project)")
        figures["full"] = _train(root, env, "full training, empty cache")
        first = root / "models" / "first.tar.gz"
        shutil.copy2(root / "models" / "cartguard.tar.gz", first)

        stories = sorted((root / "data" / "stories").glob("*.yml"))[0]
        _add_copy_of_first(stories, "stories", "story")
        figures["stories_only"] = _train(root, env, f"after editing {stories.name} (stories)")
        second = root / "models" / "second.tar.gz"
        shutil.copy2(root / "models" / "cartguard.tar.gz", second)

        rules = sorted((root / "data" / "rules").glob("*.yml"))[0]
        _add_copy_of_first(rules, "rules", "rule")
        figures["rules_only"] = _train(root, env, f"after editing {rules.name} (rules)")
        if not skip_replace:
            figures["model_replace"] = _model_replace(root, env, first, second)
        for key, goal in GOALS.items():
            seconds = figures[key]["seconds"]  # type: ignore[index]
            verdict = "meets" if seconds <= goal else "MISSES"
            print(f"  {key}: {seconds} s, goal <= {goal:.0f} s: {verdict} the goal")
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-replace", action="store_true", help="do not start Rasa")
    parser.add_argument("--out", type=Path, default=PROJECT / "results" / "bench-training.json")
    args = parser.parse_args(argv)
    figures = run(skip_replace=args.skip_replace)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"==> written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
