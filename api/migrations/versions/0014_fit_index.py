"""The fit index (api/fit_index.py): per tenant, chunks of passports kept as mailing descriptors, and per chunk and
product the packed outcomes a mailing reads. Batch jobs gain a kind (a mailing, or a refresh of the fit index) and
can be cancelled. Downgrade drops the tables (the index is derived data, rebuilt by `footfit fit-index refresh`)
and the jobs' new columns (jobs of the new kind go with them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fit_index_chunk",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False, index=True),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("passport_ids", sa.Text(), nullable=False),
        sa.Column("descriptors", sa.LargeBinary(), nullable=False),
        sa.Column("learning_arm", sa.LargeBinary(), nullable=False),
        sa.Column("decision", sa.String(120), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "fit_index_column",
        sa.Column("chunk_id", sa.Integer(), sa.ForeignKey("fit_index_chunk.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("model_id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("fits", sa.LargeBinary(), nullable=False),
        sa.Column("sizes", sa.LargeBinary(), nullable=False),
        sa.Column("scores", sa.LargeBinary(), nullable=False),
    )
    with op.batch_alter_table("mailing_job") as table:
        table.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="mailing"))
        table.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.execute("DELETE FROM mailing_job WHERE kind <> 'mailing'")
    with op.batch_alter_table("mailing_job") as table:
        table.drop_column("cancel_requested")
        table.drop_column("kind")
    op.drop_table("fit_index_column")
    op.drop_table("fit_index_chunk")
