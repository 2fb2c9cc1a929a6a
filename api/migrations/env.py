"""Alembic environment of the database's one history; api.migrations passes the connection in."""

from alembic import context
from sqlmodel import SQLModel

import api.models  # noqa: F401  (registers the service's tables and, through it, the catalogue's)
from api.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
