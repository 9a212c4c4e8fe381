"""EMAIL_ADDRESS: RFC 5322 "dot-atom" addresses, plus tags included, with a sane domain."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_EMAIL = re.compile(
    r"(?<![\w.+%-])[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])"
)


class EmailRecognizer(Recognizer):
    label = "EMAIL_ADDRESS"
    hint = re.compile("@")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _EMAIL.finditer(ctx.text):
            local = match.group().split("@", 1)[0]
            if len(local) <= 64:
                yield self.span(match.start(), match.end(), 1.0)
