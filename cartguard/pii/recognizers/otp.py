"""OTP_CODE: one-time codes. A bare six-digit number always counts; more shapes when expected.

Six digits standing alone are what an authenticator app shows, and a channel cannot always
know whether the bot just asked for one, so they are treated as a code everywhere (order and
invoice ids carry a prefix and are protected). When the dialogue says a code is expected,
6-8 digits, also split once by a space or dash ("123 456"), count with high confidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.registry import register
from cartguard.pii.spans import Span

_BARE_SIX = re.compile(r"(?<![\w*/.,:#+-])\d{6}(?![\w*/]|[.,:-]\d)")
_EXPECTED = re.compile(r"(?<![\w*/.,:#+-])(?:\d{6,8}|\d{3,4}[ -]\d{3,4})(?![\w*/]|[.,:-]\d| \d)")


@register
class OtpRecognizer(Recognizer):
    label = "OTP_CODE"
    hint = re.compile(r"\d{3}")

    def find(self, ctx: Context) -> Iterator[Span]:
        if self.label in ctx.expect:
            for match in _EXPECTED.finditer(ctx.text):
                if 6 <= sum(ch.isdigit() for ch in match.group()) <= 8:
                    yield self.span(match.start(), match.end(), 0.95)
            return
        for match in _BARE_SIX.finditer(ctx.text):
            yield self.span(match.start(), match.end(), 0.5)
