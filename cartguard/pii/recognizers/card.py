"""CREDIT_CARD: 13-19 digits, in any grouping, with an issuer prefix for that length and Luhn.

How people paste card numbers varies: groups separated by spaces, dots, slashes, underscores,
dashes or two spaces, glued to a ``#`` or a letter. So candidates are runs of digit groups
joined by short separator runs (1-3 of `` ._/\\|-``; the text is already normalized, so
non-breaking spaces and typographic dashes are plain here), found in one linear pass.

Inside a run, windows of consecutive whole groups holding 13-19 digits are checked; nothing
enumerates group combinations, so the work is linear in the text (at most 19 windows per
group, each checked in constant time with prefix sums). A window that starts inside a run must
not simply continue the run's grouping (a window in the middle of a 22-digit parcel number
printed in fours is not a card), unless a card ended right before it (two cards pasted one
after the other). When several windows from one start pass, the longest wins:
no digit of a valid number is left in clear (a security code typed right after a card may be
swallowed; the mask then hides it, see :func:`cartguard.pii.validators.card_mask`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import accumulate

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span
from cartguard.pii.validators import card_brand_ok

_RUN = re.compile(r"\d+(?:[ ._/\\|-]{1,3}\d+)*")
_GROUP = re.compile(r"\d+")
_MIN, _MAX = 13, 19
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d with its digits summed
_ISSUER_DIGITS = "1234568"  # first digits of the issuer ranges in validators._ISSUERS


def _printed_shape(lengths: list[int]) -> bool:
    """Groupings cards are printed in: one block, fours, 4-6-5 (Amex), 4-6-4 (Diners)."""
    if len(lengths) == 1:
        return True
    if all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4:
        return True
    return lengths in ([4, 6, 5], [4, 6, 4])


class CreditCardRecognizer(Recognizer):
    label = "CREDIT_CARD"
    hint = re.compile(r"\d")

    def find(self, ctx: Context) -> Iterator[Span]:
        for run in _RUN.finditer(ctx.text):
            if run.end() - run.start() >= _MIN:
                yield from self._windows(run.group(), run.start())

    def _windows(self, chunk: str, offset: int) -> Iterator[Span]:
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(chunk)]
        if not any(b - a <= _MAX and chunk[a] in _ISSUER_DIGITS for a, b in groups):
            return
        digits = "".join(chunk[a:b] for a, b in groups)
        if len(digits) < _MIN:
            return
        luhn_ok = _luhn_checker(digits)
        bounds: list[int] = [0]  # digit offset at which each group starts
        for a, b in groups:
            bounds.append(bounds[-1] + b - a)
        seps = [chunk[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
        index, count, card_ended = 0, len(groups), -1
        while index < count:
            fresh_start = index == card_ended  # right after a card: a new number may start
            best = self._best_window(index, count, bounds, digits, seps, luhn_ok, fresh_start)
            if best is None:
                index += 1
                continue
            lengths = [bounds[k + 1] - bounds[k] for k in range(index, best)]
            start, end = offset + groups[index][0], offset + groups[best - 1][1]
            yield self.span(start, end, _score(lengths))
            index = card_ended = best

    @staticmethod
    def _best_window(
        index: int,
        count: int,
        bounds: list[int],
        digits: str,
        seps: list[str],
        luhn_ok: Callable[[int, int], bool],
        fresh_start: bool,
    ) -> int | None:
        first = bounds[index]
        if digits[first] not in _ISSUER_DIGITS:
            return None
        best: int | None = None
        for stop in range(index + 1, count + 1):
            length = bounds[stop] - first
            if length > _MAX:
                break
            if length < _MIN:
                continue
            if (
                index > 0
                and not fresh_start
                and stop - index > 1
                and _continues_grouping(index, bounds, seps)
            ):
                return None
            candidate = digits[first : first + length]
            if not card_brand_ok(candidate) or not luhn_ok(first, first + length):
                continue
            best = stop  # the longest passing window: no digit of a valid number stays in clear
        return best


def _continues_grouping(index: int, bounds: list[int], seps: list[str]) -> bool:
    """A window starting at group ``index`` that just carries on the grouping before it."""
    before = bounds[index] - bounds[index - 1]
    own = bounds[index + 1] - bounds[index]
    return seps[index - 1] == seps[index] and before == own


def _luhn_checker(digits: str) -> Callable[[int, int], bool]:
    """An O(1) Luhn check of any slice of ``digits``, from prefix sums built in C loops."""
    plain = list(map(int, digits))
    doubled = [_DOUBLED[v] for v in plain]
    sums = []
    for values in (plain, doubled):
        for parity in (0, 1):
            masked = values[:]
            masked[1 - parity :: 2] = [0] * len(masked[1 - parity :: 2])
            sums.append(list(accumulate(masked, initial=0)))
    plain_even, plain_odd, doubled_even, doubled_odd = sums

    def luhn_ok(first: int, stop: int) -> bool:
        # The last digit is not doubled, the one before it is, and so on leftwards.
        if (stop - 1) & 1:
            total = plain_odd[stop] - plain_odd[first] + doubled_even[stop] - doubled_even[first]
        else:
            total = plain_even[stop] - plain_even[first] + doubled_odd[stop] - doubled_odd[first]
        return total % 10 == 0

    return luhn_ok


def _score(lengths: list[int]) -> float:
    """Printed-card groupings are certain; odd groupings (pasted, re-typed) slightly less."""
    return 1.0 if _printed_shape(lengths) else 0.9
