"""Edge redaction for the channels: the PII detector runs before Rasa sees a message.

This is a thin adapter over :func:`cartguard.pii.edge.protect_incoming` that

* runs the detector on one dedicated worker thread (off the event loop; the spaCy pipeline
  and the vault are then never used from two threads at once);
* fails closed: if the detector raises, the message is *not* forwarded
  (:class:`EdgeUnavailable`), because forwarding unredacted text would put card numbers and
  codes into NLU, the tracker store and the logs;
* turns the result into the metadata the dialogue reads: ``pii_removed`` lists what was
  taken out (``CREDIT_CARD`` whenever a card number was masked), so Rasa can answer
  "I removed that card number, use the secure form" itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cartguard.monitoring import metrics, signals
from cartguard.pii.edge import protect_incoming

logger = logging.getLogger(__name__)

CREDIT_CARD = "CREDIT_CARD"

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-edge")


class EdgeUnavailable(RuntimeError):
    """The PII detector could not check a message, so it must not be forwarded."""


@dataclass(frozen=True)
class Protected:
    """A message safe to hand to Rasa, and what was removed from it."""

    text: str
    pii_removed: tuple[str, ...]


def protect_sync(text: str, *, customer_id: int | None, conversation_id: str | None) -> Protected:
    """Redact ``text`` (blocking). Raises :class:`EdgeUnavailable` instead of passing it on."""
    try:
        result = protect_incoming(text, customer_id=customer_id, conversation_id=conversation_id)
    except Exception as exc:
        # The message text stays out of the log: it is exactly what could not be redacted.
        logger.error("edge redaction failed (%s); message not forwarded", type(exc).__name__)
        raise EdgeUnavailable("edge redaction failed") from exc
    labels = {str(label) for label in result.labels}
    if result.card_typed:
        labels.add(CREDIT_CARD)
        signals.note(signals.CARD_TYPED, conversation=conversation_id)  # anomaly rules
    metrics.record_pii(labels)
    return Protected(text=result.text, pii_removed=tuple(sorted(labels)))


def _load_detector() -> None:
    # The first detection builds the spaCy pipeline (seconds); doing it now, on the edge
    # thread, keeps the first shopper from waiting. A failure here surfaces on that message.
    try:
        protect_incoming("warm up", customer_id=None, conversation_id=None)
    except Exception:
        logger.exception("the PII detector failed to load: messages will be refused")


def warm_up() -> None:
    """Load the detector on the edge thread now, so the first shopper does not wait for it."""
    _executor.submit(_load_detector)


async def protect(text: str, *, customer_id: int | None, conversation_id: str | None) -> Protected:
    """Redact ``text`` on the edge worker thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor,
        lambda: protect_sync(text, customer_id=customer_id, conversation_id=conversation_id),
    )
