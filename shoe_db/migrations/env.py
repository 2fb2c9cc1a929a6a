"""Alembic environment of the shoe catalogue; shoe_db.db.migrate passes the connection in."""

from alembic import context

import shoe_db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from shoe_db.db import VERSION_TABLE
from sqlmodel import SQLModel

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
