"""The shoe catalogue: brands, models, size variants, interiors and their scans, stores, stock.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "brand",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
    )
    op.create_index("ix_brand_name", "brand", ["name"], unique=True)
    op.create_table(
        "shoe_model",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("brand_id", sa.Integer(), sa.ForeignKey("brand.id"), nullable=False),
        sa.Column("code", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("gender", sa.String(10), nullable=False),
        sa.Column("use", sa.String(80), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("season", sa.String(20), nullable=False),
        sa.Column("attributes_json", sa.String(), nullable=False),
        sa.UniqueConstraint("brand_id", "code"),
    )
    op.create_index("ix_shoe_model_brand_id", "shoe_model", ["brand_id"])
    op.create_index("ix_shoe_model_category", "shoe_model", ["category"])
    op.create_table(
        "size_variant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("shoe_model.id"), nullable=False),
        sa.Column("sku", sa.String(80), nullable=False),
        sa.Column("ean", sa.String(13), nullable=False),
        sa.Column("size_system", sa.String(5), nullable=False),
        sa.Column("size_label", sa.String(12), nullable=False),
        sa.Column("size_value", sa.Float(), nullable=False),
        sa.Column("width", sa.String(12), nullable=False),
        sa.Column("nominal_foot_length_mm", sa.Float(), nullable=False),
    )
    op.create_index("ix_size_variant_model_id", "size_variant", ["model_id"])
    op.create_index("ix_size_variant_sku", "size_variant", ["sku"], unique=True)
    op.create_table(
        "interior",
        sa.Column("size_id", sa.Integer(), sa.ForeignKey("size_variant.id"), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("graded_from_id", sa.Integer(), sa.ForeignKey("size_variant.id"), nullable=True),
        *(sa.Column(name, sa.Float(), nullable=False) for name in (
            "inner_length_mm", "ball_width_mm", "ball_girth_mm", "instep_girth_mm", "heel_width_mm",
            "toe_box_height_mm", "volume_ml")),
        sa.Column("sections", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "interior_scan",
        sa.Column("size_id", sa.Integer(), sa.ForeignKey("size_variant.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("vertex_count", sa.Integer(), nullable=False),
        sa.Column("triangle_count", sa.Integer(), nullable=False),
        sa.Column("mesh", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "store",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
    )
    op.create_index("ix_store_code", "store", ["code"], unique=True)
    op.create_table(
        "stock",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("store.id"), primary_key=True),
        sa.Column("size_id", sa.Integer(), sa.ForeignKey("size_variant.id"), primary_key=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
    )
    op.create_index("ix_stock_size_id", "stock", ["size_id"])


def downgrade() -> None:
    for table in ("stock", "store", "interior_scan", "interior", "size_variant", "shoe_model", "brand"):
        op.drop_table(table)
