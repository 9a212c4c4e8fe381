"""Anomaly rules over the audit log and the channels' signals, and the scan that runs them.

Each rule is a small function ``(session, now, settings) -> list[Finding]``: it counts one
thing per subject within a sliding window and reports the subjects at or over a threshold
(thresholds are settings, ``CARTGUARD_ANOMALY_*``). :func:`scan` runs every rule and hands
the findings to :func:`cartguard.monitoring.events.raise_event`, which raises each incident
once per window however often the scan runs.

The rules read what is already recorded for other reasons (step-up outcomes in the audit
log, staff exports in the audit log, channel signals), so detection needs no extra hooks in
the security code and sees every replica.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartguard.monitoring import signals
from cartguard.monitoring.events import Finding, raise_event
from cartguard.monitoring.rule_names import RULE_NAMES
from cartguard.settings import Settings, get_settings
from cartguard.shop.models import AuditEntry
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.security import SecurityEvent

log = logging.getLogger(__name__)

Rule = Callable[[Session, datetime, Settings], list[Finding]]


def _audit_rows(session: Session, action: str, since: datetime) -> list[AuditEntry]:
    return list(
        session.execute(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.at >= since)
        ).scalars()
    )


def _details(entry: AuditEntry) -> dict:
    try:
        value = json.loads(entry.details or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _window(settings: Settings) -> timedelta:
    return timedelta(seconds=max(60, settings.anomaly_window_seconds))


def _minutes(window: timedelta) -> int:
    return int(window.total_seconds() // 60)


def credential_stuffing(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Step-up failures for many different customers from one (pseudonymous) address."""
    window = _window(settings)
    customers: dict[str, set[str]] = defaultdict(set)
    for entry in _audit_rows(session, "stepup.failure", now - window):
        ip_hash = _details(entry).get("ip_hash")
        if isinstance(ip_hash, str) and ip_hash:
            customers[ip_hash].add(entry.subject or entry.actor)
    threshold = settings.anomaly_stuffing_customers
    return [
        Finding(
            rule="credential_stuffing",
            subject=f"ip:{ip_hash}",
            count=len(accounts),
            threshold=threshold,
            window=window,
            severity="critical",
            summary=(
                f"step-up codes failed for {len(accounts)} different customers from one address "
                f"within {_minutes(window)} minutes: block it (`cartguard security block-ip "
                f"--pseudonym {ip_hash}`) and review those accounts"
            ),
        )
        for ip_hash, accounts in customers.items()
        if len(accounts) >= threshold
    ]


def repeated_lockout(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """One customer's step-up locked again and again: someone keeps guessing their codes."""
    window = timedelta(hours=max(1, settings.anomaly_lockout_hours))
    lockouts: dict[str, int] = defaultdict(int)
    for entry in _audit_rows(session, "stepup.lockout", now - window):
        lockouts[entry.subject or entry.actor] += 1
    threshold = settings.anomaly_lockouts
    return [
        Finding(
            rule="repeated_lockout",
            subject=subject,
            count=count,
            threshold=threshold,
            window=window,
            summary=(
                f"step-up was locked {count} times within {window.total_seconds() / 3600:g} "
                f"hours: consider `cartguard stepup disable {subject.split(':')[-1]}` "
                "pending review, and contact the customer"
            ),
        )
        for subject, count in lockouts.items()
        if count >= threshold
    ]


def card_numbers_typed(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Card numbers typed into the chat: many in one conversation, or many shop-wide."""
    window = _window(settings)
    per_subject = signals.counts(session, signals.CARD_TYPED, now - window)
    findings = [
        Finding(
            rule="card_numbers_typed",
            subject=subject,
            count=count,
            threshold=settings.anomaly_cards_per_conversation,
            window=window,
            summary=(
                f"{count} card numbers were typed into one conversation within "
                f"{_minutes(window)} minutes (card testing, or a shopper being coached by a "
                "scammer)"
            ),
        )
        for subject, count in per_subject.items()
        if subject.startswith("conversation:") and count >= settings.anomaly_cards_per_conversation
    ]
    total = sum(per_subject.values())
    if total >= settings.anomaly_cards_total:
        findings.append(
            Finding(
                rule="card_numbers_typed",
                subject="shop",
                count=total,
                threshold=settings.anomaly_cards_total,
                window=window,
                summary=(
                    f"{total} card numbers were typed into the chat shop-wide within "
                    f"{_minutes(window)} minutes: check for a phishing message telling "
                    "shoppers to send their card in the chat"
                ),
            )
        )
    return findings


def _per_ip_burst(
    rule: str, kind: str, threshold: int, what: str
) -> Callable[[Session, datetime, Settings], list[Finding]]:
    def check(session: Session, now: datetime, settings: Settings) -> list[Finding]:
        window = _window(settings)
        limit = getattr(settings, threshold)
        return [
            Finding(
                rule=rule,
                subject=subject,
                count=count,
                threshold=limit,
                window=window,
                summary=(
                    f"{count} {what} from one address within {_minutes(window)} minutes: "
                    f"block it (`cartguard security block-ip --pseudonym "
                    f"{subject.removeprefix('ip:')}`)"
                ),
            )
            for subject, count in signals.counts(session, kind, now - window).items()
            if subject.startswith("ip:") and count >= limit
        ]

    check.__name__ = rule
    check.__doc__ = f"A burst of {what} from one address."
    return check


invalid_login_tokens = _per_ip_burst(
    "invalid_login_tokens",
    signals.INVALID_TOKEN,
    "anomaly_bad_tokens_per_ip",
    "invalid or expired login tokens",
)
forged_session_ids = _per_ip_burst(
    "forged_session_ids",
    signals.FORGED_SESSION,
    "anomaly_forged_sessions_per_ip",
    "forged or unknown webchat session ids",
)
messenger_bad_signatures = _per_ip_burst(
    "messenger_bad_signatures",
    signals.BAD_SIGNATURE,
    "anomaly_bad_signatures_per_ip",
    "Messenger webhook calls with a bad signature",
)


def staff_bulk_export(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """A staff account exporting many different customers within an hour."""
    window = timedelta(hours=1)
    exported: dict[str, set[str]] = defaultdict(set)
    for entry in _audit_rows(session, "privacy.export", now - window):
        if entry.actor.startswith("staff:"):
            exported[entry.actor].add(entry.subject or "")
    threshold = settings.anomaly_staff_exports
    return [
        Finding(
            rule="staff_bulk_export",
            subject=actor,
            count=len(customers),
            threshold=threshold,
            window=window,
            severity="critical",
            summary=(
                f"{actor} exported the data of {len(customers)} customers within an hour: "
                "confirm with them; if unexpected, disable the account "
                "(`cartguard staff disable`) and treat it as a personal-data breach"
            ),
        )
        for actor, customers in exported.items()
        if len(customers) >= threshold
    ]


RULES: dict[str, Rule] = {
    "credential_stuffing": credential_stuffing,
    "repeated_lockout": repeated_lockout,
    "card_numbers_typed": card_numbers_typed,
    "invalid_login_tokens": invalid_login_tokens,
    "forged_session_ids": forged_session_ids,
    "messenger_bad_signatures": messenger_bad_signatures,
    "staff_bulk_export": staff_bulk_export,
}
if set(RULES) != RULE_NAMES:  # fail loudly: metrics would drop the new rule's label
    raise RuntimeError(
        f"anomaly rules and monitoring.rule_names disagree: {sorted(set(RULES) ^ RULE_NAMES)}"
    )


def evaluate(
    session: Session, now: datetime | None = None, settings: Settings | None = None
) -> list[Finding]:
    """Every rule's findings (nothing is recorded); a failing rule does not stop the others."""
    now = now or utcnow()
    settings = settings or get_settings()
    findings: list[Finding] = []
    for name, rule in RULES.items():
        try:
            findings.extend(rule(session, now, settings))
        except Exception:  # one broken rule must not blind the others
            log.exception("anomaly rule %s failed", name)
    return findings


def scan(
    session: Session, now: datetime | None = None, settings: Settings | None = None
) -> list[SecurityEvent]:
    """Run the rules and raise their findings; returns only the events that are new."""
    now = now or utcnow()
    raised = []
    for finding in evaluate(session, now, settings):
        event, created = raise_event(session, finding, now)
        if created:
            raised.append(event)
    return raised
