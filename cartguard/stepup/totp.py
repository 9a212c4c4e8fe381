"""RFC 6238 arithmetic: which time step a code belongs to, provisioning URIs and QR codes.

pyotp's ``verify(code, valid_window=1)`` only answers yes or no; replay protection needs to
know *which* step matched so that step (and every older one) can be refused afterwards.
This module answers that, comparing in constant time and checking every candidate step so
the time taken does not reveal which one matched.
"""

from __future__ import annotations

import base64
import hmac
import io
from datetime import datetime, timezone

import pyotp
import qrcode

ISSUER = "Cartguard Shop"
STEP_SECONDS = 30
DIGITS = 6
#: steps of clock drift accepted either side of the current one
DRIFT_STEPS = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits, what authenticator apps expect)."""
    return pyotp.random_base32()


def _epoch_seconds(moment: datetime) -> float:
    # Naive datetimes in Cartguard are UTC (see models._common.utcnow); never local time.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def time_step(moment: datetime) -> int:
    """The RFC 6238 counter for ``moment``."""
    return int(_epoch_seconds(moment) // STEP_SECONDS)


def normalize_code(code: object) -> str | None:
    """Six ASCII digits (spaces tolerated, as apps show "123 456"), else None."""
    if not isinstance(code, str) or len(code) > 20:
        return None
    digits = code.replace(" ", "").strip()
    if len(digits) != DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, moment: datetime) -> int | None:
    """The time step within the drift window whose code equals ``code``, else None.

    If two steps produce the same code (a one-in-a-million coincidence) the newest wins,
    which is the safe choice for replay protection: it burns the most steps.
    """
    current = time_step(moment)
    matched: int | None = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at_step(secret, step), code):
            matched = step
    return matched


def current_code(secret: str, moment: datetime) -> str:
    """The code an authenticator shows at ``moment`` (for dev tools and tests)."""
    return code_at_step(secret, time_step(moment))


def provisioning_uri(secret: str, customer_id: int) -> str:
    """The ``otpauth://`` URI for authenticator apps.

    The account label is the shop account number, not an e-mail address, so the QR code
    and the app's list carry no personal data beyond what the shopper already knows.
    """
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=f"account {customer_id}", issuer_name=ISSUER)


def qr_png_data_uri(uri: str) -> str:
    """A ``data:image/png;base64,...`` QR code of ``uri`` (served inline: no image URL to leak)."""
    image = qrcode.make(uri, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
