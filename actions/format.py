"""How amounts, dates and lists of records read in the chat.

Only values are formatted here; every sentence around them is a response in ``domain.yml``.
List rows are records (number, status, date, amount) separated by middle dots; the response
that introduces a list names its columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: Decimal | float, currency: str | None = "USD") -> str:
    sign = CURRENCY_SIGNS.get(currency or "USD", "")
    text = f"{Decimal(amount):,.2f}"
    return f"{sign}{text}" if sign else f"{text} {currency}"


def bullets(rows: Iterable[Iterable[str]]) -> str:
    """A markdown list, one record per line: the widget renders markdown, and single line
    breaks would be lost."""
    return "\n".join("- " + " · ".join(row) for row in rows)


def date_text(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return f"{value.strftime('%a')} {value.day} {value.strftime('%b %Y')}"
