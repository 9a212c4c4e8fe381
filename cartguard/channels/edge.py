"""Edge redaction for the channels: the PII detector runs before Rasa sees a message.

This is a thin adapter over :mod:`cartguard.channels.tokenize` (its functions looked up on the
module at each call, so a test can break them) that

* runs the detector off the event loop, on worker threads, in two lanes: messages up to
  :data:`SHORT_MESSAGE_CHARS` on one, longer ones on another, so that a flood of long messages
  never queues ahead of a shopper's short one (the detector is linear in the text, but 10 KB
  still costs tens of milliseconds); anything over :data:`MAX_EDGE_CHARS` is refused unread;
* asks the shop database whether a step-up code is expected in the conversation (the gate
  recorded it when it asked in the chat or sent a step-up link): only then is a bare six-digit
  number tokenized as a code. The answer comes from the server side, never from the client;
* does that lookup and the vault's tokens (a shop database transaction each) on threads of
  their own, not on the detector's lane: a database that does not answer (the soak's
  blackhole) then holds up only the messages that need it, instead of every message of the
  replica queueing behind one stuck transaction until the channel gave up on them after 15 s;
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
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cartguard.channels import tokenize as pii_edge
from cartguard.monitoring import metrics, signals
from cartguard.pii import policy
from cartguard.pii.spans import Span
from cartguard.shop.db import session_scope
from cartguard.stepup.service import code_pending

logger = logging.getLogger(__name__)

CREDIT_CARD = "CREDIT_CARD"
#: messages up to this length use the short lane (the chat's own cap is 1,000 by default)
SHORT_MESSAGE_CHARS = 2_000
#: nothing longer is read at all (channels cap messages far below this)
MAX_EDGE_CHARS = 64_000
#: what a pending step-up makes the detector expect
_EXPECTED_WHILE_STEPUP = policy.expected_in(policy.Expectation.STEPUP_PENDING)
# six digits somewhere, in any script and whatever is between them: worth asking the database
_MAYBE_CODE = re.compile(r"(?:\d\D{0,3}){5}\d")

_short_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-edge")
_long_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-edge-long")
#: the edge's database work (step-up lookup, vault tokens); a stuck transaction holds one of these
_db_lane = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cartguard-edge-db")


class EdgeUnavailable(RuntimeError):
    """The PII detector could not check a message, so it must not be forwarded."""


@dataclass(frozen=True)
class Protected:
    """A message safe to hand to Rasa, and what was removed from it."""

    text: str
    pii_removed: tuple[str, ...]


def _worth_asking(conversation_id: str | None, text: str) -> bool:
    """Whether the database could change how ``text`` is read (it might hold a code)."""
    return bool(conversation_id and _MAYBE_CODE.search(text))


def expected_in(conversation_id: str | None, text: str) -> frozenset[str]:
    """What the dialogue waits for in this conversation, from the shop database."""
    if not _worth_asking(conversation_id, text):
        return frozenset()
    with session_scope() as session:
        pending = code_pending(session, conversation_id)
    return _EXPECTED_WHILE_STEPUP if pending else frozenset()


def protect_sync(text: str, *, customer_id: int | None, conversation_id: str | None) -> Protected:
    """Redact ``text`` (blocking). Raises :class:`EdgeUnavailable` instead of passing it on."""
    _refuse_unread(text)
    try:
        expect = expected_in(conversation_id, text)
        spans = pii_edge.detect_incoming(text, expect)
        result = pii_edge.redact_incoming(
            text, spans, customer_id=customer_id, conversation_id=conversation_id
        )
    except Exception as exc:
        raise _unavailable(exc) from exc
    return _protected(result, conversation_id)


def _refuse_unread(text: str) -> None:
    if len(text) > MAX_EDGE_CHARS:
        logger.error("edge redaction refused a %d-character message unread", len(text))
        raise EdgeUnavailable("message too long for the edge")


def _unavailable(exc: Exception) -> EdgeUnavailable:
    # The message text stays out of the log: it is exactly what could not be redacted.
    logger.error("edge redaction failed (%s); message not forwarded", type(exc).__name__)
    return EdgeUnavailable("edge redaction failed")


def _protected(result: pii_edge.EdgeResult, conversation_id: str | None) -> Protected:
    labels = {str(label) for label in result.labels}
    if result.card_typed:
        labels.add(CREDIT_CARD)
        signals.note(signals.CARD_TYPED, conversation=conversation_id)  # anomaly rules
    metrics.record_pii(labels)
    return Protected(text=result.text, pii_removed=tuple(sorted(labels)))


def _detect_or_redact(text: str, expect: frozenset[str]) -> pii_edge.EdgeResult | list[Span]:
    """On the detector's lane: the finished result, or the spans when tokens need the vault."""
    spans = pii_edge.detect_incoming(text, expect)
    if pii_edge.needs_vault(spans):
        return spans
    return pii_edge.redact_incoming(text, spans)


def _load_detector() -> None:
    # The first detection loads phonenumbers' metadata; doing it now, on the edge thread,
    # keeps the first shopper from waiting. A failure here surfaces on that message.
    try:
        pii_edge.detect_incoming("warm up +1 415 555 0132")
    except Exception:
        logger.exception("the PII detector failed to load: messages will be refused")


def warm_up() -> None:
    """Load the detector on the edge thread now, so the first shopper does not wait for it."""
    _short_lane.submit(_load_detector)


async def protect(text: str, *, customer_id: int | None, conversation_id: str | None) -> Protected:
    """Redact ``text``: detection on an edge lane (by length), database work beside it."""
    _refuse_unread(text)
    lane = _short_lane if len(text) <= SHORT_MESSAGE_CHARS else _long_lane
    loop = asyncio.get_running_loop()
    try:
        expect: frozenset[str] = frozenset()
        if _worth_asking(conversation_id, text):  # else no thread hop for nothing
            expect = await loop.run_in_executor(_db_lane, expected_in, conversation_id, text)
        step = await loop.run_in_executor(lane, _detect_or_redact, text, expect)
        if isinstance(step, pii_edge.EdgeResult):
            result = step
        else:
            result = await loop.run_in_executor(
                _db_lane,
                lambda: pii_edge.redact_incoming(
                    text, step, customer_id=customer_id, conversation_id=conversation_id
                ),
            )
    except Exception as exc:
        raise _unavailable(exc) from exc
    return _protected(result, conversation_id)
