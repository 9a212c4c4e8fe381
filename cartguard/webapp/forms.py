"""The secure forms behind links, one class per link purpose, sharing one validation base.

Each form says which fields it reads, which of them may be shown back after a mistake (never a
card number, CVV or code), how to validate them, and what a valid submission changes. The
route in :mod:`.views` does the rest the same way for all: open the link, CSRF (middleware),
validate, apply, use the link up, commit, then tell the conversation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from cartguard import audit
from cartguard.account_links import (
    NOT_FROM_MESSENGER,
    check_opener,
    complete_linking,
    link_psid,
    opened_by,
)
from cartguard.channels.graph_client import psid_for_linking_token
from cartguard.clients.payment_provider import (
    CardRefused,
    CardToken,
    PaymentProviderClient,
    PaymentProviderError,
)
from cartguard.keys import load_keys
from cartguard.links import Link, LinkForbidden
from cartguard.notify import notices
from cartguard.notify.mail import OutgoingMail, mask_address
from cartguard.pii.validators import luhn_valid
from cartguard.privacy.export import export_customer
from cartguard.shop.models import Customer
from cartguard.shop.models._common import utcnow
from cartguard.shop.queries import (
    AddressChange,
    add_default_card,
    change_delivery_address,
    find_order,
)
from cartguard.stepup.enrolment import (
    CONFIRMATION_PURPOSE,
    CONFIRMATION_TTL_SECONDS,
    EnrolmentError,
    EnrolmentThrottled,
    begin_enrolment,
    confirm_enrolment,
    is_enrolled,
    request_confirmation,
)
from cartguard.stepup.service import StepUpService
from cartguard.webapp.auth import authenticate
from cartguard.webapp.outbox import Notification

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Viewer:
    """Who is submitting: the logged-in customer (if any) and the client address."""

    customer_id: int | None
    customer_name: str | None = None
    source_ip: str | None = None
    #: what Messenger's log-in button adds to the URL (``?account_linking_token=``)
    messenger_linking_token: str | None = None


@dataclass
class FormResult:
    """A successful submission: what to show, and what to tell the conversation."""

    title: str
    message: str
    notification: Notification | None = None
    download: tuple[str, bytes] | None = None  # (file name, body) for a one-time download
    details: dict[str, str] = field(default_factory=dict)
    #: an e-mail to send once the submission has committed (a confirmation link)
    mail: OutgoingMail | None = None
    #: a step of a longer form: the link stays usable and ``page`` is shown next
    keep_link: bool = False
    page: tuple[str, dict[str, Any]] | None = None  # (template, variables)


class FormRejected(Exception):
    """The submission cannot be accepted; the link stays usable unless it expires.

    ``keep_changes`` commits what the attempt recorded (a failed code counts towards the
    lockout and is audited) instead of rolling it back.
    """

    def __init__(self, message: str, *, status: int = 400, keep_changes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.keep_changes = keep_changes


class SecureForm:
    """Base of every secure form: reading, trimming and validating posted fields."""

    purpose: ClassVar[str]
    template: ClassVar[str]
    title: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()
    #: fields safe to render back into the form after a validation error
    echo_fields: ClassVar[tuple[str, ...]] = ()
    #: the form acts for the customer the link was issued to, so it needs one (who may use
    #: the link at all, signed in as that customer, is checked by :mod:`cartguard.links`)
    needs_customer: ClassVar[bool] = True

    def read(self, form: Any) -> dict[str, str]:
        """The posted fields, trimmed and capped; a field sent twice counts once."""
        data: dict[str, str] = {}
        for name in self.fields:
            value = form.get(name) if form else None
            data[name] = str(value or "").strip()[:MAX_FIELD_CHARS]
        return data

    def echo(self, data: dict[str, str]) -> dict[str, str]:
        return {name: data.get(name, "") for name in self.echo_fields}

    def context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        """Extra template variables for showing the form (GET)."""
        return {}

    def error_context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        """Template variables when the form is shown again after a mistake."""
        return self.context(session, link, viewer)

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Return ``(cleaned, errors)``; ``errors`` maps a field to a sentence for the shopper."""
        return dict(data), {}

    async def prepare(self, cleaned: dict[str, Any], services: Any) -> dict[str, Any]:
        """Work with another service before ``apply`` (``services``: the app's context).

        Runs after validation and before anything is written; raising :class:`FormRejected`
        here leaves the link usable and the database untouched. Most forms need nothing.
        """
        return cleaned

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        raise NotImplementedError

    # -- helpers shared by the forms ----------------------------------------------------

    @staticmethod
    def text(
        errors: dict[str, str], data: dict[str, str], name: str, label: str, max_len: int
    ) -> str:
        value = data.get(name, "")
        if not value:
            errors[name] = f"Please enter {label}."
        elif len(value) > max_len:
            errors[name] = f"{label[0].upper()}{label[1:]} can be at most {max_len} characters."
        elif _CONTROL.search(value):
            errors[name] = f"{label[0].upper()}{label[1:]} contains characters we can't use."
        return value


def _actor(link: Link) -> str:
    return f"customer:{link.customer_id}" if link.customer_id is not None else "anonymous"


# --- card ------------------------------------------------------------------------------------

_BRANDS = (
    ("amex", re.compile(r"^3[47]")),
    ("visa", re.compile(r"^4")),
    ("mastercard", re.compile(r"^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))")),
    ("discover", re.compile(r"^(6011|65|64[4-9])")),
)
_EXPIRY = re.compile(r"^(\d{1,2})\s*/\s*(\d{2}|\d{4})$")


def card_brand(pan: str) -> str:
    for brand, pattern in _BRANDS:
        if pattern.match(pan):
            return brand
    return "card"


def parse_expiry(value: str, now: datetime) -> tuple[int, int] | None:
    """``(month, year)`` of an expiry like ``07/29`` or ``7/2029`` that has not passed yet."""
    match = _EXPIRY.match(value.replace(" ", ""))
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        return None
    if (year, month) < (now.year, now.month) or year > now.year + 20:
        return None
    return month, year


#: the shopper's message when the provider is down or answers nonsense (details go to the log)
CARD_NOT_SAVED = (
    "We couldn't save your card just now, and nothing was stored. Please try again in a "
    "minute; this page works until the link expires."
)


class CardForm(SecureForm):
    """A new default card, tokenized by the payment provider: the shop never holds the number.

    The number, expiry, name and security code go to the provider (``prepare``); the shop
    keeps the provider's token, the brand, the last four digits and the expiry (``apply``).
    The security code is checked for shape, passed on once and never stored, logged or shown
    back; the name on the card stays with the provider too.
    """

    purpose = "card"
    template = "forms/card.html"
    title = "Add a payment card"
    fields = ("number", "expiry", "name", "cvv")
    echo_fields = ("expiry", "name")

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        pan = re.sub(r"[\s-]", "", data.get("number", ""))
        if not pan:
            errors["number"] = "Please enter the card number."
        elif not pan.isdigit() or not 12 <= len(pan) <= 19 or not luhn_valid(pan):
            errors["number"] = "That card number doesn't look right. Please check it."
        expiry = parse_expiry(data.get("expiry", ""), utcnow())
        if expiry is None:
            errors["expiry"] = "Please enter an expiry date in the future, like 08/29."
        name = self.text(errors, data, "name", "the name on the card", 100)
        cvv = data.get("cvv", "")
        brand = card_brand(pan) if "number" not in errors else "card"
        cvv_len = (4,) if brand == "amex" else (3,) if brand != "card" else (3, 4)
        if not (cvv.isdigit() and len(cvv) in cvv_len):
            digits = " or ".join(str(n) for n in cvv_len)
            errors["cvv"] = f"The security code is the {digits} digits on your card."
        cleaned = {"pan": pan, "expiry": expiry, "name": name, "cvv": cvv}
        return cleaned, errors

    async def prepare(self, cleaned: dict[str, Any], services: Any) -> dict[str, Any]:
        """Hand the card to the provider; only its token and the displayable parts go on."""
        client: PaymentProviderClient = services.payment_provider
        month, year = cleaned["expiry"]
        try:
            card = await asyncio.to_thread(
                client.tokenize_card,
                number=cleaned["pan"],
                exp_month=month,
                exp_year=year,
                cvc=cleaned["cvv"],
                name=cleaned["name"],
                idempotency_key=secrets.token_urlsafe(16),
            )
        except CardRefused as refused:
            raise FormRejected(refused.message, status=400) from None
        except PaymentProviderError as exc:
            log.error("card not saved: %s", exc)  # the message never quotes card data
            raise FormRejected(CARD_NOT_SAVED, status=503) from None
        return {"card": card}

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        card: CardToken = cleaned["card"]
        add_default_card(
            session,
            link.customer_id,
            brand=card.brand,
            last4=card.last4,
            expiry=card.expiry,
            provider_token=card.id,
        )
        audit.record(
            session,
            _actor(link),
            "payment_method.added",
            subject=_actor(link),
            details={"via": "secure_form", "brand": card.brand},
        )
        brand = {"amex": "American Express", "card": "payment"}.get(card.brand, card.brand.title())
        return FormResult(
            title="Card saved",
            message=f"Your {brand} card ending in {card.last4} is now your default payment method.",
            notification=Notification(
                "EXTERNAL_card_saved", {"card_last4": card.last4}, link.customer_id
            ),
        )


# --- shipping address ------------------------------------------------------------------------

_POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CLOSED_STATES = {
    "shipped": "has already shipped",
    "delivered": "has already been delivered",
    "cancelled": "was cancelled",
}


class AddressForm(SecureForm):
    """A new delivery address for one order that has not shipped (order id in the payload)."""

    purpose = "address"
    template = "forms/address.html"
    title = "Change the delivery address"
    fields = ("ship_name", "ship_street", "ship_city", "ship_postcode", "ship_country")
    echo_fields = fields

    def context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        order = find_order(session, link.customer_id, str(link.payload.get("order_id") or ""))
        if order is None:
            return {"order": None}
        current = {name: getattr(order, name) for name in self.fields}
        return {"order": order, "current": current}

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        cleaned = {
            "ship_name": self.text(errors, data, "ship_name", "the recipient's name", 200),
            "ship_street": self.text(errors, data, "ship_street", "the street address", 200),
            "ship_city": self.text(errors, data, "ship_city", "the city", 100),
        }
        postcode = data.get("ship_postcode", "")
        if not _POSTCODE.match(postcode):
            errors["ship_postcode"] = "Please enter the postcode (letters, digits, spaces)."
        country = data.get("ship_country", "").upper()
        if not _COUNTRY.match(country):
            errors["ship_country"] = "Please enter the two-letter country code, like US."
        cleaned.update(ship_postcode=postcode, ship_country=country)
        return cleaned, errors

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        order_id = str(link.payload.get("order_id") or "")
        outcome, order = change_delivery_address(session, link.customer_id, order_id, cleaned)
        if outcome is AddressChange.NOT_FOUND:
            raise FormRejected(
                "We couldn't find that order on your account. Please ask the assistant again.",
                status=404,
            )
        if outcome is AddressChange.CLOSED:
            state = _CLOSED_STATES.get(order.status, f"is {order.status}")
            raise FormRejected(
                f"Sorry, order {order.id} {state}, so its delivery address can no longer be "
                "changed. Please go back to the chat: the assistant can help with a return or "
                "put you in touch with our team.",
                status=409,
            )
        audit.record(
            session,
            _actor(link),
            "order.address_changed",
            subject=f"order:{order.id}",
            details={"via": "secure_form"},
        )
        return FormResult(
            title="Address updated",
            message=f"Order {order.id} will be delivered to the new address.",
            notification=Notification(
                "EXTERNAL_address_changed", {"order_id": order.id}, link.customer_id
            ),
        )


# --- one-time code (step-up on public channels) ----------------------------------------------


class OtpForm(SecureForm):
    """A step-up code typed here instead of into a public chat such as Messenger."""

    purpose = "otp"
    template = "forms/otp.html"
    title = "Confirm it's you"
    fields = ("code",)

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        code = re.sub(r"\s", "", data.get("code", ""))
        if not (code.isdigit() and len(code) == 6):
            return {}, {"code": "Please enter the 6-digit code from your authenticator app."}
        return {"code": code}, {}

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        outcome = StepUpService(session).verify(
            link.customer_id, link.conversation_id, cleaned["code"], source_ip=viewer.source_ip
        )
        if not outcome.ok:
            raise FormRejected(outcome.message, status=400, keep_changes=True)
        return FormResult(
            title="Verified",
            message="Thanks, you're verified. You can go back to the chat now.",
            notification=Notification("EXTERNAL_stepup_verified", {}, link.customer_id),
        )


# --- authenticator enrolment -----------------------------------------------------------------


# A signed-in session (a password) is not enough to enrol: the first step e-mails a
# single-use link to the address on file (:func:`request_confirmation`), and only that link,
# opened by the same signed-in customer, shows a QR code and takes the first code.


def enrolment_offer(session: Session, customer_id: int) -> dict[str, Any]:
    """What the first step shows (read only: a GET never changes anything)."""
    if is_enrolled(session, customer_id):
        return {"enrolled": True}
    customer = notices.recipient(session, customer_id)
    if customer is None:
        return {"enrolled": False, "unavailable": "this account has no e-mail address on file"}
    return {"enrolled": False, "email_hint": mask_address(customer.email)}


def email_sent_message(masked_address: str) -> str:
    minutes = CONFIRMATION_TTL_SECONDS // 60
    return (
        f"We e-mailed a link to {masked_address}. Open it in this browser while you are signed "
        f"in; it works once, for {minutes} minutes. If nothing arrives within a few minutes, "
        "check your spam folder."
    )


def request_enrolment_email(
    session: Session, customer_id: int, *, conversation_id: str | None, channel: str
) -> FormResult:
    """Issue the e-mailed link (first step of enrolment, from the chat or the account page)."""
    try:
        request = request_confirmation(
            session, customer_id, conversation_id=conversation_id, channel=channel
        )
    except EnrolmentThrottled as exc:
        raise FormRejected(f"Sorry, {exc}.", status=429) from None
    except EnrolmentError as exc:
        raise FormRejected(NOT_POSSIBLE.format(exc), status=409) from None
    return FormResult(
        title="Check your e-mail",
        message=email_sent_message(request.masked_address),
        mail=request.mail,
    )


NOT_POSSIBLE = "Setting up two-step verification isn't possible: {}."
ENROL_FAILED = (
    "That code didn't match. Check that the app shows the code for Cartguard and type the "
    "code it shows now."
)


class EnrolForm(SecureForm):
    """The chat's enrolment offer: e-mail a confirmation link to the address on file."""

    purpose = "enrol"
    template = "forms/enrol.html"
    title = "Set up two-step verification"

    def context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        return enrolment_offer(session, link.customer_id)

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        return request_enrolment_email(
            session, link.customer_id, conversation_id=link.conversation_id, channel=link.channel
        )


class EnrolEmailForm(SecureForm):
    """The e-mailed link: confirm (POST ``step=start``: the QR code, shown once), then the
    first code (POST ``step=code``), which turns two-step verification on."""

    purpose = CONFIRMATION_PURPOSE
    template = "forms/enrol_email.html"
    title = "Set up two-step verification"
    fields = ("step", "code")

    def context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        return {"enrolled": is_enrolled(session, link.customer_id), "step": "confirm"}

    def error_context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        # The pending secret is never shown again: the shopper has scanned it already.
        return {"enrolled": False, "step": "code", "retry": True}

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        if data.get("step") == "start":
            return {"step": "start"}, {}
        code = re.sub(r"\s", "", data.get("code", ""))
        if not (code.isdigit() and len(code) == 6):
            return {"step": "code"}, {"code": "Please enter the 6-digit code the app shows."}
        return {"step": "code", "code": code}, {}

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        customer_id = link.customer_id
        try:
            if cleaned["step"] == "start":
                enrolment = begin_enrolment(session, customer_id, authorised_by=link)
                shown = {
                    "step": "code",
                    "secret": enrolment.secret,
                    "qr": enrolment.qr_png_data_uri,
                }
                return FormResult(
                    title=self.title, message="", keep_link=True, page=(self.template, shown)
                )
            confirmed = confirm_enrolment(session, customer_id, cleaned["code"], authorised_by=link)
        except EnrolmentError as exc:
            raise FormRejected(NOT_POSSIBLE.format(exc), status=409) from None
        if not confirmed:
            raise FormRejected(ENROL_FAILED, keep_changes=True)
        told = bool(link.payload.get("notify_chat"))
        return FormResult(
            title="Two-step verification is on",
            message="Your authenticator app is set up. "
            + ("You can go back to the chat now." if told else "We've e-mailed you a notice."),
            notification=Notification("EXTERNAL_enrolled", {}, customer_id) if told else None,
        )


# --- data export -----------------------------------------------------------------------------


class ExportForm(SecureForm):
    """A one-time download of everything the shop holds about the customer, as JSON."""

    purpose = "export"
    template = "forms/export.html"
    title = "Download your data"

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        data = export_customer(session, link.customer_id)
        audit.record(
            session, _actor(link), "privacy.export_downloaded", subject=_actor(link), details={}
        )
        body = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        return FormResult(
            title="Your data",
            message="Your download has started.",
            download=("cartguard-my-data.json", body),
        )


# --- Messenger account linking ---------------------------------------------------------------

LINK_SIGN_IN_FAILED = "That e-mail address and password don't match an account."
LINK_TOO_MANY_TRIES = (
    "Too many unsuccessful attempts. Please wait a few minutes, then ask the assistant in "
    "Messenger for a new link."
)
LINK_CODE_NEEDED = "Please enter the 6-digit code from your authenticator app."


class SignInAttempts:
    """Failed sign-ins on linking pages, per link and per client address, kept in memory.

    A link lets its holder try passwords, so each link allows a few failures and each address
    a few more across links, in a sliding window (the shop's login page keeps the same kind
    of count). The authenticator code has its own lockout in :class:`StepUpService`.
    """

    def __init__(self, per_link: int = 5, per_address: int = 10, window: float = 15 * 60):
        self.per_link, self.per_address, self.window = per_link, per_address, window
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        cutoff = time.monotonic() - self.window
        entries = [t for t in self._failures.get(key, []) if t > cutoff]
        if entries:
            self._failures[key] = entries
        else:
            self._failures.pop(key, None)
        return entries

    def blocked(self, link_id: int, address: str | None) -> bool:
        return (
            len(self._recent(f"link:{link_id}")) >= self.per_link
            or len(self._recent(f"ip:{address}")) >= self.per_address
        )

    def failed(self, link_id: int, address: str | None) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()
        now = time.monotonic()
        for key in (f"link:{link_id}", f"ip:{address}"):
            self._failures.setdefault(key, []).append(now)


class MessengerLinkForm(SecureForm):
    """Link a Messenger user (the link's PSID) to the shop account that signs in on this page.

    Opened from Messenger's log-in button only: the ``account_linking_token`` Messenger adds
    must belong to the PSID the link was made for (:func:`cartguard.account_links.opened_by`),
    so a forwarded or phished link links nobody. The shopper then signs in here with e-mail and
    password, and the authenticator code when the account has one; a web shop session is
    neither needed nor used, because linking grants lasting access and so asks for the
    credentials now (``cartguard.links.SIGNS_IN_ON_THE_PAGE``).
    """

    purpose = "messenger_link"
    template = "forms/messenger_link.html"
    title = "Link Messenger to your account"
    fields = ("email", "password", "code", "opener")
    echo_fields = ("email",)
    needs_customer = False
    needs_login = False
    attempts = SignInAttempts()

    def context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        tapper = psid_for_linking_token(
            viewer.messenger_linking_token, page_token=load_keys().get("messenger_page_token")
        )
        return {"opener": opened_by(link, tapper)}

    def error_context(self, session: Session, link: Link, viewer: Viewer) -> dict[str, Any]:
        return {}  # the opener proof comes back from the submission (``echo``), no new lookup

    def echo(self, data: dict[str, str]) -> dict[str, str]:
        return {"email": data.get("email", ""), "opener": data.get("opener", "")}

    def validate(self, data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        if not data.get("email"):
            errors["email"] = "Please enter the e-mail address of your account."
        if not data.get("password"):
            errors["password"] = "Please enter your password."  # noqa: S105 - a sentence
        code = re.sub(r"\s", "", data.get("code", ""))
        if code and not (code.isdigit() and len(code) == 6):
            errors["code"] = LINK_CODE_NEEDED
        return {**data, "code": code}, errors

    def apply(
        self, session: Session, link: Link, cleaned: dict[str, Any], viewer: Viewer
    ) -> FormResult:
        if not check_opener(link, cleaned.get("opener")):
            raise LinkForbidden(NOT_FROM_MESSENGER)
        psid = link_psid(link)
        if self.attempts.blocked(link.id, viewer.source_ip):
            raise FormRejected(LINK_TOO_MANY_TRIES, status=429)
        customer_id = authenticate(session, cleaned["email"], cleaned["password"])
        if customer_id is None:
            self.attempts.failed(link.id, viewer.source_ip)
            raise FormRejected(LINK_SIGN_IN_FAILED, status=401)
        if is_enrolled(session, customer_id):
            if not cleaned["code"]:
                raise FormRejected(LINK_CODE_NEEDED, status=401)
            service = StepUpService(session)
            # A conversation of its own: signing in here is not a step-up of the chat.
            check = f"messenger-link-{link.id}"
            outcome = service.verify(
                customer_id, check, cleaned["code"], source_ip=viewer.source_ip
            )
            if not outcome.ok:
                raise FormRejected(outcome.message, status=401, keep_changes=True)
            service.end(check)
        complete_linking(session, customer_id, psid)
        customer = session.get(Customer, customer_id)
        name = customer.name if customer is not None else "your account"
        return FormResult(
            title="Messenger linked",
            message=f"Messenger is now linked to the account of {name}. Go back to Messenger: "
            'the assistant is answering your question there. To unlink, say "unlink my '
            'account" in Messenger, or use your account page on our site.',
            notification=Notification("EXTERNAL_messenger_linked", {}, customer_id),
        )


FORMS: dict[str, SecureForm] = {
    form.purpose: form
    for form in (
        CardForm(),
        AddressForm(),
        OtpForm(),
        EnrolForm(),
        EnrolEmailForm(),
        ExportForm(),
        MessengerLinkForm(),
    )
}
