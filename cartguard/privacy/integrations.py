"""The other Cartguard areas privacy reaches into, each behind one explicit check.

Erasure and retention must reach the vault, step-up state, secure links and the Messenger
account link. Those areas are separate modules; when one of them is not installed (only the
absence of the module itself counts - a module that exists but fails to import is a bug and
raises) the step reports ``None`` ("not installed") instead of a count, and the reports and
CLI show that, so a gap is visible rather than silent.
"""

from __future__ import annotations

import importlib
import logging
import re
from datetime import datetime
from types import ModuleType

from sqlalchemy import delete
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def optional_module(name: str) -> ModuleType | None:
    """Import ``name`` or return ``None`` when that very module does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


# --- redaction ----------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\+?\d[\d\s().-]{4,}\d")


def _fallback_redact(text: str) -> str:
    # Used only while cartguard.pii is absent: errs on the side of hiding too much.
    return _DIGITS.sub("[NUMBER]", _EMAIL.sub("[EMAIL]", text))


def redact_text(text: str | None) -> str | None:
    """Redact text shown to staff or exported (``cartguard.pii``; a strict fallback without it)."""
    if text is None:
        return None
    pii = optional_module("cartguard.pii")
    redact = getattr(pii, "redact", None)  # a half-built package has no redact() yet
    if redact is None:
        return _fallback_redact(text)
    return redact(text).text


# --- vault --------------------------------------------------------------------------------


def _vault():
    get_vault = getattr(optional_module("cartguard.vault"), "get_vault", None)
    return None if get_vault is None else get_vault()


def vault_forget_customer(customer_id: int, session: Session | None = None) -> int | None:
    """Delete the customer's vault entries, inside ``session``'s transaction when given."""
    vault = _vault()
    return None if vault is None else int(vault.forget_customer(customer_id, session=session))


def vault_forget_conversation(conversation_id: str, session: Session | None = None) -> int | None:
    vault = _vault()
    if vault is None:
        return None
    return int(vault.forget_conversation(conversation_id, session=session))


def vault_purge_expired() -> int | None:
    vault = _vault()
    return None if vault is None else int(vault.purge_expired())


# --- step-up ------------------------------------------------------------------------------


def stepup_forget_customer(session: Session, customer_id: int) -> int | None:
    """Remove the customer's TOTP enrolment and every step-up session they hold."""
    models = optional_module("cartguard.shop.models.stepup")
    if models is None:
        return None
    removed = 0
    enrolment = optional_module("cartguard.stepup.enrolment")
    remove = getattr(enrolment, "remove_enrolment", None) if enrolment else None
    if remove is not None:
        removed += int(bool(remove(session, customer_id)))
    else:  # the step-up area offers no remover: delete its rows for this customer directly
        removed += (
            session.execute(
                delete(models.StepUpEnrolment).where(
                    models.StepUpEnrolment.customer_id == customer_id
                )
            ).rowcount
            or 0
        )
    removed += (
        session.execute(
            delete(models.StepUpSession).where(models.StepUpSession.customer_id == customer_id)
        ).rowcount
        or 0
    )
    return removed


def stepup_end_conversation(session: Session, conversation_id: str) -> None:
    service = optional_module("cartguard.stepup.service")
    if service is not None:
        service.StepUpService(session).end(conversation_id)


def stepup_purge_expired(session: Session, now: datetime) -> int | None:
    service = optional_module("cartguard.stepup.service")
    if service is None:
        return None
    return int(service.StepUpService(session, now=lambda: now).purge_expired())


# --- secure links and Messenger account links ---------------------------------------------


def links_purge_expired(session: Session, now: datetime) -> int | None:
    links = optional_module("cartguard.links")
    return None if links is None else int(links.purge_expired_links(session, now=now))


def links_forget_customer(session: Session, customer_id: int) -> int | None:
    """Drop the customer's secure links (open or used): they only point at old conversations."""
    models = optional_module("cartguard.shop.models.links")
    if models is None:
        return None
    table = models.SecureLink
    return session.execute(delete(table).where(table.customer_id == customer_id)).rowcount or 0


def messenger_unlink(session: Session, customer_id: int) -> int | None:
    linking = optional_module("cartguard.channels.account_linking")
    if linking is None:
        return None
    result = linking.unlink(session, customer_id)
    return int(result or 0)


# --- per-customer and per-conversation rows of other areas ---------------------------------

#: (module, class, column) of rows that exist only because of one customer; erasure deletes
#: them. The web logins hold the customer's e-mail address; sessions are their digests.
CUSTOMER_ROWS = (
    ("cartguard.shop.models.web", "WebLogin", "customer_id"),
    ("cartguard.shop.models.web", "WebSession", "customer_id"),
)
#: Rows that exist only because of one conversation; erasure and retention delete them.
CONVERSATION_ROWS = (
    ("cartguard.shop.models.channels", "WebchatSession", "conversation_id"),
    ("cartguard.shop.models.web", "OutboxNotification", "conversation_id"),
    ("cartguard.shop.models.stepup", "StepUpSession", "conversation_id"),
    ("cartguard.shop.models.links", "SecureLink", "conversation_id"),
)


def _delete_rows(session: Session, spec: tuple[str, str, str], values: list) -> int:
    module = optional_module(spec[0])
    model = getattr(module, spec[1], None) if module else None
    if model is None or not values:
        return 0
    column = getattr(model, spec[2])
    return session.execute(delete(model).where(column.in_(values))).rowcount or 0


def forget_customer_rows(session: Session, customer_id: int) -> int:
    return sum(_delete_rows(session, spec, [customer_id]) for spec in CUSTOMER_ROWS)


def forget_conversation_rows(session: Session, conversation_ids: list[str]) -> int:
    removed = 0
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        removed += sum(_delete_rows(session, spec, chunk) for spec in CONVERSATION_ROWS)
    return removed
