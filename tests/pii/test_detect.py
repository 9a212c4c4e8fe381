"""Detection and redaction, label by label, on values written for these tests.

Nothing here comes from the evaluation data (``test_eval_independence.py`` checks that). The
shapes are the ones issue 16 lists: separators people paste, prefixes and suffixes glued to a
number, full-width digits, invisible characters.
"""

from __future__ import annotations

import pytest

from cartguard.pii import Span, detect, redact
from cartguard.pii.tokens import TOKEN_RE
from cartguard.pii.validators import card_mask, card_number_valid, iban_valid, luhn_valid
from tests.pii.strategies import iban_check_digits, luhn_check_digit


def labels(text: str, expect: tuple[str, ...] = ()) -> dict[str, str]:
    return {s.label: text[s.start : s.end] for s in detect(text, expect)}


def make_card(prefix: str, length: int, filler: str = "7305182946") -> str:
    body = (prefix + filler * 2)[: length - 1]
    return body + luhn_check_digit(body)


VISA = make_card("4", 16)
AMEX = make_card("37", 15)
DINERS = make_card("36", 14)
VISA19 = make_card("4", 19)


def grouped(digits: str, sep: str, size: int = 4) -> str:
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


def test_own_card_values_are_valid_cards() -> None:
    for pan in (VISA, AMEX, DINERS, VISA19):
        assert luhn_valid(pan) and card_number_valid(pan), pan
    assert not card_number_valid(make_card("9", 16))  # no issuer starts with 9
    assert not card_number_valid(make_card("37", 16))  # American Express numbers have 15


# -- cards: the pasted shapes of issue 16 ----------------------------------------------------------

PASTED = {
    "plain": VISA,
    "spaces": grouped(VISA, " "),
    "dashes": grouped(VISA, "-"),
    "dots": grouped(VISA, "."),
    "slashes": grouped(VISA, "/"),
    "underscores": grouped(VISA, "_"),
    "double spaces": grouped(VISA, "  "),
    "no-break spaces": grouped(VISA, "\u00a0"),
    "thin spaces": grouped(VISA, "\u2009"),
    "en dashes": grouped(VISA, "\u2013"),
    "spaced dashes": grouped(VISA, " - "),
    "odd groups": f"{VISA[:3]} {VISA[3:9]} {VISA[9:11]} {VISA[11:]}",
    "mixed separators": f"{VISA[:4]}.{VISA[4:8]}-{VISA[8:12]} {VISA[12:]}",
    "full-width digits": grouped(VISA, " ").translate(
        {ord(d): 0xFF10 + int(d) for d in "0123456789"}
    ),
    "zero-width spaces": "\u200b".join(VISA),
    "soft hyphens": grouped(VISA, "\u00ad"),
    "amex 4-6-5": f"{AMEX[:4]} {AMEX[4:10]} {AMEX[10:]}",
    "diners 4-6-4": f"{DINERS[:4]} {DINERS[4:10]} {DINERS[10:]}",
    "19 digits": grouped(VISA19, " "),
}


@pytest.mark.parametrize("shape", sorted(PASTED))
@pytest.mark.parametrize(
    "around", ["my card is {} thanks", "{}", "/{}/", "+{}", "#{}", ".{}.", "nr{}x"]
)
def test_pasted_card_numbers_are_found_whole_and_masked(shape: str, around: str) -> None:
    shown = PASTED[shape]
    text = around.format(shown)
    start = text.index(shown)
    spans = [s for s in detect(text) if s.label == "CREDIT_CARD"]
    assert [(s.start, s.end) for s in spans] == [(start, start + len(shown))], (text, spans)
    redacted = redact(text).text
    pan = (
        VISA19
        if shape == "19 digits"
        else AMEX
        if "amex" in shape
        else DINERS
        if "diners" in shape
        else VISA
    )
    assert redacted == text.replace(shown, card_mask(pan))


def test_card_mask_keeps_at_most_issuer_and_last_four() -> None:
    assert card_mask(VISA) == VISA[:6] + "******" + VISA[-4:]
    assert card_mask(AMEX) == AMEX[:5] + "******" + AMEX[-4:]
    assert card_mask(make_card("4", 13)).count("*") == 6
    # 17-19 digits: a card followed by its security code looks the same; show no last four
    assert card_mask(VISA19) == VISA19[:6] + "*" * 13
    assert card_mask(grouped(VISA, "\u00a0").translate({ord("4"): "\uff14"})) == card_mask(VISA)


def test_card_followed_by_security_code_never_shows_the_code() -> None:
    cvv = "513"
    text = f"card {grouped(VISA, ' ')} {cvv}"
    redacted = redact(text).text
    visible = redacted.split("card ", 1)[1]
    assert cvv not in visible.replace(card_mask(VISA), "") or visible.endswith(f" {cvv}")
    assert VISA not in redacted
    assert (
        redact(f"card {grouped(VISA, ' ')} cvv {cvv}").text == f"card {card_mask(VISA)} cvv <CVV>"
    )


def test_numbers_failing_luhn_or_issuer_ranges_are_kept() -> None:
    broken = VISA[:-1] + str((int(VISA[-1]) + 1) % 10)
    for text in (
        f"reference {grouped(broken, ' ')} from the bank",
        f"parcel {grouped('9400' + '1118992234567890' + '12', ' ')}",
        f"serial {make_card('9', 16)}",
    ):
        assert "CREDIT_CARD" not in labels(text), text


def test_window_inside_a_number_grouped_in_fours_is_not_a_card() -> None:
    # a valid card number hidden in the middle of a longer number printed in fours
    text = f"parcel 9401 {grouped(VISA, ' ')} 22"
    assert "CREDIT_CARD" not in labels(text)
    # a different separator before it says a new number starts
    assert labels(f"item 2: {grouped(VISA, ' ')}")["CREDIT_CARD"] == grouped(VISA, " ")


def test_two_cards_pasted_one_after_the_other_are_both_masked() -> None:
    other = make_card("5", 16, "1204736158")
    text = f"{grouped(VISA, ' ')} {grouped(other, ' ')}"
    assert redact(text).text == f"{card_mask(VISA)} {card_mask(other)}"


def test_card_work_is_bounded_per_digit_group() -> None:
    """The cubic attack of issue 16: the card recognizer's work grows linearly with the number
    of digit groups. Counted in executed lines of its module (a count, not a timing)."""
    import sys

    import cartguard.pii.recognizers.card as card

    def lines_for(text: str) -> int:
        count = 0

        def tracer(frame, event, arg):
            nonlocal count
            if frame.f_code.co_filename == card.__file__:
                if event == "line":
                    count += 1
                return tracer
            return None

        sys.settrace(tracer)
        try:
            list(card.CreditCardRecognizer().find(card.Context(text, frozenset())))
        finally:
            sys.settrace(None)
        return count

    for unit in ("4242", "4", "42 4.2", "5"):
        small, large = lines_for(" ".join([unit] * 100)), lines_for(" ".join([unit] * 1000))
        assert large <= 12 * small, (unit, small, large)


# -- e-mail, phone, IBAN, SSN, IP ---------------------------------------------------------------


def test_emails_including_plus_tags_and_subdomains() -> None:
    for address in ("ines.okafor+shop@mail.example.org", "r_kowalski@post.example.de"):
        text = f"Mail me at {address}."
        assert labels(text) == {"EMAIL_ADDRESS": address}
        assert redact(text).text == "Mail me at <EMAIL_ADDRESS>."
    assert labels("meet @ the shop, price 3@5 euros") == {}


@pytest.mark.parametrize(
    "number",
    [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "+1 415 555 0132",
        "+44 20 7946 0321",
        "0044 20 7946 0321",
        "+33 1 42 68 53 00",
        "+49 30 901820",
        "+33 (0)1 42 68 53 00",
        "(415) 555-0132 x204",
        "415\u2011555\u20110132",
    ],
)
def test_phone_numbers_are_found_by_format_without_any_cue(number: str) -> None:
    for template in ("text {} when it ships", "{}", "ok, {}."):
        text = template.format(number)
        assert labels(text).get("PHONE_NUMBER") == number, (text, labels(text))


def test_national_numbers_of_other_countries_need_a_cue() -> None:
    assert labels("phone 030 12345678 please").get("PHONE_NUMBER") == "030 12345678"
    assert labels("call me on 020 7946 0321").get("PHONE_NUMBER") == "020 7946 0321"
    assert "PHONE_NUMBER" not in labels("batch 030 12345678 please")


def test_dates_times_zip_codes_and_house_numbers_are_not_phones() -> None:
    for text in (
        "We met on 2025-06-14 09:41:07 at the store",
        "The shop is at 2210 3370 Harbor Lane",
        "My zip code is 94107-2234",
        "I paid 1350 euros for 3 items",
        "the sofa is 131000.00 with delivery",
    ):
        assert "PHONE_NUMBER" not in labels(text), text


@pytest.mark.parametrize(
    "country,bban",
    [
        ("DE", "500105175407324931"),
        ("FR", "30006000011234567890189"),
        ("NL", "ABNA0417164300"),
        ("GB", "NWBK60161331926819"),
    ],
)
def test_ibans_compact_grouped_and_lowercase(country: str, bban: str) -> None:
    iban = country + iban_check_digits(country, bban) + bban
    assert iban_valid(iban)
    for shown in (iban, " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), iban.lower()):
        text = f"my IBAN is {shown} thanks"
        assert labels(text) == {"IBAN_CODE": shown}, (shown, labels(text))
    broken = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    assert "IBAN_CODE" not in labels(f"IBAN {broken}")


def test_ssn_valid_and_invalid_areas() -> None:
    assert labels("my ssn is 512-68-3391") == {"US_SSN": "512-68-3391"}
    assert "US_SSN" not in labels("number 666-12-3456 and 900-12-3456 and 512-00-4567")


def test_ip_addresses_v4_and_v6() -> None:
    text = "logins from 81.17.30.122 and 2001:db8:85a3::8a2e:370:7334."
    spans = [s for s in detect(text) if s.label == "IP_ADDRESS"]
    assert [text[s.start : s.end] for s in spans] == [
        "81.17.30.122",
        "2001:db8:85a3::8a2e:370:7334",
    ]
    assert "IP_ADDRESS" not in labels("version 1.2.3 and 999.1.1.1 at 12:20:39 on 0.0.0.0")


# -- codes: only while one is expected ------------------------------------------------------------


@pytest.mark.parametrize(
    "shown",
    [
        "730518",
        "code:730518",
        "#730518",
        "+730518",
        "code.730518",
        "(730518)",
        "it's 730518!",
        "730\u200b518",
        "７３０５１８",
    ],
)
def test_six_digit_code_is_a_code_only_while_one_is_expected(shown: str) -> None:
    assert "OTP_CODE" not in labels(shown)
    found = labels(shown, ("OTP_CODE",))
    assert found.get("OTP_CODE", "").replace("\u200b", "") in {"730518", "７３０５１８"}, found


def test_expected_code_shapes_and_what_is_not_a_code() -> None:
    assert labels("123 456", ("OTP_CODE",)) == {"OTP_CODE": "123 456"}
    assert labels("it's 12345678", ("OTP_CODE",)) == {"OTP_CODE": "12345678"}
    for text in ("order CG-482913", "price 0.730518", "123456789 units", "12345"):
        assert "OTP_CODE" not in labels(text, ("OTP_CODE",)), text


# -- password, person, address ------------------------------------------------------------------


def test_password_after_a_cue_or_when_expected() -> None:
    assert labels("my password is Tq8vLm2pXw4z") == {"PASSWORD": "Tq8vLm2pXw4z"}
    assert "PASSWORD" not in labels("my password is not working")
    assert labels("  Tq8vLm2pXw4z ", ("PASSWORD",)) == {"PASSWORD": "Tq8vLm2pXw4z"}


def test_names_after_cues() -> None:
    assert labels("Hi, my name is Ingrid Okafor and I need help")["PERSON"] == "Ingrid Okafor"
    assert labels("Name: Ingrid Okafor\nPhone: none")["PERSON"] == "Ingrid Okafor"
    assert labels("Regards, Ada B. Lovelace")["PERSON"] == "Ada B. Lovelace"
    assert "PERSON" not in labels("I am Happy")


def test_street_address_with_number_and_street_type() -> None:
    assert "STREET_ADDRESS" in labels("please ship it to 4077 Oak Ridge Road, thanks")


# -- properties of the whole ---------------------------------------------------------------------


def test_redaction_is_idempotent_and_tokens_survive() -> None:
    token = "tok_email_" + "Ab3_-" * 5 + "123456"
    assert TOKEN_RE.fullmatch(token)
    text = f"card {VISA}, mail ines@example.org, token {token}, ip 81.17.30.122"
    once = redact(text).text
    assert token in once
    assert redact(once).text == once
    assert detect(once) == []


def test_spans_are_sorted_and_do_not_overlap() -> None:
    text = f"ines@example.org {grouped(VISA, ' ')} 512-68-3391 call +1 415-555-0132"
    spans = detect(text)
    assert all(isinstance(s, Span) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    assert {s.label for s in spans} == {"EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "PHONE_NUMBER"}


def test_empty_and_plain_text() -> None:
    assert detect("") == []
    assert redact("I want to track my order").spans == []
