"""PERSON: a name that follows a cue ("my name is ...", "Name:", "Mr. ...", "I am ...").

Rules cannot find a bare name in running text; that needs a statistical model we do not
ship. What they can do reliably is catch a shopper introducing themselves, form-like
"Name: ..." lines and titles. See docs/pii.md for what is and is not covered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.pipeline import CUES
from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.registry import register
from cartguard.pii.spans import Span

_STOP = frozenset(
    """and but or i im i'm from here calling speaking with the a an my your our order orders
    please thanks thank is to at of in on for not just also looking trying writing contacting
    asking interested sorry happy unable having back new still very so really glad here there
    it this that what who how why when where can could would will shall should may might
    going about customer account card phone email address number none n/a na unknown""".split()
)
_MAX_NAME_TOKENS = 4
_INITIAL = re.compile(r"^[^\W\d_]\.$")


@register
class PersonRecognizer(Recognizer):
    label = "PERSON"
    hint = re.compile(
        r"name|\bi\s?'?a?m\b|\bthis is|\bit's|\bit is|\b(?:mrs?|ms|miss|mx|dr|prof|sir|madam)\b"
        r"|regards|sincerely|thanks,|cheers|call me",
        re.IGNORECASE,
    )

    def find(self, ctx: Context) -> Iterator[Span]:
        doc = ctx.doc
        for cue in doc.spans[CUES]:
            kind = cue.label_
            names = self._name_tokens(doc, cue.end, lenient=kind == "NAME_STRONG")
            needed = 2 if kind == "NAME_WEAK" else 1
            if sum(1 for t in names if len(t.text) > 1) < needed:
                continue
            score = {"NAME_STRONG": 0.85, "NAME_TITLE": 0.7}.get(kind, 0.55)
            yield self.span(names[0].idx, names[-1].idx + len(names[-1].text), score)

    @staticmethod
    def _name_tokens(doc, index: int, *, lenient: bool) -> list:  # noqa: ANN001 - spaCy Doc
        names: list = []
        while index < len(doc) and len(names) < _MAX_NAME_TOKENS:
            token = doc[index]
            if token.is_space:
                if names:
                    break
                index += 1
                continue
            text = token.text
            if (
                token.is_alpha
                and token.lower_ not in _STOP
                and (
                    token.is_title
                    or token.is_upper
                    or (lenient and not names and len(text) > 1)
                    or (lenient and names and token.is_lower and names[0].is_lower)
                )
            ):
                names.append(token)
            elif names and ((text == "." and len(names[-1].text) == 1) or _INITIAL.match(text)):
                names.append(token)  # an initial: "Chise T. Horiguchi"
            elif text in {"-", "'"} and names and not names[-1].whitespace_:
                names.append(token)  # "Anne-Marie", "O'Brien"
            else:
                break
            index += 1
        while names and not names[-1].is_alpha and not _INITIAL.match(names[-1].text):
            names.pop()
        return names
