"""Log redaction: personal data is removed from log records before any handler writes them.

Rasa's debug logging prints user messages, slot values and whole trackers. Two layers:

* :class:`RedactingFilter` on every handler of the root logger (and of loggers with their
  own handlers, such as Sanic's), because a filter on a *logger* does not see records that
  propagate from child loggers, but a filter on a *handler* sees everything it writes;
* a log-record factory that redacts when the record is created, so handlers added later
  (Rasa reconfigures logging after start-up) never receive clear text either.

Each record is redacted once (it is marked), and the message, traceback and stack text are
all covered.
"""

from __future__ import annotations

import logging
from typing import Any

from cartguard.pii import redact

_MARK = "_cartguard_redacted"


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message (and traceback) by its redacted text, once."""
    if getattr(record, _MARK, False):
        return record
    setattr(record, _MARK, True)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record must not leak its raw args
        message = f"{record.msg} {record.args!r}"
    redacted = redact(message).text
    if redacted != message or record.args:
        record.msg = redacted
        record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info)).text
    elif record.exc_text:
        record.exc_text = redact(record.exc_text).text
    if record.stack_info:
        record.stack_info = redact(record.stack_info).text
    return record


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


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
    does so after Rasa has set up its handlers.
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
    return flt
