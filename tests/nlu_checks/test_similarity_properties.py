"""Properties of the near-duplicate check: its shortcuts never change difflib's answer.

``near_duplicates`` skips candidates by length and by shared characters (the bounds difflib's
``real_quick_ratio`` and ``quick_ratio`` give). These properties compare it with the plain,
all-pairs computation on generated sentences, and check that a changed number or a reordering
never hides a copy.
"""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nlu_checks.similarity import THRESHOLD, near_duplicates, normalise

WORDS = ["cancel", "my", "order", "where", "is", "refund", "the", "invoice", "please", "card"]
sentence = st.lists(
    st.one_of(st.sampled_from(WORDS), st.integers(0, 10**9).map(str)), min_size=1, max_size=8
).map(" ".join)


def brute_force(texts: list[str], pool: list[str]) -> set[str]:
    found = set()
    for text in texts:
        a = normalise(text)
        for other in pool:
            b = normalise(other)
            if not a or not b:
                continue
            union = set(a.split()) | set(b.split())
            jaccard = len(set(a.split()) & set(b.split())) / len(union)
            ratio = difflib.SequenceMatcher(None, b, a, autojunk=False).ratio()
            if max(jaccard, ratio) >= THRESHOLD:
                found.add(text)
    return found


@settings(deadline=None, max_examples=60)
@given(st.lists(sentence, min_size=1, max_size=6), st.lists(sentence, min_size=1, max_size=12))
def test_the_fast_check_finds_exactly_what_all_pairs_find(texts, pool):
    assert {d.text for d in near_duplicates(texts, pool)} == brute_force(texts, pool)


@settings(deadline=None, max_examples=60)
@given(sentence, st.integers(0, 10**12), st.randoms(use_true_random=False))
def test_a_changed_number_or_word_order_never_hides_a_copy(text, number, rng):
    words = (text + f" {number}").split()
    shuffled = words[:]
    rng.shuffle(shuffled)
    changed = [str(number + 1) if w == str(number) else w for w in shuffled]
    assert near_duplicates([" ".join(changed)], [" ".join(words)])
