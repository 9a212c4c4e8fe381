"""PASSWORD: a secret after "my password is ..." or, when one is expected, the whole message.

Without a cue there is no telling a password from a word, so unprompted detection needs an
explicit cue followed by something that is not an ordinary word ("my password is not
working" is a complaint, not a secret). When the dialogue asks for a password the whole
message is the secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_CUE = re.compile(
    r"\b(?:pass(?:word|wd|code|phrase)|pwd|pin(?: code)?)\b(?:\s+(?:is|was|would be)\b|\s*[:=])\s*"
    r"[\"'“]?(?P<secret>[^\s\"'”]+)",
    re.IGNORECASE,
)
_ORDINARY = frozenset(
    """not wrong incorrect invalid working expired blocked locked too the a an my it is correct
    right reset changed forgotten forgot lost same different weak strong still also now being
    no yes ok okay fine new old empty missing required needed set there here what which that
    this please""".split()
)


class PasswordRecognizer(Recognizer):
    label = "PASSWORD"
    hint = re.compile(r"pass|pwd|pin", re.IGNORECASE)

    def applies(self, ctx: Context) -> bool:
        return self.label in ctx.expect or super().applies(ctx)

    def find(self, ctx: Context) -> Iterator[Span]:
        found = False
        for match in _CUE.finditer(ctx.text):
            secret = match.group("secret").rstrip(".,;!?")
            if not secret or secret.lower() in _ORDINARY:
                continue
            found = True
            start = match.start("secret")
            yield self.span(start, start + len(secret), 0.9)
        if not found and self.label in ctx.expect:
            stripped = ctx.text.strip()
            if stripped:
                start = ctx.text.index(stripped)
                yield self.span(start, start + len(stripped), 0.95)
