#!/usr/bin/env python
"""The full load and fault run (``make soak``): replicas on PostgreSQL, Redis and RabbitMQ.

Phases, each checked by reading the tracker database back (nothing lost, doubled or
reordered, turns never interleaved) and, where the broker is involved, by draining the
event queue (every stored event delivered at least once):

1. steady load: many concurrent conversations, each moving to another replica half-way;
2. PostgreSQL restarted mid-run (shoppers may be told "try again", then go on);
3. RabbitMQ stopped for a while mid-run (conversations go on; events arrive afterwards).

Bounded: fixed conversation counts, 60 s reply timeout, ``--max-minutes`` for the whole run.
PostgreSQL and RabbitMQ are running again when it ends, whatever happened. Exit status 1 when
any check fails.

    .venv/bin/python bench/soak.py [--replicas 2] [--conversations 60] [--concurrency 12]
        [--broker-outage 30] [--max-minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import checks, scenarios  # noqa: E402
from bench import services as svc  # noqa: E402
from bench.launcher import StackConfig, running  # noqa: E402


def describe(name: str, result, problems: dict) -> bool:  # noqa: ANN001 - LoadResult
    s = result.summary()
    refusals = sum(len(c.refusals) for c in result.conversations)
    print(
        f"    {name}: {int(s['messages'])} messages, {s['msg_per_s']:.1f} msg/s, "
        f"p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, "
        f"'try again' answers {refusals}, failed conversations {len(result.errors)}, "
        f"damaged conversations {len(problems)}",
        flush=True,
    )
    for error in result.errors[:5]:
        print(f"      !! {error}")
    for sender, found in list(problems.items())[:5]:
        print(f"      !! {sender}: {found}")
    return not result.errors and not problems


async def soak(stack, args: argparse.Namespace) -> bool:  # noqa: ANN001 - Stack
    ok = True
    plan = await scenarios.make_plan(stack, args.conversations)
    queue = stack.config.queue
    svc.drain_queue(queue)

    print("==> 1. steady load across replicas", flush=True)
    result = await scenarios.load(stack, plan, args.conversations, args.concurrency)
    problems = checks.check_conversations(stack.tracker_database_url, scenarios.played(result))
    ok &= describe("steady", result, problems)

    print("==> 2. PostgreSQL restarted mid-run", flush=True)
    try:
        result = await scenarios.load(
            stack,
            plan,
            args.conversations,
            args.concurrency,
            fault=scenarios.postgres_restart(after=3),
        )
    finally:
        svc.ensure_postgres_running()
    problems = checks.check_conversations(stack.tracker_database_url, scenarios.played(result))
    ok &= describe("database restart", result, problems)

    print(f"==> 3. RabbitMQ stopped for {args.broker_outage:.0f} s mid-run", flush=True)
    svc.drain_queue(queue)
    try:
        result = await scenarios.load(
            stack,
            plan,
            args.conversations,
            args.concurrency,
            fault=scenarios.broker_outage(after=3, seconds=args.broker_outage),
        )
    finally:
        svc.ensure_rabbitmq_running()
    played = scenarios.played(result)
    problems = checks.check_conversations(stack.tracker_database_url, played)
    ok &= describe("broker outage", result, problems)
    delivery = await scenarios.broker_delivery(
        stack.tracker_database_url, queue, [sid for sid, _ in played], timeout=120
    )
    print(
        f"    events stored {delivery.stored}, delivered {delivery.delivered} "
        f"(lost {delivery.lost}, redelivered copies {delivery.duplicates}, "
        f"unknown {delivery.unknown})",
        flush=True,
    )
    ok &= delivery.lost == 0 and delivery.unknown == 0
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--broker-outage", type=float, default=30.0)
    parser.add_argument("--max-minutes", type=float, default=30.0)
    args = parser.parse_args()
    missing = svc.missing_services()
    if missing:
        print(f"!! soak needs the local services; not reachable: {', '.join(missing)}")
        return 1

    def out_of_time(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"soak ran longer than {args.max_minutes:.0f} minutes")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.max_minutes * 60))
    config = StackConfig(replicas=args.replicas, name=f"cg_soak_{os.getpid()}")
    started = time.monotonic()
    print(f"==> starting {args.replicas} replicas (loading models takes minutes)", flush=True)
    try:
        with running(config) as stack:
            print(f"==> up after {time.monotonic() - started:.0f} s: {stack.rasa_urls}")
            ok = asyncio.run(soak(stack, args))
    finally:
        signal.alarm(0)
        svc.ensure_postgres_running()
        svc.ensure_rabbitmq_running()
    print("==> soak passed" if ok else "!! soak found problems (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
