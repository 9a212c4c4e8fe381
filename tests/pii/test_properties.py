"""Property tests: generated personal data is always removed, generated look-alikes never are.

Runs with the ``ci`` Hypothesis profile (tests/conftest.py: no deadline, modest example
counts); ``HYPOTHESIS_PROFILE=thorough`` digs deeper.
"""

from __future__ import annotations

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from cartguard.pii import detect, redact
from cartguard.pii.normalize import normalize
from cartguard.pii.recognizers.phone import DEFAULT_REGION, OTHER_REGIONS
from cartguard.pii.validators import card_mask, digits_only
from tests.pii import strategies as gen

TEMPLATES = ("{}", "my card is {} thanks", "here:{}", "use {} for it", "{}\nok?")


def spans_of(text: str, label: str | None) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in detect(text) if label is None or s.label == label]


def covers(text: str, label: str | None, start: int, end: int) -> bool:
    """Some ``label`` span covers every visible character of ``text[start:end]``."""
    value = text[start:end]
    first = start + (len(value) - len(value.lstrip("".join(gen.INVISIBLE))))
    last = end - (len(value) - len(value.rstrip("".join(gen.INVISIBLE))))
    return any(a <= first and b >= last for a, b in spans_of(text, label))


def place(template: str, prefix: str, value: str, suffix: str) -> tuple[str, int, int]:
    before, after = template.split("{}")
    start = len(before) + len(prefix)
    return before + prefix + value + suffix + after, start, start + len(value)


# -- always removed -----------------------------------------------------------------------------


@given(
    pan=gen.card_numbers(),
    data=st.data(),
    template=st.sampled_from(TEMPLATES),
    prefix=st.sampled_from(gen.PREFIXES),
    suffix=st.sampled_from(gen.SUFFIXES),
)
def test_generated_card_numbers_are_always_removed(
    pan: str, data: st.DataObject, template: str, prefix: str, suffix: str
) -> None:
    shown = data.draw(gen.pasted(pan, groups=data.draw(st.booleans())))
    text, start, end = place(template, prefix, shown, suffix)
    assert covers(text, "CREDIT_CARD", start, end), (text, detect(text))
    redacted = redact(text).text
    # the number survives in no script, only its mask
    assert pan not in digits_only(normalize(redacted).text)
    assert card_mask(pan) in redacted


@given(address=gen.emails(), template=st.sampled_from(TEMPLATES))
def test_generated_emails_are_always_removed(address: str, template: str) -> None:
    text, start, end = place(template, "", address, "")
    assert covers(text, "EMAIL_ADDRESS", start, end), (text, detect(text))
    assert address not in redact(text).text


FORMATS = {
    "e164": phonenumbers.PhoneNumberFormat.E164,
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
}


@given(
    generated=gen.phone_numbers(),
    shape=st.sampled_from(sorted(FORMATS)),
    template=st.sampled_from(("text {} when it ships", "{}", "reach me at {} please")),
)
def test_generated_phone_numbers_are_always_removed(
    generated: tuple[str, phonenumbers.PhoneNumber], shape: str, template: str
) -> None:
    region, number = generated
    if shape == "national" and region not in (DEFAULT_REGION, *OTHER_REGIONS):
        shape = "international"  # national formats are read for the configured regions only
    shown = phonenumbers.format_number(number, FORMATS[shape])
    if shape == "national" and region != DEFAULT_REGION:
        # A national number says nothing about its country: without a "+" it is recognised
        # as a phone number only next to a word that says so (see docs/pii.md).
        template = "call me on {} please"
    text, start, end = place(template, "", shown, "")
    # Removed, whatever the label: "+4915123456407" is a German mobile number and a
    # Luhn-valid 13-digit card number alike, and the card reading wins (leaving the "+").
    redacted = redact(text).text
    assert str(number.national_number) not in digits_only(normalize(redacted).text), (
        region,
        text,
        redacted,
    )


@given(iban=gen.ibans(), grouped=st.booleans(), lower=st.booleans())
def test_generated_ibans_are_always_removed(iban: str, grouped: bool, lower: bool) -> None:
    shown = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if grouped else iban
    shown = shown.lower() if lower else shown
    text, start, end = place("my IBAN is {} thanks", "", shown, "")
    assert covers(text, "IBAN_CODE", start, end), (text, detect(text))


@given(
    code=st.text("0123456789", min_size=6, max_size=6),
    around=st.sampled_from(
        [
            ("", ""),
            ("code:", ""),
            ("#", ""),
            ("+", ""),
            ("code.", ""),
            ("(", ")"),
            ("it's ", "!"),
            ("\u200b", "\u200b"),
        ]
    ),
)
def test_six_digits_are_a_code_while_one_is_expected(code: str, around: tuple[str, str]) -> None:
    text = around[0] + code + around[1]
    spans = [(s.start, s.end) for s in detect(text, expect={"OTP_CODE"}) if s.label == "OTP_CODE"]
    start = len(around[0])
    assert spans and spans[0][0] <= start and spans[0][1] >= start + 6, (text, spans)


# -- never touched ------------------------------------------------------------------------------

LOOK_ALIKES = {
    "order id": gen.order_ids,
    "invoice id": gen.invoice_ids,
    "refund id": gen.refund_ids,
    "date": gen.dates(),
    "price": gen.prices(),
    "zip code": gen.zip_codes,
    "tracking number": gen.tracking_numbers(),
    "version": gen.versions,
    "quantity": gen.quantities,
}
NEUTRAL = (
    "{}",
    "Is {} right?",
    "about {} please",
    "I got {} yesterday",
    "what about {} and {}?",
)


@given(
    kind=st.sampled_from(sorted(LOOK_ALIKES)),
    other=st.sampled_from(sorted(LOOK_ALIKES)),
    data=st.data(),
    template=st.sampled_from(NEUTRAL),
)
def test_shop_numbers_and_ordinary_numbers_are_never_touched(
    kind: str, other: str, data: st.DataObject, template: str
) -> None:
    values = [data.draw(LOOK_ALIKES[kind]), data.draw(LOOK_ALIKES[other])]
    text = template.format(*values[: template.count("{}")])
    assert detect(text) == [], (text, detect(text))
    assert redact(text).text == text


@given(
    code=st.text("0123456789", min_size=6, max_size=6),
    template=st.sampled_from(["{}", "zip {}", "I need {} of them", "#{}", "code:{}"]),
)
def test_six_digits_are_left_alone_when_no_code_is_expected(code: str, template: str) -> None:
    text = template.format(code)
    assert detect(text) == [], (text, detect(text))


@given(text=st.text(max_size=300))
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text).text
    assert redact(once).text == once
