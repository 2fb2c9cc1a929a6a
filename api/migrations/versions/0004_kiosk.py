"""The kiosk's data: a kiosk scan's pressure map (kept with its passport) and each store's size system.

Revision ID: api0003
Revises: api0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "api0003"
down_revision = "api0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pressure_map",
        sa.Column("passport_id", sa.String(32), sa.ForeignKey("passport.id"), primary_key=True),
        sa.Column("map_json", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("tenant_store") as table:
        table.add_column(sa.Column("size_system", sa.String(12), nullable=False, server_default="eu"))


def downgrade() -> None:
    with op.batch_alter_table("tenant_store") as table:
        table.drop_column("size_system")
    op.drop_table("pressure_map")
