"""What already-redacted text looks like, so that a second redaction pass leaves it alone.

Vault tokens, card masks and ``<LABEL>`` placeholders are produced by this package; shop
identifiers (order, invoice, refund and ticket ids) are public. Findings that overlap any of
these are dropped, which makes :func:`cartguard.pii.redact` idempotent and keeps an order id
like ``CG-482913`` from being mistaken for a one-time code.
"""

from __future__ import annotations

import re

from cartguard.shop.ids import INVOICE_ID_RE, ORDER_ID_RE

#: A vault token in running text: ``tok_<kind>_<at least 22 URL-safe random characters>``.
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])tok_[a-z]{2,10}_[A-Za-z0-9_-]{22,64}(?![A-Za-z0-9_-])")

#: A card mask as produced by :func:`cartguard.pii.validators.card_mask`.
CARD_MASK_RE = re.compile(r"(?<![\d*])\d{0,6}\*{4,}\d{0,4}(?![\d*])")

#: A placeholder left by :func:`cartguard.pii.redact`, e.g. ``<EMAIL_ADDRESS>``.
PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z_]{1,30}>")

_OTHER_IDS_RE = re.compile(r"\b(?:RF|TK)-\d{5,6}\b", re.IGNORECASE)

_PROTECTED = (TOKEN_RE, CARD_MASK_RE, PLACEHOLDER_RE, ORDER_ID_RE, INVOICE_ID_RE, _OTHER_IDS_RE)

# Cheap test before running the regexes above: every protected form contains one of these.
_PROTECTED_HINT = re.compile(r"tok_|\*\*|<[A-Z]|CG-?\d|INV-?\d|RF-|TK-", re.IGNORECASE)


def protected_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges that must never be redacted (again)."""
    if not _PROTECTED_HINT.search(text):
        return []
    regions: list[tuple[int, int]] = []
    for pattern in _PROTECTED:
        regions.extend(m.span() for m in pattern.finditer(text))
    return regions
