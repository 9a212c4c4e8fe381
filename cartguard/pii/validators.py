"""Checksum and structure validators: what turns a digit pattern into a confident finding.

Pure functions on strings, no dependencies, so the vault, the recognizers and the tests share
one definition of "a valid card number" or "a valid IBAN".
"""

from __future__ import annotations

import ipaddress
import re

_NON_DIGITS = re.compile(r"\D")


def digits_only(text: str) -> str:
    return _NON_DIGITS.sub("", text)


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


def card_mask(pan: str) -> str:
    """Mask a card number: at most the first 6 digits (the issuer) and the last 4 stay visible.

    Short numbers show fewer leading digits so that at least six digits are always hidden
    (a 12-digit Maestro number keeps 2 + 4): a mask must not be reversible by trying the
    few Luhn-valid completions.
    """
    clean = digits_only(pan)
    if len(clean) < 12:
        raise ValueError("a card number has at least 12 digits")
    head = max(0, min(6, len(clean) - 10))
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
