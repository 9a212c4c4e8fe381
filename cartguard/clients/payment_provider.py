"""The one client for the payment provider's card tokenization API.

The shop never holds a card number (PCI DSS: no stored PAN unless needed). The secure card
form hands the number, expiry, name and security code to the provider and keeps only what the
provider answers: an opaque token id, the brand, the last four digits and the expiry.

The API has the shape of a real provider's (Stripe-like), so swapping the local stand-in
(``python -m devtools.payment_provider``) for a real provider changes a URL and a key:

* ``POST /v1/tokens`` with ``{"card": {"number", "exp_month", "exp_year", "cvc", "name"}}``
  and an ``Idempotency-Key`` header answers ``{"id", "brand", "last4", "exp_month",
  "exp_year"}``; a card the provider refuses answers HTTP 402 with
  ``{"error": {"type": "card_error", "code", "param", "message"}}``;
* ``DELETE /v1/tokens/<id>`` forgets a saved card (erasure).

The API key travels in the ``Authorization`` header. Every failure is one of two exceptions:
:class:`CardRefused` (the shopper can fix it: the message is theirs) or
:class:`PaymentProviderUnavailable` (nothing was stored; the message is for the operator's log).
Neither message ever contains what the shopper typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from cartguard.keys import Keys, load_keys
from cartguard.settings import Settings, get_settings

#: seconds to open the connection, and to wait for the answer
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0

_TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_BRANDS = frozenset({"visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay"})

#: what the shopper reads for each refusal code (the provider's own text is not shown as is)
_REFUSALS: dict[str, tuple[str, str]] = {
    "incorrect_number": ("number", "That card number doesn't look right. Please check it."),
    "invalid_number": ("number", "That card number doesn't look right. Please check it."),
    "invalid_expiry_month": ("expiry", "Please check the expiry date on your card."),
    "invalid_expiry_year": ("expiry", "Please check the expiry date on your card."),
    "expired_card": ("expiry", "This card has expired. Please use another card."),
    "invalid_cvc": ("cvv", "Please check the security code on your card."),
    "incorrect_cvc": ("cvv", "Please check the security code on your card."),
    "card_declined": (
        "number",
        "Your bank declined this card. Please use another card or contact your bank.",
    ),
}


class PaymentProviderError(RuntimeError):
    """Base of the client's errors; the message never quotes card data."""


class PaymentProviderUnavailable(PaymentProviderError):
    """The provider could not be reached, timed out, refused our key or answered nonsense.

    Nothing was saved on the shop's side; the shopper may simply try again later.
    """


class CardRefused(PaymentProviderError):
    """The provider refused the card itself; ``field`` and ``message`` are for the shopper."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"card refused by the payment provider: {code}")
        self.code = code
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CardToken:
    """Everything the shop may keep about a card."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @property
    def expiry(self) -> str:
        """``MM/YYYY``, as the shop stores it."""
        return f"{self.exp_month:02d}/{self.exp_year}"


@dataclass(frozen=True)
class PaymentProviderClient:
    """Calls the provider's tokenization API with the installation's API key."""

    base_url: str
    api_key: str
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS
    read_timeout: float = READ_TIMEOUT_SECONDS

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, keys: Keys | None = None
    ) -> PaymentProviderClient:
        """The configured client; a missing API key stops the caller here, at start-up."""
        settings = settings or get_settings()
        keys = keys or load_keys(settings)
        return cls(
            base_url=settings.payment_provider_url.rstrip("/"),
            api_key=keys.get("payment_provider_key"),
        )

    def __repr__(self) -> str:  # never print the key
        return f"PaymentProviderClient(base_url={self.base_url!r})"

    # -- API ------------------------------------------------------------------------------

    def tokenize_card(
        self,
        *,
        number: str,
        exp_month: int,
        exp_year: int,
        cvc: str,
        name: str,
        idempotency_key: str,
    ) -> CardToken:
        """Hand a card to the provider; returns the token and what the shop may keep.

        The same ``idempotency_key`` sent twice (a retry after a lost answer) gets the same
        token back instead of a second saved card.
        """
        body = {
            "card": {
                "number": number,
                "exp_month": exp_month,
                "exp_year": exp_year,
                "cvc": cvc,
                "name": name,
            }
        }
        data = self._request("POST", "/v1/tokens", body, {"Idempotency-Key": idempotency_key})
        token = self._parse_token(data)
        if token.last4 != number[-4:]:
            raise PaymentProviderUnavailable(
                "the payment provider answered with another card's details; nothing was saved"
            )
        return token

    def delete_token(self, token_id: str) -> bool:
        """Ask the provider to forget a saved card; ``False`` when it did not know the token."""
        if not _TOKEN_ID.fullmatch(token_id or ""):
            return False
        try:
            self._request("DELETE", f"/v1/tokens/{quote(token_id, safe='')}", None, {})
        except _NotFound:
            return False
        return True

    # -- plumbing -------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = requests.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={
                    "Authorization": f"Bearer {self.api_key}",
                    "Accept": "application/json",
                    **headers,
                },
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise PaymentProviderUnavailable(
                f"the payment provider at {self.base_url} did not answer in time"
            ) from exc
        except requests.RequestException as exc:
            raise PaymentProviderUnavailable(
                f"the payment provider at {self.base_url} could not be reached "
                f"({type(exc).__name__}); in development start it with "
                "`.venv/bin/python -m devtools.payment_provider`"
            ) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        status = response.status_code
        if status in (401, 403):
            raise PaymentProviderUnavailable(
                f"the payment provider refused our API key (HTTP {status}): check "
                "CARTGUARD_PAYMENT_PROVIDER_KEY (or payment_provider_key in the key file)"
            )
        if status == 404:
            raise _NotFound(path)
        if status == 402 and isinstance(data, dict):
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            code = str(error.get("code") or "card_declined")
            field, message = _REFUSALS.get(code, _REFUSALS["card_declined"])
            raise CardRefused(code, field, message)
        if not 200 <= status < 300 or not isinstance(data, dict):
            raise PaymentProviderUnavailable(
                f"the payment provider answered HTTP {status} to {method} {path.split('/')[2]}"
            )
        return data

    @staticmethod
    def _parse_token(data: dict[str, Any]) -> CardToken:
        try:
            token = CardToken(
                id=str(data["id"]),
                brand=str(data.get("brand") or "card").lower(),
                last4=str(data["last4"]),
                exp_month=int(data["exp_month"]),
                exp_year=int(data["exp_year"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # JSON allows Infinity
            raise PaymentProviderUnavailable(
                "the payment provider's answer lacks the token fields"
            ) from exc
        if (
            not _TOKEN_ID.fullmatch(token.id)
            or not re.fullmatch(r"\d{4}", token.last4)
            or not 1 <= token.exp_month <= 12
            or not 2000 <= token.exp_year <= 2100
        ):
            raise PaymentProviderUnavailable("the payment provider's answer is malformed")
        if token.brand not in _BRANDS:
            token = CardToken(token.id, "card", token.last4, token.exp_month, token.exp_year)
        return token


class _NotFound(PaymentProviderError):
    """The provider does not know that resource (only used for deletion)."""
