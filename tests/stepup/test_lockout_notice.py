"""A lockout tells the account's owner by e-mail (five wrong codes may be someone else guessing)."""

from __future__ import annotations

import pyotp

from cartguard.notify import notices
from cartguard.stepup import service as service_module


def test_the_lockout_queues_exactly_one_notice_to_the_owner(
    service, secrets_by_customer, monkeypatch
) -> None:
    sent: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(
        service_module.notices,
        "notify",
        lambda session, customer_id, kind, **context: (
            sent.append((customer_id, kind, context)) or True
        ),
    )
    right = pyotp.TOTP(secrets_by_customer[1]).now()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    outcomes = [service.verify(1, "conv-notice", wrong) for _ in range(5)]
    assert outcomes[-1].locked and not any(o.locked for o in outcomes[:-1])
    assert sent == [(1, notices.LOCKOUT, {"minutes": 15})]
