"""Wiring monitoring into the processes: one call per Sanic app.

* :func:`install_web` (web service): ``/metrics``, refusal of blocked client addresses, and
  the background task that flushes signals and runs the anomaly rules every
  ``CARTGUARD_ANOMALY_SCAN_SECONDS``.
* :func:`instrument_action_server` (action server): ``/metrics`` and the latency of every
  action call, labelled by action name.
* The Rasa process gets ``/metrics`` from the webchat channel's blueprint
  (``/webhooks/socketio/metrics``, see ``docs/monitoring.md``).

Running the rules in the web service means one always-on place does it; ``cartguard
security scan`` from cron does the same for installations that run several web replicas or
want it independent of the web service. Both are safe at once: events are raised once per
window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from cartguard.monitoring import metrics, signals
from cartguard.monitoring.incident import blocklist
from cartguard.shop.db import session_scope

log = logging.getLogger(__name__)

BLOCKED_PAGE = (
    "<!doctype html><title>Not available</title><h1>Not available</h1>"
    "<p>Sorry, the shop can't serve requests from your network right now. If you think this "
    "is a mistake, please contact us by e-mail.</p>"
)


def scan_once() -> int:
    """Flush this process's signals, run the rules; returns how many new events were raised."""
    from cartguard.monitoring.anomaly import scan

    signals.flush()
    with session_scope() as session:
        return len(scan(session))


async def monitor_forever(interval: float) -> None:
    """Run :func:`scan_once` every ``interval`` seconds until cancelled; never dies of errors."""
    while True:
        await asyncio.sleep(interval)
        try:
            raised = await asyncio.to_thread(scan_once)
            if raised:
                log.warning("anomaly scan raised %d new security event(s)", raised)
        except asyncio.CancelledError:
            raise
        except Exception:  # try again next time
            log.exception("anomaly scan failed; retrying in %.0f s", interval)


def install_web(app: Sanic, *, run_monitor: bool = True) -> None:
    """Add ``/metrics``, the blocklist check and (optionally) the periodic anomaly scan."""
    metrics.add_metrics_route(app)

    @app.on_request
    async def refuse_blocked(request: Request) -> HTTPResponse | None:
        address = request.remote_addr or request.ip
        if await blocklist().is_blocked_async("ip", address):
            metrics.record_blocked_request()
            return response.html(BLOCKED_PAGE, status=403)
        return None

    if not run_monitor:
        return

    @app.after_server_start
    async def start_monitor(app: Sanic, _loop: Any) -> None:
        interval = max(5, app.ctx.settings.anomaly_scan_seconds)
        app.ctx.monitor_task = asyncio.get_running_loop().create_task(monitor_forever(interval))

    @app.before_server_stop
    async def stop_monitor(app: Sanic, _loop: Any) -> None:
        task = getattr(app.ctx, "monitor_task", None)
        if task is not None:
            task.cancel()


def instrument_action_server(app: Sanic) -> None:
    """``/metrics`` and per-action latency on rasa-sdk's app (after the auth middleware)."""
    metrics.add_metrics_route(app)

    @app.on_request
    async def start_timer(request: Request) -> None:
        if request.method == "POST" and request.path == "/webhook":
            request.ctx.cartguard_started = time.perf_counter()

    @app.on_response
    async def stop_timer(request: Request, _response: HTTPResponse) -> None:
        started = getattr(request.ctx, "cartguard_started", None)
        if started is None:
            return
        try:
            name = (request.json or {}).get("next_action")
        except Exception:  # a body that is not JSON is still timed
            name = None
        metrics.observe_action(name, time.perf_counter() - started)
