"""Finding personal data: normalize, run every recognizer, drop what is already redacted.

This module only finds; it never changes text (see :mod:`cartguard.pii.anonymizer`).

Work is linear in the length of the text: normalization is one pass, every recognizer scans
with patterns whose repetitions are bounded, and overlapping findings are resolved in
``O(n log n)``. Callers that handle unbounded input (log lines) cut it first.
"""

from __future__ import annotations

from collections.abc import Iterable

from cartguard.pii import policy
from cartguard.pii.normalize import normalize
from cartguard.pii.recognizers.base import Context
from cartguard.pii.registry import RECOGNIZERS
from cartguard.pii.spans import Span, resolve_overlaps
from cartguard.pii.tokens import protected_regions

#: Labels a caller may announce as expected by the dialogue (see :mod:`cartguard.pii.policy`).
EXPECTABLE = policy.expectable()


def detect(text: str, expect: Iterable[str] = ()) -> list[Span]:
    """Return non-overlapping findings in ``text``, sorted by position.

    Offsets refer to ``text`` as given: recognizers look at a normalized copy (full-width
    digits, every kind of space and dash, invisible characters removed) and each finding is
    mapped back so that it covers the whole original value.

    ``expect`` names what the dialogue is waiting for (``{"OTP_CODE"}`` while a step-up is
    pending, ``{"PASSWORD"}`` after the bot asked for a password): that widens what counts as
    such a secret. Vault tokens, card masks, placeholders and shop ids are never reported, so
    detecting on already-redacted text finds nothing new.
    """
    if not text:
        return []
    normalized = normalize(text)
    ctx = Context(normalized.text, frozenset(expect) & EXPECTABLE)
    found: list[Span] = []
    for recognizer in RECOGNIZERS:
        if recognizer.applies(ctx):
            found.extend(recognizer.find(ctx))
    if not found:
        return []
    regions = protected_regions(normalized.text)
    if regions:
        found = [s for s in found if not any(s.overlaps(a, b) for a, b in regions)]
    kept = resolve_overlaps(found)
    if normalized.starts is None:
        return kept
    mapped = []
    for span in kept:
        start, end = normalized.original_span(span.start, span.end)
        mapped.append(Span(start, end, span.label, span.score))
    return mapped
