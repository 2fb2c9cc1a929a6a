"""The data versions (models.DataVersion): every writer of data that processes keep in memory counts its write in
the same transaction, and every reader compares the counters with those of its copy before it answers, so all
processes on one database answer alike however many there are and whichever of them wrote.

One UPSERT per write (SQLite and PostgreSQL both take `INSERT ... ON CONFLICT DO UPDATE`), so two processes
counting the same name at once both count; one SELECT of a few rows per read.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from shoe_db.models import DataVersion

CATALOGUE = "catalogue"  # the operator's shoes and interiors, and every store's stock
_UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def assortment(tenant_id: int) -> str:
    """The name counting a retailer's assortment (its SKUs and prices)."""
    return f"assortment:{tenant_id}"


def learning(scope: int | None) -> str:
    """The name counting which learned state is in use for a scope (a tenant's id, or None: pooled)."""
    return f"learning:{'pooled' if scope is None else scope}"


def count_write(conn: Connection, name: str) -> None:
    """Count a write of `name`'s data, inside the writer's transaction (it commits or rolls back with it)."""
    table = DataVersion.__table__
    insert = _UPSERTS[conn.dialect.name](table).values(name=name, version=1)
    conn.execute(insert.on_conflict_do_update(index_elements=[table.c.name],
                                              set_={"version": table.c.version + 1}))


def read(conn: Connection, names: Collection[str]) -> dict[str, int]:
    """The counters of `names` (0 for one never written)."""
    table = DataVersion.__table__
    found = dict(conn.execute(select(table.c.name, table.c.version).where(table.c.name.in_(list(names)))).all())
    return {name: found.get(name, 0) for name in names}
