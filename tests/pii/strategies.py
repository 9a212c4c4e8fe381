"""Hypothesis strategies for personal data and for the look-alikes that must stay untouched.

Every value is generated here (issuer prefixes from the card networks' published ranges,
check digits computed, phone numbers from phonenumbers' own metadata); nothing comes from the
evaluation data in ``../shared/eval``.
"""

from __future__ import annotations

import string

import phonenumbers
from hypothesis import strategies as st

from cartguard.pii.validators import IBAN_LENGTHS

# -- card numbers ----------------------------------------------------------------------------

#: brand -> (issuer prefixes, lengths): real ranges, one or two per network
CARD_BRANDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "visa": (("4",), (13, 16, 19)),
    "mastercard": (("51", "52", "53", "54", "55"), (16,)),
    "mastercard-2": (("2221", "2500", "2720"), (16,)),
    "amex": (("34", "37"), (15,)),
    "discover": (("6011", "65", "644"), (16, 19)),
    "jcb": (("3528", "3566", "3589"), (16, 19)),
    "diners": (("36", "300", "305", "38"), (14, 16)),
    "maestro": (("5018", "5020", "6759", "6304"), (13, 16, 19)),
    "unionpay": (("62",), (16, 17, 18, 19)),
    "mir": (("2200", "2204"), (16,)),
    "rupay": (("60", "81"), (16,)),
}


def luhn_check_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:  # doubled once the check digit is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid number of a real brand and length."""
    prefixes, lengths = CARD_BRANDS[draw(st.sampled_from(sorted(CARD_BRANDS)))]
    prefix = draw(st.sampled_from(prefixes))
    length = draw(st.sampled_from(lengths))
    body = prefix + draw(
        st.text(string.digits, min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1)
    )
    return body + luhn_check_digit(body)


#: separators people paste between digit groups (before normalization)
SEPARATORS = (
    " ",
    "-",
    ".",
    "/",
    "_",
    "  ",
    " - ",
    "\u00a0",  # no-break space
    "\u2009",  # thin space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "\u2013",  # en dash
    "\u2011",  # non-breaking hyphen
    "\u2212",  # minus sign
)
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\x00", "\x7f")
PREFIXES = ("", "/", "+", "#", ".", "x", "card:", "nr.", "pan=", "(")
SUFFIXES = ("", "x", "/", ".", "!", "abc", ")", "?")


def _unicode_digit(digit: str, style: str) -> str:
    base = {"ascii": ord("0"), "fullwidth": 0xFF10, "arabic": 0x0660, "devanagari": 0x0966}
    return chr(base[style] + int(digit))


@st.composite
def pasted(draw: st.DrawFn, digits: str, *, groups: bool = True) -> str:
    """``digits`` the way a careless shopper might paste them: groups, odd separators, Unicode
    digits and invisible characters anywhere inside."""
    pieces: list[str] = []
    position = 0
    while position < len(digits):
        size = draw(st.integers(1, 7)) if groups else len(digits)
        pieces.append(digits[position : position + size])
        position += size
    separator_mode = draw(st.sampled_from(["one", "mixed"]))
    one = draw(st.sampled_from(SEPARATORS))
    style = draw(st.sampled_from(["ascii", "ascii", "fullwidth", "arabic", "devanagari", "mixed"]))
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index:
            out.append(one if separator_mode == "one" else draw(st.sampled_from(SEPARATORS)))
        for char in piece:
            chosen = style
            if style == "mixed":
                chosen = draw(st.sampled_from(["ascii", "fullwidth", "arabic"]))
            out.append(_unicode_digit(char, chosen))
            if draw(st.integers(0, 9)) == 0:
                out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


# -- e-mail, phones, IBANs ----------------------------------------------------------------------

_LOCAL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(_LOCAL)
    if draw(st.booleans()):
        local += draw(st.sampled_from([".", "_", "-", "+"])) + draw(_LOCAL)
    labels = draw(
        st.lists(st.text(string.ascii_lowercase, min_size=2, max_size=10), min_size=1, max_size=3)
    )
    tld = draw(st.sampled_from(["com", "org", "net", "de", "co.uk", "shop", "example"]))
    return f"{local}@{'.'.join(labels)}.{tld}"


PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "IL", "AU", "ES", "IT", "NL", "JP")
PHONE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


@st.composite
def phone_numbers(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    """A valid number of one of several regions, built from phonenumbers' example numbers with
    the last digits changed until it is valid again."""
    region = draw(st.sampled_from(PHONE_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(PHONE_TYPES)))
    national = str(example.national_number)
    tail = draw(st.text(string.digits, min_size=3, max_size=3))
    for attempt in range(10):
        candidate = national[:-3] + tail
        number = phonenumbers.parse(f"+{example.country_code}{candidate}", None)
        if phonenumbers.is_valid_number(number):
            return region, number
        tail = f"{(int(tail) + 7 * (attempt + 1)) % 1000:03d}"
    return region, example


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{98 - number % 97:02d}"


#: country -> how the BBAN starts (letters where the country's format has a bank code)
IBAN_COUNTRIES = {
    "DE": "",
    "FR": "",
    "ES": "",
    "IT": "X",
    "NL": "ABNA",
    "GB": "NWBK",
    "BE": "",
    "CH": "",
    "AT": "",
    "PL": "",
}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_COUNTRIES)))
    start = IBAN_COUNTRIES[country]
    length = IBAN_LENGTHS[country] - 4 - len(start)
    bban = start + draw(st.text(string.digits, min_size=length, max_size=length))
    return country + iban_check_digits(country, bban) + bban


# -- look-alikes that are not personal data ---------------------------------------------------

order_ids = st.integers(100000, 999999).map(lambda n: f"CG-{n}")
invoice_ids = st.tuples(st.integers(2020, 2030), st.integers(1, 99999)).map(
    lambda t: f"INV-{t[0]}-{t[1]:05d}"
)
refund_ids = st.integers(100000, 999999).map(lambda n: f"RF-{n}")


@st.composite
def dates(draw: st.DrawFn) -> str:
    year, month, day = (
        draw(st.integers(1990, 2035)),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 28)),
    )
    shape = draw(st.sampled_from(["iso", "us", "eu", "dots", "time"]))
    if shape == "iso":
        return f"{year}-{month:02d}-{day:02d}"
    if shape == "us":
        return f"{month}/{day}/{year}"
    if shape == "eu":
        return f"{day:02d}/{month:02d}/{year}"
    if shape == "dots":
        return f"{day:02d}.{month:02d}.{year}"
    return f"{year}-{month:02d}-{day:02d} {draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"


@st.composite
def prices(draw: st.DrawFn) -> str:
    amount = draw(st.integers(1, 999_999))
    cents = draw(st.integers(0, 99))
    shape = draw(st.sampled_from(["$", "EUR", "plain", "comma"]))
    if shape == "$":
        return f"${amount:,}.{cents:02d}"
    if shape == "EUR":
        return f"{amount},{cents:02d} EUR"
    if shape == "comma":
        return f"{amount:,}"
    return f"{amount}.{cents:02d}"


zip_codes = st.one_of(
    st.integers(10000, 99999).map(str),
    st.tuples(st.integers(10000, 99999), st.integers(1000, 9999)).map(lambda t: f"{t[0]}-{t[1]}"),
)


@st.composite
def tracking_numbers(draw: st.DrawFn) -> str:
    """Parcel numbers: UPS (1Z, a shipper code with letters, service, 8 digits), USPS (22
    digits starting 92-95, printed in fours or not), FedEx (12 digits)."""
    kind = draw(st.sampled_from(["ups", "usps", "fedex"]))
    alnum = string.ascii_uppercase + string.digits
    if kind == "ups":
        shipper = (
            draw(st.text(alnum, min_size=3, max_size=3))
            + draw(st.sampled_from(string.ascii_uppercase))
            + draw(st.text(alnum, min_size=2, max_size=2))
        )
        return "1Z" + shipper + draw(st.text(string.digits, min_size=10, max_size=10))
    if kind == "fedex":
        digits = draw(st.text(string.digits, min_size=12, max_size=12))
        return digits if draw(st.booleans()) else f"{digits[:4]} {digits[4:8]} {digits[8:]}"
    digits = draw(st.sampled_from(["92", "93", "94", "95"])) + draw(
        st.text(string.digits, min_size=20, max_size=20)
    )
    if draw(st.booleans()):
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return digits


# four dotted parts are an IPv4 address, whatever was meant: versions have two or three
versions = st.lists(st.integers(0, 40), min_size=2, max_size=3).map(lambda p: ".".join(map(str, p)))
quantities = st.integers(1, 5000).map(str)
