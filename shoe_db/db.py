"""The catalogue's database: an engine from the one database URL setting, brought to the newest schema.

SQLite by default (a file under the data folder); PostgreSQL when FOOTFIT_DATABASE_URL names one
(`postgresql://user@host/db`; the driver is psycopg 3, so plain `postgresql://` URLs are read as
`postgresql+psycopg://`). Schema changes are alembic migrations in shoe_db/migrations, applied on open.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from core.errors import CatalogError
from core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "shoe_db_alembic_version"  # its own, so other parts can keep their own alembic history


def database_url(url: str | None = None) -> str:
    """The SQLAlchemy URL to use: `url`, else the settings' (FOOTFIT_DATABASE_URL or the SQLite file)."""
    url = url or get_settings().sqlite_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def open_catalog(url: str | None = None) -> Engine:
    """An engine on the catalogue database, migrated to the newest schema."""
    engine = _engine(database_url(url))
    migrate(engine)
    return engine


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision`."""
    _alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema to `revision` ("base": no catalogue tables)."""
    _alembic(engine, command.downgrade, revision)


def _alembic(engine: Engine, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            action(config, revision)
    except OperationalError as exc:
        raise CatalogError(f"cannot open the catalogue database {engine.url.render_as_string()}: "
                           f"{str(exc.orig).strip().splitlines()[0]}: check FOOTFIT_DATABASE_URL and that the "
                           f"server is running") from None


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(f"database URL {url!r} is not a SQLAlchemy URL: write e.g. sqlite:///var/footfit.sqlite "
                           f"or postgresql://user:password@host/dbname") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise CatalogError(f"no driver for {parsed.drivername} ({exc.name} is not installed): use sqlite:// "
                           f"or postgresql:// URLs") from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
