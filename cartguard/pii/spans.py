"""The result types of detection and the rule that decides between overlapping findings.

Kept free of spaCy and of any recognizer so that callers (the redactor, the tracker store, the
edge) and tests can build and compare spans without loading the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    """One finding: ``text[start:end]`` looks like ``label`` with confidence ``score`` (0..1)."""

    start: int
    end: int
    label: str
    score: float

    def overlaps(self, other_start: int, other_end: int) -> bool:
        return self.start < other_end and other_start < self.end

    def __len__(self) -> int:
        return self.end - self.start


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep at most one label per character: higher score wins, then the longer span.

    Two recognizers often see the same digits (a phone number and a bare six-digit code, a
    social security number and a phone number); the stronger evidence decides, and the
    result is stable so that a second pass over the same text gives the same answer.
    """
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start, s.label))
    kept: list[Span] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        if any(span.overlaps(k.start, k.end) for k in kept):
            continue
        kept.append(span)
    return sorted(kept)
