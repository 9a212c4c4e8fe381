"""STREET_ADDRESS: house number + street name + street type, and a few other fixed shapes.

Covered: "12 Baker Street", "4077 Oak Ridge Road, Apt. 5", "Hauptstrasse 5",
"Rue de Rivoli 10", US military mail ("PSC 1234, Box 5678, APO AE 09001"), and the rest
of a line after "my address is" / "I live at" / "ship it to" when it contains a number.
Not covered: addresses without a house number or street type, free-form rural addresses.
A shopper who needs to give an address is sent to the secure form anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span

_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Close|Square|Sq|Parkway|Pkwy|Highway|Hwy|Crescent|Circle|Trail|Row|Walk"
    r"|Gardens|Grove|Mews|Green|Plaza|Alley|Loop|Pike|Route|Expressway)"
)
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?\s*#?\w{1,6})*"
_CITY_ZIP = r"(?:,?\s*[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3},?\s+[A-Z]{2}\s+\d{5}(?:-\d{4})?)?"

_NUMBER_FIRST = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]?(?:[-/]\d{1,4})?,?\s+(?:[^\W\d_][\w'.-]*\s+){0,4}?"
    + _SUFFIX
    + r"\.?(?![\w])"
    + _UNIT
    + _CITY_ZIP
)
_NAME_FIRST = re.compile(
    r"\b[^\W\d_][\w'-]*(?:strasse|straße|str\.|gasse|weg|platz|allee|vej|gatan|gata|katu|tie"
    r"|laan|straat|gade|veien)\s+\d{1,5}[a-z]?\b"
    r"|\b(?:Rue|Via|Viale|Calle|Avenida|Rua|Avenue|Boulevard|Plaza|Piazza|Corso)\s+"
    r"(?:[\w'-]+\s+){1,4}?\d{1,5}[a-z]?\b",
    re.IGNORECASE,
)
_MILITARY = re.compile(
    r"\b(?:PSC|Unit|CMR|USNS|USNV|USS|USCGC)\s+\w+(?:,\s*Box\s+\d+)?\s*\n?\s*"
    r"(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5}\b",
    re.IGNORECASE,
)
_CUE = re.compile(
    r"\b(?:my (?:home |new |shipping |delivery |billing )?address is|i live at|i live on"
    r"|ship (?:it |them |this |the order )?to|deliver (?:it |them )?to|send (?:it |them )?to"
    r"|address\s*:)\s*(?P<rest>[^\n.;!?]{0,160}?\d[^\n;!?]{0,160})",
    re.IGNORECASE,
)


class StreetAddressRecognizer(Recognizer):
    label = "STREET_ADDRESS"
    hint = re.compile(r"\d")

    def find(self, ctx: Context) -> Iterator[Span]:
        text = ctx.text
        for pattern, score in ((_NUMBER_FIRST, 0.6), (_NAME_FIRST, 0.6), (_MILITARY, 0.7)):
            for match in pattern.finditer(text):
                yield self.span(match.start(), match.end(), score)
        for match in _CUE.finditer(text):
            rest = match.group("rest").rstrip(" ,")
            if 4 <= len(rest) <= 160:
                yield self.span(match.start("rest"), match.start("rest") + len(rest), 0.55)
