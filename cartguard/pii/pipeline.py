"""The spaCy pipeline: a blank English tokenizer plus a rule component that marks cues.

No statistical model is involved (none is available offline, and rules are auditable). The
pipeline is built once per process on first use; texts without any cue word never reach it,
which keeps :func:`cartguard.pii.detect` well under a millisecond for ordinary messages.
"""

# No ``from __future__ import annotations`` here: spaCy resolves factory signatures at runtime.
import os
from functools import lru_cache

# spaCy's thinc imports TensorFlow when present (Rasa installs it); keep its start-up chatter
# out of our logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import spacy
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

#: ``doc.spans`` key holding the cue matches (label = cue kind).
CUES = "cartguard_cues"

_NAME_WORDS = ["name", "names"]


def _cue_patterns() -> dict[str, list[list[dict]]]:
    return {
        # "my name is", "my full name is", "name's", "the name is"
        "NAME_STRONG": [
            [
                {"LOWER": {"IN": ["my", "the", "full"]}, "OP": "?"},
                {"LOWER": {"IN": ["full", "first", "last", "legal"]}, "OP": "?"},
                {"LOWER": {"IN": _NAME_WORDS}},
                {"LOWER": {"IN": ["is", "'s", "be"]}},
            ],
            [{"LOWER": {"IN": ["name", "surname", "customer", "cardholder"]}}, {"ORTH": ":"}],
            [{"LOWER": "call"}, {"LOWER": "me"}],
        ],
        # "I am Jane Doe", "this is Jane Doe": only with two capitalised words after it
        "NAME_WEAK": [
            [{"LOWER": "i"}, {"LOWER": {"IN": ["am", "'m", "m"]}}],
            [{"LOWER": {"IN": ["this", "it"]}}, {"LOWER": {"IN": ["is", "'s"]}}],
            [{"LOWER": {"IN": ["regards", "sincerely", "thanks", "cheers"]}}, {"ORTH": ","}],
        ],
        # "Mr. Smith", "Dr Jane Doe"
        "NAME_TITLE": [
            [
                {"LOWER": {"IN": ["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam"]}},
                {"ORTH": ".", "OP": "?"},
            ],
            [{"LOWER": {"IN": ["mr.", "mrs.", "ms.", "dr.", "prof."]}}],
        ],
    }


class CueMarker:
    """spaCy component: runs a token Matcher and stores cue spans in ``doc.spans[CUES]``."""

    def __init__(self, nlp: Language) -> None:
        self.matcher = Matcher(nlp.vocab)
        for label, patterns in _cue_patterns().items():
            self.matcher.add(label, patterns)

    def __call__(self, doc: Doc) -> Doc:
        spans = [
            Span(doc, start, end, label=match_id) for match_id, start, end in self.matcher(doc)
        ]
        doc.spans[CUES] = spans
        return doc


@Language.factory("cartguard_cues")
def _make_cue_marker(nlp: Language, name: str) -> CueMarker:
    return CueMarker(nlp)


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    """The process-wide pipeline (spaCy ``blank("en")`` + ``cartguard_cues``)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("cartguard_cues")
    return nlp
