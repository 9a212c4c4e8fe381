"""PERSON: a name that follows a cue ("my name is ...", "Name:", "Mr. ...", "I am ...").

Rules cannot find a bare name in running text; that needs a statistical model we do not
ship. What they can do reliably is catch a shopper introducing themselves, form-like
"Name: ..." lines and titles. See docs/pii.md for what is and is not covered.

The cues are regular expressions and the name after a cue is read token by token with a
small tokenizer of our own: a spaCy pipeline did the same job at about 1 ms per message, more
than everything else together, for the same findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_STOP = frozenset(
    """and but or i im i'm from here calling speaking with the a an my your our order orders
    please thanks thank is to at of in on for not just also looking trying writing contacting
    asking interested sorry happy unable having back new still very so really glad here there
    it this that what who how why when where can could would will shall should may might
    going about customer account card phone email address number none n/a na unknown""".split()
)
_MAX_NAME_TOKENS = 4
_APOSTROPHE = "['\u2019]"
# kind, pattern: the name is read right after the match
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (
            "STRONG",
            r"\b(?:(?:my|the|full)\s+)?(?:(?:full|first|last|legal)\s+)?names?"
            rf"(?:\s+(?:is|be)\b|{_APOSTROPHE}s\b)",
        ),
        ("STRONG", r"\b(?:name|surname|customer|cardholder)\s*:"),
        ("STRONG", r"\bcall\s+me\b"),
        ("WEAK", rf"\bi(?:\s+am\b|{_APOSTROPHE}m\b|\s+m\b)"),
        ("WEAK", rf"\b(?:this|it)(?:\s+is\b|{_APOSTROPHE}s\b)"),
        ("WEAK", r"\b(?:regards|sincerely|thanks|cheers)\s*,"),
        ("TITLE", r"\b(?:mr|mrs|ms|miss|mx|dr|prof|sir|madam)\b\.?"),
    )
)
_SCORES = {"STRONG": 0.85, "TITLE": 0.7, "WEAK": 0.55}
_TOKEN = re.compile(r"(\s*)([^\W\d_]+|\S)")


class PersonRecognizer(Recognizer):
    label = "PERSON"
    hint = re.compile(
        r"name|\bi\s?'?a?m\b|\bthis is|\bit's|\bit is|\b(?:mrs?|ms|miss|mx|dr|prof|sir|madam)\b"
        r"|regards|sincerely|thanks,|cheers|call me",
        re.IGNORECASE,
    )

    def find(self, ctx: Context) -> Iterator[Span]:
        text = ctx.text
        for kind, cue in _CUES:
            for match in cue.finditer(text):
                names = _name_tokens(text, match.end(), lenient=kind == "STRONG")
                needed = 2 if kind == "WEAK" else 1
                if sum(1 for _, _, word in names if len(word) > 1) < needed:
                    continue
                yield self.span(names[0][0], names[-1][1], _SCORES[kind])


def _name_tokens(text: str, position: int, *, lenient: bool) -> list[tuple[int, int, str]]:
    """The tokens of a name starting at ``position``: capitalised words, initials, hyphens."""
    names: list[tuple[int, int, str]] = []
    while len(names) < _MAX_NAME_TOKENS:
        match = _TOKEN.match(text, position)
        if match is None:
            break
        space, word = match.group(1), match.group(2)
        if names and ("\n" in space or len(space) > 1):
            break  # a line break or a gap ends a name
        start = match.start(2)
        if (
            word.isalpha()
            and word.lower() not in _STOP
            and (
                word.istitle()
                or word.isupper()
                or (lenient and not names and len(word) > 1)
                or (lenient and names and word.islower() and names[0][2].islower())
            )
        ):
            names.append((start, match.end(2), word))
        elif names and not space and word == "." and len(names[-1][2]) == 1:
            names.append((start, match.end(2), word))  # an initial: "Ada B. Lovelace"
        elif names and not space and word in {"-", "'", "\u2019"}:
            names.append((start, match.end(2), word))  # "Anne-Marie", "O'Brien"
        else:
            break
        position = match.end()
    while (
        names
        and not names[-1][2].isalpha()
        and not (names[-1][2] == "." and len(names) > 1 and len(names[-2][2]) == 1)
    ):
        names.pop()
    return names
