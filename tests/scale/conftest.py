"""A real two-replica Cartguard stack on the local PostgreSQL, Redis and RabbitMQ.

Started once for the module that asks for it (loading two Rasa models takes one to three
minutes on two shared cores) and always stopped, its databases and queue dropped. Skips with
the reason when a service or the trained model is missing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import scenarios
from bench import services as svc
from bench.launcher import DEFAULT_MODEL, Stack, StackConfig, running


@pytest.fixture(scope="module")
def stack(data_dir: Path) -> Iterator[Stack]:
    missing = svc.missing_services()
    if missing:
        pytest.skip("scale tests need the local services; not reachable: " + ", ".join(missing))
    if not DEFAULT_MODEL.exists():
        pytest.skip(f"scale tests need a trained model at {DEFAULT_MODEL} (make train)")
    config = StackConfig(
        replicas=2,
        name=f"cg_scale_t{os.getpid()}",
        customers=4,
        # high enough for the load, low enough that a bucket outlives a test step in Redis
        extra_env={
            "CARTGUARD_RATE_SENDER_BURST": "1000",
            "CARTGUARD_RATE_SENDER_PER_MINUTE": "6000",
        },
    )
    with running(config) as started:
        yield started


@pytest.fixture(scope="module")
def plan(stack: Stack) -> scenarios.Plan:
    """Scripts, login tokens and per-line reply counts for this stack (measured once)."""
    measured = asyncio.run(scenarios.make_plan(stack, 24))
    assert all(measured.counts), f"some lines got no reply at all: {measured.counts}"
    return measured
