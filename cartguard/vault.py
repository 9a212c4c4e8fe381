"""The vault: swaps personal values for random tokens and keeps the values encrypted.

Guarantees, in the spirit of pyca/cryptography's "hard to misuse" APIs:

* Callers choose neither algorithm, mode nor nonce: every value is sealed with AES-256-GCM
  under a fresh 96-bit random nonce, bound (as associated data) to its label and token, and
  prefixed by the id of the key that sealed it.
* Tokens (``tok_<kind>_<22 random URL-safe characters>``, 128 random bits) say nothing about
  the value; the table stores only a hash of each token.
* Every entry expires (one-time codes after 15 minutes, everything else after the retention
  period) and can be forgotten per customer or per conversation.
* Card security codes and card numbers are refused outright: a CVV may never be stored, even
  encrypted, and card numbers belong to the payment provider, which gives the shop a token
  (:mod:`cartguard.clients.payment_provider`); the shop holds no card number in any form.
* Several keys may be configured (``load_keys().vault_keys``, newest last): new entries use
  the newest, old entries stay readable, :meth:`Vault.rotate` re-encrypts them.

``detokenize`` is for the action server (and the secure-form service) only; Rasa, the
tracker store, logs and the event broker only ever see tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cartguard.keys import load_keys, write_key_file
from cartguard.pii import policy as pii_policy
from cartguard.pii.tokens import TOKEN_RE
from cartguard.settings import get_settings
from cartguard.shop.db import get_engine, session_scope
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.vault import VaultEntry

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_NONCE_BYTES = 12
_MAX_VALUE_CHARS = 4096

# Kinds, lifetimes and refusals per label come from the one PII policy table.
#: Short kind used inside tokens, per label (other labels use a shortened label name).
TOKEN_KINDS: dict[str, str] = pii_policy.token_kinds()
#: Labels that are never accepted, whatever the caller's reason.
NEVER_STORED = pii_policy.never_stored(of="CVV")
#: Card numbers go to the payment provider; the shop (and so its vault) never holds one.
CARD_NUMBER_LABELS = pii_policy.never_stored(of="CREDIT_CARD")
#: Default lifetime per label, in seconds (others: the configured retention period).
DEFAULT_TTL_SECONDS: dict[str, int] = pii_policy.token_lifetimes()


class VaultError(RuntimeError):
    """The vault cannot do what was asked; the message says why and what to do."""


def _token_kind(label: str) -> str:
    return TOKEN_KINDS.get(label) or label.lower().replace("_", "")[:10]


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aad(label: str, token_hash: str) -> bytes:
    return f"cartguard-vault/v{_FORMAT_VERSION}|{label}|{token_hash}".encode()


class _KeyRing:
    """Vault keys, re-read when the key file changes so rotation needs no restart."""

    def __init__(self, fixed: Mapping[str, bytes] | None) -> None:
        self._fixed = dict(fixed) if fixed is not None else None
        self._keys: dict[str, bytes] = {}
        self._stamp: float | None = None
        self._lock = threading.Lock()
        self.reload()

    def _file_stamp(self) -> float | None:
        try:
            return get_settings().keys_file.stat().st_mtime_ns
        except OSError:
            return None

    def reload(self) -> None:
        with self._lock:
            if self._fixed is not None:
                self._keys = dict(self._fixed)
            else:
                self._stamp = self._file_stamp()
                self._keys = dict(load_keys().vault_keys)
            if not self._keys:
                raise VaultError("no vault key configured")
            for kid, key in self._keys.items():
                if len(key) != 32:
                    raise VaultError(f"vault key {kid!r} must be 32 bytes")

    def refresh_if_changed(self) -> None:
        if self._fixed is None and self._file_stamp() != self._stamp:
            self.reload()

    @property
    def active(self) -> tuple[str, bytes]:
        kid = list(self._keys)[-1]
        return kid, self._keys[kid]

    def get(self, kid: str) -> bytes | None:
        key = self._keys.get(kid)
        if key is None and self._fixed is None:
            self.reload()  # another process may have rotated
            key = self._keys.get(kid)
        return key

    @property
    def ids(self) -> list[str]:
        return list(self._keys)


class Vault:
    """Tokenize, resolve, rotate and forget; see the module docstring for the guarantees."""

    def __init__(self, engine: Engine | None = None, keys: Mapping[str, bytes] | None = None):
        self._engine = engine
        self._ring = _KeyRing(keys)
        self._table_ready = False
        self.last_rotation_unreadable = 0

    # -- plumbing -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        engine = self._engine or get_engine()
        if not self._table_ready:
            VaultEntry.__table__.create(engine, checkfirst=True)
            self._table_ready = True
        return engine

    def _seal(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        self._ring.refresh_if_changed()
        kid, key = self._ring.active
        nonce = os.urandom(_NONCE_BYTES)
        kid_bytes = kid.encode()
        sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
        return kid, bytes([_FORMAT_VERSION, len(kid_bytes)]) + kid_bytes + nonce + sealed

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 2 or blob[0] != _FORMAT_VERSION:
            raise VaultError("vault entry has an unknown format")
        kid_end = 2 + blob[1]
        kid = blob[2:kid_end].decode()
        key = self._ring.get(kid)
        if key is None:
            raise VaultError(
                f"vault entry is sealed with key {kid!r}, which is no longer configured"
            )
        nonce = blob[kid_end : kid_end + _NONCE_BYTES]
        return AESGCM(key).decrypt(nonce, blob[kid_end + _NONCE_BYTES :], aad)

    # -- public API -----------------------------------------------------------------------
    def tokenize(
        self,
        value: str,
        label: str,
        *,
        customer_id: int | None = None,
        conversation_id: str | None = None,
        ttl_seconds: int | None = None,
        session: Session | None = None,
    ) -> str:
        """Store ``value`` encrypted and return a fresh random token that stands for it.

        Pass the caller's ``session`` when it already writes to the same database: the entry
        then commits (or rolls back) with the caller's work, and on SQLite a second writer
        connection cannot deadlock against the caller's open transaction.
        """
        if not isinstance(label, str) or not label.replace("_", "").isalnum():
            raise VaultError("a vault label is an upper-case name such as EMAIL_ADDRESS")
        label = label.upper()
        if label in NEVER_STORED:
            raise VaultError("card security codes are never stored, not even encrypted")
        if label in CARD_NUMBER_LABELS:
            raise VaultError(
                "card numbers are never stored by the shop, not even encrypted: hand them to "
                "the payment provider (cartguard.clients.payment_provider) and keep its token"
            )
        if not isinstance(value, str) or not value.strip():
            raise VaultError("only non-empty text can be tokenized")
        if len(value) > _MAX_VALUE_CHARS:
            raise VaultError(f"values longer than {_MAX_VALUE_CHARS} characters are refused")
        if ttl_seconds is None:
            ttl_seconds = DEFAULT_TTL_SECONDS.get(label, get_settings().retention_days * 24 * 3600)
        if ttl_seconds <= 0:
            raise VaultError("ttl_seconds must be positive: every vault entry expires")
        token = f"tok_{_token_kind(label)}_{secrets.token_urlsafe(16)}"
        token_hash = _hash_token(token)
        kid, blob = self._seal(value.encode(), _aad(label, token_hash))
        now = utcnow()
        with self._scope(session) as db:
            db.add(
                VaultEntry(
                    token_hash=token_hash,
                    label=label,
                    key_id=kid,
                    ciphertext=blob,
                    customer_id=customer_id,
                    conversation_id=conversation_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                )
            )
        return token

    def detokenize(self, token: str, *, session: Session | None = None) -> str | None:
        """The value behind ``token``; ``None`` for unknown, expired, tampered or garbage input.

        For the action server only: nothing that writes transcripts or logs calls this.
        """
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            return None
        token_hash = _hash_token(token)
        with self._scope(session) as db:
            entry = db.execute(
                select(VaultEntry).where(VaultEntry.token_hash == token_hash)
            ).scalar_one_or_none()
            if entry is None:
                return None
            if entry.expires_at is not None and entry.expires_at <= utcnow():
                return None
            if token.split("_")[1] != _token_kind(entry.label):
                return None
            try:
                return self._open(entry.ciphertext, _aad(entry.label, token_hash)).decode()
            except (InvalidTag, VaultError) as exc:
                log.warning("vault entry %s could not be opened: %s", entry.id, exc)
                return None

    def label_of(self, token: str) -> str | None:
        """The label of a live token (without decrypting it), e.g. ``"OTP_CODE"``."""
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            return None
        with session_scope(self.engine) as session:
            entry = session.execute(
                select(VaultEntry).where(VaultEntry.token_hash == _hash_token(token))
            ).scalar_one_or_none()
            if entry is None or (entry.expires_at and entry.expires_at <= utcnow()):
                return None
            return entry.label

    def rotate(self) -> int:
        """Re-encrypt every entry not sealed with the newest key; returns how many.

        An entry that cannot be read (edited in the database, or sealed with a key that is
        gone) is left as it is and logged rather than blocking the rotation; how many were
        skipped is in ``last_rotation_unreadable``.
        """
        return self._rotate()[0]

    def _rotate(self) -> tuple[int, int]:
        self._ring.refresh_if_changed()
        active_kid, _ = self._ring.active
        count = broken = 0
        with session_scope(self.engine) as session:
            stale = session.execute(
                select(VaultEntry).where(VaultEntry.key_id != active_kid)
            ).scalars()
            for entry in stale:
                aad = _aad(entry.label, entry.token_hash)
                try:
                    plaintext = self._open(entry.ciphertext, aad)
                except (InvalidTag, VaultError) as exc:
                    log.error("vault entry %s cannot be read (%s); not rotated", entry.id, exc)
                    broken += 1
                    continue
                entry.key_id, entry.ciphertext = self._seal(plaintext, aad)
                count += 1
        self.last_rotation_unreadable = broken
        return count, broken

    def add_key_and_rotate(self) -> str:
        """Add a new newest key to the key file, re-encrypt everything, drop the old keys.

        Only for installations whose vault keys live in the key file; with keys in the
        environment the operator adds the key there (see the error message).
        """
        if os.environ.get("CARTGUARD_VAULT_KEYS") or self._ring._fixed is not None:
            raise VaultError(
                "vault keys come from CARTGUARD_VAULT_KEYS: append a new 'kid:key' pair "
                "(newest last), restart the services, then run `cartguard vault rotate`"
            )
        path = get_settings().keys_file
        if not path.exists():
            raise VaultError(f"key file {path} not found: run `cartguard init-keys` first")
        data = json.loads(path.read_text())
        keys: dict[str, str] = dict(data.get("vault_keys") or {})
        new_kid = f"k{len(keys) + 1}-{secrets.token_hex(3)}"
        while new_kid in keys:
            new_kid = f"k{len(keys) + 1}-{secrets.token_hex(3)}"
        keys[new_kid] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        data["vault_keys"] = keys
        write_key_file(path, data)
        self._ring.reload()
        _, broken = self._rotate()
        with session_scope(self.engine) as session:
            left = session.execute(
                select(func.count()).select_from(VaultEntry).where(VaultEntry.key_id != new_kid)
            ).scalar_one()
        left -= broken  # unreadable under any key: keeping old keys would not help them
        if left:
            raise VaultError(f"{left} entries still use old keys; old keys were kept")
        data["vault_keys"] = {new_kid: keys[new_kid]}
        write_key_file(path, data)
        self._ring.reload()
        return new_kid

    def forget_customer(self, customer_id: int, *, session: Session | None = None) -> int:
        """Delete every entry of a customer (erasure requests); returns how many."""
        return self._delete(VaultEntry.customer_id == customer_id, session)

    def forget_conversation(self, conversation_id: str, *, session: Session | None = None) -> int:
        """Delete every entry created in a conversation; returns how many."""
        return self._delete(VaultEntry.conversation_id == conversation_id, session)

    def purge_expired(self) -> int:
        """Delete expired entries (run by the retention job); returns how many."""
        return self._delete(VaultEntry.expires_at <= utcnow())

    def _delete(self, condition, session: Session | None = None) -> int:  # noqa: ANN001
        with self._scope(session) as db:
            result = db.execute(delete(VaultEntry).where(condition))
            return int(result.rowcount or 0)

    @contextmanager
    def _scope(self, session: Session | None) -> Iterator[Session]:
        """The caller's session (its transaction decides) or a transaction of our own."""
        if session is not None:
            yield session
            session.flush()
            return
        with session_scope(self.engine) as own:
            yield own

    @property
    def key_ids(self) -> list[str]:
        """Configured key ids, newest last (ids are not secret)."""
        return self._ring.ids


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared_vault() -> Vault:
    return Vault()


def get_vault() -> Vault:
    """The process-wide vault on the shop database (``get_vault.cache_clear()`` in tests)."""
    with _lock:
        return _shared_vault()


get_vault.cache_clear = _shared_vault.cache_clear  # type: ignore[attr-defined]
