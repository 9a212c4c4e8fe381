#!/usr/bin/env python
"""The full load and fault run (``make soak``): 2 replicas behind HAProxy, their own services.

One deployment on loopback - PostgreSQL, Redis and RabbitMQ of its own (free ports, own data
directories), a TCP proxy per replica on its way to PostgreSQL, two Rasa replicas with their
action servers, HAProxy (sticky socket.io), the web service talking to Rasa through HAProxy -
then, in order:

1. steady load: ``--conversations`` shoppers through the balancer, each moving replica
   half-way, each from its own loopback address (rate limits at their defaults);
2. secure-form confirmations: every shopper of a batch submits a form; the web service's
   ``trigger_intent`` lands on either replica; each confirmation must reach its shopper;
3. PostgreSQL restarted mid-run;
4. replica 1's path to PostgreSQL blackholed for ``--blackhole`` seconds: time until its
   shoppers hear "please try again", while replica 0 keeps serving;
5. RabbitMQ stopped for ``--broker-outage`` seconds, replica 1 SIGKILLed in the middle of it:
   events stored vs published vs lost, duplicates, order per conversation; the turns the kill
   cut off are answered on replica 0 once their shoppers come back (replies lost must be 0).

Each phase prints messages, throughput, p50/p95 latency (p95 also for the turns that ended
during the fault), replies lost, "try again" answers and damaged conversations (the tracker
database read back: nothing lost, doubled, reordered or interleaved). Bounded:
``--max-minutes`` for the whole run. Exit status 1 when any check fails.

    .venv/bin/python bench/soak.py [--conversations 200] [--concurrency 16]
        [--broker-outage 30] [--blackhole 20] [--max-minutes 40] [--json results/soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import checks, driver, scenarios  # noqa: E402
from bench.launcher import StackConfig, running  # noqa: E402
from bench.stack import machine  # noqa: E402


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f}"


def describe(name: str, result: driver.LoadResult, problems: dict, window=None) -> dict:  # noqa: ANN001
    s = result.summary()
    refusals = sum(len(c.refusals) for c in result.conversations)
    during = []
    if window is not None and window.ended:
        during = scenarios.latencies_between(result, window.started, window.ended + 5)
    row = {
        "phase": name,
        "messages": int(s["messages"]),
        "msg_per_s": round(s["msg_per_s"], 2),
        "p50_ms": round(s["p50_ms"]),
        "p95_ms": round(s["p95_ms"]),
        "p95_during_fault_ms": round(1000 * driver.percentile(during, 95)) if during else None,
        "replies_lost": result.replies_lost,
        "try_again": refusals,
        "answered_database_unavailable": sum(c.degraded for c in result.conversations),
        "failed_conversations": len(result.errors),
        "damaged_conversations": len(problems),
    }
    print(
        f"    {name}: {row['messages']} messages, {row['msg_per_s']} msg/s, p50 {row['p50_ms']} "
        f"ms, p95 {row['p95_ms']} ms"
        + (f" (during the fault {row['p95_during_fault_ms']} ms)" if during else "")
        + f", replies lost {row['replies_lost']}, 'try again' {refusals}, 'order system "
        f"unavailable' answers {row['answered_database_unavailable']}, failed conversations "
        f"{len(result.errors)}, damaged conversations {len(problems)}",
        flush=True,
    )
    for failed in [c for c in result.conversations if c.error][:5]:
        print(f"      !! {str(failed.conversation_id)[:8]}: {failed.error}")
        explain(failed)
    heard = {c.conversation_id: c for c in result.conversations}
    for sender, found in list(problems.items())[:5]:
        print(f"      !! {sender[:8]}: {found}")
        played = heard.get(sender)
        if played is not None:
            explain(played)
    return row


def explain(conv: driver.Conversation) -> None:
    """What the shopper took as each line's answer, and where it was served (diagnostics)."""
    print(
        f"         replicas {conv.replicas}, reconnects {conv.reconnects}, error {conv.error}\n"
        f"         lines {[line[:20] for line in conv.texts]}"
    )
    for answers in conv.heard:  # a line cut off and said again has two entries
        print(f"         heard {answers}")


async def soak(stack, args: argparse.Namespace) -> tuple[bool, dict]:  # noqa: ANN001 - Stack
    ok = True
    report: dict = {"phases": []}
    n, c = args.conversations, args.concurrency
    plan = await scenarios.make_plan(stack, n)
    print(f"    replies per line: {plan.counts}", flush=True)

    print(f"==> 1. steady load: {n} conversations through HAProxy", flush=True)
    result = await scenarios.load(stack, plan, n, c)
    problems = checks.check_conversations(stack.tracker_database_url, scenarios.played(result))
    row = describe("steady", result, problems)
    ok &= not result.errors and not problems and result.replies_lost == 0
    report["phases"].append(row)

    batch = min(args.confirmations, n)
    print(f"==> 2. {batch} shoppers x 2 secure-form confirmations via the web service", flush=True)
    confirmed = await scenarios.confirmations(stack, plan, batch, offset=n, rounds=2, concurrency=c)
    print(
        f"    confirmations: {confirmed.submitted} submitted, {confirmed.seen} seen by their "
        f"shopper, lost {confirmed.lost} ({confirmed.crossed} routed through the replica not "
        f"holding the socket); form -> confirmation p50 "
        f"{ms(scenarios.percentile(confirmed.seconds, 50))} ms, p95 "
        f"{ms(scenarios.percentile(confirmed.seconds, 95))} ms",
        flush=True,
    )
    for error in confirmed.errors[:5]:
        print(f"      !! {error}")
    ok &= confirmed.lost == 0 and not confirmed.errors
    report["confirmations"] = {
        "submitted": confirmed.submitted,
        "seen": confirmed.seen,
        "lost": confirmed.lost,
        "crossed": confirmed.crossed,
        "p95_ms": round(1000 * scenarios.percentile(confirmed.seconds, 95)),
    }

    print("==> 3. PostgreSQL restarted mid-run", flush=True)
    window = scenarios.FaultLog()
    result = await scenarios.load(
        stack, plan, n, c, offset=n, fault=scenarios.postgres_restart(stack, 5, window)
    )
    problems = checks.check_conversations(stack.tracker_database_url, scenarios.played(result))
    row = describe("database restart", result, problems, window)
    ok &= not result.errors and not problems and result.replies_lost == 0
    report["phases"].append(row)

    print(
        f"==> 4. replica 1's path to PostgreSQL blackholed for {args.blackhole:.0f} s", flush=True
    )
    window = scenarios.FaultLog()
    result = await scenarios.load(
        stack,
        plan,
        n,
        c,
        offset=2 * n,
        fault=scenarios.blackhole(stack, 1, 5, args.blackhole, window),
    )
    problems = checks.check_conversations(stack.tracker_database_url, scenarios.played(result))
    row = describe("blackholed database path", result, problems, window)
    silent = [
        seconds
        for conv in result.conversations
        for seconds, replica in zip(conv.refusal_seconds, conv.refusal_replicas, strict=True)
        if replica == 1
    ]
    elsewhere = sum(1 for conv in result.conversations for r in conv.refusal_replicas if r != 1)
    served = [
        r
        for conv in result.conversations
        for r, at in zip(conv.replicas, conv.finished_at, strict=True)
        if window.started < at < window.ended
    ]
    row["try_again_seconds"] = {
        "count": len(silent),
        "p50": round(scenarios.percentile(silent, 50), 1),
        "max": round(max(silent), 1) if silent else None,
    }
    row["turns_served_by_replica_0_during_blackhole"] = served.count(0)
    print(
        f"    time to 'please try again' on the blackholed replica: p50 "
        f"{scenarios.percentile(silent, 50):.1f} s, max {max(silent, default=0):.1f} s "
        f"({len(silent)} answers); 'try again' from the other replica: {elsewhere}; turns the "
        f"other replica completed during the blackhole: {served.count(0)}",
        flush=True,
    )
    ok &= not result.errors and not problems and elsewhere == 0 and served.count(0) > 0
    report["phases"].append(row)

    print(
        f"==> 5. RabbitMQ stopped for {args.broker_outage:.0f} s, replica 1 SIGKILLed during it",
        flush=True,
    )
    await asyncio.to_thread(scenarios.svc.drain_queue, stack.config.queue, stack.services)
    window = scenarios.FaultLog()
    result = await scenarios.load(
        stack,
        plan,
        n,
        c,
        offset=3 * n,
        # a turn in flight on the killed replica is replayed once its record's lease (20 s)
        # and its conversation lock's (15 s) have lapsed; generous on a loaded machine
        reply_timeout=150,
        await_replays=True,  # a replica dies: its turns in flight are answered elsewhere
        fault=scenarios.broker_outage(
            stack,
            5,
            args.broker_outage,
            kill_replica=1,
            kill_after=args.broker_outage / 3,
            log=window,
        ),
    )
    for note in window.notes:
        print(f"    {note}")
    failed = [conv for conv in result.conversations if conv.error]
    row = describe("broker outage + SIGKILL", result, {}, window)
    for conv in [c for c in result.conversations if c.replies_lost][:10]:
        print(f"      !! {str(conv.conversation_id)[:8]}: lost {conv.replies_lost}")
        explain(conv)
    slow = [x for x in result.latencies if x > 30]
    row["turns_waiting_over_30_s"] = len(slow)
    row["reconnects"] = sum(conv.reconnects for conv in result.conversations)
    row["turns_replayed_after_the_kill"] = result.replayed
    row["messages_sent_again_without_receipt"] = result.resent
    print(
        f"    shoppers who came back through the balancer after the kill: "
        f"{sum(1 for conv in result.conversations if conv.reconnects)}; turns cut off by the "
        f"kill and answered on the other replica without being asked again: {result.replayed} "
        f"(of their messages, sent again by the client for want of a receipt: {result.resent}); "
        f"turns that waited over 30 s (a dead replica's leases): {len(slow)}"
        + (f", longest {max(slow):.0f} s" if slow else ""),
        flush=True,
    )
    delivery = await scenarios.broker_delivery(
        stack, [sid for sid, *_ in scenarios.played(result)], timeout=180
    )
    print(
        f"    events stored {delivery.stored}, published {delivery.published}, lost "
        f"{delivery.lost} (of which still unsent in the outbox {delivery.pending}; all arrived "
        f"after {delivery.seconds:.0f} s of waiting), published twice {delivery.duplicates}, "
        f"published but never stored "
        f"{delivery.unknown}, conversations out of order {delivery.out_of_order}; "
        f"conversations that failed {len(failed)}",
        flush=True,
    )
    row["events"] = delivery.__dict__
    # a copy with the same message id (a confirm lost as RabbitMQ stopped) is reported, and
    # dropped by consumers; anything lost, invented, reordered or altered fails the run
    ok &= not result.errors and result.replies_lost == 0
    ok &= (
        delivery.lost == 0
        and delivery.unknown == 0
        and delivery.out_of_order == 0
        and delivery.differing_copies == 0
    )
    report["phases"].append(row)
    return ok, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--confirmations", type=int, default=100)
    parser.add_argument("--broker-outage", type=float, default=30.0)
    parser.add_argument("--blackhole", type=float, default=20.0)
    parser.add_argument("--max-minutes", type=float, default=40.0)
    parser.add_argument("--json", type=Path, default=REPO / "results" / "soak.json")
    args = parser.parse_args()

    def out_of_time(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"soak ran longer than {args.max_minutes:.0f} minutes")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.max_minutes * 60))
    print(f"==> machine: {machine()}", flush=True)
    config = StackConfig(
        replicas=2,
        name=f"cg_soak_{os.getpid()}",
        customers=8,
        balancer=True,
        web=True,
        db_proxies=True,
        start_timeout=900,
        keep_logs=args.json.parent / "soak-logs",
    )
    started = time.monotonic()
    print(
        "==> starting own PostgreSQL/Redis/RabbitMQ, 2 replicas, HAProxy, the web service "
        "(loading models takes minutes)",
        flush=True,
    )
    try:
        with running(config) as stack:
            print(f"==> up after {time.monotonic() - started:.0f} s", flush=True)
            ok, report = asyncio.run(soak(stack, args))
    finally:
        signal.alarm(0)
    report.update(
        machine=machine(),
        date=time.strftime("%Y-%m-%d"),
        conversations=args.conversations,
        concurrency=args.concurrency,
        ok=bool(ok),
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print("==> soak passed" if ok else "!! soak found problems (see above)")
    print(f"(figures in {args.json})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
