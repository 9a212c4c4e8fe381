"""Near-duplicate detection between NLU sentence sets (training, held-out, Bitext).

An exact-match check misses the copies that matter: a held-out sentence with one word changed,
or an evaluation row with its order number swapped. Two sentences count as near duplicates when,
after :func:`normalise` (lower case, no punctuation, every number the same), either their
``difflib`` ratio or the Jaccard similarity of their word sets reaches the threshold (the second
catches the same words in another order). Comparisons are limited to sentences of compatible
length and character content, bounds that difflib itself uses (``real_quick_ratio`` and
``quick_ratio``, here computed for many candidates at once with numpy), so the answer is exactly
difflib's and the check runs in seconds rather than minutes.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: at or above this, two sentences are the same sentence for evaluation purposes
THRESHOLD = 0.85


def normalise(text: str) -> str:
    """'Where's order #00108?' and 'wheres order 5' both become 'wheres order 0'."""
    text = re.sub(r"\d+", "0", text.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).replace("_", " ").split())


@dataclass(frozen=True)
class NearDuplicate:
    text: str
    match: str
    score: float

    def __str__(self) -> str:
        return f"{self.score:.2f}  {self.text!r} ~ {self.match!r}"


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _char_counts(texts: list[str], alphabet: dict[str, int]) -> np.ndarray:
    counts = np.zeros((len(texts), len(alphabet)), dtype=np.int32)
    for row, text in enumerate(texts):
        for char in text:
            counts[row, alphabet[char]] += 1
    return counts


def near_duplicates(
    texts: Iterable[str], pool: Iterable[str], threshold: float = THRESHOLD
) -> list[NearDuplicate]:
    """Every sentence of ``texts`` with a sentence of ``pool`` at ``threshold`` or above."""
    texts = list(texts)
    entries = sorted({(len(n), n, p) for p in pool if (n := normalise(p))})
    lengths = [length for length, _, _ in entries]
    alphabet = {
        c: i
        for i, c in enumerate(
            sorted({c for _, n, _ in entries for c in n} | {c for t in texts for c in normalise(t)})
        )
    }
    pool_counts = _char_counts([n for _, n, _ in entries], alphabet)
    pool_lengths = np.array(lengths)
    pool_words = [set(n.split()) for _, n, _ in entries]
    found = []
    matcher = difflib.SequenceMatcher(autojunk=False)
    for text in texts:
        norm = normalise(text)
        if not norm:
            continue
        words = set(norm.split())
        matcher.set_seq2(norm)
        # difflib's ratio is at most 2*min/(la+lb): outside this window it cannot reach threshold.
        # Word-set matches (reorders) have nearly equal lengths, so the same window holds them.
        low = math.ceil(len(norm) * threshold / (2 - threshold))
        high = math.floor(len(norm) * (2 - threshold) / threshold)
        start, stop = bisect.bisect_left(lengths, low), bisect.bisect_right(lengths, high)
        if start == stop:
            continue
        # quick_ratio for the whole window at once: shared characters, ignoring their order
        counts = _char_counts([norm], alphabet)[0]
        shared = np.minimum(pool_counts[start:stop], counts).sum(axis=1)
        bound = 2 * shared / (pool_lengths[start:stop] + len(norm))
        best: NearDuplicate | None = None
        for offset in np.flatnonzero(bound >= threshold):
            index = start + int(offset)
            candidate, original = entries[index][1], entries[index][2]
            score = _jaccard(words, pool_words[index])
            if score < threshold:
                matcher.set_seq1(candidate)
                score = max(score, matcher.ratio())
            if score >= threshold and (best is None or score > best.score):
                best = NearDuplicate(text, original, round(score, 3))
        if best is not None:
            found.append(best)
    return found
