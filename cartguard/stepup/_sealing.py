"""Keep TOTP secrets encrypted at rest, in the vault.

The enrolment row holds only a vault token; the secret itself is sealed by the vault
(AES-GCM, key id on every entry, rotation). Vault entries expire, so the lifetime is chosen
here: a *pending* secret (QR shown, not yet confirmed) lives one hour, so abandoned
enrolments leave nothing behind; a confirmed secret is re-sealed to live as long as any
enrolment could (it is removed with the enrolment or by the customer's erasure instead).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cartguard.vault import Vault, get_vault

LABEL = "TOTP_SECRET"
PENDING_TTL_SECONDS = 60 * 60
ACTIVE_TTL_SECONDS = 10 * 365 * 24 * 3600


class SecretUnavailable(RuntimeError):
    """A stored secret cannot be opened (expired, erased, or its vault key was removed)."""


def _vault() -> Vault:
    # One indirection so tests can stand in a fake vault for code tokens.
    return get_vault()


def seal_secret(secret: str, customer_id: int, session: Session, *, pending: bool) -> str:
    """Store ``secret`` in the vault and return the token to keep in the enrolment row.

    The caller's ``session`` is passed on so the vault entry commits with the enrolment
    (and, on SQLite, a second connection does not wait on the caller's open transaction).
    """
    return _vault().tokenize(
        secret,
        LABEL,
        customer_id=customer_id,
        ttl_seconds=PENDING_TTL_SECONDS if pending else ACTIVE_TTL_SECONDS,
        session=session,
    )


def open_secret(ref: str, customer_id: int, session: Session) -> str:
    """Recover the secret behind ``ref``; raises :class:`SecretUnavailable` when it cannot."""
    try:
        secret = _vault().detokenize(ref, session=session)
    except Exception as exc:  # vault errors vary; callers need one kind
        raise SecretUnavailable(
            f"the vault could not return the step-up secret of customer {customer_id}"
        ) from exc
    if not secret:
        raise SecretUnavailable(
            f"the vault has no step-up secret for customer {customer_id} "
            "(expired, erased, or sealed with a key that is no longer configured)"
        )
    return secret
