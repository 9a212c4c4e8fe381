"""Secrets of one installation: generated for development, read from the environment in production.

Keys never live in the repository. On a developer machine ``cartguard init-keys`` (run by
``make run``) writes random keys to ``$CARTGUARD_DATA_DIR/keys.json`` (mode 0600, ignored by
git) and marks them ``"dev": true`` so that dev-only conveniences (printing a login token or
a TOTP code) refuse to work against production keys. In production every key comes from an
environment variable of the same name in upper case, prefixed ``CARTGUARD_``; an environment
value always wins over the file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cartguard.settings import Settings, get_settings

#: Names of the symmetric secrets, each 32 random bytes, URL-safe base64.
SECRET_NAMES = (
    "login_key",  # HMAC key for webchat login tokens (the shop's login signs them)
    "session_key",  # signs socket.io session ids issued by our channel
    "link_key",  # pepper for hashing secure-form link tokens
    "action_token",  # shared secret Rasa presents to the action server
    "rasa_jwt_secret",  # Rasa HTTP API JWT secret (used by the web service)
    "messenger_app_secret",  # Facebook app secret, for X-Hub-Signature-256
    "messenger_verify_token",  # Facebook webhook verification token
    "messenger_page_token",  # Graph API page access token
    "audit_key",  # keys the audit log's hash chain
    "payment_provider_key",  # API key the web service presents to the payment provider
)


class KeysMissing(RuntimeError):
    """Raised when a key is neither in the environment nor in the key file."""


@dataclass(frozen=True)
class Keys:
    """The resolved secrets. ``vault_keys`` maps key id to a 32-byte AES key, newest last."""

    values: dict[str, str]
    vault_keys: dict[str, bytes]
    dev: bool

    def get(self, name: str) -> str:
        try:
            return self.values[name]
        except KeyError as exc:
            env = f"CARTGUARD_{name.upper()}"
            raise KeysMissing(
                f"secret {name!r} is not configured: set {env} or run `cartguard init-keys`"
            ) from exc

    def raw(self, name: str) -> bytes:
        """The secret as bytes (what HMAC functions want)."""
        return self.get(name).encode()

    @property
    def active_vault_key_id(self) -> str:
        return list(self.vault_keys)[-1]


def _random_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _new_vault_key_id(existing: dict[str, str]) -> str:
    return f"k{len(existing) + 1}-{secrets.token_hex(2)}"


def generate_dev_keys(path: Path) -> bool:
    """Create the dev key file if missing; add any secret a newer version needs.

    Returns True when the file was created or extended. Never replaces an existing key:
    rotating is a separate, deliberate act (``cartguard vault rotate``).
    """
    data: dict = {}
    if path.exists():
        data = json.loads(path.read_text())
    changed = not path.exists()
    data.setdefault("dev", True)
    for name in SECRET_NAMES:
        if name not in data:
            data[name] = _random_secret()
            changed = True
    vault = data.setdefault("vault_keys", {})
    if not vault:
        vault[_new_vault_key_id(vault)] = _random_secret()
        changed = True
    if changed:
        write_key_file(path, data)
    return changed


def write_key_file(path: Path, data: dict) -> None:
    """Write the key file atomically with owner-only permissions (a new directory: 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def _decode_key(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    key = base64.urlsafe_b64decode(padded)
    if len(key) != 32:
        raise ValueError("each vault key must be 32 bytes (URL-safe base64)")
    return key


def load_keys(settings: Settings | None = None) -> Keys:
    """Resolve secrets: environment first, then the key file. Missing vault keys are an error."""
    settings = settings or get_settings()
    data: dict = {}
    if settings.keys_file.exists():
        data = json.loads(settings.keys_file.read_text())
    values = {name: data[name] for name in SECRET_NAMES if name in data}
    for name in SECRET_NAMES:
        env = os.environ.get(f"CARTGUARD_{name.upper()}")
        if env:
            values[name] = env
    vault_raw: dict[str, str] = dict(data.get("vault_keys", {}))
    env_vault = os.environ.get("CARTGUARD_VAULT_KEYS")  # "kid1:key1,kid2:key2", newest last
    if env_vault:
        vault_raw = dict(item.split(":", 1) for item in env_vault.split(",") if item)
    if not vault_raw:
        raise KeysMissing(
            "no vault key configured: set CARTGUARD_VAULT_KEYS or run `cartguard init-keys`"
        )
    vault_keys = {kid: _decode_key(value) for kid, value in vault_raw.items()}
    # Dev conveniences stay on only while every key in use is one the dev file generated
    # (scripts/run.sh exports the file's own values for Rasa's YAML; that changes nothing).
    overridden = any(values.get(n) != data.get(n) for n in SECRET_NAMES if n in values)
    dev = bool(data.get("dev")) and not overridden and vault_raw == data.get("vault_keys", {})
    return Keys(values=values, vault_keys=vault_keys, dev=dev)
