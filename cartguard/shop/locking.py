"""Take the database's write lock before a read-decide-write that must not interleave.

PostgreSQL serializes such sequences with row locks (``UPDATE`` or ``SELECT ... FOR UPDATE``
wait for each other and then see the committed row). SQLite has no row locks, and pysqlite
opens its transactions lazily and *deferred*: a ``SELECT`` runs outside any transaction, so
two connections can both read "not locked yet" and both act on it; and a deferred transaction
that has read and then tries to write fails at once (``SQLITE_BUSY_SNAPSHOT``) instead of
waiting. :func:`begin_write` therefore starts the transaction with ``BEGIN IMMEDIATE`` on
SQLite: the write lock is taken (waiting up to ``busy_timeout``) before anything is read, so
the whole transaction runs alone, as SQLite's documentation recommends for read-modify-write.
"""

from __future__ import annotations

from sqlalchemy.orm import Session


def begin_write(session: Session) -> None:
    """Hold the database write lock from now until the caller's transaction ends.

    On SQLite this issues ``BEGIN IMMEDIATE`` unless the connection is already inside a
    transaction (then it either already holds the write lock because it wrote, or it is a
    read transaction the caller opened, which this cannot upgrade safely: the caller's first
    write will). On other databases it does nothing: their row locks do the job.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:
        # through SQLAlchemy, so a busy database surfaces as its OperationalError
        connection.exec_driver_sql("BEGIN IMMEDIATE")
