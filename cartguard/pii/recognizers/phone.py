"""PHONE_NUMBER: international and national formats, checked with the phonenumbers library.

Evidence, strongest first: an international prefix (``+44``, ``0044``) that phonenumbers
accepts; a number valid in one of the regions our shoppers come from; or a phone-shaped
number next to a word that announces one ("call me on", "Phone:", "... fax"). A bare run of
digits with none of these stays text: order totals, zip codes and house numbers are not
phone numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.registry import register
from cartguard.pii.spans import Span

_CANDIDATE = re.compile(
    r"""
    (?<![\w+*/.:-])(?<!\d,)
    (?:\+\d{1,3}[ .-]?|\b00\d{1,3}[ .-]?)?
    (?:\(0\)[ .-]?)?
    (?:\(\d{1,5}\)[ .-]?)?
    \d{1,10}(?:[ .-]\d{1,10}){0,6}
    (?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?
    (?![\w*/]|[.-]\d)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6}$", re.IGNORECASE)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{2}|\d{4}))$")
_CUE_BEFORE = re.compile(
    r"(?:phone|tel|telephone|mobile|cell|cellphone|fax|desk|office|landline|whatsapp|sms|"
    r"text me|call|ring|dial|reach me|number|no\.|#|contact|registered|"
    r"messages to|answering at|me at|me on|us at|us on)\W{0,4}$"
)
_NOT_A_PHONE_BEFORE = re.compile(
    r"(?:zip|postal|post code|postcode|cep|plz)\W{0,4}(?:code\W{0,4})?(?:is\W+)?$"
)
_TIME_AFTER = re.compile(r"^:\d\d")
# A house number: followed by a street name, or after "Apt." / "lives at". Without a phone
# cue, such a digit run is part of an address, however valid it is as a phone number.
_ADDRESS_AFTER = re.compile(r"^ [^\W\d_]")
_ADDRESS_BEFORE = re.compile(
    r"(?:apt|apartment|suite|unit|box|flat|located at|lives at|is at|at)\W{0,3}$"
)
_CUE_AFTER = re.compile(r"^\W{0,3}(?:office|fax|mobile|cell|home|work|phone|tel)\b")
_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "BR", "IL", "IT", "ES", "NL", "CH", "SE")


def _digits(value: str) -> str:
    return "".join(ch for ch in _EXTENSION.sub("", value) if ch.isdigit())


def _international_ok(value: str) -> bool:
    number = value if value.startswith("+") else "+" + value[2:]
    try:
        parsed = phonenumbers.parse(_EXTENSION.sub("", number), None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(parsed)


def _valid_in_some_region(value: str) -> bool:
    national = _EXTENSION.sub("", value)
    for region in _REGIONS:
        try:
            parsed = phonenumbers.parse(national, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


@register
class PhoneRecognizer(Recognizer):
    label = "PHONE_NUMBER"
    hint = re.compile(r"\d[\d .()-]{5,}\d")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _CANDIDATE.finditer(ctx.text):
            value = match.group()
            score = self._score(ctx, value, match.start(), match.end())
            if score:
                yield self.span(match.start(), match.end(), score)

    def _score(self, ctx: Context, value: str, start: int, end: int) -> float:
        digits = _digits(value)
        if not 7 <= len(digits) <= 15 or _DATE.match(value):
            return 0.0
        if _TIME_AFTER.match(ctx.text[end : end + 3]) or _NOT_A_PHONE_BEFORE.search(
            ctx.window_before(start, 25)
        ):
            return 0.0
        grouped = len(digits) != len(value)
        if value.startswith(("+", "00")) and _international_ok(value):
            return 0.9
        cue = (
            _CUE_BEFORE.search(ctx.window_before(start, 30)) is not None
            or _CUE_AFTER.search(ctx.window_after(end)) is not None
        )
        if cue:
            return 0.75
        if _ADDRESS_AFTER.match(ctx.text[end : end + 2]) or _ADDRESS_BEFORE.search(
            ctx.window_before(start, 20)
        ):
            return 0.0
        if (grouped or len(digits) >= 10) and _valid_in_some_region(value):
            return 0.6
        return 0.0
