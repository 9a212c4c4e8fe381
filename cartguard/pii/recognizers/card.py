"""CREDIT_CARD: 12-19 digits, optionally grouped by spaces or dashes, Luhn-checked.

Why 12: Maestro cards can be 12 digits long; to keep precision those must also start with a
Maestro issuer prefix. Grouped numbers must look like a printed card (a first group of four,
then groups of 3-6, one kind of separator), so that a phone number followed by another number
is not read as a card. When a run of groups fails, shorter runs inside it are tried: a card
followed by its security code ("4242 4242 4242 4242 123") is still found.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.registry import register
from cartguard.pii.spans import Span
from cartguard.pii.validators import luhn_valid

_CANDIDATE = re.compile(r"(?<![\w+./-])\d+(?:[ -]\d+)*(?![\w/]|[.-]\d)")
_MAESTRO_12 = ("50", "56", "57", "58", "6", "0604")


def _card_number_ok(digits: str) -> bool:
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    if len(digits) == 12:
        return digits.startswith(_MAESTRO_12)
    return digits[0] != "0" or digits.startswith("0604")


def _grouping_ok(groups: list[str], separators: set[str]) -> bool:
    if len(groups) == 1:
        return True
    if len(separators) != 1:
        return False
    return len(groups[0]) == 4 and all(3 <= len(g) <= 6 for g in groups[1:])


@register
class CreditCardRecognizer(Recognizer):
    label = "CREDIT_CARD"
    hint = re.compile(r"\d{4}")

    def find(self, ctx: Context) -> Iterator[Span]:
        for match in _CANDIDATE.finditer(ctx.text):
            yield from self._best_run(match.group(), match.start())

    def _best_run(self, chunk: str, offset: int) -> Iterator[Span]:
        parts = re.split(r"([ -])", chunk)
        groups = parts[0::2]
        seps = parts[1::2]
        starts: list[int] = []
        position = 0
        for index, group in enumerate(groups):
            starts.append(position)
            position += len(group) + (1 if index < len(seps) else 0)
        n = len(groups)
        # Longest valid run of consecutive groups first; then keep scanning after it.
        index = 0
        while index < n:
            found = None
            for stop in range(n, index, -1):
                run = groups[index:stop]
                digits = "".join(run)
                if len(digits) < 12:
                    break
                if len(digits) > 19:
                    continue
                if _grouping_ok(run, set(seps[index : stop - 1])) and _card_number_ok(digits):
                    found = stop
                    break
            if found is None:
                index += 1
                continue
            start = offset + starts[index]
            end = offset + starts[found - 1] + len(groups[found - 1])
            yield self.span(start, end, 1.0)
            index = found
