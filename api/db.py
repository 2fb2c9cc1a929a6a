"""The service's database: the catalogue's engine (one database URL setting), with the service's own alembic
history (api/migrations, version table `api_alembic_version`) applied after the catalogue's on every open."""

from __future__ import annotations

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
    return engine


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
