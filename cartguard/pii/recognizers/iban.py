"""IBAN_CODE: country code, two check digits and the account number, mod-97 validated.

Accepts the compact form and the printed form in groups of four, in any case. The run of
characters a pattern grabs may continue into the next word ("... 3000 please" looks like one
more group), so the candidate is cut to the country's registered length before checking.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span
from cartguard.pii.validators import IBAN_LENGTHS, iban_checksum_ok

_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?"
    r"(?![A-Za-z0-9])"
)


class IbanRecognizer(Recognizer):
    label = "IBAN_CODE"
    hint = re.compile(r"[A-Za-z]{2}\d{2}")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _CANDIDATE.finditer(ctx.text):
            raw = match.group()
            expected = IBAN_LENGTHS.get(raw[:2].upper())
            if expected is None:
                continue
            positions = [i for i, ch in enumerate(raw) if ch != " "]
            if len(positions) < expected:
                continue
            compact = "".join(raw[i] for i in positions[:expected])
            if iban_checksum_ok(compact):
                yield self.span(match.start(), match.start() + positions[expected - 1] + 1, 1.0)
