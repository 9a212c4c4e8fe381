"""Removing terminal control sequences from text that people typed.

Shopper text travels to places that interpret control characters: a staff member's terminal
(``tickets show``, ``privacy transcript``), log files read with ``less``, the dashboards. An ESC
sequence there can clear the screen, rewrite what an operator sees, or plant a clickable link
(OSC 8). The channels therefore strip them before anything else sees a message, and the staff
tools can call the same function again before printing stored text.

:func:`strip_control_chars` removes

* whole escape sequences: CSI (``ESC [ ... final``, also the 8-bit ``0x9B`` form), OSC / DCS /
  SOS / PM / APC strings with their terminator (BEL, ``ESC \\`` or ``0x9C``) on the same line,
  so a hyperlink's hidden target goes with it, and any other ``ESC`` sequence; removing only
  the ``ESC`` byte would leave ``[2J`` litter behind;
* every other C0 control (``0x00``-``0x1F``) except newline and tab, DEL, and every C1 control
  (``0x80``-``0x9F``);
* the Unicode bidirectional overrides and isolates (``U+202A``-``U+202E``,
  ``U+2066``-``U+2069``), which reorder what a terminal shows without being visible themselves.

Carriage returns become newlines (``\\r\\n`` and a lone ``\\r`` alike): a bare ``\\r`` would
let a line overwrite itself in a terminal. Everything else, including emoji and every script's
letters, is kept unchanged. The result never contains a character the function removes, and
applying it twice changes nothing.
"""

from __future__ import annotations

import re

# Strings up to their terminator on the same line: OSC (]), DCS (P), SOS (X), PM (^), APC (_),
# 7- and 8-bit. Without a terminator only the introducer goes (below): the rest is plain text.
_STRING_SEQUENCE = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"
# CSI: parameters, intermediates, one final byte (absent when the text ends mid-sequence).
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
# Any other escape: intermediates and one final byte.
_OTHER_ESCAPE = r"\x1b[ -/]*[0-~]?"
_SEQUENCES = re.compile(f"{_STRING_SEQUENCE}|{_CSI}|{_OTHER_ESCAPE}")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CARRIAGE_RETURN = re.compile(r"\r\n?")


def strip_control_chars(text: str) -> str:
    """``text`` without escape sequences and control characters; newlines and tabs stay."""
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    text = _CARRIAGE_RETURN.sub("\n", text)
    text = _SEQUENCES.sub("", text)
    return _CONTROLS.sub("", text)


def has_control_chars(text: str) -> bool:
    """True when :func:`strip_control_chars` would change ``text``."""
    return strip_control_chars(text) != text
