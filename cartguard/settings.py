"""One place for configuration: environment variables with safe defaults.

Every process (Rasa's custom components, the action server, the web service, the CLI) reads
its configuration through :func:`get_settings`, so a deployment changes behaviour by setting
environment variables, never by editing code. All state lives below one data directory
(``CARTGUARD_DATA_DIR``, default ``./var``) so that "what does this install hold about
people" has a single answer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def allowed_origins(raw: str | None, *, public_web_url: str, web_port: int) -> tuple[str, ...]:
    """The origins of ``CARTGUARD_ALLOWED_ORIGINS`` (spaces or commas), checked, or the default.

    The default is every name a browser on this machine uses for the shop page: the public URL
    (when set), ``http://localhost:PORT`` and ``http://127.0.0.1:PORT``. A wildcard is refused:
    it would let any web site open a chat socket in a shopper's name.
    """
    if raw and raw.strip():
        values = [item for item in re.split(r"[\s,]+", raw.strip()) if item]
    else:
        values = [
            *([public_web_url] if public_web_url else []),
            f"http://localhost:{web_port}",
            f"http://127.0.0.1:{web_port}",
        ]
    origins: list[str] = []
    for value in values:
        parts = urlsplit(value.rstrip("/"))
        if value.strip() == "*" or parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(
                f"CARTGUARD_ALLOWED_ORIGINS: {value!r} is not an origin such as "
                "https://shop.example.com (a wildcard is not allowed)"
            )
        if parts.path or parts.query or parts.fragment:
            raise ValueError(
                f"CARTGUARD_ALLOWED_ORIGINS: {value!r} has a path; give scheme://host[:port] only"
            )
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one Cartguard process."""

    data_dir: Path
    database_url: str
    tracker_database_url: str
    rasa_port: int
    action_port: int
    web_port: int
    host: str
    public_web_url: str
    rasa_url: str
    action_url: str
    keys_file: Path
    log_file: Path
    behind_tls_proxy: bool
    tls_cert: str | None
    tls_key: str | None
    redis_url: str | None
    graph_api_url: str
    fallback_threshold: float = 0.6
    message_max_chars: int = 1000
    retention_days: int = 90
    #: a conversation's session ends after this long without a message (domain.yml agrees)
    session_minutes: int = 60
    web_session_hours: int = 8  # how long a shop login lasts in the web service
    outbox_retry_seconds: int = 5  # how often undelivered form results are re-sent to Rasa
    rate_sender_burst: int = 8  # messages one conversation may send at once (token bucket)
    rate_sender_per_minute: int = 30  # sustained messages per minute per conversation
    rate_ip_burst: int = 40  # requests one client address may make at once
    rate_ip_per_minute: int = 120  # sustained requests per minute per client address
    # --- monitoring (cartguard/monitoring): anomaly thresholds, all per window -------------
    anomaly_window_seconds: int = 600  # the sliding window of the burst rules
    anomaly_scan_seconds: int = 60  # how often the web service runs the rules
    anomaly_stuffing_customers: int = 5  # distinct customers failing step-up from one address
    anomaly_lockouts: int = 3  # lockouts of one customer within anomaly_lockout_hours
    anomaly_lockout_hours: int = 24
    anomaly_cards_per_conversation: int = 3  # card numbers typed in one conversation
    anomaly_cards_total: int = 20  # card numbers typed in the whole shop
    anomaly_bad_tokens_per_ip: int = 20  # invalid login tokens presented by one address
    anomaly_forged_sessions_per_ip: int = 20  # forged or unknown session ids from one address
    anomaly_bad_signatures_per_ip: int = 10  # Messenger webhooks with a bad signature
    anomaly_staff_exports: int = 10  # customers one staff account exports per hour
    metrics_token: str | None = None  # bearer token for /metrics; unset = loopback only
    # --- e-mail (cartguard/notify): enrolment confirmation links and security notices -------
    #: the SMTP server; in development the mail catcher (`python -m devtools.mail_catcher`)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "Cartguard Shop <no-reply@localhost>"
    smtp_timeout_seconds: int = 10  # connect and every command; a dead server fails fast
    #: STARTTLS before sending; on by default for any server that is not on this machine
    smtp_starttls: bool = False
    smtp_user: str | None = None  # with CARTGUARD_SMTP_PASSWORD, log in after STARTTLS
    smtp_password: str | None = None
    #: Redis for the webchat's socket.io fan-out and socket holders across Rasa replicas
    #: (cartguard/channels/cluster.py); unset = one Rasa process, everything in memory
    socketio_redis_url: str | None = None
    #: the payment provider's API that tokenizes card numbers (the shop never holds one); in
    #: development the stand-in `python -m devtools.payment_provider` on PAYMENT_PROVIDER_PORT
    payment_provider_url: str = "http://127.0.0.1:8090"
    #: browser origins allowed to open the chat socket (Rasa's --cors): every name the shop
    #: page is reached by. Default: the public URL plus http://localhost and http://127.0.0.1.
    allowed_origins: tuple[str, ...] = ()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """Read settings from the environment (no caching; tests call this after monkeypatching)."""
    data_dir = Path(os.environ.get("CARTGUARD_DATA_DIR", str(PROJECT_ROOT / "var"))).resolve()
    rasa_port = _env_int("RASA_PORT", 5005)
    action_port = _env_int("ACTION_PORT", 5055)
    web_port = _env_int("WEB_PORT", 8080)
    host = os.environ.get("CARTGUARD_HOST", "127.0.0.1")
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get("CARTGUARD_DATABASE_URL", f"sqlite:///{data_dir / 'shop.db'}"),
        tracker_database_url=os.environ.get(
            "CARTGUARD_TRACKER_DATABASE_URL", f"sqlite:///{data_dir / 'tracker.db'}"
        ),
        rasa_port=rasa_port,
        action_port=action_port,
        web_port=web_port,
        host=host,
        public_web_url=os.environ.get(
            "CARTGUARD_PUBLIC_WEB_URL", f"http://localhost:{web_port}"
        ).rstrip("/"),
        rasa_url=os.environ.get("CARTGUARD_RASA_URL", f"http://localhost:{rasa_port}").rstrip("/"),
        action_url=os.environ.get(
            "CARTGUARD_ACTION_URL", f"http://localhost:{action_port}/webhook"
        ),
        keys_file=Path(os.environ.get("CARTGUARD_KEYS_FILE", str(data_dir / "keys.json"))),
        log_file=data_dir / "logs" / "cartguard.log",
        behind_tls_proxy=_env_bool("CARTGUARD_BEHIND_TLS_PROXY", False),
        tls_cert=os.environ.get("CARTGUARD_TLS_CERT") or None,
        tls_key=os.environ.get("CARTGUARD_TLS_KEY") or None,
        redis_url=os.environ.get("CARTGUARD_REDIS_URL") or None,
        graph_api_url=os.environ.get(
            "CARTGUARD_GRAPH_API_URL", "https://graph.facebook.com/v18.0"
        ).rstrip("/"),
        fallback_threshold=float(os.environ.get("CARTGUARD_FALLBACK_THRESHOLD", "0.6")),
        message_max_chars=_env_int("CARTGUARD_MESSAGE_MAX_CHARS", 1000),
        retention_days=_env_int("CARTGUARD_RETENTION_DAYS", 90),
        session_minutes=_env_int("CARTGUARD_SESSION_MINUTES", 60),
        web_session_hours=_env_int("CARTGUARD_WEB_SESSION_HOURS", 8),
        outbox_retry_seconds=_env_int("CARTGUARD_OUTBOX_RETRY_SECONDS", 5),
        rate_sender_burst=_env_int("CARTGUARD_RATE_SENDER_BURST", 8),
        rate_sender_per_minute=_env_int("CARTGUARD_RATE_SENDER_PER_MINUTE", 30),
        rate_ip_burst=_env_int("CARTGUARD_RATE_IP_BURST", 40),
        rate_ip_per_minute=_env_int("CARTGUARD_RATE_IP_PER_MINUTE", 120),
        anomaly_window_seconds=_env_int("CARTGUARD_ANOMALY_WINDOW_SECONDS", 600),
        anomaly_scan_seconds=_env_int("CARTGUARD_ANOMALY_SCAN_SECONDS", 60),
        anomaly_stuffing_customers=_env_int("CARTGUARD_ANOMALY_STUFFING_CUSTOMERS", 5),
        anomaly_lockouts=_env_int("CARTGUARD_ANOMALY_LOCKOUTS", 3),
        anomaly_lockout_hours=_env_int("CARTGUARD_ANOMALY_LOCKOUT_HOURS", 24),
        anomaly_cards_per_conversation=_env_int("CARTGUARD_ANOMALY_CARDS_PER_CONVERSATION", 3),
        anomaly_cards_total=_env_int("CARTGUARD_ANOMALY_CARDS_TOTAL", 20),
        anomaly_bad_tokens_per_ip=_env_int("CARTGUARD_ANOMALY_BAD_TOKENS_PER_IP", 20),
        anomaly_forged_sessions_per_ip=_env_int("CARTGUARD_ANOMALY_FORGED_SESSIONS_PER_IP", 20),
        anomaly_bad_signatures_per_ip=_env_int("CARTGUARD_ANOMALY_BAD_SIGNATURES_PER_IP", 10),
        anomaly_staff_exports=_env_int("CARTGUARD_ANOMALY_STAFF_EXPORTS", 10),
        metrics_token=os.environ.get("CARTGUARD_METRICS_TOKEN") or None,
        smtp_host=os.environ.get("CARTGUARD_SMTP_HOST", "127.0.0.1"),
        smtp_port=_env_int("CARTGUARD_SMTP_PORT", _env_int("SMTP_PORT", 8025)),
        smtp_from=os.environ.get("CARTGUARD_SMTP_FROM", "Cartguard Shop <no-reply@localhost>"),
        smtp_timeout_seconds=_env_int("CARTGUARD_SMTP_TIMEOUT_SECONDS", 10),
        smtp_starttls=_env_bool(
            "CARTGUARD_SMTP_STARTTLS",
            os.environ.get("CARTGUARD_SMTP_HOST", "127.0.0.1") not in _LOOPBACK_HOSTS,
        ),
        smtp_user=os.environ.get("CARTGUARD_SMTP_USER") or None,
        smtp_password=os.environ.get("CARTGUARD_SMTP_PASSWORD") or None,
        socketio_redis_url=os.environ.get("CARTGUARD_SOCKETIO_REDIS_URL") or None,
        payment_provider_url=os.environ.get(
            "CARTGUARD_PAYMENT_PROVIDER_URL",
            f"http://127.0.0.1:{_env_int('PAYMENT_PROVIDER_PORT', 8090)}",
        ).rstrip("/"),
        allowed_origins=allowed_origins(
            os.environ.get("CARTGUARD_ALLOWED_ORIGINS"),
            public_web_url=os.environ.get("CARTGUARD_PUBLIC_WEB_URL", ""),
            web_port=web_port,
        ),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; call ``get_settings.cache_clear()`` after changing the environment."""
    return load_settings()
