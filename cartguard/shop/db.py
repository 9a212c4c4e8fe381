"""The one database module: engine, sessions and schema creation.

Every process shares this module so that connection handling (SQLite pragmas, pool settings,
clear errors when the database is down) is decided once. The URL comes from settings, so
PostgreSQL works unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cartguard.settings import get_settings


class DatabaseUnavailable(RuntimeError):
    """The shop database cannot be reached; callers answer the shopper politely and retry later."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


#: client-side bounds on every PostgreSQL connection (libpq parameters; a value given in the
#: URL's query string wins). A refused or silent server costs seconds, not a frozen process:
#: connect_timeout bounds the handshake, keepalives notice an idle connection whose peer
#: vanished, tcp_user_timeout drops one whose sent data stays unacknowledged (a dropped route).
PG_CONNECT_ARGS: dict[str, object] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}


def postgres_engine_options(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> dict:
    """``create_engine`` options for PostgreSQL: small explicit pool, pre-ping, time bounds.

    ``pool_timeout`` makes a process whose connections are all stuck answer "unavailable"
    after a few seconds instead of queueing forever; ``pool_recycle`` retires connections
    before a firewall or proxy silently drops idle ones.
    """
    from sqlalchemy.engine import make_url

    given = set(make_url(url).query)
    return {
        "pool_pre_ping": True,
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": 5,
        "pool_recycle": 1800,
        "connect_args": {k: v for k, v in PG_CONNECT_ARGS.items() if k not in given},
    }


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does, or tighten an existing one.

    SQLite would create it with the process umask (usually 0644: readable by every local
    user) although it holds names, e-mails and addresses; its ``-wal`` and ``-shm`` files
    copy the database file's mode, so this covers them too. A new parent directory is 0700.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            try:
                path.chmod(mode & 0o700)
            except PermissionError:  # someone else's file: not ours to change
                pass


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys so several processes can share it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_sqlite_file(Path(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, future=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, future=True, **postgres_engine_options(url))
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, future=True)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured shop database)."""
    return make_engine(url or get_settings().database_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False, future=True)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error, always close.

    Connection failures surface as :class:`DatabaseUnavailable` with an operator-readable
    message instead of a driver traceback.
    """
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise DatabaseUnavailable(f"the shop database is unavailable: {exc.orig}") from exc
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
