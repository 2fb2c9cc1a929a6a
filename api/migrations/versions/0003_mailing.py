"""Mailing jobs and their outputs (which product fits which passport's customer).

Revision ID: api0002
Revises: api0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "api0002"
down_revision = "api0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailing_job",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False, index=True),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("model_ids_json", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("passports", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
    )
    op.create_table(
        "mailing_match",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("mailing_job.id"), nullable=False, index=True),
        sa.Column("passport_id", sa.String(32), sa.ForeignKey("passport.id"), nullable=False, index=True),
        sa.Column("model_id", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailing_match")
    op.drop_table("mailing_job")
