"""PHONE_NUMBER: found by format with phonenumbers' matcher; cue words only add evidence.

Candidates are short runs of phone material (digits, parentheses, single spaces, dots or
dashes between them, an optional ``+`` or ``00`` international prefix and an extension), at
most about 30 characters, found in one linear pass; a run glued to more digits on either side
is part of a longer number (a card, a flood of digits) and is skipped without further work.
Each remaining candidate goes to ``phonenumbers.PhoneNumberMatcher`` with
:data:`DEFAULT_REGION` for national formats; numbers written with ``+`` or ``00`` are read by
their own country's rules.

Evidence and score (findings below 0.5 are dropped):

* a number phonenumbers calls *valid* (its numbering plan accepts it): 0.8;
* a *possible* number (right length, unassigned range) written like a phone number (a ``+``
  prefix, or 10+ digits in groups): 0.55 (after ``00`` only valid numbers count);
* with a cue word nearby ("phone", "call", "mobile", "fax", "number" ...): +0.1 to the above;
  a possible number of any other shape (seven-digit local, ten digits in one block): 0.6; and
  a number written in the national format of one of :data:`OTHER_REGIONS` (without ``+``
  there is no telling its country, so this needs the cue): 0.7.

Dates, times, amounts ("131000.00") and zip codes are not phone numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

#: The region whose national formats are recognised without an international prefix or cue.
DEFAULT_REGION = "US"
#: National formats also recognised next to a cue word (Presidio's default phone regions).
OTHER_REGIONS = ("GB", "DE", "FR", "IL", "IN", "CA", "BR")

_CANDIDATE = re.compile(
    r"(?:\+|\b00(?=[1-9]))?[(\d](?:[\d()]|[ .-]{1,2}(?=[(\d])){5,28}"
    r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?",
    re.IGNORECASE,
)
_GLUED_BEFORE = re.compile(r"[\d+][ ./-]?\Z|[^\W\d_]\Z")
_GLUED_AFTER = re.compile(r"^[ ./-]?\d|^[^\W\d_]")
_DATE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$")
_DECIMAL = re.compile(r"^\d+[.,]\d{1,2}$")  # an amount: "131000.00"
_TIME_AFTER = re.compile(r"^:\d\d")
_CUE = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|cellphone|fax|call|ring|dial|text|sms|whatsapp"
    r"|landline|number|contact|reach)\b",
    re.IGNORECASE,
)
_NOT_A_PHONE_BEFORE = re.compile(r"(?:zip|postal|post code|postcode|plz)\W{0,4}(?:code\W{0,4})?\Z")


class PhoneRecognizer(Recognizer):
    label = "PHONE_NUMBER"
    hint = re.compile(r"\d[\d ()./-]{5,}\d")

    def find(self, ctx: Context) -> Iterator[Span]:
        text = ctx.text
        for match in _CANDIDATE.finditer(text):
            start, end = match.span()
            digits = sum(ch.isdigit() for ch in match.group())
            if digits < 7 or (digits > 15 and "x" not in match.group().lower()):
                continue  # E.164 numbers have at most 15 digits (plus an extension)
            if _GLUED_BEFORE.search(text[max(0, start - 2) : start]) or _GLUED_AFTER.match(
                text[end : end + 2]
            ):
                continue
            yield from self._check(ctx, match.group(), start)

    def _check(self, ctx: Context, candidate: str, offset: int) -> Iterator[Span]:
        # "00" is the international prefix almost everywhere but in North America; give the
        # matcher "+" instead, keeping the length so offsets stay the same.
        shown = " +" + candidate[2:] if candidate.startswith("00") else candidate
        cue = _has_cue(ctx, offset, offset + len(candidate))
        valid_here = False
        for found in PhoneNumberMatcher(shown, DEFAULT_REGION, leniency=Leniency.POSSIBLE):
            valid_here = valid_here or phonenumbers.is_valid_number(found.number)
            start = offset + (0 if shown is not candidate and found.start == 1 else found.start)
            end = offset + found.end
            score = _score(ctx, found, start, end, cue)
            if score >= 0.5:
                yield self.span(start, end, score)
        if cue and not valid_here and not shown.lstrip().startswith("+"):
            yield from self._other_regions(ctx, candidate, offset)

    def _other_regions(self, ctx: Context, candidate: str, offset: int) -> Iterator[Span]:
        for region in OTHER_REGIONS:
            matches = list(PhoneNumberMatcher(candidate, region, leniency=Leniency.VALID))
            for found in matches:
                start, end = offset + found.start, offset + found.end
                if not _not_a_phone(ctx, found.raw_string, start, end):
                    yield self.span(start, end, 0.7)
            if matches:
                return


def _has_cue(ctx: Context, start: int, end: int) -> bool:
    return bool(_CUE.search(ctx.window_before(start, 30)) or _CUE.search(ctx.window_after(end)))


def _not_a_phone(ctx: Context, raw: str, start: int, end: int) -> bool:
    return bool(
        _DATE.match(raw.strip())
        or _DECIMAL.match(raw.strip())
        or _TIME_AFTER.match(ctx.text[end : end + 3])
        or _NOT_A_PHONE_BEFORE.search(ctx.window_before(start, 25))
    )


def _score(
    ctx: Context, found: phonenumbers.PhoneNumberMatch, start: int, end: int, cue: bool
) -> float:
    raw = found.raw_string.strip()
    if _not_a_phone(ctx, raw, start, end):
        return 0.0
    digits = sum(ch.isdigit() for ch in raw)
    bonus = 0.1 if cue else 0.0
    if phonenumbers.is_valid_number(found.number):
        return 0.8 + bonus
    if ctx.text[start : start + 2] == "00":
        return 0.0  # "00" + a possible number: as likely a parcel or reference number
    if raw.startswith("+") or (digits >= 10 and digits != len(raw)):
        return 0.55 + bonus
    return 0.6 if cue else 0.0
