"""How amounts and dates read in the chat."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: Decimal | float, currency: str | None = "USD") -> str:
    sign = CURRENCY_SIGNS.get(currency or "USD", "")
    text = f"{Decimal(amount):,.2f}"
    return f"{sign}{text}" if sign else f"{text} {currency}"


def bullets(lines: Iterable[str]) -> str:
    """A markdown list: the widget renders markdown, and single line breaks would be lost."""
    return "\n".join(f"- {line}" for line in lines)


def date_text(value: date | datetime | None) -> str:
    if value is None:
        return "unknown"
    return f"{value.strftime('%a')} {value.day} {value.strftime('%b %Y')}"
