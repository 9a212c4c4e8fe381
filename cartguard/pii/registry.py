"""The recognizers :func:`cartguard.pii.detect` runs: an explicit tuple, built from a list.

Adding a kind of personal data means writing one module under ``recognizers/`` (a
:class:`~cartguard.pii.recognizers.base.Recognizer` subclass with its pattern and validator)
and adding its class to :data:`RECOGNIZER_CLASSES`. Nothing registers itself on import, so
importing a recognizer never imports the registry (no import circle), and what runs is
visible here. What happens to each label's findings is :mod:`cartguard.pii.policy`'s job.
"""

from __future__ import annotations

from cartguard.pii.recognizers.address import StreetAddressRecognizer
from cartguard.pii.recognizers.base import Recognizer
from cartguard.pii.recognizers.card import CreditCardRecognizer
from cartguard.pii.recognizers.cvv import CvvRecognizer
from cartguard.pii.recognizers.email import EmailRecognizer
from cartguard.pii.recognizers.iban import IbanRecognizer
from cartguard.pii.recognizers.ip import IpAddressRecognizer
from cartguard.pii.recognizers.otp import OtpRecognizer
from cartguard.pii.recognizers.password import PasswordRecognizer
from cartguard.pii.recognizers.person import PersonRecognizer
from cartguard.pii.recognizers.phone import PhoneRecognizer
from cartguard.pii.recognizers.secure_link import SecureLinkRecognizer
from cartguard.pii.recognizers.ssn import UsSsnRecognizer

RECOGNIZER_CLASSES: tuple[type[Recognizer], ...] = (
    CreditCardRecognizer,
    CvvRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpAddressRecognizer,
    OtpRecognizer,
    PasswordRecognizer,
    PersonRecognizer,
    PhoneRecognizer,
    SecureLinkRecognizer,
    StreetAddressRecognizer,
    UsSsnRecognizer,
)


def _build(classes: tuple[type[Recognizer], ...]) -> tuple[Recognizer, ...]:
    labels = [cls.label for cls in classes]
    duplicates = {label for label in labels if labels.count(label) > 1}
    if duplicates:
        raise ValueError(f"more than one recognizer for {sorted(duplicates)}")
    return tuple(cls() for cls in classes)


#: One instance per label, in a fixed order.
RECOGNIZERS: tuple[Recognizer, ...] = _build(RECOGNIZER_CLASSES)
