"""SECURE_LINK: the token of a secure-form link (``/s/<43 url-safe chars>``).

Not personal data, but a bearer secret for up to 10 minutes: anyone holding an unused link
can open the form. Bot messages carry these links, so without this recognizer they would sit
in the tracker store, the broker, Rasa's debug logs and ticket transcripts, where staff could
read and use them. The path prefix stays so a transcript still shows that a link was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_LINK_TOKEN = re.compile(r"(?<=/s/)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


class SecureLinkRecognizer(Recognizer):
    label = "SECURE_LINK"
    hint = re.compile(r"/s/")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _LINK_TOKEN.finditer(ctx.text):
            yield self.span(match.start(), match.end(), 1.0)
