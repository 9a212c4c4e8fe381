"""Make deleted personal data unrecoverable from SQLite files, not just invisible to queries.

SQLite keeps deleted rows in free pages and old page images in the write-ahead log until they
happen to be overwritten, so "DELETE" alone leaves names and addresses readable with a hex
editor. After erasure and retention we rebuild the file (``VACUUM``) and fold and truncate the
WAL (``wal_checkpoint(TRUNCATE)``). Other databases (PostgreSQL) reclaim dead rows through
their own vacuum; nothing to do here for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScrubResult:
    database: str  # the URL without credentials
    done: bool
    note: str = ""


def scrub_sqlite(engine: Engine) -> ScrubResult:
    """VACUUM and truncate the WAL of a SQLite database; a no-op for other databases.

    Never raises: a busy database is logged and reported (the next retention run, which
    scrubs again, finishes the job) because erasure itself has already been committed.
    """
    name = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name != "sqlite":
        return ScrubResult(name, True, "not SQLite: the database's own vacuum reclaims space")
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM"))
            busy = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
    except OperationalError as exc:
        log.warning("could not scrub %s now (%s); the next retention run retries", name, exc.orig)
        return ScrubResult(name, False, f"database busy: {exc.orig}")
    if busy is not None and busy[0]:
        log.warning("WAL of %s still in use by a reader; the next retention run retries", name)
        return ScrubResult(name, False, "write-ahead log still in use by another reader")
    return ScrubResult(name, True)
