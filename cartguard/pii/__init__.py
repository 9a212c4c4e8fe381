"""Personal-data detection and redaction for chat text (no Rasa, no network, no model).

``detect`` finds :class:`Span` objects with Presidio's label names (CREDIT_CARD,
EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE, US_SSN, IP_ADDRESS, PERSON, STREET_ADDRESS) plus
OTP_CODE, PASSWORD and CVV; ``redact`` replaces them (cards by a mask, the rest by
``<LABEL>``). Both are idempotent on their own output. The channel edge, which also swaps
values for vault tokens, lives in :mod:`cartguard.channels.tokenize`.
"""

from cartguard.pii.analyzer import EXPECTABLE, detect
from cartguard.pii.anonymizer import Redaction, redact
from cartguard.pii.spans import Span

__all__ = ["EXPECTABLE", "Redaction", "Span", "detect", "redact"]
