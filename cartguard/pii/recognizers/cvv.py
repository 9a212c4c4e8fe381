"""CVV: a card security code after its cue ("cvv 123", "security code: 4321").

Not a Presidio label, but the one piece of card data that may never be stored anywhere, so a
shopper who types it gets it removed before anything is persisted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_CVV = re.compile(
    r"\b(?:cvv2?|cvc2?|cid|csc|security code|card code|card verification(?: code| value)?)"
    r"\b\W{0,4}(?:is\W{1,3})?(?P<code>\d{3,4})(?!\d)",
    re.IGNORECASE,
)


class CvvRecognizer(Recognizer):
    label = "CVV"
    hint = re.compile(r"cvv|cvc|cid|csc|code|verification", re.IGNORECASE)

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _CVV.finditer(ctx.text):
            yield self.span(match.start("code"), match.end("code"), 0.97)
