"""OTP_CODE: a one-time code, recognised only while the conversation is waiting for one.

A six-digit number on its own may be a zip code, a quantity or a reference, so nothing is
reported unless the caller says a code is expected (``expect={"OTP_CODE"}``: the channel edge
asks the shop database whether a step-up is pending in this conversation; the tracker store
reads ``requested_slot``). Then any six-digit run standing alone counts, whatever punctuation
or letters surround it (``code:123456``, ``#123456``, ``+123456``, ``code.123456``), and so do
codes of 6-8 digits and six digits split once by a space or dash ("123 456"). Digits that are
part of a longer number (a decimal, a phone number, a card) are not a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_EXPECTED = re.compile(
    r"(?<!\d)(?<!\d[ .,-])(?:\d{6,8}|\d{3}[ -]\d{3}|\d{4}[ -]\d{4})(?![ .,-]?\d)"
)


class OtpRecognizer(Recognizer):
    label = "OTP_CODE"
    hint = re.compile(r"\d{3}")

    def applies(self, ctx: Context) -> bool:
        return self.label in ctx.expect and super().applies(ctx)

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _EXPECTED.finditer(ctx.text):
            yield self.span(match.start(), match.end(), 0.95)
