"""Feedback that carries the signal: where an event came from (store or webshop), whether a tried size was kept and
the complaint about it (region and direction), the advice at the time (the recommended size, the learned state's
version and A/B arm), and when it happened (a webshop posts returns weeks later) beside when it was stored.

Older rows stay valid: `source` is what their recording key stood for (a key of a store: store; a tenant key:
webshop), `occurred_at` is their `recorded_at`; the rest stays null (not said). `recorded_at` is indexed: the
learner reads the events stored since its last run.

Downgrade drops the new columns; the events the old service cannot read become what it can: an `exchanged`
purchase a `returned` one, a return's `none_given` reason `other`, and `kept` events (nothing stood for them) go.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _new_nullable() -> list[sa.Column]:
    """The new columns null on older rows (made afresh per use: a column belongs to one table)."""
    return [
        sa.Column("kept", sa.Boolean(), nullable=True),
        sa.Column("complaint_region", sa.String(8), nullable=True),
        sa.Column("complaint_direction", sa.String(8), nullable=True),
        sa.Column("recommended_size_id", sa.Integer(),
                  sa.ForeignKey("size_variant.id", name="fk_feedback_recommended_size_id"), nullable=True),
        sa.Column("learning_version", sa.String(80), nullable=True),
        sa.Column("advice_arm", sa.String(32), nullable=True),
    ]


def upgrade() -> None:
    # Each batch recreates the table on SQLite (nothing refers to feedback, so its foreign keys allow the swap) and
    # alters it in place on PostgreSQL.
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("source", sa.String(8), nullable=True))
        batch.add_column(sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
        for column in _new_nullable():
            batch.add_column(column)
    op.execute("UPDATE feedback SET occurred_at = recorded_at, source = CASE WHEN EXISTS (SELECT 1 FROM api_key k "
               "WHERE k.id = feedback.recorded_by AND k.store_id IS NOT NULL) THEN 'store' ELSE 'webshop' END")
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("source", existing_type=sa.String(8), nullable=False)
        batch.alter_column("occurred_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_feedback_recorded_at", "feedback", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_recorded_at", table_name="feedback")
    op.execute("DELETE FROM feedback WHERE event = 'kept'")
    op.execute("UPDATE feedback SET event = 'returned' WHERE event = 'exchanged'")
    op.execute("UPDATE feedback SET reason = 'other' WHERE reason = 'none_given'")
    with op.batch_alter_table("feedback") as batch:
        for column in ("source", "occurred_at", *(c.name for c in _new_nullable())):
            batch.drop_column(column)
