"""Checksum and structure validators: what turns a digit pattern into a confident finding.

Pure functions on strings, no dependencies, so the vault, the recognizers and the tests share
one definition of "a valid card number" or "a valid IBAN".
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from cartguard.pii.normalize import normalize

_NON_DIGITS = re.compile(r"\D")


def digits_only(text: str) -> str:
    """The ASCII digits of ``text``, any Unicode digit (full-width, Arabic-Indic...) included."""
    found = _NON_DIGITS.sub("", text)
    if found.isascii():
        return found
    return "".join(str(unicodedata.decimal(ch)) for ch in found)


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (separators allowed) passes the Luhn check used by card numbers."""
    clean = digits_only(digits)
    if len(clean) < 2 or len(clean) != len(digits.replace(" ", "").replace("-", "")):
        return False
    total = 0
    for position, char in enumerate(reversed(clean)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# Issuer ranges (IIN prefixes) and the lengths each network issues: (first, last, lengths).
# Prefix ranges are compared on the first six digits. Sources: the networks' published IIN
# tables as summarised by ISO/IEC 7812 registries; UATP (1...) and Troy (9792) are left out
# on purpose: their prefixes collide with too many ordinary numbers for the few cards they add,
# and so are 12-digit Maestro numbers (too short to tell from parcel and reference numbers).
_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (400000, 499999, frozenset({13, 16, 19})),  # Visa
    (510000, 559999, frozenset({16})),  # Mastercard
    (222100, 272099, frozenset({16})),  # Mastercard 2-series
    (340000, 349999, frozenset({15})),  # American Express
    (370000, 379999, frozenset({15})),
    (300000, 305999, frozenset(range(14, 20))),  # Diners Club International
    (309500, 309599, frozenset(range(14, 20))),
    (360000, 369999, frozenset(range(14, 20))),
    (380000, 399999, frozenset(range(14, 20))),
    (352800, 358999, frozenset(range(16, 20))),  # JCB
    (180000, 180099, frozenset({15})),  # JCB, legacy 15-digit ranges
    (213100, 213199, frozenset({15})),
    (220000, 220499, frozenset(range(16, 20))),  # Mir
    (500000, 509999, frozenset(range(13, 20))),  # Maestro, RuPay, Verve
    (560000, 699999, frozenset(range(13, 20))),  # Maestro, Discover, UnionPay, RuPay
    (810000, 829999, frozenset({16})),  # RuPay
)


def card_brand_ok(digits: str) -> bool:
    """True when ``digits`` (digits only) has an issuer prefix that issues cards of its length."""
    if len(digits) < 13 or len(digits) > 19:
        return False
    head = int(digits[:6])
    length = len(digits)
    return any(low <= head <= high and length in lengths for low, high, lengths in _ISSUERS)


def luhn_digits_ok(digits: str) -> bool:
    """Luhn check of a string of ASCII digits only (no separators)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position & 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number_valid(digits: str) -> bool:
    """A plausible card number: 13-19 digits, an issuer prefix for that length, Luhn-valid."""
    return digits.isdigit() and card_brand_ok(digits) and luhn_digits_ok(digits)


def card_mask(pan: str) -> str:
    """Mask a card number: at most the first 6 digits (the issuer) and the last 4 stay visible.

    Short numbers show fewer leading digits so that at least six digits are always hidden
    (a 13-digit number keeps 3 + 4): a mask must not be reversible by trying the few
    Luhn-valid completions. Numbers longer than 16 digits show no last four: "16 digits and a
    security code" and "a 19-digit card" look the same, and the last four of the first could
    be the security code.
    """
    clean = digits_only(normalize(pan).text)
    if len(clean) < 12:
        raise ValueError("a card number has at least 12 digits")
    head = max(0, min(6, len(clean) - 10))
    if len(clean) > 16:
        return clean[:head] + "*" * (len(clean) - head)
    return clean[:head] + "*" * (len(clean) - head - 4) + clean[-4:]


# ISO 13616 IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_checksum_ok(compact: str) -> bool:
    """ISO 7064 mod-97-10 check of an IBAN without spaces (any case)."""
    value = compact.upper()
    if len(value) < 5 or not value.isalnum():
        return False
    rearranged = value[4:] + value[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def iban_valid(text: str) -> bool:
    """True for a well-formed IBAN of a known country with a correct check (spaces allowed)."""
    compact = text.replace(" ", "").upper()
    expected = IBAN_LENGTHS.get(compact[:2])
    return (
        expected is not None
        and len(compact) == expected
        and compact[2:4].isdigit()
        and iban_checksum_ok(compact)
    )


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """US social security number structure (SSA rules: no 000/666/9xx area, no zero parts)."""
    if area in {"000", "666"} or area.startswith("9"):
        return False
    if group == "00" or serial == "0000":
        return False
    # Numbers the SSA never issued but that appear in samples and advertisements.
    return f"{area}{group}{serial}" not in {"078051120", "219099999", "123456789"}


def ip_valid(text: str) -> bool:
    """A real address of some machine: "0.0.0.0" and loopback identify no one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_loopback)
