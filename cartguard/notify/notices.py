"""Security notices by e-mail: an authenticator was set up, step-up was reset, or locked.

Each notice goes to the address on file once the transaction that made the change commits, so
the customer hears of a change they did not make even when the attacker holds their password
and their chat. Callers add one line inside their transaction::

    from cartguard.notify import notices
    notices.notify(session, customer_id, notices.LOCKOUT, minutes=15)

A customer without a usable address (erased, or an address we cannot send to) gets no notice;
that is logged, never raised: a notice must not undo the change it reports.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from cartguard.notify.mail import MailError, compose, send_after_commit
from cartguard.shop.models import Customer

log = logging.getLogger(__name__)

SHOP_NAME = "Cartguard Outdoor"
ENROLLED = "enrolled"
RESET = "reset"
LOCKOUT = "lockout"
KINDS = frozenset({ENROLLED, RESET, LOCKOUT})


def recipient(session: Session, customer_id: int) -> Customer | None:
    """The customer to write to, or None when there is no address we may use."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.pseudonymized or not customer.email:
        return None
    return customer


def notify(session: Session, customer_id: int, kind: str, **context: Any) -> bool:
    """Queue the ``kind`` notice for ``customer_id``; sent after commit. True when queued."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice {kind!r}; expected one of {sorted(KINDS)}")
    customer = recipient(session, customer_id)
    if customer is None:
        log.info("notice %s for customer %s not sent: no address on file", kind, customer_id)
        return False
    try:
        mail = compose(
            customer.email,
            f"notice_{kind}",
            name=customer.name,
            shop_name=SHOP_NAME,
            **context,
        )
    except MailError as exc:
        log.warning("notice %s for customer %s not sent: %s", kind, customer_id, exc)
        return False
    send_after_commit(session, mail)
    return True
