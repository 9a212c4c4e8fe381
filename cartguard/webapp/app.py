"""The Sanic application factory and the ``serve`` entry point of the web service.

All cross-cutting checks are the two middlewares below: on the way in, who is logged in and
the CSRF check of every state-changing request; on the way out, the security headers and the
CSRF cookie. Handlers in :mod:`.views` can therefore not forget either.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sanic import Sanic
from sanic.exceptions import MethodNotSupported, NotFound, PayloadTooLarge, SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from cartguard.clients.payment_provider import PaymentProviderClient
from cartguard.clients.rasa_api import RasaClient
from cartguard.keys import load_keys
from cartguard.monitoring.service import install_web as install_monitoring
from cartguard.settings import Settings, get_settings
from cartguard.shop.db import DatabaseUnavailable, get_engine, session_scope
from cartguard.stores.log_redaction import install_log_redaction, log_off_loop
from cartguard.webapp import auth, views
from cartguard.webapp.outbox import retry_forever
from cartguard.webapp.security import (
    CSRF_COOKIE,
    InsecureBindError,
    apply_security_headers,
    check_transport,
    content_security_policy,
    csrf_ok,
    is_secure_request,
    prepare_csrf,
    set_cookie,
)
from cartguard.webapp.templating import make_environment, render

__all__ = ["InsecureBindError", "create_app", "serve"]

STATIC_DIR = Path(__file__).parent / "static"
WIDGET_BUNDLE = STATIC_DIR / "vendor" / "webchat.js"
MAX_REQUEST_BYTES = 64 * 1024  # forms are tiny; anything bigger is not a shopper
#: threads delivering form results to Rasa (each waits for a Rasa turn, mostly idle)
DELIVERY_THREADS = 16

log = logging.getLogger("cartguard.webapp")
_app_numbers = itertools.count(1)
_LINK_PATH = re.compile(r"/s/[^/?\s]+")


class HideLinkTokens(logging.Filter):
    """Access logs show ``/s/<hidden>``: a link token is a credential until it is used."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if isinstance(request, str):
            record.request = _LINK_PATH.sub("/s/<hidden>", request)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if "/s/" in message:
            record.msg, record.args = _LINK_PATH.sub("/s/<hidden>", message), ()
        return True


def _install_log_filter() -> None:
    for name in ("sanic.access", "sanic.error", "sanic.root", "cartguard.webapp"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideLinkTokens) for f in logger.filters):
            logger.addFilter(HideLinkTokens())


def _web_key(session_key: bytes) -> bytes:
    """The web service's own subkey, so its cookies can never be confused with other uses."""
    return hmac.new(session_key, b"cartguard-webapp/v1", hashlib.sha256).digest()


def create_app(settings: Settings | None = None, *, rasa_client: RasaClient | None = None) -> Sanic:
    """Build the web service. ``rasa_client`` lets tests point notifications elsewhere."""
    settings = settings or get_settings()
    keys = load_keys(settings)
    app = Sanic(f"cartguard_web_{next(_app_numbers)}")
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES
    app.config.KEEP_ALIVE_TIMEOUT = 5
    if settings.behind_tls_proxy:
        app.config.PROXIES_COUNT = 1  # trust X-Forwarded-Proto/-For from the one proxy in front

    ctx = app.ctx
    ctx.settings = settings
    ctx.keys = keys
    ctx.web_key = _web_key(keys.raw("session_key"))
    ctx.engine = get_engine(settings.database_url)
    ctx.jinja = make_environment()
    ctx.csp = content_security_policy(settings)
    ctx.secure_cookies = bool(settings.tls_cert) or settings.behind_tls_proxy
    ctx.widget_ready = WIDGET_BUNDLE.exists()
    ctx.rasa_client = rasa_client or RasaClient.from_settings(settings, keys)
    # card numbers go to the payment provider; a missing API key stops the start here
    ctx.payment_provider = PaymentProviderClient.from_settings(settings, keys)
    ctx.login_throttle = views.LoginThrottle()
    ctx.log = log
    ctx.pending_deliveries = set()
    # form results go to Rasa on threads of their own: a burst of submissions waits for Rasa,
    # not for the default pool's few threads that sign-ins (argon2) and mail also need
    ctx.delivery_pool = ThreadPoolExecutor(
        max_workers=DELIVERY_THREADS, thread_name_prefix="cartguard-deliver"
    )
    _install_log_filter()

    app.static("/static", str(STATIC_DIR), name="static")
    views.register(app)
    install_monitoring(app)  # /metrics, blocked addresses, the periodic anomaly scan
    _install_middleware(app)
    _install_error_pages(app)
    _install_outbox_loop(app)
    return app


def _prepare(request: Request) -> None:
    """Per-request state every template needs; safe to run twice (Sanic reruns it on errors)."""
    if getattr(request.ctx, "prepared", False):
        return
    request.ctx.prepared = True
    ctx = request.app.ctx
    prepare_csrf(request, ctx.web_key)
    request.ctx.customer_id = None
    request.ctx.customer_name = None
    request.ctx.session_expires_at = None
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if cookie and not request.path.startswith("/static/"):
        try:
            with session_scope(ctx.engine) as session:
                identity = auth.identify(session, cookie, ctx.web_key)
        except DatabaseUnavailable:
            identity = None
        if identity is not None:
            request.ctx.customer_id = identity.customer_id
            request.ctx.customer_name = identity.customer_name
            request.ctx.session_expires_at = identity.expires_at


def _install_middleware(app: Sanic) -> None:
    @app.on_request
    async def before(request: Request) -> HTTPResponse | None:
        _prepare(request)
        if not csrf_ok(request, request.app.ctx.web_key):
            # the path is the client's: its redaction runs off the event loop (bounded anyway)
            await log_off_loop(
                log.info, "refused %s %s: missing or wrong CSRF token", request.method, request.path
            )
            return render(
                request,
                "error.html",
                status=403,
                title="Please try again",
                message="This form was open too long or was sent from another site, so we "
                "didn't accept it. Please go back, reload the page and submit it again.",
            )
        return None

    @app.on_response
    async def after(request: Request, response: HTTPResponse) -> None:
        ctx = request.app.ctx
        if getattr(request.ctx, "csrf_set_cookie", False):
            set_cookie(
                response,
                CSRF_COOKIE,
                request.ctx.csrf_seed,
                secure=ctx.secure_cookies or is_secure_request(request),
            )
        apply_security_headers(
            request, response, ctx.csp, behind_tls_proxy=ctx.settings.behind_tls_proxy
        )


def _install_error_pages(app: Sanic) -> None:
    def page(request: Request, status: int, title: str, message: str) -> HTTPResponse:
        _prepare(request)
        return render(request, "error.html", status=status, title=title, message=message)

    @app.exception(NotFound)
    async def not_found(request: Request, exc: Exception) -> HTTPResponse:
        return page(request, 404, "Page not found", "There is no page at this address.")

    @app.exception(MethodNotSupported)
    async def not_allowed(request: Request, exc: Exception) -> HTTPResponse:
        return page(request, 405, "Not allowed", "This page can't be used that way.")

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exc: Exception) -> HTTPResponse:
        return page(request, 413, "Too much data", "That form submission was too large.")

    @app.exception(DatabaseUnavailable)
    async def db_down(request: Request, exc: Exception) -> HTTPResponse:
        log.error("database unavailable: %s", exc)
        return page(
            request,
            503,
            "Temporarily unavailable",
            "The shop is having trouble right now; nothing was changed. Please try again soon.",
        )

    @app.exception(SanicException, Exception)
    async def failure(request: Request, exc: Exception) -> HTTPResponse:
        status = getattr(exc, "status_code", 500) or 500
        if status >= 500:
            # type only: exception text could quote what a shopper typed
            await log_off_loop(
                log.error,
                "request %s %s failed: %s",
                request.method,
                request.path,
                type(exc).__name__,
            )
        return page(
            request,
            status,
            "Something went wrong",
            "Something went wrong on our side and nothing was changed. Please try again; if it "
            "keeps happening, go back to the chat and ask for help.",
        )


def _install_outbox_loop(app: Sanic) -> None:
    @app.after_server_start
    async def start_outbox(app: Sanic, _loop: object) -> None:
        interval = max(1, app.ctx.settings.outbox_retry_seconds)
        # the running loop directly: Sanic's add_task needs app.loop, unset under create_server
        loop = asyncio.get_running_loop()
        app.ctx.outbox_task = loop.create_task(retry_forever(interval, lambda: app.ctx.rasa_client))

    @app.before_server_stop
    async def stop_outbox(app: Sanic, _loop: object) -> None:
        task = getattr(app.ctx, "outbox_task", None)
        if task is not None:
            task.cancel()
        app.ctx.delivery_pool.shutdown(wait=False)  # what is pending stays in the outbox


class _LogFormat(logging.Formatter):
    """Plain lines; Sanic's access records keep their data in extras, so spell those out."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request = getattr(record, "request", None)
        if request is not None and not record.getMessage():
            line += f"{request} {getattr(record, 'status', '')} {getattr(record, 'host', '')}"
        return line


def configure_logging(settings: Settings, *, redact: bool = True) -> None:
    """Log to the data directory's log file too; ``redact`` adds the shared PII log filter.

    The web service never logs request bodies in the first place; the filter is the second
    line of defence. Tests switch it off to prove the first line holds on its own.
    """
    settings.log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    target = str(settings.log_file.resolve())
    if not any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        handler = logging.FileHandler(settings.log_file)
        handler.setFormatter(_LogFormat("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not redact:
        return
    # The shared redacting filter: no personal data in any log line, whoever writes it. It is
    # imported directly: a service that cannot redact its logs does not start.
    install_log_redaction()


def serve(settings: Settings | None = None) -> None:
    """Run the web service in the foreground; refuses clear text on a public address."""
    settings = settings or get_settings()
    ssl = check_transport(settings)
    configure_logging(settings)
    app = create_app(settings)
    scheme = "https" if ssl else "http"
    log.info("web service on %s://%s:%d", scheme, settings.host, settings.web_port)
    app.run(host=settings.host, port=settings.web_port, ssl=ssl, access_log=True, workers=1)
