"""Route handlers: the shop page with the chat, login, privacy notice, health, secure forms.

Handlers stay short: headers, CSRF and "who is logged in" are settled by the middleware in
:mod:`.app` before any of these run, and per-purpose form logic lives in :mod:`.forms`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import partial
from typing import Any

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from cartguard.account_links import list_links, unlink
from cartguard.identity import issue_login_token
from cartguard.links import LinkError, LinkLoginRequired, LinkNotFound, consume_link, open_link
from cartguard.monitoring import metrics
from cartguard.notify.mail import MailError
from cartguard.notify.mail import send as send_mail
from cartguard.shop.db import DatabaseUnavailable, session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.seed import PRODUCTS
from cartguard.webapp import auth
from cartguard.webapp.forms import (
    FORMS,
    FormRejected,
    FormResult,
    SecureForm,
    Viewer,
    enrolment_offer,
    request_enrolment_email,
)
from cartguard.webapp.outbox import deliver_pending, enqueue
from cartguard.webapp.security import delete_cookie, rotate_csrf, set_cookie
from cartguard.webapp.templating import render

CHAT_TOKEN_TTL_SECONDS = 60 * 60
#: where a login may send the browser next: only our own pages, never an outside address
_SAFE_NEXT = re.compile(r"^/(s/[A-Za-z0-9_-]{10,100}|account/2fa|account/messenger)?$")
LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = 15 * 60


def db(request: Request) -> AbstractContextManager[Session]:
    return session_scope(request.app.ctx.engine)


def _viewer(request: Request) -> Viewer:
    return Viewer(
        customer_id=request.ctx.customer_id,
        customer_name=request.ctx.customer_name,
        source_ip=request.remote_addr or request.ip,
        messenger_linking_token=request.args.get("account_linking_token"),
    )


def error_page(request: Request, status: int, title: str, message: str) -> HTTPResponse:
    return render(request, "error.html", status=status, title=title, message=message)


# --- the shop page ---------------------------------------------------------------------------


async def index(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return render(
        request,
        "index.html",
        products=PRODUCTS[:6],
        rasa_url=ctx.settings.rasa_url,
        widget_ready=ctx.widget_ready,
    )


async def privacy(request: Request) -> HTTPResponse:
    return render(request, "privacy.html", retention_days=request.app.ctx.settings.retention_days)


async def healthz(request: Request) -> HTTPResponse:
    """Liveness plus a database round trip; says nothing about anyone."""
    try:
        with db(request) as session:
            session.execute(text("SELECT 1"))
    except DatabaseUnavailable:
        return response.json({"status": "degraded", "database": "unavailable"}, status=503)
    return response.json({"status": "ok", "database": "ok"})


async def chat_token(request: Request) -> HTTPResponse:
    """A fresh webchat login token for the logged-in shopper (same-origin, never cached).

    The page calls this again before each token expires (``static/chat.js``), so the chat
    stays signed in exactly as long as the shop: only a live shop session gets a token, and a
    token lives at most an hour and never past the end of that session. ``owner`` is a
    per-install pseudonym of the account so the page can start a new conversation when a
    different shopper uses the same browser tab.
    """
    customer_id = request.ctx.customer_id
    if customer_id is None:
        return response.json({"token": None, "owner": "anonymous"})
    ttl = CHAT_TOKEN_TTL_SECONDS
    session_ends = getattr(request.ctx, "session_expires_at", None)
    if session_ends is not None:
        ttl = min(ttl, int((session_ends - utcnow()).total_seconds()))
    if ttl <= 0:
        return response.json({"token": None, "owner": "anonymous"})
    token = issue_login_token(
        customer_id,
        ttl_seconds=ttl,
        keys=request.app.ctx.keys,
        # logout (or a staff revocation) of this shop session ends the chat token too
        session_ref=auth.session_ref(
            request.cookies.get(auth.SESSION_COOKIE), request.app.ctx.web_key
        ),
    )
    owner = auth.owner_pseudonym(customer_id, request.app.ctx.web_key)
    return response.json({"token": token, "owner": owner, "expires_in": ttl})


# --- login -----------------------------------------------------------------------------------


class LoginThrottle:
    """Failed logins per client address in a sliding window, kept in memory (demo login)."""

    def __init__(self, limit: int = LOGIN_FAILURE_LIMIT, window: float = LOGIN_FAILURE_WINDOW):
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str) -> deque[float]:
        entries = self._failures[client]
        cutoff = time.monotonic() - self.window
        while entries and entries[0] < cutoff:
            entries.popleft()
        return entries

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def _safe_next(value: str | None) -> str:
    return value if value and _SAFE_NEXT.match(value) else "/"


async def login(request: Request) -> HTTPResponse:
    next_url = _safe_next(request.args.get("next") or (request.form or {}).get("next"))
    if request.method == "GET":
        return render(request, "login.html", next_url=next_url, error=None, email="")
    form = request.form or {}
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")
    client = request.remote_addr or request.ip or "?"
    throttle: LoginThrottle = request.app.ctx.login_throttle
    if throttle.blocked(client):
        return render(
            request,
            "login.html",
            status=429,
            next_url=next_url,
            email=email,
            error="Too many unsuccessful attempts. Please wait a few minutes and try again.",
        )
    ctx = request.app.ctx

    def check() -> str | None:
        with db(request) as session:
            customer_id = auth.authenticate(session, email, password)
            if customer_id is None:
                return None
            return auth.start_session(
                session, customer_id, ctx.web_key, timedelta(hours=ctx.settings.web_session_hours)
            )

    cookie = await asyncio.to_thread(check)  # argon2 takes tens of milliseconds: not on the loop
    if cookie is None:
        throttle.failed(client)
        return render(
            request,
            "login.html",
            status=401,
            next_url=next_url,
            email=email,
            error="That e-mail address and password don't match an account.",
        )
    throttle.succeeded(client)
    rotate_csrf(request, ctx.web_key)
    redirect = response.redirect(next_url, status=303)
    set_cookie(
        redirect,
        auth.SESSION_COOKIE,
        cookie,
        secure=ctx.secure_cookies,
        max_age=ctx.settings.web_session_hours * 3600,
    )
    return redirect


async def logout(request: Request) -> HTTPResponse:
    if request.method == "GET":
        return render(request, "logout.html")
    ctx = request.app.ctx
    with db(request) as session:
        auth.end_session(session, request.cookies.get(auth.SESSION_COOKIE), ctx.web_key)
    rotate_csrf(request, ctx.web_key)
    redirect = response.redirect("/", status=303)
    delete_cookie(redirect, auth.SESSION_COOKIE, secure=ctx.secure_cookies)
    # the widget keeps the conversation id in sessionStorage: the next shopper starts afresh
    redirect.headers["Clear-Site-Data"] = '"storage"'
    return redirect


# --- authenticator set-up for a logged-in shopper ---------------------------------------------


MAIL_NOT_SENT = (
    "We couldn't send the e-mail just now, and nothing was set up. Please try again in a few "
    "minutes from your account page (Two-step verification)."
)


async def _send_confirmation(request: Request, result: FormResult) -> HTTPResponse | None:
    """Send a form's e-mail after its transaction committed; an error page when that failed."""
    if result.mail is None:
        return None
    try:
        await asyncio.to_thread(send_mail, result.mail)
    except MailError as exc:
        request.app.ctx.log.error("confirmation e-mail not sent: %s", exc)
        return error_page(request, 503, "E-mail not sent", MAIL_NOT_SENT)
    return None


async def account_2fa(request: Request) -> HTTPResponse:
    """Two-step verification for a signed-in shopper: GET shows the state and changes nothing;
    POST e-mails the confirmation link (a password alone never enrols an authenticator)."""
    customer_id = request.ctx.customer_id
    if customer_id is None:
        return response.redirect("/login?next=/account/2fa", status=303)
    if request.method == "GET":
        with db(request) as session:
            extra = enrolment_offer(session, customer_id)
        return render(request, "account_2fa.html", problem=None, **extra)
    try:
        with db(request) as session:
            result = request_enrolment_email(
                session, customer_id, conversation_id=None, channel="web"
            )
    except FormRejected as rejected:
        with db(request) as session:
            extra = enrolment_offer(session, customer_id)
        return render(
            request, "account_2fa.html", status=rejected.status, problem=rejected.message, **extra
        )
    failed = await _send_confirmation(request, result)
    if failed is not None:
        return failed
    return render(request, "done.html", title=result.title, message=result.message, notified=False)


# --- Messenger links of a logged-in shopper ---------------------------------------------------


async def account_messenger(request: Request) -> HTTPResponse:
    """See whether Messenger is linked to this account, and unlink it (POST, CSRF, audited)."""
    customer_id = request.ctx.customer_id
    if customer_id is None:
        return response.redirect("/login?next=/account/messenger", status=303)
    message = None
    with db(request) as session:
        if request.method == "POST":
            removed = unlink(session, customer_id, actor=f"customer:{customer_id}")
            message = (
                "Messenger is no longer linked to your account. The assistant there will ask "
                "you to sign in again before it answers questions about your account."
                if removed
                else "Messenger was not linked to your account; nothing changed."
            )
        links = list_links(session, customer_id)
    return render(request, "account_messenger.html", links=links, message=message)


# --- secure forms ----------------------------------------------------------------------------


def _form_page(
    request: Request,
    form: SecureForm,
    token: str,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    extra: dict[str, Any] | None = None,
    template: str | None = None,
) -> HTTPResponse:
    return render(
        request,
        template or form.template,
        status=status,
        form=form,
        title=form.title,
        action=f"/s/{token}",
        values=values or {},
        errors=errors or {},
        problem=problem,
        **(extra or {}),
    )


def _result_page(request: Request, result: FormResult) -> HTTPResponse:
    if result.download is not None:
        name, body = result.download
        return response.raw(
            body,
            content_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return render(
        request,
        "done.html",
        title=result.title,
        message=result.message,
        notified=result.notification is not None,
    )


async def secure_form(request: Request, token: str) -> HTTPResponse:
    """Show (GET) or process (POST) the form a link was issued for.

    One transaction per submission: validate, apply, use the link up, queue the notification.
    Applying before consuming lets a wrong code count towards the lockout without burning the
    link; if another request used the link meanwhile, ``consume_link`` raises and everything
    (including the applied change) is rolled back. Rasa is told only after the commit.
    """
    viewer = _viewer(request)
    outcome: FormResult | None = None
    conversation_id = ""
    try:
        with db(request) as session:
            link = open_link(session, token, viewer_customer_id=viewer.customer_id)
            form = FORMS.get(link.purpose)
            if form is None:
                raise LinkNotFound()
            if form.needs_customer and link.customer_id is None:
                return error_page(
                    request,
                    400,
                    "This link can't be used",
                    "This form needs to know whose account it is for. Please sign in on our "
                    "website and ask the assistant there.",
                )
            if request.method == "GET":
                return _form_page(request, form, token, extra=form.context(session, link, viewer))
            data = form.read(request.form)
            cleaned, errors = form.validate(data)
            if errors:
                return _form_page(
                    request,
                    form,
                    token,
                    status=400,
                    values=form.echo(data),
                    errors=errors,
                    extra=form.error_context(session, link, viewer),
                )
            try:
                cleaned = await form.prepare(cleaned, request.app.ctx)  # e.g. card -> provider
                outcome = form.apply(session, link, cleaned, viewer)
            except FormRejected as rejected:
                if not rejected.keep_changes:
                    session.rollback()
                return _form_page(
                    request,
                    form,
                    token,
                    status=rejected.status,
                    values=form.echo(data),
                    problem=rejected.message,
                    extra=form.error_context(session, link, viewer),
                )
            if outcome.keep_link and outcome.page is not None:
                # one step of a longer form (enrolment: the QR code); the link stays usable
                template, shown = outcome.page
                return _form_page(request, form, token, template=template, extra=shown)
            consume_link(session, token, viewer_customer_id=viewer.customer_id)
            metrics.record_link("used")
            conversation_id = link.conversation_id
            if outcome.notification is not None:
                enqueue(session, conversation_id, outcome.notification)
    except LinkLoginRequired as exc:
        metrics.record_link_error(exc.http_status)
        return render(
            request,
            "login_required.html",
            status=exc.http_status,
            title="Sign in",
            next_url=f"/s/{token}",
        )
    except LinkError as exc:
        metrics.record_link_error(exc.http_status)
        titles = {404: "Link not valid", 410: "Link expired", 403: "Not your link"}
        return error_page(request, exc.http_status, titles.get(exc.http_status, "Link"), str(exc))
    except DatabaseUnavailable:
        return error_page(
            request,
            503,
            "Temporarily unavailable",
            "We couldn't save this right now and nothing was changed. Please try again in a "
            "minute; your link still works until it expires.",
        )
    if outcome.notification is not None:
        _deliver_soon(request.app, conversation_id)
    failed = await _send_confirmation(request, outcome)
    if failed is not None:
        return failed
    return _result_page(request, outcome)


def _deliver_soon(app: Sanic, conversation_id: str) -> None:
    """Tell the conversation now without making the shopper wait for Rasa's answer."""
    client = app.ctx.rasa_client

    async def deliver() -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(
                app.ctx.delivery_pool, partial(deliver_pending, conversation_id, client=client)
            )
        except Exception:
            app.ctx.log.exception("outbox: immediate delivery failed; the retry loop will resend")

    task = asyncio.get_running_loop().create_task(deliver())
    app.ctx.pending_deliveries.add(task)  # keep a reference until it is done
    task.add_done_callback(app.ctx.pending_deliveries.discard)


def register(app: Sanic) -> None:
    app.add_route(index, "/", methods=["GET"])
    app.add_route(privacy, "/privacy", methods=["GET"])
    app.add_route(healthz, "/healthz", methods=["GET"])
    app.add_route(chat_token, "/api/chat-token", methods=["GET"])
    app.add_route(login, "/login", methods=["GET", "POST"])
    app.add_route(logout, "/logout", methods=["GET", "POST"])
    app.add_route(account_2fa, "/account/2fa", methods=["GET", "POST"])
    app.add_route(account_messenger, "/account/messenger", methods=["GET", "POST"])
    app.add_route(secure_form, "/s/<token:str>", methods=["GET", "POST"])
