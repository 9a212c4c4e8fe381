"""The recognizer contract: one class per label, each with its own pattern and validator.

A recognizer looks at a :class:`Context` (the normalized text and what the dialogue expects)
and yields :class:`Span` findings. It never edits text; replacing is
:mod:`cartguard.pii.anonymizer`'s job. Recognizers must do linear work: bounded repetitions in
their patterns, constant work per candidate.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from cartguard.pii.spans import Span


class Context:
    """What recognizers may look at for one text."""

    __slots__ = ("text", "expect")

    def __init__(self, text: str, expect: frozenset[str]) -> None:
        self.text = text
        self.expect = expect

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
