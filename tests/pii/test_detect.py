"""Detection and redaction on generated data: every label, the tricky shapes, idempotence."""

from __future__ import annotations

import phonenumbers
import pytest
from faker import Faker

from cartguard.pii import Span, detect, redact
from cartguard.pii.tokens import TOKEN_RE
from cartguard.pii.validators import card_mask, iban_valid, luhn_valid

fake = Faker()
Faker.seed(4114)


def labels(text: str, expect: tuple[str, ...] = ()) -> dict[str, str]:
    return {s.label: text[s.start : s.end] for s in detect(text, expect)}


def group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i : i + size])
        i += size
    return sep.join(out)


def luhn_fail(digits: str) -> str:
    last = (int(digits[-1]) + 1) % 10
    return digits[:-1] + str(last)


# -- cards ------------------------------------------------------------------------------
CARD_TYPES = ["visa16", "mastercard", "amex", "discover", "jcb16", "diners", "visa13"]


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_generated_cards_are_found_plain_spaced_and_dashed(card_type: str) -> None:
    pan = fake.credit_card_number(card_type=card_type)
    assert luhn_valid(pan)
    sizes = {13: (4, 4, 5), 14: (4, 6, 4), 15: (4, 6, 5)}.get(len(pan), (4, 4, 4, 4))
    for shown in (pan, group(pan, sizes, " "), group(pan, sizes, "-")):
        text = f"my card is {shown}, thanks"
        found = labels(text)
        assert found.get("CREDIT_CARD") == shown, (card_type, shown, found)
        redacted = redact(text).text
        assert pan[-4:] in redacted and shown not in redacted
        assert card_mask(pan) in redacted


def test_card_mask_keeps_at_most_bin_and_last_four() -> None:
    assert card_mask("4242424242424242") == "424242******4242"
    assert card_mask("378282246310005") == "37828******0005"
    twelve = "501864667909"
    assert card_mask(twelve) == "50******7909"
    assert sum(ch.isdigit() for ch in card_mask("4111 1111 1111 1111 111")) == 10


def test_card_like_numbers_failing_luhn_are_kept() -> None:
    pan = luhn_fail(fake.credit_card_number(card_type="visa16"))
    assert not luhn_valid(pan)
    text = f"reference number {group(pan, (4, 4, 4, 4), ' ')} from the bank"
    assert "CREDIT_CARD" not in labels(text)


def test_card_followed_by_security_code_is_found_and_the_code_removed() -> None:
    pan = fake.credit_card_number(card_type="visa16")
    text = f"card {group(pan, (4, 4, 4, 4), ' ')} cvv 123"
    out = redact(text).text
    assert out == f"card {card_mask(pan)} cvv <CVV>"


def test_order_and_invoice_ids_are_not_pii() -> None:
    text = "Where is order CG-482913? It is on invoice INV-2026-00012, refund RF-123456."
    assert detect(text) == []
    assert redact(text).text == text


# -- e-mail -----------------------------------------------------------------------------
def test_emails_including_plus_tags_and_subdomains() -> None:
    for _ in range(10):
        user, domain = fake.user_name(), fake.domain_name(levels=2)
        address = f"{user}+{fake.word()}@{domain}"
        text = f"Mail me at {address}."
        assert labels(text) == {"EMAIL_ADDRESS": address}
        assert redact(text).text == "Mail me at <EMAIL_ADDRESS>."


def test_not_an_email() -> None:
    assert labels("meet @ the shop, price 3@5 euros") == {}


# -- phone ------------------------------------------------------------------------------
REGIONS = ["US", "GB", "DE", "FR", "AU", "IN", "BR", "ES", "IT", "NL"]


@pytest.mark.parametrize("region", REGIONS)
def test_phone_numbers_in_e164_international_and_national_formats(region: str) -> None:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    formats = [
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    ]
    for shown in formats:
        assert labels(f"text {shown} please").get("PHONE_NUMBER") == shown
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert labels(f"call me on {national}").get("PHONE_NUMBER") == national


def test_phone_with_cue_and_extension() -> None:
    text = "Phone: (898) 666-3621 x0135 (office)"
    assert labels(text)["PHONE_NUMBER"] == "(898) 666-3621 x0135"


def test_house_numbers_dates_and_zip_codes_are_not_phones() -> None:
    for text in (
        "We met on 2024-03-14 12:20:39 at the store",
        "The shop is at 1817 2650 Brookside Avenue",
        "My zip code is 90010-170",
        "I paid 1250 euros for 3 items",
    ):
        assert "PHONE_NUMBER" not in labels(text), text


# -- IBAN -------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", ["de_DE", "fr_FR", "nl_NL", "en_GB", "es_ES", "it_IT"])
def test_ibans_of_several_countries_compact_grouped_and_lowercase(locale: str) -> None:
    iban = Faker(locale).iban()
    assert iban_valid(iban)
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    for shown in (iban, grouped, iban.lower()):
        text = f"my IBAN is {shown} thanks"
        assert labels(text) == {"IBAN_CODE": shown}, (shown, labels(text))


def test_iban_with_wrong_check_digits_is_kept() -> None:
    iban = Faker("de_DE").iban()
    broken = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    assert "IBAN_CODE" not in labels(f"IBAN {broken}")


# -- SSN, IP ----------------------------------------------------------------------------
def test_ssn_valid_and_invalid_areas() -> None:
    ssn = fake.ssn()
    assert labels(f"my ssn is {ssn}") == {"US_SSN": ssn}
    assert "US_SSN" not in labels("number 666-12-3456 and 900-12-3456 and 123-00-4567")


def test_ip_addresses_v4_and_v6() -> None:
    v4, v6 = fake.ipv4_public(), fake.ipv6()
    text = f"logins from {v4} and {v6}."
    spans = [s for s in detect(text) if s.label == "IP_ADDRESS"]
    assert [text[s.start : s.end] for s in spans] == [v4, v6]
    assert "IP_ADDRESS" not in labels("version 1.2.3 and 999.1.1.1 at 12:20:39 on 0.0.0.0")


# -- OTP, password, person, address -----------------------------------------------------
def test_bare_six_digits_are_an_otp_but_ids_and_longer_numbers_are_not() -> None:
    assert labels("the code is 482913") == {"OTP_CODE": "482913"}
    assert "OTP_CODE" not in labels("order CG-482913 and 1234567 and 12345")


def test_expected_otp_widens_to_split_and_eight_digit_codes() -> None:
    assert "OTP_CODE" not in labels("123 456")
    assert labels("123 456", ("OTP_CODE",)) == {"OTP_CODE": "123 456"}
    assert labels("it's 12345678", ("OTP_CODE",)) == {"OTP_CODE": "12345678"}


def test_password_after_a_cue_or_when_expected() -> None:
    secret = fake.password(length=12, special_chars=False)
    assert labels(f"my password is {secret}") == {"PASSWORD": secret}
    assert "PASSWORD" not in labels("my password is not working")
    assert labels(f"  {secret} ", ("PASSWORD",)) == {"PASSWORD": secret}


def test_names_after_cues() -> None:
    first, last = fake.first_name(), fake.last_name()
    assert labels(f"Hi, my name is {first} {last} and I need help")["PERSON"] == f"{first} {last}"
    assert labels(f"Name: {first} {last}\nPhone: 555")["PERSON"] == f"{first} {last}"
    assert "PERSON" not in labels("I am Happy")


def test_street_address_with_number_and_street_type() -> None:
    street = f"{fake.building_number()} {fake.street_name()}"
    if street.split()[-1].rstrip(".") not in {"Street", "Avenue", "Road", "Lane", "Way"}:
        street = f"{fake.building_number()} {fake.last_name()} Street"
    assert "STREET_ADDRESS" in labels(f"please ship it to {street}, thanks")


# -- properties -------------------------------------------------------------------------
def test_redaction_is_idempotent_and_tokens_survive() -> None:
    pan = fake.credit_card_number(card_type="mastercard")
    token = "tok_email_" + "Ab3_-" * 5 + "123456"
    assert TOKEN_RE.fullmatch(token)
    text = f"card {pan}, mail {fake.email()}, token {token}, code 654321, ip {fake.ipv4()}"
    once = redact(text).text
    assert token in once
    assert redact(once).text == once
    assert detect(once) == []


def test_spans_are_sorted_and_do_not_overlap() -> None:
    text = f"{fake.email()} 4242 4242 4242 4242 {fake.ssn()} call +1 202-555-0143"
    spans = detect(text)
    assert all(isinstance(s, Span) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_empty_and_plain_text() -> None:
    assert detect("") == []
    assert redact("I want to track my order").spans == []
