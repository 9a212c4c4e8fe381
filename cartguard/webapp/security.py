"""Security headers, CSRF protection and the transport check, each decided in exactly one place.

* Every response gets the same headers from one response middleware (CSP without inline script,
  ``no-store``, ``no-referrer``, frame denial, ``nosniff``, HSTS when the request came over TLS).
* Every state-changing request (anything but GET/HEAD/OPTIONS) must carry a CSRF token, checked
  in one request middleware before any handler runs. The token is an HMAC of a random per-browser
  value kept in an HttpOnly, SameSite=Strict cookie, so it works for anonymous shoppers who
  arrive from Messenger as well as for logged-in ones, and needs no server-side state.
* :func:`check_transport` refuses to serve personal data in clear text on a non-loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from sanic.request import Request
from sanic.response import HTTPResponse

from cartguard.settings import Settings

CSRF_COOKIE = "cg_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SEED_BYTES = 32


class InsecureBindError(RuntimeError):
    """The service was asked to listen on a public address without TLS."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport(settings: Settings) -> dict[str, str] | None:
    """Return Sanic's ``ssl`` argument, or refuse to start when traffic would be in clear text.

    Serving on loopback without TLS is fine (development, or a proxy on the same host); any other
    address needs a certificate and key, or ``CARTGUARD_BEHIND_TLS_PROXY=1`` to state that a
    TLS-terminating proxy sits in front.
    """
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise InsecureBindError(
            "TLS needs both CARTGUARD_TLS_CERT and CARTGUARD_TLS_KEY; only one of them is set"
        )
    if settings.tls_cert and settings.tls_key:
        return {"cert": settings.tls_cert, "key": settings.tls_key}
    if _is_loopback(settings.host) or settings.behind_tls_proxy:
        return None
    raise InsecureBindError(
        f"refusing to serve card and address forms without TLS on {settings.host!r}, which is "
        "not a loopback address. Set CARTGUARD_TLS_CERT and CARTGUARD_TLS_KEY, or set "
        "CARTGUARD_BEHIND_TLS_PROXY=1 if a proxy in front terminates TLS, or bind to 127.0.0.1."
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """The CSP of every page: scripts only from our origin, sockets only to Rasa.

    Styles allow ``'unsafe-inline'`` because the webchat bundle injects its stylesheet at run
    time; scripts never do, and that is what matters against XSS.
    """
    rasa = _origin(settings.rasa_url)
    socket = rasa.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' {rasa} {socket}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def is_secure_request(request: Request) -> bool:
    """True when the browser reached us over TLS (directly, or through a trusted proxy)."""
    return request.scheme in ("https", "wss")


def apply_security_headers(
    request: Request, response: HTTPResponse, csp: str, *, behind_tls_proxy: bool = False
) -> None:
    """Set the headers every response carries; HSTS whenever the browser used TLS."""
    headers = response.headers
    headers["Content-Security-Policy"] = csp
    headers["Cache-Control"] = "no-store"
    headers["Pragma"] = "no-cache"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if behind_tls_proxy or is_secure_request(request):
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"


# --- CSRF ------------------------------------------------------------------------------------


def new_csrf_seed() -> str:
    return secrets.token_urlsafe(_SEED_BYTES)


def csrf_token_for(seed: str, key: bytes) -> str:
    """The form token belonging to a browser's seed (HMAC, so the cookie alone is not enough)."""
    return hmac.new(key, f"csrf|{seed}".encode(), hashlib.sha256).hexdigest()


def _valid_seed(value: str | None) -> bool:
    return (
        bool(value) and 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()
    )


def prepare_csrf(request: Request, key: bytes) -> None:
    """Give the request a CSRF seed: the browser's own, or a fresh one to be set as a cookie."""
    seed = request.cookies.get(CSRF_COOKIE)
    if _valid_seed(seed):
        request.ctx.csrf_seed = seed
        request.ctx.csrf_set_cookie = False
    else:
        request.ctx.csrf_seed = new_csrf_seed()
        request.ctx.csrf_set_cookie = True
    request.ctx.csrf_token = csrf_token_for(request.ctx.csrf_seed, key)


def csrf_ok(request: Request, key: bytes) -> bool:
    """Check a state-changing request: cookie present and the submitted token matches it."""
    if request.method in SAFE_METHODS:
        return True
    seed = request.cookies.get(CSRF_COOKIE)
    if not _valid_seed(seed):
        return False
    submitted = request.headers.get(CSRF_HEADER)
    if not submitted:
        try:
            submitted = request.form.get(CSRF_FIELD) if request.form else None
        except Exception:
            submitted = None
    if not submitted or len(submitted) > 128:
        return False
    return hmac.compare_digest(submitted, csrf_token_for(seed, key))


def rotate_csrf(request: Request, key: bytes) -> None:
    """New seed after a login or logout so a token planted before cannot be replayed after."""
    request.ctx.csrf_seed = new_csrf_seed()
    request.ctx.csrf_set_cookie = True
    request.ctx.csrf_token = csrf_token_for(request.ctx.csrf_seed, key)


def set_cookie(
    response: HTTPResponse,
    name: str,
    value: str,
    *,
    secure: bool,
    max_age: int | None = None,
) -> None:
    """Every cookie we set: HttpOnly, SameSite=Strict, path /, Secure whenever we are on TLS."""
    response.cookies[name] = value
    cookie = response.cookies[name]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = "/"
    if secure:
        cookie["secure"] = True
    if max_age is not None:
        cookie["max-age"] = max_age


def delete_cookie(response: HTTPResponse, name: str, *, secure: bool) -> None:
    set_cookie(response, name, "", secure=secure, max_age=0)
