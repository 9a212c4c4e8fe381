"""Near-duplicate detection between NLU sentence sets (training, held-out, Bitext).

An exact-match check misses the copies that matter: a held-out sentence with one word changed,
or an evaluation row with its order number swapped. Two sentences count as near duplicates when,
after :func:`normalise` (lower case, no punctuation, every number the same), either their
``difflib`` ratio or the Jaccard similarity of their word sets reaches the threshold (the second
catches the same words in another order). Comparisons are limited to sentences of compatible
length and character content, bounds that difflib itself uses (``real_quick_ratio`` and
``quick_ratio``, here computed for many candidates at once with numpy), and the word-set
similarity of every pair comes from one sparse matrix product, so the answer is exactly that of
comparing every pair (a Hypothesis property checks it) in seconds rather than minutes.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

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


def _char_counts(texts: list[str], alphabet: dict[str, int]) -> np.ndarray:
    counts = np.zeros((len(texts), len(alphabet)), dtype=np.int32)
    for row, text in enumerate(texts):
        for char in text:
            counts[row, alphabet[char]] += 1
    return counts


def _word_matrix(texts: list[str], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    rows, cols = [], []
    for row, text in enumerate(texts):
        for word in set(text.split()):
            rows.append(row)
            cols.append(vocabulary[word])
    shape = (len(texts), len(vocabulary))
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=shape)


def near_duplicates(
    texts: Iterable[str], pool: Iterable[str], threshold: float = THRESHOLD
) -> list[NearDuplicate]:
    """Every sentence of ``texts`` with a sentence of ``pool`` at ``threshold`` or above."""
    texts = list(texts)
    normalised = [normalise(t) for t in texts]
    entries = sorted({(len(n), n, p) for p in pool if (n := normalise(p))})
    if not entries:
        return []
    pool_norm = [n for _, n, _ in entries]
    lengths = [length for length, _, _ in entries]
    alphabet = {c: i for i, c in enumerate(sorted(set("".join(pool_norm + normalised))))}
    pool_counts = _char_counts(pool_norm, alphabet)
    pool_lengths = np.array(lengths)
    # Word-set Jaccard of every pair at once: shared words / (|A| + |B| - shared).
    vocabulary = {
        w: i for i, w in enumerate(sorted({w for n in pool_norm + normalised for w in n.split()}))
    }
    text_words, pool_words = (
        _word_matrix(normalised, vocabulary),
        _word_matrix(pool_norm, vocabulary),
    )
    shared_words = (text_words @ pool_words.T).toarray()
    text_sizes = np.asarray(text_words.sum(axis=1)).ravel()
    pool_sizes = np.asarray(pool_words.sum(axis=1)).ravel()
    found = []
    matcher = difflib.SequenceMatcher(autojunk=False)
    for row, (text, norm) in enumerate(zip(texts, normalised, strict=True)):
        if not norm:
            continue
        union = text_sizes[row] + pool_sizes - shared_words[row]
        scores = shared_words[row] / union
        # difflib's ratio is at most 2*min/(la+lb) (real_quick_ratio) and at most the share of
        # common characters (quick_ratio): only candidates within both bounds are compared.
        low = math.ceil(len(norm) * threshold / (2 - threshold))
        high = math.floor(len(norm) * (2 - threshold) / threshold)
        start, stop = bisect.bisect_left(lengths, low), bisect.bisect_right(lengths, high)
        if start < stop:
            counts = _char_counts([norm], alphabet)[0]
            shared = np.minimum(pool_counts[start:stop], counts).sum(axis=1)
            bound = 2 * shared / (pool_lengths[start:stop] + len(norm))
            matcher.set_seq2(norm)
            for offset in np.flatnonzero(bound >= threshold):
                index = start + int(offset)
                if scores[index] < threshold:
                    matcher.set_seq1(pool_norm[index])
                    scores[index] = max(scores[index], matcher.ratio())
        best = int(np.argmax(scores))
        if scores[best] >= threshold:
            found.append(NearDuplicate(text, entries[best][2], round(float(scores[best]), 3)))
    return found
