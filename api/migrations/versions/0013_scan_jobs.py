"""Kiosk scans become rows (scan_job) that any service process follows and the rig's agent in the store runs
(cli/agent.py); one scan runs per rig at a time over every process (a unique index over the running rows). Before,
a scan lived in the memory of the process that started it: nothing to carry over. Downgrade drops the table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_job",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False, index=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("store.id"), nullable=False),
        sa.Column("rig_serial", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customer.id"), nullable=True, index=True),
        sa.Column("loyalty_id", sa.String(64), nullable=False),
        sa.Column("rescan_of", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("arm_angle_deg", sa.Float(), nullable=True),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("kept", sa.String(40), nullable=False),
        sa.Column("passport_id", sa.String(32), nullable=True),
        sa.Column("failed_device", sa.String(10), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(80), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("preview", sa.LargeBinary(), nullable=True),
    )
    op.create_index("uq_scan_job_running_rig", "scan_job", ["rig_serial"], unique=True,
                    sqlite_where=sa.text("state = 'running'"), postgresql_where=sa.text("state = 'running'"))


def downgrade() -> None:
    op.drop_index("uq_scan_job_running_rig", table_name="scan_job")
    op.drop_table("scan_job")
