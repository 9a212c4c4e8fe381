"""Fixtures of the monitoring tests: a shop database of their own and tuned thresholds.

The anomaly rules count audit entries and signals across the whole database, so these tests
run on a fresh database per module: other areas' step-up failures must not push a "normal
traffic" scenario over a threshold, and our attack replays must not leave events for others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.harness import fake_graph  # noqa: F401 - shared fixture
from tests.conftest import own_shop_database


@pytest.fixture(scope="module")
def mon_db(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A fresh, seeded shop database for this module; yields the customer ids."""
    from cartguard.shop.db import session_scope
    from cartguard.shop.seed import seed_shop

    with own_shop_database(tmp_path_factory.mktemp("monitoring-db") / "shop.db"):
        with session_scope() as session:
            ids = [c.id for c in seed_shop(session, customers=8, orders_per_customer=1)]
        yield ids


@pytest.fixture()
def settings(mon_db):
    """Settings with small, explicit thresholds (the tests replay exactly this many)."""
    from cartguard.settings import get_settings

    return dataclasses.replace(
        get_settings(),
        anomaly_window_seconds=600,
        anomaly_stuffing_customers=5,
        anomaly_lockouts=3,
        anomaly_cards_per_conversation=3,
        anomaly_cards_total=8,
        anomaly_bad_tokens_per_ip=6,
        anomaly_forged_sessions_per_ip=6,
        anomaly_bad_signatures_per_ip=5,
        anomaly_staff_exports=6,
    )


@pytest.fixture()
def clean_slate(mon_db) -> Iterator[None]:
    """Each scenario starts without audit entries, signals, events, blocks or step-up state."""
    from sqlalchemy import delete

    from cartguard.monitoring import signals
    from cartguard.monitoring.incident import blocklist
    from cartguard.shop.db import session_scope
    from cartguard.shop.models import AuditEntry
    from cartguard.shop.models.security import BlockedSource, SecurityEvent, SecuritySignal
    from cartguard.shop.models.stepup import StepUpEnrolment, StepUpSession

    def wipe() -> None:
        signals.buffer().flush()
        with session_scope() as session:
            for table in (
                AuditEntry,
                SecurityEvent,
                SecuritySignal,
                BlockedSource,
                StepUpSession,
                StepUpEnrolment,
            ):
                session.execute(delete(table))
        blocklist().invalidate()

    wipe()
    yield
    wipe()
