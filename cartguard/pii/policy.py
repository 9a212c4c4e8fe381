"""What happens to each kind of personal data: one table, read by everything that acts on it.

In the spirit of Presidio's anonymizer operators (one operator per entity), each label has one
:class:`LabelPolicy`:

* ``operator``: at the channel edge the value becomes a card **mask** (issuer digits and last
  four), a vault **token** only the action server can resolve, or a ``<LABEL>``
  **placeholder** (nothing kept). Log, tracker-store and broker redaction (no vault there)
  turn tokens into placeholders too.
* ``vault_kind`` and ``lifetime_seconds``: the ``tok_<kind>_...`` prefix and how long the vault
  keeps the value (None: the configured retention period).
* ``never_stored``: the vault refuses the value under any name, even encrypted (a card
  security code; a card number, which only the payment provider holds).
* ``expected_when``: the dialogue turn in which the value is expected; detection widens then
  (a one-time code while a step-up is pending, a password when one was asked for).
* ``tip``: the security tip the channel sends when a shopper typed it (most important first,
  in table order); ``secret``: typing it at all is a mistake to point out.
* ``counted``: edge redactions of it are counted in the ``cartguard_pii_redactions`` metric.

Readers: :mod:`cartguard.channels.tokenize`, :mod:`cartguard.pii.anonymizer`,
:mod:`cartguard.pii.analyzer`, :mod:`cartguard.vault`, :mod:`cartguard.stepup.service`,
:mod:`cartguard.monitoring.metrics`, :mod:`cartguard.channels.replies`. Nothing here imports
them back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

FIFTEEN_MINUTES = 15 * 60
TEN_MINUTES = 10 * 60


class Operator(str, enum.Enum):
    MASK = "mask"
    TOKEN = "token"  # noqa: S105 - an operator name, not a secret
    PLACEHOLDER = "placeholder"


class Expectation(str, enum.Enum):
    """Dialogue states in which a label is expected (and so detected more widely)."""

    STEPUP_PENDING = "a step-up code was asked for in the chat or a step-up link was sent"
    PASSWORD_ASKED = "the bot asked for a password"  # noqa: S105 - a description


@dataclass(frozen=True)
class LabelPolicy:
    label: str
    operator: Operator
    vault_kind: str | None = None
    lifetime_seconds: int | None = None
    never_stored: bool = False
    expected_when: Expectation | None = None
    #: how long after the prompt the value stays expected (None: while the prompt is open)
    expected_for_seconds: int | None = None
    tip: str | None = None
    secret: bool = False
    counted: bool = True


_TABLE: tuple[LabelPolicy, ...] = (
    # Order matters for tips: the first label found with a tip decides which one is sent.
    # token kind "card" only reads tokens issued before card numbers left the vault
    LabelPolicy("CREDIT_CARD", Operator.MASK, vault_kind="card", never_stored=True, tip="card"),
    LabelPolicy(
        "PASSWORD",
        Operator.PLACEHOLDER,
        vault_kind="pw",
        lifetime_seconds=FIFTEEN_MINUTES,
        expected_when=Expectation.PASSWORD_ASKED,
        tip="credentials",
        secret=True,
    ),
    LabelPolicy("US_SSN", Operator.PLACEHOLDER, vault_kind="ssn", tip="ssn", secret=True),
    LabelPolicy("CVV", Operator.PLACEHOLDER, never_stored=True),
    LabelPolicy(
        "OTP_CODE",
        Operator.TOKEN,
        vault_kind="otp",
        lifetime_seconds=FIFTEEN_MINUTES,
        expected_when=Expectation.STEPUP_PENDING,
        expected_for_seconds=TEN_MINUTES,  # as long as a step-up link stays valid
    ),
    LabelPolicy("EMAIL_ADDRESS", Operator.TOKEN, vault_kind="email"),
    LabelPolicy("PHONE_NUMBER", Operator.TOKEN, vault_kind="phone"),
    LabelPolicy("IBAN_CODE", Operator.TOKEN, vault_kind="iban"),
    LabelPolicy("PERSON", Operator.TOKEN, vault_kind="name"),
    LabelPolicy("STREET_ADDRESS", Operator.TOKEN, vault_kind="addr"),
    LabelPolicy("IP_ADDRESS", Operator.PLACEHOLDER),
    # A secure-form link is a bearer secret for ten minutes, not personal data: removed from
    # transcripts and logs, but not counted as a shopper's personal data.
    LabelPolicy("SECURE_LINK", Operator.PLACEHOLDER, counted=False),
)

#: The table by label (read-only).
POLICIES: Mapping[str, LabelPolicy] = MappingProxyType({p.label: p for p in _TABLE})

#: Other names callers may give the vault for values it must refuse like the label above.
_VAULT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"CVC": "CVV", "CARD_SECURITY_CODE": "CVV", "CARD_NUMBER": "CREDIT_CARD", "PAN": "CREDIT_CARD"}
)

#: What an unknown label gets: the safest operator, nothing kept.
_UNKNOWN = LabelPolicy("UNKNOWN", Operator.PLACEHOLDER, counted=False)


def policy_for(label: str) -> LabelPolicy:
    """The policy of ``label``; an unknown label is replaced by a placeholder, never kept."""
    return POLICIES.get(label, _UNKNOWN)


def labels_with(operator: Operator) -> frozenset[str]:
    return frozenset(p.label for p in _TABLE if p.operator is operator)


def token_kinds() -> dict[str, str]:
    """``label -> kind`` for every label that has a vault token kind."""
    return {p.label: p.vault_kind for p in _TABLE if p.vault_kind}


def token_kind(label: str) -> str:
    kind = policy_for(label).vault_kind
    if kind is None:
        raise KeyError(f"{label} has no vault token kind")
    return kind


def token_lifetimes() -> dict[str, int]:
    """``label -> seconds`` for labels whose vault entries live shorter than the retention."""
    return {p.label: p.lifetime_seconds for p in _TABLE if p.lifetime_seconds is not None}


def never_stored(of: str | None = None) -> frozenset[str]:
    """Labels (and their aliases) the vault refuses; ``of`` limits it to one label's names."""
    labels = {p.label for p in _TABLE if p.never_stored and (of is None or p.label == of)}
    aliases = {alias for alias, label in _VAULT_ALIASES.items() if label in labels}
    return frozenset(labels | aliases)


def expectable() -> frozenset[str]:
    """Labels a caller may announce as expected by the dialogue."""
    return frozenset(p.label for p in _TABLE if p.expected_when is not None)


def expected_in(state: Expectation) -> frozenset[str]:
    return frozenset(p.label for p in _TABLE if p.expected_when is state)


def counted_labels() -> frozenset[str]:
    """Labels the redaction metric counts (everything else is counted as ``other``)."""
    return frozenset(p.label for p in _TABLE if p.counted)


def secret_labels() -> frozenset[str]:
    return frozenset(p.label for p in _TABLE if p.secret)


def tip_for(labels: Iterable[str]) -> str | None:
    """The tip to send for what was removed from one message (the most important one)."""
    found = set(labels)
    for p in _TABLE:
        if p.tip and p.label in found:
            return p.tip
    return None
