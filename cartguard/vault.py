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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cartguard.keys import load_keys, write_key_file
from cartguard.pii import policy as pii_policy
from cartguard.pii.tokens import TOKEN_RE
from cartguard.settings import get_settings
from cartguard.shop.db import get_engine, session_scope
from cartguard.shop.locking import begin_write
from cartguard.shop.models._common import utcnow
from cartguard.shop.models.staff import StaffAccount
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


@dataclass(frozen=True)
class SealedColumn:
    """A column outside the vault table whose values are sealed with the vault keys."""

    model: type
    attribute: str
    aad: Callable[[object], bytes]  # binds each value to its row

    @property
    def table(self) -> str:
        return self.model.__tablename__


def staff_totp_aad(username: str) -> bytes:
    """What a staff TOTP secret is bound to: its account (a copied secret does not open)."""
    return f"cartguard-staff-totp:{username}".encode()


#: Every column sealed with vault keys outside the vault table. Rotation re-seals each of
#: them in the same transaction as the vault entries, and a key is dropped only when none
#: of them uses it any more. A new sealed column must be listed here.
SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(StaffAccount, "totp_secret_enc", lambda row: staff_totp_aad(row.username)),
)


@dataclass
class RotationReport:
    """What a rotation did: values re-sealed (per column too) and values it could not read."""

    active_key: str
    resealed: int = 0
    resealed_fields: dict[str, int] = field(default_factory=dict)
    unreadable: set[tuple[str, int]] = field(default_factory=set)


OnRotated = Callable[[Session, RotationReport], None]


def _present_columns(session: Session) -> list[SealedColumn]:
    """The sealed columns whose tables exist in this database (a bare vault DB has none)."""
    tables = set(inspect(session.connection()).get_table_names())
    return [column for column in SEALED_COLUMNS if column.table in tables]


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

    # -- values sealed outside the vault table ------------------------------------------
    def seal_field(self, plaintext: str, aad: bytes) -> str:
        """Seal a secret that another table keeps itself: ``"<key id>:<base64 nonce+ct>"``.

        For values that must stay in their own row (staff TOTP secrets). ``aad`` binds the
        ciphertext to that row, so a value copied onto another row does not open. Such
        columns are listed in :data:`SEALED_COLUMNS`, so rotation re-seals them too.
        """
        self._ring.refresh_if_changed()
        kid, key = self._ring.active
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad)
        return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open_field(self, blob: str, aad: bytes) -> str:
        """Open what :meth:`seal_field` sealed; :class:`VaultError` says why it cannot."""
        kid, _, payload = (blob or "").partition(":")
        key = self._ring.get(kid)
        if key is None:
            raise VaultError(f"sealed with vault key {kid!r}, which is no longer configured")
        try:
            raw = base64.urlsafe_b64decode(payload.encode())
            return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad).decode()
        except (InvalidTag, ValueError) as exc:
            raise VaultError("the sealed value is damaged or belongs to another row") from exc

    # -- rotation ------------------------------------------------------------------------
    def rotate(self, *, on_rotated: OnRotated | None = None) -> int:
        """Re-seal everything not sealed with the newest key; returns how many values.

        Vault entries and every :data:`SEALED_COLUMNS` value are re-sealed in one
        transaction; ``on_rotated(session, report)`` runs inside it (the audit entry), so
        either all of it commits or none. A value that cannot be read (edited in the
        database, or sealed with a key that is gone) is left as it is and logged rather
        than blocking the rotation; how many were skipped is in ``last_rotation_unreadable``.
        """
        return self._rotate(on_rotated).resealed

    def _rotate(self, on_rotated: OnRotated | None = None) -> RotationReport:
        self._ring.refresh_if_changed()
        active_kid, _ = self._ring.active
        report = RotationReport(active_kid)
        with session_scope(self.engine) as session:
            begin_write(session)  # SQLite: nobody seals with a key we are about to retire
            stale = session.execute(
                select(VaultEntry).where(VaultEntry.key_id != active_kid)
            ).scalars()
            for entry in stale:
                aad = _aad(entry.label, entry.token_hash)
                try:
                    plaintext = self._open(entry.ciphertext, aad)
                except (InvalidTag, VaultError) as exc:
                    log.error("vault entry %s cannot be read (%s); not rotated", entry.id, exc)
                    report.unreadable.add(("vault_entries", entry.id))
                    continue
                entry.key_id, entry.ciphertext = self._seal(plaintext, aad)
                report.resealed += 1
            for column in _present_columns(session):
                self._reseal_column(session, column, active_kid, report)
            session.flush()
            if on_rotated is not None:
                on_rotated(session, report)
        self.last_rotation_unreadable = len(report.unreadable)
        return report

    def _reseal_column(
        self, session: Session, column: SealedColumn, active_kid: str, report: RotationReport
    ) -> None:
        attribute = getattr(column.model, column.attribute)
        rows = session.execute(
            select(column.model).where(~attribute.startswith(f"{active_kid}:"))
        ).scalars()
        for row in rows:
            aad = column.aad(row)
            try:
                plaintext = self.open_field(getattr(row, column.attribute), aad)
            except VaultError as exc:
                log.error("%s row %s cannot be read (%s); not rotated", column.table, row.id, exc)
                report.unreadable.add((column.table, row.id))
                continue
            setattr(row, column.attribute, self.seal_field(plaintext, aad))
            report.resealed += 1
            report.resealed_fields[column.table] = report.resealed_fields.get(column.table, 0) + 1

    def keys_in_use(self, *, ignore: set[tuple[str, int]] = frozenset()) -> dict[str, int]:
        """How many readable-looking values each key id seals (vault entries and columns)."""
        counts: dict[str, int] = {}
        with session_scope(self.engine) as session:
            rows = session.execute(select(VaultEntry.id, VaultEntry.key_id)).all()
            for row_id, kid in rows:
                if ("vault_entries", row_id) not in ignore:
                    counts[kid] = counts.get(kid, 0) + 1
            for column in _present_columns(session):
                attribute = getattr(column.model, column.attribute)
                for row_id, blob in session.execute(select(column.model.id, attribute)).all():
                    if (column.table, row_id) not in ignore:
                        kid = (blob or "").partition(":")[0]
                        counts[kid] = counts.get(kid, 0) + 1
        return counts

    def add_key_and_rotate(self, *, on_rotated: OnRotated | None = None) -> str:
        """Add a new newest key to the key file, re-seal everything, drop the old keys.

        The old keys leave the key file only once nothing readable is sealed with them any
        more (checked after the re-sealing committed, so a value another process sealed in
        the meantime keeps its key); otherwise they stay and :class:`VaultError` says so.
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
        report = self._rotate(on_rotated)
        in_use = {
            kid: n
            for kid, n in self.keys_in_use(ignore=report.unreadable).items()
            if kid != new_kid and kid in keys
        }
        if in_use:
            listed = ", ".join(f"{kid} ({n})" for kid, n in sorted(in_use.items()))
            raise VaultError(
                f"values are still sealed with old keys: {listed}; the old keys were kept. "
                "Run `cartguard vault rotate` to re-seal them, then rotate again"
            )
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
