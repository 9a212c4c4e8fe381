"""Public identifiers: recognisable prefixes so that NLU and the PII detector never confuse an
order id with a one-time code, a phone number or a card number."""

from __future__ import annotations

import re
import secrets

ORDER_ID_RE = re.compile(r"\bCG-?(\d{6})\b", re.IGNORECASE)
INVOICE_ID_RE = re.compile(r"\bINV-?(\d{4})-?(\d{5})\b", re.IGNORECASE)


def new_order_id() -> str:
    return f"CG-{secrets.randbelow(900000) + 100000}"


def new_refund_id() -> str:
    return f"RF-{secrets.randbelow(900000) + 100000}"


def new_ticket_id() -> str:
    return f"TK-{secrets.randbelow(90000) + 10000}"


def normalize_order_id(raw: str | None) -> str | None:
    """``cg482913``, ``CG 482913``-ish inputs become ``CG-482913``; anything else ``None``."""
    if not raw:
        return None
    match = ORDER_ID_RE.search(raw.replace(" ", "-"))
    return f"CG-{match.group(1)}" if match else None


def normalize_invoice_id(raw: str | None) -> str | None:
    if not raw:
        return None
    match = INVOICE_ID_RE.search(raw.replace(" ", "-"))
    return f"INV-{match.group(1)}-{match.group(2)}" if match else None
