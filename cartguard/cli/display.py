"""Printing text that shoppers typed on a staff member's terminal, safely.

A terminal obeys escape sequences: a shopper who types ``ESC [2J`` or an OSC 8 hyperlink into
the chat could otherwise clear a moderator's screen, rewrite what ``tickets show`` displays or
plant a link. The channels strip control characters when a message arrives; stored text from
before that (or from another way in) is stripped again here, right before it is printed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cartguard.control_chars import strip_control_chars

# Characters JSON leaves raw with ensure_ascii=False that a terminal still obeys or hides:
# C1 controls (8-bit CSI/OSC...), DEL and the bidirectional overrides and isolates.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shopper_text(text: str | None) -> str:
    """``text`` with every escape sequence and control character removed (newlines stay)."""
    return strip_control_chars(text or "")


def terminal_json(data: Any) -> str:
    """JSON for a terminal: the same data, with controls escaped as ``\\uXXXX`` not raw."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
