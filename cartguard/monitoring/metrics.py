"""Prometheus metrics of every Cartguard process, and the ``/metrics`` route that serves them.

Each process (web service, action server, Rasa with our channels) keeps its own counters in
one :data:`REGISTRY` and serves them at ``/metrics``; Prometheus scrapes each process.

Guarantees:

* **No personal data in a label.** Every label takes its value from a fixed, small set
  (channel names, outcomes, PII labels, link events); anything else becomes ``"other"``.
  Action names are the one open set, so they must look like a Rasa action name and at most
  :data:`MAX_ACTION_NAMES` distinct ones are kept. Nothing a shopper types ever becomes a
  label, so an attacker cannot blow up the time-series count either.
* **Helpers never raise.** A metrics bug must not break a conversation, so every ``record_*``
  swallows and logs its own errors.
* **/metrics is not public.** Security counters tell an attacker how their attack is going,
  so the route answers a bearer token (``CARTGUARD_METRICS_TOKEN``) or, without one,
  loopback clients only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from cartguard.monitoring.rule_names import RULE_NAMES
from cartguard.pii import policy as pii_policy

log = logging.getLogger(__name__)

#: The registry of this process (not prometheus-client's global one, so tests and other
#: libraries cannot collide with our metric names).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

OTHER = "other"
CHANNELS = frozenset({"socketio", "facebook", "rest", "web"})
STEPUP_OUTCOMES = frozenset({"success", "failure", "lockout"})
GUARD_REASONS = frozenset({"rate_ip", "rate_sender", "too_long", "blocked", "typed_command"})
PII_LABELS = pii_policy.counted_labels()  # the PII policy table says which labels count
LINK_EVENTS = frozenset({"issued", "used", "expired", "refused"})
AUTH_FAILURES = frozenset({"invalid_token", "forged_session"})
MAX_ACTION_NAMES = 200
_ACTION_NAME = re.compile(r"^(action|validate|utter)_[a-z0-9_]{1,60}$")

MESSAGES = Counter(
    "cartguard_messages",
    "Messages accepted from shoppers and forwarded to Rasa, per channel.",
    ["channel"],
    registry=REGISTRY,
)
STEPUP = Counter(
    "cartguard_stepup",
    "Step-up (2FA) verifications by outcome; a lockout is also counted as a failure.",
    ["outcome"],
    registry=REGISTRY,
)
GUARD_REFUSALS = Counter(
    "cartguard_guard_refusals",
    "Messages or requests the channel guard refused (rate limits, length cap, blocklist).",
    ["channel", "reason"],
    registry=REGISTRY,
)
PII_REDACTIONS = Counter(
    "cartguard_pii_redactions",
    "Messages from which edge redaction removed personal data, per PII label.",
    ["label"],
    registry=REGISTRY,
)
LINKS = Counter(
    "cartguard_secure_links",
    "Secure-form links issued, used, found expired or refused (unknown, wrong account).",
    ["event"],
    registry=REGISTRY,
)
MESSENGER_SIGNATURE_FAILURES = Counter(
    "cartguard_messenger_signature_failures",
    "Messenger webhook calls refused because X-Hub-Signature-256 was missing or wrong.",
    registry=REGISTRY,
)
AUTH_FAILURE = Counter(
    "cartguard_auth_failures",
    "Invalid login tokens and forged or unknown webchat session ids presented to a channel.",
    ["channel", "kind"],
    registry=REGISTRY,
)
SECURITY_EVENTS = Counter(
    "cartguard_security_events",
    "Security events raised by the anomaly rules (once per rule, subject and window).",
    ["rule"],
    registry=REGISTRY,
)
BLOCKED_REQUESTS = Counter(
    "cartguard_blocked_requests",
    "Requests to the web service refused because the client address is blocked.",
    registry=REGISTRY,
)
ACTION_LATENCY = Histogram(
    "cartguard_action_latency_seconds",
    "Time the action server took to run one action (including database work).",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

_action_names: set[str] = set()
_action_lock = threading.Lock()


def _fixed(value: object, allowed: frozenset[str]) -> str:
    text = str(value) if value is not None else ""
    return text if text in allowed else OTHER


def _safely(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # metrics must never break the request they count
        log.exception("metrics: could not record a value")


def record_message(channel: str) -> None:
    """One shopper message forwarded to Rasa."""
    _safely(lambda: MESSAGES.labels(_fixed(channel, CHANNELS)).inc())


def record_stepup(outcome: str) -> None:
    """A step-up outcome; accepts ``success`` or the audit action name ``stepup.success``."""
    name = str(outcome).removeprefix("stepup.")

    def work() -> None:
        if name not in STEPUP_OUTCOMES:
            return  # other step-up audit actions (enrolled, disabled...) are not outcomes
        STEPUP.labels(name).inc()

    _safely(work)


def record_guard_refusal(channel: str, reason: str) -> None:
    """The channel guard refused a request (``rate_ip``, ``rate_sender``, ``too_long``...)."""
    _safely(
        lambda: GUARD_REFUSALS.labels(
            _fixed(channel, CHANNELS), _fixed(reason, GUARD_REASONS)
        ).inc()
    )


def record_pii(labels: Iterable[str]) -> None:
    """Edge redaction removed these labels from one message."""

    def work() -> None:
        for label in set(labels):
            PII_REDACTIONS.labels(_fixed(label, PII_LABELS)).inc()

    _safely(work)


def record_link(event: str) -> None:
    """A secure-form link was ``issued``, ``used``, found ``expired`` or ``refused``."""
    _safely(lambda: LINKS.labels(_fixed(event, LINK_EVENTS)).inc())


def record_link_error(http_status: int) -> None:
    """A link could not be used: 410 means expired or used up, anything else refused."""
    record_link("expired" if http_status == 410 else "refused")


def record_messenger_signature_failure() -> None:
    _safely(MESSENGER_SIGNATURE_FAILURES.inc)


def record_auth_failure(channel: str, kind: str) -> None:
    """An invalid login token or a forged session id reached a channel."""
    _safely(
        lambda: AUTH_FAILURE.labels(_fixed(channel, CHANNELS), _fixed(kind, AUTH_FAILURES)).inc()
    )


def record_security_event(rule: str) -> None:
    _safely(lambda: SECURITY_EVENTS.labels(_fixed(rule, RULE_NAMES)).inc())


def record_blocked_request() -> None:
    _safely(BLOCKED_REQUESTS.inc)


def action_label(name: object) -> str:
    """The label for an action name: itself if it looks like one and the set is not full."""
    if not isinstance(name, str) or not _ACTION_NAME.match(name):
        return OTHER
    with _action_lock:
        if name in _action_names:
            return name
        if len(_action_names) >= MAX_ACTION_NAMES:
            return OTHER
        _action_names.add(name)
        return name


def observe_action(name: object, seconds: float) -> None:
    _safely(lambda: ACTION_LATENCY.labels(action_label(name)).observe(max(0.0, seconds)))


@contextmanager
def time_action(name: str) -> Iterator[None]:
    """``with time_action("action_check_balance"): ...`` records how long the block took."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_action(name, time.perf_counter() - started)


def render() -> tuple[bytes, str]:
    """The exposition text of this process and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --------------------------------------------------------------------------- the HTTP route


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def client_address(request: Any, behind_proxy: bool) -> str | None:
    """The client's address: behind our proxy the hop it appended, else the socket peer.

    (The same rule as the channels' guard, kept here so that the web service and the action
    server need not import the Rasa channels.)
    """
    if behind_proxy:
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        hops = [h for h in hops if h]
        if hops:
            return hops[-1]
    ip = getattr(request, "ip", None)
    return str(ip) if ip else None


def may_scrape(request: Any, token: str | None, behind_proxy: bool) -> bool:
    """True for a matching bearer token, or for loopback clients when no token is set."""
    if token:
        presented = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        return hmac.compare_digest(presented.encode(), expected.encode())
    return _is_loopback(client_address(request, behind_proxy))


def add_metrics_route(target: Any, path: str = "/metrics") -> None:
    """Serve this process's metrics at ``path`` on a Sanic app or blueprint."""
    from sanic import response

    async def metrics_endpoint(request: Any) -> Any:
        from cartguard.settings import get_settings

        settings = get_settings()
        if not may_scrape(request, settings.metrics_token, settings.behind_tls_proxy):
            return response.text(
                "Metrics are available only to the monitoring system (a bearer token, or "
                "this machine when CARTGUARD_METRICS_TOKEN is not set).\n",
                status=403,
            )
        body, content_type = render()
        return response.raw(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    target.add_route(metrics_endpoint, path, methods=["GET"], name="cartguard_metrics")
