#!/usr/bin/env python
"""What does Cartguard cost? The same conversations through stock Rasa and through Cartguard.

For each database (SQLite, PostgreSQL) two single-replica stacks run side by side:

* (a) **stock**: ``python -m rasa run`` with the stock ``socketio`` channel and Rasa's plain
  ``SQLTrackerStore``, rasa-sdk's action server without our plugin; on PostgreSQL also Rasa's
  Redis lock store and stock Pika broker, so both sides use the same services;
* (b) **Cartguard**: ``python -m cartguard.rasa_main`` with ``SecureSocketIOInput`` (signed
  sessions, edge PII redaction, rate limits), the redacting tracker store and broker and the
  token-checking action server (SQLite: ``endpoints.yml``; PostgreSQL: ``endpoints.scale.yml``
  with Redis rate limits).

All four stacks start together (loading models in parallel) and are then measured in
interleaved rounds (a, b, b, a, ...), so drift in the shared machine's load hits both sides
alike. Each round plays the same scripts with a fixed concurrency over socket.io (polling):
greet, consent, track an order, ask whether it shipped, thank, leave; every other shopper's
lines also carry personal data the way people paste it (an e-mail, a US phone number, a card
number; generated, the same values for both stacks), so Cartguard's edge redaction, tips and
vault do their real work. Rate limits are at their defaults: each simulated shopper connects
from its own loopback address, as real shoppers come from their own. The PostgreSQL stacks
share one PostgreSQL/Redis/RabbitMQ of their own (never the machine's shared services).
Printed: messages per second, p50/p95 latency of a turn (message sent -> last reply received),
and the ratio b/a. Goal: p95 ratio <= 1.10, throughput ratio >= 0.95.

    .venv/bin/python bench/stack.py [--rounds 6] [--conversations 16]
        [--concurrency 4] [--databases sqlite,postgresql] [--no-personal-data]
        [--json results/bench_stack.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import driver  # noqa: E402
from bench import services as svc  # noqa: E402
from bench.launcher import Stack, StackConfig  # noqa: E402

GOAL_P95_RATIO = 1.10
GOAL_THROUGHPUT_RATIO = 0.95


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split("\n")[1]
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), memory: {' '.join(memory.split()[1:3])} total/used, "
        f"load average at start {load[0]:.1f}, {platform.python_version()}"
    )


def configs(
    databases: list[str], tag: str, services: svc.Services | None
) -> dict[tuple[str, str], StackConfig]:
    out = {}
    for database in databases:
        for flavour in ("stock", "cartguard"):
            out[(database, flavour)] = StackConfig(
                replicas=1,
                flavour=flavour,
                database=database,
                name=f"cg_bench_{tag}_{database[:2]}_{flavour[:2]}",
                customers=5,
                start_timeout=900,
                redis_db=4 if flavour == "stock" else 8,
                services=services if database == "postgresql" else None,
            )
    return out


def start_all(cfgs: dict[tuple[str, str], StackConfig]) -> dict[tuple[str, str], Stack]:
    """Launch every stack from this thread (children die with it), then wait for all."""
    stacks = {key: Stack(cfg) for key, cfg in cfgs.items()}
    try:
        for stack in stacks.values():
            stack.launch()  # models then load in parallel
        for stack in stacks.values():
            stack.wait_ready()
    except BaseException as exc:
        for stack in stacks.values():
            stack.cleanup()
            stack.drop_databases()
        raise SystemExit(f"!! the stacks did not come up: {exc}") from exc
    return stacks


async def measure(
    stacks: dict[tuple[str, str], Stack],
    rounds: int,
    conversations: int,
    concurrency: int,
    personal: bool = True,
) -> dict[tuple[str, str], dict]:
    plans = {}
    for key, stack in stacks.items():
        stock = key[1] == "stock"
        scripts, tokens = driver.plan(
            stack.shop_database_url, stack.keys_file, conversations, personal=personal
        )
        counts = await driver.calibrate_all(stack.rasa_urls[0], tokens, scripts, stock=stock)
        plans[key] = (scripts, tokens, counts)
        print(f"    {key[0]:<10} {key[1]:<9} replies per line: {counts}", flush=True)
    results: dict[tuple[str, str], list[driver.LoadResult]] = {key: [] for key in stacks}
    databases = sorted({key[0] for key in stacks})
    for index in range(rounds + 1):  # round 0 warms up (first predictions, pools) and is dropped
        order = ["stock", "cartguard"] if index % 2 == 0 else ["cartguard", "stock"]
        for database in databases:
            for flavour in order:
                key = (database, flavour)
                scripts, tokens, counts = plans[key]
                result = await driver.run_load(
                    stacks[key].rasa_urls,
                    tokens,
                    scripts,
                    counts,
                    concurrency=concurrency,
                    stock=flavour == "stock",
                    switch_replicas=False,
                )
                s = result.summary()
                label = "warm-up" if index == 0 else f"round {index}"
                print(
                    f"    {label:<8} {database:<10} {flavour:<9} {s['msg_per_s']:6.2f} msg/s "
                    f"p50 {s['p50_ms']:6.0f} ms  p95 {s['p95_ms']:6.0f} ms  "
                    f"errors {int(s['errors'])}",
                    flush=True,
                )
                if index:
                    results[key].append(result)
    out: dict = {}
    for database in databases:  # paired per round: drift in the machine's load cancels out
        pairs = zip(results[(database, "stock")], results[(database, "cartguard")], strict=True)
        ratios = {"msg_per_s": [], "p50_ms": [], "p95_ms": []}
        for a, b in pairs:
            sa, sb = a.summary(), b.summary()
            for name in ratios:
                if sa[name]:
                    ratios[name].append(sb[name] / sa[name])
        out[("paired", database)] = {
            name: statistics.median(values) if values else float("nan")
            for name, values in ratios.items()
        }
    for key, runs in results.items():
        latencies = sorted(x for r in runs for x in r.latencies)
        seconds = sum(r.seconds for r in runs)
        out[key] = {
            "messages": len(latencies),
            "msg_per_s": len(latencies) / seconds if seconds else 0.0,
            "p50_ms": 1000 * driver.percentile(latencies, 50),
            "p95_ms": 1000 * driver.percentile(latencies, 95),
            "errors": sum(len(r.errors) for r in runs),
            "per_round_msg_per_s": [r.summary()["msg_per_s"] for r in runs],
        }
    return out


def report(summary: dict[tuple[str, str], dict], databases: list[str]) -> list[str]:
    lines = [
        "| database | stack | msg/s | p50 ms | p95 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for database in databases:
        for flavour in ("stock", "cartguard"):
            s = summary[(database, flavour)]
            lines.append(
                f"| {database} | {'(a) stock' if flavour == 'stock' else '(b) Cartguard'} | "
                f"{s['msg_per_s']:.2f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['errors']} |"
            )
    lines.append("")
    lines.append(
        f"| database | throughput b/a (goal >= {GOAL_THROUGHPUT_RATIO}) "
        f"| p95 b/a (goal <= {GOAL_P95_RATIO}) | p50 b/a |"
    )
    lines.append("|---|---:|---:|---:|")
    for database in databases:
        a, b = summary[(database, "stock")], summary[(database, "cartguard")]
        tput = b["msg_per_s"] / a["msg_per_s"] if a["msg_per_s"] else float("nan")
        p95 = b["p95_ms"] / a["p95_ms"] if a["p95_ms"] else float("nan")
        p50 = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else float("nan")
        mark_t = "ok" if tput >= GOAL_THROUGHPUT_RATIO else "MISSED"
        mark_p = "ok" if p95 <= GOAL_P95_RATIO else "MISSED"
        lines.append(f"| {database} | {tput:.2f} {mark_t} | {p95:.2f} {mark_p} | {p50:.2f} |")
    lines.append("")
    lines.append("Median of the per-round ratios b/a (each round runs a and b back to back):")
    lines.append("")
    lines.append("| database | throughput b/a | p95 b/a | p50 b/a |")
    lines.append("|---|---:|---:|---:|")
    for database in databases:
        paired = summary[("paired", database)]
        lines.append(
            f"| {database} | {paired['msg_per_s']:.2f} | {paired['p95_ms']:.2f} | "
            f"{paired['p50_ms']:.2f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--no-personal-data", action="store_true", help="plain conversations only (as before)"
    )
    parser.add_argument("--json", type=Path, default=REPO / "results" / "bench_stack.json")
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    print(f"==> machine: {machine()}", flush=True)
    personal = not args.no_personal_data
    print(
        "==> workload: "
        + ("every other shopper pastes an e-mail, a phone and a card number; " if personal else "")
        + "rate limits at their defaults, one loopback address per shopper",
        flush=True,
    )
    tag = str(os.getpid())
    own = svc.OwnServices().start() if "postgresql" in databases else None
    cfgs = configs(databases, tag, own.services if own else None)
    started = time.monotonic()
    print(f"==> starting {len(cfgs)} stacks (models load in parallel; minutes)", flush=True)
    try:
        stacks = start_all(cfgs)
        try:
            print(f"==> up after {time.monotonic() - started:.0f} s; measuring", flush=True)
            summary = asyncio.run(
                measure(stacks, args.rounds, args.conversations, args.concurrency, personal)
            )
        finally:
            for stack in stacks.values():
                stack.cleanup()
    finally:
        if own is not None:
            own.stop()
    lines = report(summary, databases)
    print("\n".join(["", *lines]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine(),
                "rounds": args.rounds,
                "personal_data": personal,
                "conversations": args.conversations,
                "concurrency": args.concurrency,
                "results": {"/".join(k): v for k, v in summary.items()},
                "table": lines,
            },
            indent=2,
        )
    )
    print(f"\n(raw figures in {args.json})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
