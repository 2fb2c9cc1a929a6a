"""Customer session tokens: what a shopper's browser holds instead of a key (api/auth.py, docs/webshop-tryon.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_token",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customer.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("opened_by", sa.String(16), sa.ForeignKey("api_key.id"), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("session_token")
