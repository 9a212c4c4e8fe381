"""Normalization before detection, and the map back to what the shopper typed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cartguard.pii import detect
from cartguard.pii.normalize import normalize


def test_plain_ascii_is_returned_as_is_without_a_map() -> None:
    result = normalize("card 4242 4242 4242 4242")
    assert result.text == "card 4242 4242 4242 4242" and result.starts is None


def test_digits_spaces_dashes_and_invisible_characters() -> None:
    text = "\uff14\u0662\u200b7\u00a0\u2013\u00ad\x00x\tz\n"
    result = normalize(text)
    assert result.text == "427 -x z\n"
    # "7" is character 3 of the original; the no-break space (4) became the space
    assert result.original_span(2, 3) == (3, 4)
    assert result.original_span(0, 4) == (0, 5)


def test_span_over_removed_characters_covers_them() -> None:
    text = "a\u200bb\u200bc"
    result = normalize(text)
    assert result.text == "abc"
    assert result.original_span(0, 3) == (0, 5)


@given(
    words=st.lists(st.sampled_from(["ab", "12", " ", "-", ".", "x9"]), min_size=1, max_size=20),
    junk=st.lists(st.sampled_from(["\u200b", "\u00ad", "\ufeff", "\x07", "\u2060"]), max_size=6),
    data=st.data(),
)
def test_invisible_characters_never_change_what_is_found(words, junk, data) -> None:
    text = "".join(words)
    spiked = list(text)
    for char in junk:
        spiked.insert(data.draw(st.integers(0, len(spiked))), char)
    spiked_text = "".join(spiked)
    assert normalize(spiked_text).text == normalize(text).text
    plain = [(s.label, text[s.start : s.end]) for s in detect(text, expect={"OTP_CODE"})]
    strip = str.maketrans("", "", "".join(junk))
    found = [
        (s.label, spiked_text[s.start : s.end].translate(strip))
        for s in detect(spiked_text, expect={"OTP_CODE"})
    ]
    assert found == plain
