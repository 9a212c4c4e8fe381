"""Replacing findings: card numbers become a mask, everything else a ``<LABEL>`` placeholder.

Kept apart from detection so that other replacement policies (the edge swaps some values for
vault tokens) reuse the same findings and the same right-to-left splice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    """Card -> ``424242******4242``; anything else -> ``<LABEL>``."""
    if span.label == "CREDIT_CARD":
        return card_mask(value)
    return placeholder(span.label)


def apply(text: str, spans: Iterable[Span], replace: Callable[[Span, str], str]) -> str:
    """Splice replacements into ``text`` (spans must not overlap)."""
    out = text
    for span in sorted(spans, key=lambda s: s.start, reverse=True):
        out = out[: span.start] + replace(span, text[span.start : span.end]) + out[span.end :]
    return out


def redact(text: str, expect: Iterable[str] = ()) -> Redaction:
    """Detect and replace; redacting the result again changes nothing."""
    spans = detect(text, expect)
    if not spans:
        return Redaction(text, [])
    return Redaction(apply(text, spans, default_replacement), spans)
