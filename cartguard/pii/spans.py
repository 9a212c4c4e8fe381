"""The result types of detection and the rule that decides between overlapping findings.

Kept free of any recognizer so that callers (the redactor, the tracker store, the edge) and
tests can build and compare spans on their own.
"""

from __future__ import annotations

import bisect
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

    Two recognizers often see the same digits (a phone number and a one-time code, a social
    security number and a phone number); the stronger evidence decides, and the result is
    stable so that a second pass over the same text gives the same answer. Kept spans never
    overlap, so checking a candidate needs only its neighbours in start order (bisect):
    ``O(n log n)`` however many findings a hostile text produces.
    """
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start, s.label))
    starts: list[int] = []
    kept: list[Span] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        at = bisect.bisect_left(starts, span.start)
        if at > 0 and kept[at - 1].end > span.start:
            continue
        if at < len(kept) and kept[at].start < span.end:
            continue
        starts.insert(at, span.start)
        kept.insert(at, span)
    return kept
