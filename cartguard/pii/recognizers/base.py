"""The recognizer contract: one class per label, each with its own pattern and validator.

A recognizer looks at a :class:`Context` (the text, what the dialogue expects, and a spaCy
``Doc`` built only if some recognizer asks for it) and yields :class:`Span` findings. It
never edits text; replacing is :mod:`cartguard.pii.anonymizer`'s job.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from cartguard.pii.spans import Span

if TYPE_CHECKING:  # pragma: no cover
    from spacy.tokens import Doc


class Context:
    """What recognizers may look at for one text; the spaCy doc is built lazily, once."""

    __slots__ = ("text", "expect", "_doc")

    def __init__(self, text: str, expect: frozenset[str]) -> None:
        self.text = text
        self.expect = expect
        self._doc: Doc | None = None

    @property
    def doc(self) -> Doc:
        if self._doc is None:
            from cartguard.pii.pipeline import get_nlp

            self._doc = get_nlp()(self.text)
        return self._doc

    def window_before(self, start: int, width: int = 40) -> str:
        return self.text[max(0, start - width) : start].lower()

    def window_after(self, end: int, width: int = 20) -> str:
        return self.text[end : end + width].lower()


class Recognizer(ABC):
    """Finds one kind of personal data. Subclasses set ``label`` and implement ``find``."""

    label: ClassVar[str]
    #: A cheap regex that must match somewhere before ``find`` runs (None = always run).
    hint: ClassVar[re.Pattern[str] | None] = None

    def applies(self, ctx: Context) -> bool:
        return self.hint is None or self.hint.search(ctx.text) is not None

    @abstractmethod
    def find(self, ctx: Context) -> Iterator[Span]:
        """Yield the findings in ``ctx.text``."""

    def span(self, start: int, end: int, score: float) -> Span:
        return Span(start, end, self.label, score)
