"""Replacing findings without a vault: masks where the policy says mask, else ``<LABEL>``.

Used for logs, the tracker store and the broker. Kept apart from detection so that the edge
(which swaps some values for vault tokens, see :mod:`cartguard.pii.policy`) reuses the same
findings and the same splice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cartguard.pii import policy
from cartguard.pii.analyzer import detect
from cartguard.pii.spans import Span
from cartguard.pii.validators import card_mask


@dataclass(frozen=True)
class Redaction:
    """The redacted text and the findings (offsets refer to the original text)."""

    text: str
    spans: list[Span]

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(s.label for s in self.spans)


def placeholder(label: str) -> str:
    return f"<{label}>"


def default_replacement(span: Span, value: str) -> str:
    """Masked labels (cards) -> ``424242******4242``; anything else -> ``<LABEL>``."""
    if policy.policy_for(span.label).operator is policy.Operator.MASK:
        return card_mask(value)
    return placeholder(span.label)


def apply(text: str, spans: Iterable[Span], replace: Callable[[Span, str], str]) -> str:
    """Splice replacements into ``text`` (spans must not overlap); linear in the text."""
    pieces: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: s.start):
        pieces.append(text[position : span.start])
        pieces.append(replace(span, text[span.start : span.end]))
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def redact(text: str, expect: Iterable[str] = ()) -> Redaction:
    """Detect and replace; redacting the result again changes nothing."""
    spans = detect(text, expect)
    if not spans:
        return Redaction(text, [])
    return Redaction(apply(text, spans, default_replacement), spans)
