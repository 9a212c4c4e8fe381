"""The code form reads a six-digit code, never the visible digits of a masked card.

The channel masks a pasted card as ``424242******4242`` before Rasa sees it; a shopper at the
code prompt who pastes a card must not spend one of their five attempts on its first six digits.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actions.stepup import extract_code

codes = st.text(alphabet="0123456789", min_size=6, max_size=6)
around = st.sampled_from(["", " ", "code: ", "#", "+", "code.", "(", "my code is "])
after = st.sampled_from(["", " ", ".", "!", ")", " thanks"])


@given(code=codes, before=around, tail=after)
def test_a_typed_code_is_read_whatever_surrounds_it(code: str, before: str, tail: str) -> None:
    assert extract_code(f"{before}{code}{tail}") == code


@given(bin6=codes, last4=st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_the_digits_of_a_card_mask_are_not_a_code(bin6: str, last4: str) -> None:
    assert extract_code(f"here is my card {bin6}******{last4}") is None
    assert extract_code(f"{bin6}******{last4}") is None
