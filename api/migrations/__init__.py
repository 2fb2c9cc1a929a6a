"""The database's one alembic history (versions/): the catalogue's tables (revision 0001), then the service's
(api0001 onwards). api.db.open_service_db brings a database to the newest revision every time it opens one.

One process migrates at a time: the migration's transaction first takes a lock (PostgreSQL: an advisory lock;
SQLite: the database's write lock), so a second process opening the database meanwhile waits, then finds the
schema at head and changes nothing. On both databases the whole migration commits or rolls back as one.

Databases made before the histories were merged keep one version table per part: `shoe_db_alembic_version`
(the catalogue's) and `api_alembic_version` (the service's). The revision ids are those histories' own, so such a
database is adopted where it stands: its revision here is the service's, or the catalogue's where the service
never ran; it is stamped with that, the old version tables are dropped and the upgrade goes on from there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError

from core.errors import CatalogError

VERSION_TABLE = "alembic_version"
OLD_VERSION_TABLES = ("api_alembic_version", "shoe_db_alembic_version")  # the service's first: it is further on
LOCK_ID = int.from_bytes(b"footfit")  # the PostgreSQL advisory lock migrations hold


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Down to `revision`: "0001" leaves the catalogue alone, "base" leaves no table but the version table."""
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    try:
        with engine.begin() as connection:
            _lock(connection)
            config.attributes["connection"] = connection
            _adopt_old_histories(connection, config)
            action(config, revision)
    except OperationalError as exc:
        raise CatalogError(f"cannot open the database {engine.url.render_as_string()}: "
                           f"{str(exc.orig).strip().splitlines()[0]}: check FOOTFIT_DATABASE_URL and that the "
                           f"server is running") from None


def _lock(connection: Connection) -> None:
    """Hold the migration lock until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the driver would begin only at the first row written


def _adopt_old_histories(connection: Connection, config: Config) -> None:
    tables = set(inspect(connection).get_table_names())
    old = [table for table in OLD_VERSION_TABLES if table in tables]
    if not old or VERSION_TABLE in tables:
        return
    revisions = [MigrationContext.configure(connection, opts={"version_table": table}).get_current_revision()
                 for table in old]
    revision = next((r for r in revisions if r is not None), None)
    if revision is not None:  # None: both histories were downgraded to nothing
        command.stamp(config, revision)
    for table in old:
        connection.execute(text(f"DROP TABLE {table}"))
