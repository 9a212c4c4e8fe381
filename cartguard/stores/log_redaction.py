"""Log redaction: personal data is removed from log records before any handler writes them.

Rasa's debug logging prints user messages, slot values and whole trackers. Two layers:

* :class:`RedactingFilter` on every handler of the root logger (and of loggers with their
  own handlers, such as Sanic's), because a filter on a *logger* does not see records that
  propagate from child loggers, but a filter on a *handler* sees everything it writes;
* a log-record factory that redacts when the record is created, so handlers added later
  (Rasa reconfigures logging after start-up) never receive clear text either.

Each record is redacted once (it is marked), and the message, traceback, stack text and the
request line of access-log records (Sanic's ``request`` extra) are all covered. Text holding
percent-encoded bytes (a request path as sent) is URL-decoded first, so that
``4242%204242...`` is read as the digits it is; the log then shows the decoded text.

**Bounded work.** A log line can quote anything a client sent. Before redaction every part is
cut to a few KB (:data:`MAX_MESSAGE_CHARS`, :data:`MAX_TRACE_CHARS`; the cut is said in the
line), and the detector is linear, so one record costs at most a few milliseconds. Code on
an event loop that logs request data uses :func:`log_off_loop`: the record is then created,
redacted and written on a worker thread while the loop serves other clients.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

from cartguard.pii import redact

_MARK = "_cartguard_redacted"
_REQUEST_MARK = "_cartguard_request_redacted"
#: longest message (and access-log request line) redacted and written; the rest is cut
MAX_MESSAGE_CHARS = 4096
#: longest traceback or stack text kept (its end is kept: that is where the error is)
MAX_TRACE_CHARS = 8192
_REQUEST_LINE_CHARS = 1024
_PERCENT_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_TRAILING_NUMBER = re.compile(r"[\d\s._/\\|:-]+\Z")
_LEADING_NUMBER = re.compile(r"\A[\d\s._/\\|:-]+")
_log_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartguard-log")


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out.

    A number cut in two would leave a head too short to be recognised (12 digits of a card),
    so digits and separators at the cut are left out as well.
    """
    if len(text) <= limit:
        return text
    kept = _TRAILING_NUMBER.sub("", text[:limit])
    return f"{kept} [... {len(text) - len(kept)} more characters not logged]"


def _bounded_tail(text: str, limit: int = MAX_TRACE_CHARS) -> str:
    if len(text) <= limit:
        return text
    head = _TRAILING_NUMBER.sub("", text[: limit // 4])
    tail = _LEADING_NUMBER.sub("", text[len(text) - (limit - limit // 4) :])
    left_out = len(text) - len(head) - len(tail)
    return f"{head}\n[... {left_out} characters not logged ...]\n{tail}"


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message (and traceback) by its redacted text, once."""
    _redact_request_line(record)
    if getattr(record, _MARK, False):
        return record
    setattr(record, _MARK, True)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record must not leak its raw args
        message = f"{record.msg} {record.args!r}"
    if _PERCENT_ENCODED.search(message):
        message = unquote(message)  # a request path quoted as sent: read the digits it holds
    cut = bounded(message)
    redacted = redact(cut).text
    if redacted != message or record.args:
        record.msg = redacted
        record.args = None
    if record.exc_info and not record.exc_text:
        trace = logging.Formatter().formatException(record.exc_info)
        record.exc_text = redact(_bounded_tail(trace)).text
    elif record.exc_text:
        record.exc_text = redact(_bounded_tail(record.exc_text)).text
    if record.stack_info:
        record.stack_info = redact(_bounded_tail(record.stack_info)).text
    return record


def _redact_request_line(record: logging.LogRecord) -> None:
    """Sanic's access records carry the request line (URL-encoded) as an extra, which is set
    after the record factory ran: handled separately, whenever it is there, once."""
    request = getattr(record, "request", None)
    if isinstance(request, str) and request and not getattr(record, _REQUEST_MARK, False):
        setattr(record, _REQUEST_MARK, True)
        record.request = redact(bounded(unquote(request), _REQUEST_LINE_CHARS)).text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


async def log_off_loop(log: Callable[..., None], message: str, *args: Any) -> None:
    """Call ``log(message, *args)`` on the log worker thread and wait for it.

    For event-loop code whose log line quotes client data: creating the record redacts it,
    and that work (bounded, but milliseconds for a long line) then happens off the loop.
    """
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(_log_lane, functools.partial(log, message, *args))


_installed_factory = False


def _install_record_factory() -> None:
    global _installed_factory
    if _installed_factory:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed_factory = True


def _add_filter(handler: logging.Handler, flt: RedactingFilter) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(flt)


def install_log_redaction(record_factory: bool = True) -> RedactingFilter:
    """Put the filter on the root handlers (and other loggers' handlers); idempotent.

    Call it again after something reconfigures logging; ``python -m cartguard.rasa_main``
    does so after Rasa has set up its handlers. The detector is loaded here too, so the first
    record does not pay for it.
    """
    flt = RedactingFilter()
    for handler in logging.getLogger().handlers:
        _add_filter(handler, flt)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                _add_filter(handler, flt)
    if record_factory:
        _install_record_factory()
    redact("warm up: +1 415 555 0132")
    return flt
