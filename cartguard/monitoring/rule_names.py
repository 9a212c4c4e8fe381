"""The names of the anomaly rules, one fixed set below both the rules and the metrics.

``metrics`` labels security events by rule and must know every name up front (a label set
that grows with input would be a memory leak); ``anomaly`` defines the rules and, through
``events``, records metrics. Keeping the names here, importing nothing, means neither module
needs the other: ``metrics -> anomaly -> events -> metrics`` was a circle. ``anomaly`` checks
at import that its rules and this set agree.
"""

from __future__ import annotations

RULE_NAMES: frozenset[str] = frozenset(
    {
        "credential_stuffing",
        "repeated_lockout",
        "card_numbers_typed",
        "invalid_login_tokens",
        "forged_session_ids",
        "messenger_bad_signatures",
        "staff_bulk_export",
    }
)
