"""Many processes on one database: the data versions every process compares its in-memory copies with
(shoe_db.models.DataVersion), and mailing jobs that any process may run, taken under a lease it renews while it
runs (a job whose process died is taken over when its lease runs out).

Existing mailing jobs keep their state; a job left queued or running by the old single process is taken by the
next process that looks for work. Downgrade drops the table and the columns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LEASE_COLUMNS = ("attempts", "lease_holder", "lease_expires_at", "started_at")


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("mailing_job") as table:
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("lease_holder", sa.String(80), nullable=True))
        table.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        table.create_index("ix_mailing_job_state", ["state"])


def downgrade() -> None:
    with op.batch_alter_table("mailing_job") as table:
        table.drop_index("ix_mailing_job_state")
        for column in LEASE_COLUMNS:
            table.drop_column(column)
    op.drop_table("data_version")
