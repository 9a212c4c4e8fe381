"""What the channels themselves say to a shopper, in one place.

These replies come from the channel, not from Rasa, because the message they answer was not
forwarded (too long, too fast, not allowed in this conversation). They say what happened and
what to do next, and never echo the shopper's text back.
"""

from __future__ import annotations

from cartguard.pii import policy as pii_policy


def too_long(limit: int) -> str:
    return (
        f"Sorry, that message is too long for me (the limit is {limit} characters). "
        "Please send a shorter message, or split it into a few parts."
    )


TOO_FAST = (
    "You're sending messages faster than I can read them. "
    "Please wait a moment, then send your message again."
)

BLOCKED = (
    "Sorry, this chat isn't available from your network right now. If you think this is a "
    "mistake, please contact the shop by e-mail."
)

NO_SESSION = "This chat is not connected properly. Please reload the page and try again."

NEW_CONVERSATION_SIGNED_IN = (
    "You're signed in now, so I've started a new conversation for your account. "
    "Please send your message again."
)

NEW_CONVERSATION_OTHER_ACCOUNT = (
    "This conversation belongs to a different sign-in, so I've started a new one for you. "
    "Please send your message again."
)

NEW_CONVERSATION_SIGNED_OUT = (
    "Your sign-in has expired, so I've started a new conversation. Sign in again on the "
    "shop's site to ask about your account, then send your message again."
)

UNAVAILABLE = (
    "Sorry, I can't handle messages right now because of a problem on our side. "
    "Please try again in a few minutes."
)

UNSUPPORTED_CONTENT = "Sorry, I can only read text messages here. Please type your question."

NEW_CONVERSATION = "I've started a new conversation. Please send your message again."

COMMAND_REFUSED = (
    "Sorry, I can't accept that message: it looks like one of my internal commands. "
    "Please type your question in your own words, or use the buttons I offer."
)

SIGNED_OUT = (
    "You signed out, so this chat has ended here. Sign in again on the shop's site to "
    "continue with your account."
)


# --- security tips (monitoring): sent right before a redacted message is forwarded ----------

TIP_CARD = (
    "I've removed the card number from your message so it isn't stored anywhere. Please never "
    "type card details into a chat: use our secure form instead, it only takes a minute."
)
TIP_CARD_BUTTON = {"title": "Update card securely", "payload": "/update_payment_method"}
TIP_CREDENTIALS = (
    "I've removed what looked like a password from your message. We will never ask for your "
    "password in the chat, so please don't share it here or with anyone who asks for it."
)
TIP_SSN = (
    "I've removed what looked like a Social Security number from your message. We never need "
    "it in the chat, so please keep it private."
)


def security_tip(pii_removed: object) -> tuple[str, list[dict[str, str]]] | None:
    """The tip (text and buttons) for what edge redaction removed, or None if none is due.

    A step-up code needs no tip: it is removed because it is handled privately, not because
    typing it was a mistake. One tip per message, the most important first.
    """
    labels = set(pii_removed) if isinstance(pii_removed, list | tuple | set | frozenset) else set()
    tip = pii_policy.tip_for(str(label) for label in labels)  # which one: the PII policy table
    if tip == "card":
        return TIP_CARD, [dict(TIP_CARD_BUTTON)]
    if tip == "credentials":
        return TIP_CREDENTIALS, []
    if tip == "ssn":
        return TIP_SSN, []
    return None
