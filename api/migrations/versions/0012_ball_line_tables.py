"""Each interior stores its ball-line girth table (fitcore.fit.ball_line), computed here for the interiors already
stored, so a service process loading a large catalogue's matcher reads the tables instead of computing them
(issue 15: many processes each load one; 6,000 models took 55 s to load with the tables computed).

The tables are computed exactly as the matcher computes them: from the stored sections and the inner length as the
matcher reads it (float32), a chunk of sizes at a time. Downgrade drops the column.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import numpy as np
import sqlalchemy as sa
from alembic import op

from fitcore.fit.ball_line import ball_girth_table, table_to_blob
from fitcore.fit.sections import sections_from_blob

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CHUNK = 2000  # sizes computed and written at a time
INTERIOR = sa.table("interior", sa.column("size_id", sa.Integer), sa.column("inner_length_mm", sa.Float),
                    sa.column("sections", sa.LargeBinary), sa.column("ball_girths", sa.LargeBinary))


def upgrade() -> None:
    with op.batch_alter_table("interior") as table:
        table.add_column(sa.Column("ball_girths", sa.LargeBinary(), nullable=True))
    compute_tables(op.get_bind())
    with op.batch_alter_table("interior") as table:
        table.alter_column("ball_girths", existing_type=sa.LargeBinary(), nullable=False)


def compute_tables(conn: sa.Connection) -> None:
    """Every stored interior's table, from its sections and length."""
    ids = [row[0] for row in conn.execute(sa.select(INTERIOR.c.size_id).order_by(INTERIOR.c.size_id))]
    for start in range(0, len(ids), CHUNK):
        rows = conn.execute(sa.select(INTERIOR.c.size_id, INTERIOR.c.inner_length_mm, INTERIOR.c.sections)
                            .where(INTERIOR.c.size_id.in_(ids[start:start + CHUNK]))).all()
        sections = np.stack([sections_from_blob(bytes(row[2])) for row in rows])
        lengths = np.array([row[1] for row in rows], dtype=np.float32).astype(np.float64)
        tables = ball_girth_table(sections, lengths)
        conn.execute(INTERIOR.update().where(INTERIOR.c.size_id == sa.bindparam("id"))
                     .values(ball_girths=sa.bindparam("girths")),
                     [{"id": row[0], "girths": table_to_blob(table)} for row, table in zip(rows, tables)])


def downgrade() -> None:
    with op.batch_alter_table("interior") as table:
        table.drop_column("ball_girths")
