"""Checks every incoming message passes before it is worth any further work.

Both channels call :meth:`MessageGuard.check_ip` on every request (a single machine flooding
us) and :meth:`MessageGuard.check_message` once they know which conversation a message is for
(one shopper or one runaway script), which also applies the length cap. A refusal carries
the reply to send instead of forwarding; the message itself is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cartguard.channels import replies
from cartguard.channels.ratelimit import Rate, RateLimiter, build_limiter
from cartguard.monitoring import metrics
from cartguard.monitoring.incident import blocklist
from cartguard.settings import Settings, get_settings


@dataclass(frozen=True)
class Refusal:
    """Why a message is not forwarded and what to tell the shopper."""

    reason: str  # "rate_ip" / "rate_sender" / "too_long" / "blocked"
    reply: str


class MessageGuard:
    """Rate limits and the length cap of one channel."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        ip_limiter: RateLimiter | None = None,
        sender_limiter: RateLimiter | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.max_chars = settings.message_max_chars
        self.ip_limiter = ip_limiter or build_limiter(
            Rate(settings.rate_ip_burst, settings.rate_ip_per_minute), settings
        )
        self.sender_limiter = sender_limiter or build_limiter(
            Rate(settings.rate_sender_burst, settings.rate_sender_per_minute), settings
        )

    async def check_ip(self, channel: str, ip: str | None) -> Refusal | None:
        """Count one request from ``ip``; refuse once its bucket is empty."""
        if await blocklist().is_blocked_async("ip", ip):  # incident response (monitoring)
            metrics.record_guard_refusal(channel, "blocked")
            return Refusal("blocked", replies.BLOCKED)
        if ip and not await self.ip_limiter.allow(f"{channel}:ip:{ip}"):
            metrics.record_guard_refusal(channel, "rate_ip")
            return Refusal("rate_ip", replies.TOO_FAST)
        return None

    async def check_message(self, channel: str, sender: str, text: str) -> Refusal | None:
        """Count one message of conversation ``sender`` and apply the length cap."""
        if channel == "facebook" and await blocklist().is_blocked_async("sender", sender):
            metrics.record_guard_refusal(channel, "blocked")
            return Refusal("blocked", replies.BLOCKED)
        if not await self.sender_limiter.allow(f"{channel}:sender:{sender}"):
            metrics.record_guard_refusal(channel, "rate_sender")
            return Refusal("rate_sender", replies.TOO_FAST)
        if len(text) > self.max_chars:
            metrics.record_guard_refusal(channel, "too_long")
            return Refusal("too_long", replies.too_long(self.max_chars))
        return None


def client_ip(request: Any, settings: Settings | None = None) -> str | None:
    """The address a Sanic request came from.

    Behind our own TLS proxy (``CARTGUARD_BEHIND_TLS_PROXY``) the last ``X-Forwarded-For``
    entry is the one that proxy added; earlier entries are client-controlled and ignored.
    Without a proxy the header is ignored entirely, so a client cannot pick its own bucket.
    """
    settings = settings or get_settings()
    if settings.behind_tls_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    ip = getattr(request, "ip", None)
    return str(ip) if ip else None
