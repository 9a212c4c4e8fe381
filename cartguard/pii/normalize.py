"""Normalizing text before detection, with a map back to the characters the shopper typed.

People paste numbers with full-width digits, non-breaking or thin spaces, typographic dashes
and invisible characters (zero-width spaces, soft hyphens, direction marks). Recognizers see a
normalized copy instead:

* every character goes through Unicode NFKC (full-width and other compatibility digits and
  letters become their plain forms), and any other decimal digit (Arabic-Indic, Devanagari...)
  becomes its ASCII digit;
* every kind of space becomes " ", every kind of dash or minus becomes "-", tabs become " ";
* format characters (Unicode category Cf) and control characters other than line breaks are
  dropped, so they cannot split a number into pieces that each look harmless.

:class:`Normalized` keeps, for every character of the copy, the range of original characters
it came from; a finding in the copy maps back to a range of the original that covers the whole
value, invisible characters inside it included.

The common case (ASCII text without control characters) is returned as is, without a map.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_UNUSUAL = re.compile(r"[^\x20-\x7e\n]")
_LINE_BREAKS = frozenset("\n\r\u2028\u2029\x85")


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """What one character becomes in the normalized copy ("" = dropped)."""
    if char in _LINE_BREAKS:
        return "\n"
    category = unicodedata.category(char)
    if category == "Cf" or category == "Cc":
        return " " if char in "\t\v\f" else ""
    if category == "Zs":
        return " "
    if category == "Pd" or char in "\u2212\u2796\ufe63\uff0d":
        return "-"
    if category == "Nd":
        return str(unicodedata.decimal(char))
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and unicodedata.category(folded) == "Nd":
        return str(unicodedata.decimal(folded))
    return folded


@dataclass(frozen=True)
class Normalized:
    """The normalized ``text`` and, unless it equals the original, where each char came from."""

    original: str
    text: str
    #: ``starts[i]``/``ends[i]``: original range of normalized char ``i`` (None: identity)
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The range of the original text that normalized ``[start, end)`` came from."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            position = self.starts[start] if start < len(self.starts) else len(self.original)
            return position, position
        return self.starts[start], self.ends[end - 1]


def normalize(text: str) -> Normalized:
    """The copy recognizers look at; see the module docstring for what changes."""
    if not _UNUSUAL.search(text):
        return Normalized(text, text)
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    # Plain runs are copied whole (C speed); only the unusual characters are looked at.
    for match in _UNUSUAL.finditer(text):
        index = match.start()
        if index > position:
            pieces.append(text[position:index])
            starts.extend(range(position, index))
            ends.extend(range(position + 1, index + 1))
        folded = _fold(match.group())
        if folded:
            pieces.append(folded)
            starts.extend([index] * len(folded))
            ends.extend([index + 1] * len(folded))
        position = index + 1
    if position < len(text):
        pieces.append(text[position:])
        starts.extend(range(position, len(text)))
        ends.extend(range(position + 1, len(text) + 1))
    return Normalized(text, "".join(pieces), tuple(starts), tuple(ends))
