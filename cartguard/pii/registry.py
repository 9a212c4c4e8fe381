"""The registry of recognizers: one instance per label, collected at import time.

Adding a kind of personal data means adding one module under ``recognizers/`` with a class
decorated by :func:`register`, and importing it in ``recognizers/__init__.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from cartguard.pii.recognizers.base import Recognizer

R = TypeVar("R", bound="type[Recognizer]")

_RECOGNIZERS: dict[str, Recognizer] = {}


def register(cls: R) -> R:
    """Class decorator: instantiate the recognizer and make :func:`detect` use it."""
    if cls.label in _RECOGNIZERS:
        raise ValueError(f"a recognizer for {cls.label} is already registered")
    _RECOGNIZERS[cls.label] = cls()
    return cls


def recognizers() -> tuple[Recognizer, ...]:
    """Every registered recognizer (imports the built-in ones on first use)."""
    import cartguard.pii.recognizers  # noqa: F401 - registers the built-in recognizers

    return tuple(_RECOGNIZERS.values())


def labels() -> frozenset[str]:
    return frozenset(r.label for r in recognizers())
