"""The service's database: the catalogue's engine (one database URL setting), with the service's own alembic
history (api/migrations, version table `api_alembic_version`) applied after the catalogue's on every open."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text

from shoe_db.db import open_catalog

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "api_alembic_version"


def open_service_db(url: str | None = None) -> Engine:
    """An engine on the settings' database (or `url`), catalogue and service schemas at their newest."""
    engine = open_catalog(url)
    _alembic(engine, command.upgrade, "head")
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with engine.begin() as conn:  # readers do not wait for the writer (audit entries are written on reads)
            conn.execute(text("PRAGMA journal_mode=WAL"))
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives the service crashing
        # and the database stays consistent; only a power cut can lose the last moments' commits. Every read of
        # a passport commits an audit entry, so a sync per commit would cost more than the read.
        event.listen(engine, "connect", _sync_at_checkpoints)
        engine.dispose()  # pooled connections get it too
        WriterQueue(engine)
    return engine


class WriterQueue:
    """One writing transaction at a time in this process, the others queued on a lock.

    SQLite lets one connection write at a time; another writer gets "busy" and its driver sleeps and retries
    (1, 2, 5 ... up to 100 ms per try), so under load writers wait far longer than the writes take. Here a
    transaction takes the lock at its first INSERT, UPDATE or DELETE and gives it back when it commits or rolls
    back (or its connection returns to the pool), and the next writer is woken at once. A writer that cannot
    get the lock within `wait_s` (e.g. a thread writing on a second connection while its first one writes)
    goes on without it and SQLite's own waiting applies, as before."""

    KEY = "footfit_writer"

    def __init__(self, engine: Engine, wait_s: float = 10.0):
        self._lock = threading.Lock()
        self._wait_s = wait_s
        event.listen(engine, "before_cursor_execute", self._before_statement)
        event.listen(engine, "commit", self._transaction_ends)
        event.listen(engine, "rollback", self._transaction_ends)
        event.listen(engine.pool, "reset", self._connection_returns)

    def _before_statement(self, conn, _cursor, statement: str, *_args) -> None:
        if self.KEY not in conn.info and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info[self.KEY] = self._lock.acquire(timeout=self._wait_s)

    def _transaction_ends(self, conn) -> None:
        self._release(conn.info)

    def _connection_returns(self, dbapi_connection, connection_record, reset_state) -> None:
        self._release(connection_record.info)

    def _release(self, info: dict) -> None:
        if info.pop(self.KEY, False):
            self._lock.release()


def _sync_at_checkpoints(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def downgrade_service(engine: Engine, revision: str = "base") -> None:
    """Downgrade the service's schema (the catalogue's is left alone)."""
    _alembic(engine, command.downgrade, revision)


def _alembic(engine: Engine, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
