"""A local stand-in for a card payment provider's tokenization API (development and tests only).

The shop hands card numbers to a payment provider and keeps only the provider's token, the
brand, the last four digits and the expiry (``cartguard.clients.payment_provider``). In
development this module plays the provider, with the shape of a real one's API:

* ``POST /v1/tokens`` ``{"card": {"number", "exp_month", "exp_year", "cvc", "name"}}`` ->
  ``{"id", "object": "card_token", "brand", "last4", "exp_month", "exp_year"}``; an
  ``Idempotency-Key`` header makes a retried request return the first answer;
* ``GET /v1/tokens/<id>`` -> the same fields (never the number); ``DELETE /v1/tokens/<id>``;
* errors as ``{"error": {"type", "code", "param", "message"}}``: 401 for a wrong API key,
  402 ``card_error`` for a card it refuses, 400 for a malformed request;
* test cards: ``4000000000000002`` is declined, ``4000000000000127`` has a wrong security code.

Run it with ``.venv/bin/python -m devtools.payment_provider`` (port ``PAYMENT_PROVIDER_PORT``,
default 8090, always 127.0.0.1). It answers only the installation's ``payment_provider_key``
and refuses to start with anything but generated dev keys: it stores card numbers.

Its store is the provider's side, not the shop's: ``$CARTGUARD_DATA_DIR/payment-provider/``
(directory 0700, files 0600), with each card number encrypted (AES-256-GCM) under the stand-in's
own key file in that directory. The security code is checked for shape and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sqlite3
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HOST = "127.0.0.1"
DEFAULT_PORT = 8090
STORE_DIR = "payment-provider"
MAX_BODY_BYTES = 16 * 1024
DECLINED_CARD = "4000000000000002"
WRONG_CVC_CARD = "4000000000000127"

_TOKEN_PATH = re.compile(r"^/v1/tokens/([A-Za-z0-9_-]{8,64})$")
_BRANDS = (
    ("amex", re.compile(r"^3[47]")),
    ("visa", re.compile(r"^4")),
    ("mastercard", re.compile(r"^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))")),
    ("discover", re.compile(r"^(6011|65|64[4-9])")),
    ("diners", re.compile(r"^3(0[0-5]|[68])")),
    ("jcb", re.compile(r"^35(2[89]|[3-8])")),
    ("unionpay", re.compile(r"^62")),
)


class CardError(Exception):
    """A card the provider refuses (HTTP 402)."""

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code, self.param, self.message = code, param, message


class RequestError(Exception):
    """A malformed request (HTTP 400)."""


def _luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _brand(number: str) -> str:
    for brand, pattern in _BRANDS:
        if pattern.match(number):
            return brand
    return "card"


def _int(value: object, param: str) -> int:
    if isinstance(value, bool):
        raise RequestError(f"{param} must be a whole number")
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise RequestError(f"{param} must be a whole number") from exc


def check_card(card: object, today: datetime | None = None) -> dict[str, Any]:
    """Validate a card like a provider would; returns the cleaned fields or raises."""
    if not isinstance(card, dict):
        raise RequestError("the body must be {'card': {...}}")
    number = re.sub(r"[\s-]", "", str(card.get("number") or ""))
    if not (number.isdigit() and 12 <= len(number) <= 19 and _luhn_ok(number)):
        raise CardError("incorrect_number", "number", "Your card number is incorrect.")
    month = _int(card.get("exp_month"), "exp_month")
    year = _int(card.get("exp_year"), "exp_year")
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardError("invalid_expiry_month", "exp_month", "The expiry month is invalid.")
    now = today or datetime.now(timezone.utc)
    if year > now.year + 20:
        raise CardError("invalid_expiry_year", "exp_year", "The expiry year is invalid.")
    if (year, month) < (now.year, now.month):
        raise CardError("expired_card", "exp_month", "Your card has expired.")
    cvc = str(card.get("cvc") or "")
    brand = _brand(number)
    if not (cvc.isdigit() and len(cvc) in ((4,) if brand == "amex" else (3, 4))):
        raise CardError("invalid_cvc", "cvc", "Your card's security code is invalid.")
    if number == DECLINED_CARD:
        raise CardError("card_declined", "number", "Your card was declined.")
    if number == WRONG_CVC_CARD:
        raise CardError("incorrect_cvc", "cvc", "Your card's security code is incorrect.")
    name = str(card.get("name") or "")[:200]
    return {"number": number, "exp_month": month, "exp_year": year, "brand": brand, "name": name}


def _private_file(path: Path) -> None:
    """Create ``path`` empty with owner-only permissions if it does not exist yet."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class CardStore:
    """The provider's card store: numbers encrypted, in its own owner-only directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        key_file = root / "store.key"
        if not key_file.exists() or key_file.stat().st_size != 32:
            _private_file(key_file)
            key_file.write_bytes(secrets.token_bytes(32))
        os.chmod(key_file, 0o600)
        self._aead = AESGCM(key_file.read_bytes())
        self._mac_key = hashlib.sha256(b"idempotency|" + key_file.read_bytes()).digest()
        db_file = root / "cards.db"
        _private_file(db_file)
        self._db = sqlite3.connect(db_file, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()  # one connection, shared by the handler threads
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY, brand TEXT NOT NULL, last4 TEXT NOT NULL,
                exp_month INTEGER NOT NULL, exp_year INTEGER NOT NULL,
                sealed BLOB NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS idempotency (
                key_mac TEXT PRIMARY KEY, request_mac TEXT NOT NULL, token_id TEXT NOT NULL);
            """
        )

    def _mac(self, value: str) -> str:
        return hmac.new(self._mac_key, value.encode(), hashlib.sha256).hexdigest()

    def add(self, card: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        request_mac = self._mac(json.dumps(card, sort_keys=True))
        with self._lock:
            if idempotency_key:
                row = self._db.execute(
                    "SELECT request_mac, token_id FROM idempotency WHERE key_mac = ?",
                    (self._mac(idempotency_key),),
                ).fetchone()
                if row is not None:
                    if not hmac.compare_digest(row[0], request_mac):
                        raise RequestError("this Idempotency-Key was used for another request")
                    found = self.get(row[1])
                    if found is not None:
                        return found
            token_id = "card_" + secrets.token_urlsafe(18)
            nonce = secrets.token_bytes(12)
            secret = json.dumps({"number": card["number"], "name": card["name"]}).encode()
            sealed = nonce + self._aead.encrypt(nonce, secret, token_id.encode())
            self._db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    card["brand"],
                    card["number"][-4:],
                    card["exp_month"],
                    card["exp_year"],
                    sealed,
                    datetime.now(timezone.utc).isoformat(),
                ),
            )
            if idempotency_key:
                self._db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                    (self._mac(idempotency_key), request_mac, token_id),
                )
        return self.get(token_id) or {}

    def get(self, token_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, brand, last4, exp_month, exp_year FROM tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            return None
        keys = ("id", "brand", "last4", "exp_month", "exp_year")
        return {"object": "card_token", **dict(zip(keys, row, strict=True))}

    def reveal_number(self, token_id: str) -> str | None:
        """The card number behind a token: what the provider would charge (tests use it)."""
        with self._lock:
            row = self._db.execute("SELECT sealed FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            return None
        sealed: bytes = row[0]
        plain = self._aead.decrypt(sealed[:12], sealed[12:], token_id.encode())
        return str(json.loads(plain)["number"])

    def delete(self, token_id: str) -> bool:
        with self._lock:
            gone = self._db.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount
            self._db.execute("DELETE FROM idempotency WHERE token_id = ?", (token_id,))
        return bool(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def make_handler(store: CardStore, api_key: str) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to one store and one API key."""
    expected = f"Bearer {api_key}".encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "cartguard-payment-provider-standin/1"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            # the request line only (method and path, never a body): paths hold no card data
            sys.stderr.write(f"payment-provider: {format % args}\n")

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, kind: str, message: str, **extra: str) -> None:
            self._answer(status, {"error": {"type": kind, "message": message, **extra}})

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "").encode()
            if hmac.compare_digest(given, expected):
                return True
            self._error(401, "authentication_error", "Invalid API key provided.")
            return False

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, {"status": "ok"})
                return
            if not self._authorized():
                return
            match = _TOKEN_PATH.match(self.path)
            found = store.get(match.group(1)) if match else None
            if found is None:
                self._error(404, "invalid_request_error", "No such token.")
                return
            self._answer(200, found)

        def do_DELETE(self) -> None:
            if not self._authorized():
                return
            match = _TOKEN_PATH.match(self.path)
            if not match or not store.delete(match.group(1)):
                self._error(404, "invalid_request_error", "No such token.")
                return
            self._answer(200, {"id": match.group(1), "deleted": True})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path != "/v1/tokens":
                self._error(404, "invalid_request_error", "Unrecognized request URL.")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                self._error(400, "invalid_request_error", "Send a JSON body of at most 16 KB.")
                return
            try:
                body = json.loads(self.rfile.read(length))
                card = check_card(body.get("card") if isinstance(body, dict) else None)
                token = store.add(card, self.headers.get("Idempotency-Key"))
            except CardError as exc:
                self._error(402, "card_error", exc.message, code=exc.code, param=exc.param)
                return
            except (RequestError, ValueError) as exc:
                self._error(400, "invalid_request_error", str(exc) or "Malformed JSON body.")
                return
            self._answer(200, token)

    return Handler


@dataclass
class RunningProvider:
    """A stand-in serving in a background thread (for tests and the benchmark harness)."""

    server: ThreadingHTTPServer
    store: CardStore
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.store.close()


def make_server(root: Path, api_key: str, port: int) -> tuple[ThreadingHTTPServer, CardStore]:
    if not api_key:
        raise ValueError("the payment provider stand-in needs an API key")
    store = CardStore(root)
    server = ThreadingHTTPServer((HOST, port), make_handler(store, api_key))
    server.daemon_threads = True
    return server, store


def serve_in_thread(root: Path, api_key: str, port: int = 0) -> RunningProvider:
    """Start the stand-in on ``127.0.0.1:port`` (0: a free port) in a daemon thread."""
    server, store = make_server(root, api_key, port)
    thread = threading.Thread(target=server.serve_forever, name="payment-provider", daemon=True)
    thread.start()
    return RunningProvider(server, store, thread)


def main() -> int:
    from cartguard.keys import KeysMissing, load_keys
    from cartguard.settings import get_settings

    try:
        port = int(os.environ.get("PAYMENT_PROVIDER_PORT") or DEFAULT_PORT)
    except ValueError:
        print("payment provider not started: PAYMENT_PROVIDER_PORT must be a number", flush=True)
        return 2
    settings = get_settings()
    try:
        keys = load_keys(settings)
        api_key = keys.get("payment_provider_key")
    except KeysMissing as exc:
        print(f"payment provider not started: {exc}", flush=True)
        return 2
    if not keys.dev:
        print(
            "payment provider not started: this stand-in stores card numbers and runs only "
            "with generated dev keys (`cartguard init-keys`); use a real provider otherwise",
            flush=True,
        )
        return 2
    root = settings.data_dir / STORE_DIR
    try:
        server, store = make_server(root, api_key, port)
    except OSError as exc:
        print(f"payment provider not started on {HOST}:{port}: {exc.strerror}", flush=True)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"payment provider stand-in on http://{HOST}:{port} (store: {root})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
