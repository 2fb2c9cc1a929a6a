"""The product learns: every version of the learned state (pooled over the tenants, or one tenant's) with how it
was judged; each customer's learned preference per version (personal data: a tenant's table); and the lease that
lets one learning job run at a time over every process, with when it last finished (the schedule).

Nothing existing changes. Downgrade drops the three tables: learned states and preferences are learned again from
the feedback events, which stay.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learned_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=True, index=True),
        sa.Column("version", sa.String(16), nullable=False, index=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("held_out", sa.Integer(), nullable=False),
        sa.Column("compared_with", sa.String(16), nullable=False),
        sa.Column("log_loss", sa.Float(), nullable=True),
        sa.Column("brier", sa.Float(), nullable=True),
        sa.Column("current_log_loss", sa.Float(), nullable=True),
        sa.Column("current_brier", sa.Float(), nullable=True),
        sa.Column("judgement_json", sa.Text(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
    )
    op.create_table(
        "customer_preference",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customer.id"), nullable=False, index=True),
        sa.Column("state_id", sa.Integer(), sa.ForeignKey("learned_state.id"), nullable=False, index=True),
        *(sa.Column(name, sa.Float(), nullable=False) for name in (
            "toe_mm", "forefoot_mm", "heel_mm", "toe_sd_mm", "forefoot_sd_mm", "heel_sd_mm")),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.UniqueConstraint("state_id", "customer_id"),
    )
    op.create_table(
        "job_lease",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(80), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute("INSERT INTO job_lease (name) VALUES ('learning')")


def downgrade() -> None:
    op.drop_table("job_lease")
    op.drop_table("customer_preference")
    op.drop_table("learned_state")
