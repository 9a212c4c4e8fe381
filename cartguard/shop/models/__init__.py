"""Every ORM class, one module per area; importing this package registers all tables.

Areas add their module here (one import line) and a migration under ``cartguard/shop/migrations``.
"""

from cartguard.shop.models._common import Base
from cartguard.shop.models.customers import Customer, PaymentMethod
from cartguard.shop.models.orders import Order, OrderItem, OrderStatusEvent, Refund
from cartguard.shop.models.billing import Balance, Invoice
from cartguard.shop.models.support import SupportTicket
from cartguard.shop.models.conversations import ConversationOwner
from cartguard.shop.models.ops import OpsFlag
from cartguard.shop.models.audit import AuditEntry
from cartguard.shop.models.staff import StaffAccount as StaffAccount
from cartguard.shop.models.stepup import StepUpChallenge, StepUpEnrolment, StepUpSession
from cartguard.shop.models.links import SecureLink
from cartguard.shop.models.web import OutboxNotification, WebLogin, WebSession  # noqa: F401
from cartguard.shop.models.channels import WebchatSession  # noqa: F401 - and its siblings
from cartguard.shop.models.vault import VaultEntry  # noqa: F401 - cartguard.vault
from cartguard.shop.models.security import SecurityEvent  # noqa: F401 - and its siblings
from cartguard.shop.models.offers import OfferedPayload  # noqa: F401 - channels' intent guard

__all__ = [
    "AuditEntry",
    "Balance",
    "Base",
    "ConversationOwner",
    "Customer",
    "Invoice",
    "Order",
    "OrderItem",
    "OrderStatusEvent",
    "PaymentMethod",
    "Refund",
    "SecureLink",
    "StepUpChallenge",
    "StepUpEnrolment",
    "StepUpSession",
    "SupportTicket",
]
