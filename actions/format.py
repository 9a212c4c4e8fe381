"""How amounts and dates read in the chat."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: Decimal | float, currency: str | None = "USD") -> str:
    sign = CURRENCY_SIGNS.get(currency or "USD", "")
    text = f"{Decimal(amount):,.2f}"
    return f"{sign}{text}" if sign else f"{text} {currency}"


def date_text(value: date | datetime | None) -> str:
    if value is None:
        return "unknown"
    return f"{value.strftime('%a')} {value.day} {value.strftime('%b %Y')}"
