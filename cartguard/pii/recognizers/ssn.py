"""US_SSN: AAA-GG-SSSS with SSA structure rules; a bare nine-digit run only next to a cue."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span
from cartguard.pii.validators import ssn_valid

_SSN = re.compile(r"(?<![\w-])(\d{3})([- .]?)(\d{2})\2(\d{4})(?![\w-]|\.\d)")
_CUE = re.compile(r"\b(?:ssn|social security|social sec|ss#|ss #)", re.IGNORECASE)


class UsSsnRecognizer(Recognizer):
    label = "US_SSN"
    hint = re.compile(r"\d{3}[- .]?\d{2}[- .]?\d{4}")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _SSN.finditer(ctx.text):
            area, sep, group, serial = match.groups()
            if not ssn_valid(area, group, serial):
                continue
            cue = _CUE.search(ctx.window_before(match.start(), 50)) is not None
            if sep == "-" or cue:
                yield self.span(match.start(), match.end(), 0.95 if cue else 0.85)
