"""Privacy tools: export, erasure, retention and the shopper-side consent helpers.

The conversation side (consent, "forget this conversation", export and delete intents after
step-up) lives in the actions; they call the functions re-exported here. This package
imports nothing from Rasa.
"""

from cartguard.privacy.erasure import (
    ConversationForgotten,
    ErasureReport,
    erase_customer,
    forget_conversation,
)
from cartguard.privacy.export import CustomerNotFound, export_customer
from cartguard.privacy.retention import PurgeReport, purge

__all__ = [
    "ConversationForgotten",
    "CustomerNotFound",
    "ErasureReport",
    "PurgeReport",
    "erase_customer",
    "export_customer",
    "forget_conversation",
    "purge",
]
