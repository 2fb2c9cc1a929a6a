"""The database: the catalogue's and the service's tables, in one database from the one database URL setting.

SQLite by default (a file under the data folder); PostgreSQL when FOOTFIT_DATABASE_URL names one
(`postgresql://user@host/db`; the driver is psycopg 3, so plain `postgresql://` URLs are read as
`postgresql+psycopg://`). Every open brings the schema to the newest revision of the one alembic history
(api/migrations). shoe_db's functions take the engine opened here: the catalogue knows its tables, not where
they live.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from api import migrations
from core.errors import CatalogError
from core.settings import get_settings

# A request holds one connection; the pool also serves the background work (mailing runner and its heartbeat,
# fit preparation, the learning job) and a catalogue reload, so it is well above service.max_concurrent_requests.
POOL = {"pool_size": 15, "max_overflow": 25}
DATABASE_RETRY_S = 5  # what a 503 asks a client to wait while the database is away
DATABASE_AWAY = (f"the database is not answering (it may be restarting): nothing was changed; try again in "
                 f"{DATABASE_RETRY_S} s")


def database_url(url: str | None = None) -> str:
    """The SQLAlchemy URL to use: `url`, else the settings' (FOOTFIT_DATABASE_URL or the SQLite file)."""
    url = url or get_settings().sqlite_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def open_service_db(url: str | None = None) -> Engine:
    """An engine on the settings' database (or `url`), its whole schema at the newest revision."""
    engine = _engine(database_url(url))
    migrations.upgrade(engine)
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


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(f"database URL {url!r} is not a SQLAlchemy URL: write e.g. sqlite:///var/footfit.sqlite "
                           f"or postgresql://user:password@host/dbname") from None
    if parsed.get_backend_name() == "sqlite":
        in_file = parsed.database and parsed.database != ":memory:"
        if in_file:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **(POOL if in_file else {}))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, **POOL)
    except ModuleNotFoundError as exc:
        raise CatalogError(f"no driver for {parsed.drivername} ({exc.name} is not installed): use sqlite:// "
                           f"or postgresql:// URLs") from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA secure_delete = ON")  # erased personal data is overwritten, not left in free pages
    cursor.close()


def _sync_at_checkpoints(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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
