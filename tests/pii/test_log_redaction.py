"""Log redaction: bounded work per record, nothing cut in half left in clear, URL-encoded
request lines and Sanic's access-log extra covered."""

from __future__ import annotations

import logging
import re

from cartguard.pii.tokens import CARD_MASK_RE
from cartguard.stores.log_redaction import MAX_MESSAGE_CHARS, redact_record
from tests.pii.strategies import luhn_check_digit

PAN = "4539" + "28610735"
PAN += "291"
PAN += luhn_check_digit(PAN)
SPACED = " ".join(PAN[i : i + 4] for i in range(0, 16, 4))


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def clear_digit_runs(text: str) -> list[str]:
    return re.findall(r"\d(?:[ ]?\d){11,}", CARD_MASK_RE.sub("<mask>", text))


def test_a_flood_is_cut_before_redaction_and_no_number_survives_the_cut() -> None:
    flood = " ".join([SPACED] * 3000)  # about 60 KB
    out = redact_record(record("refused POST /%s", flood)).getMessage()
    assert len(out) <= MAX_MESSAGE_CHARS + 80
    assert "more characters not logged" in out
    assert clear_digit_runs(out) == []
    # a cut inside a number leaves no head of it behind, whatever the offset
    for shift in range(1, 20):
        out = redact_record(record("x" * shift + " " + flood)).getMessage()
        assert clear_digit_runs(out) == [], shift


def test_url_encoded_paths_and_access_log_request_lines_are_redacted() -> None:
    encoded = SPACED.replace(" ", "%20")
    message = redact_record(record("refused POST /orders/%s", encoded)).getMessage()
    assert PAN[6:12] not in message.replace(" ", "") and "******" in message
    access = redact_record(record("", request=f"POST http://shop.example/x/{encoded}"))
    assert "******" in access.request and PAN not in access.request.replace(" ", "")
    assert "%20" not in access.request


def test_tracebacks_keep_their_end_and_are_redacted() -> None:
    try:
        raise ValueError(f"bad card {SPACED} " + "y" * 20_000 + " the end")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
        redact_record(rec)
    assert rec.exc_text.endswith("the end")
    assert SPACED not in rec.exc_text and len(rec.exc_text) < 9_000
