"""Finding personal data: run every recognizer, drop what is already redacted, resolve overlaps.

This module only finds; it never changes text (see :mod:`cartguard.pii.anonymizer`).
"""

from __future__ import annotations

from collections.abc import Iterable

from cartguard.pii.recognizers.base import Context
from cartguard.pii.registry import recognizers
from cartguard.pii.spans import Span, resolve_overlaps
from cartguard.pii.tokens import protected_regions

#: Labels a caller may announce as expected by the dialogue.
EXPECTABLE = frozenset({"OTP_CODE", "PASSWORD"})


def detect(text: str, expect: Iterable[str] = ()) -> list[Span]:
    """Return non-overlapping findings in ``text``, sorted by position.

    ``expect`` names what the dialogue is waiting for (``{"OTP_CODE"}`` after the bot asked
    for a code, ``{"PASSWORD"}`` after it asked for a password): that widens what counts as
    such a secret. Vault tokens, card masks, placeholders and shop ids are never reported,
    so detecting on already-redacted text finds nothing new.
    """
    if not text:
        return []
    expected = frozenset(expect) & EXPECTABLE
    ctx = Context(text, expected)
    found: list[Span] = []
    for recognizer in recognizers():
        if recognizer.applies(ctx):
            found.extend(recognizer.find(ctx))
    if not found:
        return []
    regions = protected_regions(text)
    if regions:
        found = [s for s in found if not any(s.overlaps(a, b) for a, b in regions)]
    return resolve_overlaps(found)
