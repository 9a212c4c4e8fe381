"""IP_ADDRESS: IPv4 dotted quads and IPv6 addresses, validated by :mod:`ipaddress`."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cartguard.pii.recognizers.base import Context, Recognizer
from cartguard.pii.spans import Span
from cartguard.pii.validators import ip_valid

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


class IpAddressRecognizer(Recognizer):
    label = "IP_ADDRESS"
    hint = re.compile(r"\d\.\d|:.*:")

    def find(self, ctx: Context) -> Iterator[Span]:
        for pattern in (_IPV4, _IPV6):
            for match in pattern.finditer(ctx.text):
                value = match.group()
                if pattern is _IPV6 and (value.count(":") < 7 and "::" not in value):
                    continue
                if len(value) > 2 and ip_valid(value):
                    yield self.span(match.start(), match.end(), 0.95)
