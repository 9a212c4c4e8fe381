"""Redaction at the channel edge: what Rasa receives instead of what the shopper typed.

What happens to each label is :mod:`cartguard.pii.policy`'s table: a card number becomes a
mask (``424242******4242``) and is never stored; codes, e-mail addresses, phone numbers,
IBANs, names and addresses become vault tokens only the action server can resolve (it needs
the code to verify it, the address to change it); everything else becomes a ``<LABEL>``
placeholder and nothing keeps it.

If the vault cannot be reached the value becomes a placeholder instead (fail closed: the
shopper repeats it later, but it never reaches the transcript in clear).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from cartguard.pii import policy
from cartguard.pii.analyzer import detect
from cartguard.pii.anonymizer import apply, placeholder
from cartguard.pii.spans import Span
from cartguard.pii.validators import card_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeResult:
    """Text safe to hand to Rasa, and what was found in it."""

    text: str
    labels: frozenset[str]
    card_typed: bool  # a card number was typed: tell the shopper to use the secure form
    secret_typed: bool  # a password or SSN was typed: tell the shopper never to do that


def protect_incoming(
    text: str,
    *,
    customer_id: int | None = None,
    conversation_id: str | None = None,
    expect: Iterable[str] = (),
) -> EdgeResult:
    """Replace personal data in an incoming message before Rasa (and its logs) see it."""
    spans = detect_incoming(text, expect)
    return redact_incoming(text, spans, customer_id=customer_id, conversation_id=conversation_id)


def detect_incoming(text: str, expect: Iterable[str] = ()) -> list[Span]:
    """What :func:`protect_incoming` would replace (CPU only: no database)."""
    return detect(text, expect)


def needs_vault(spans: Iterable[Span]) -> bool:
    """Whether replacing ``spans`` writes vault tokens (a shop database transaction each)."""
    return any(policy.policy_for(s.label).operator is policy.Operator.TOKEN for s in spans)


def redact_incoming(
    text: str,
    spans: list[Span],
    *,
    customer_id: int | None = None,
    conversation_id: str | None = None,
) -> EdgeResult:
    """Replace the detected ``spans`` (vault tokens where the policy says so)."""
    if not spans:
        return EdgeResult(text, frozenset(), False, False)

    def replace(span: Span, value: str) -> str:
        operator = policy.policy_for(span.label).operator
        if operator is policy.Operator.MASK:
            return card_mask(value)
        if operator is policy.Operator.TOKEN:
            try:
                from cartguard.vault import get_vault

                return get_vault().tokenize(
                    value, span.label, customer_id=customer_id, conversation_id=conversation_id
                )
            except Exception as exc:  # any vault failure must fail closed
                log.error("vault unavailable, %s replaced by a placeholder: %s", span.label, exc)
        return placeholder(span.label)

    labels = frozenset(s.label for s in spans)
    return EdgeResult(
        text=apply(text, spans, replace),
        labels=labels,
        card_typed=bool(labels & policy.labels_with(policy.Operator.MASK)),
        secret_typed=bool(labels & policy.secret_labels()),
    )
