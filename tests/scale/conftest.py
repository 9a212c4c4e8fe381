"""A real two-replica Cartguard deployment on this machine, behind HAProxy, with its own services.

Started once for the module that asks for it: PostgreSQL, Redis and RabbitMQ of its own on
free loopback ports (never the machine's shared ones), a TCP proxy per replica on its way to
PostgreSQL, two Rasa replicas with their action servers, HAProxy in front (sticky socket.io
for shoppers, round robin for the web service) and the web service itself, whose Rasa URL is
the balancer. Loading two Rasa models takes one to three minutes on two shared cores.
Everything is stopped and removed afterwards; the processes' logs are kept in
``$TMPDIR/cartguard-scale-logs-<pid>``. A missing binary or model fails the tests
(``services`` marker): nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import scenarios
from bench.launcher import DEFAULT_MODEL, Stack, StackConfig, running


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    assert DEFAULT_MODEL.exists(), f"scale tests need a trained model at {DEFAULT_MODEL}"
    config = StackConfig(
        replicas=2,
        name=f"cg_scale_t{os.getpid()}",
        customers=4,
        balancer=True,
        web=True,
        db_proxies=True,
        outage_grace_seconds=20,
        keep_logs=Path(tempfile.gettempdir()) / f"cartguard-scale-logs-{os.getpid()}",
    )
    with running(config) as started:
        yield started


@pytest.fixture(scope="module")
def plan(stack: Stack) -> scenarios.Plan:
    """Scripts, login tokens and per-line reply counts for this stack (measured once)."""
    measured = asyncio.run(scenarios.make_plan(stack, 24))
    assert all(all(c) for c in measured.counts.values()), f"lines without reply: {measured.counts}"
    return measured
