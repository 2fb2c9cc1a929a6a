"""Each tenant's assortment: what it sells of the operator's interior database, under its own SKUs and at its own
prices; prices leave the shared models.

Existing data becomes the assortment of the tenant owning each store: a tenant sells every size of every model
one of its stores holds stock of (quantity > 0), under the operator's SKU and EAN, at the model's price. A model
no tenant's store stocks was recommended to every tenant before, so every tenant keeps selling it. Stock stays with
its store, and so with the store's owner; stock of a store no tenant owns was nobody's and is removed.

Downgrade gives each model back a price (the lowest any tenant sells it at; 0 EUR where none sells it) and drops
the assortments; stock removed on the way up stays removed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STOCKED = """SELECT DISTINCT ts.tenant_id AS tenant_id, v.model_id AS model_id
    FROM stock s JOIN tenant_store ts ON ts.store_id = s.store_id JOIN size_variant v ON v.id = s.size_id
    WHERE s.quantity > 0"""


def upgrade() -> None:
    op.create_table(
        "assortment_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("size_id", sa.Integer(), sa.ForeignKey("size_variant.id"), nullable=False),
        sa.Column("sku", sa.String(80), nullable=False),
        sa.Column("ean", sa.String(13), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.UniqueConstraint("tenant_id", "sku"),
        sa.UniqueConstraint("tenant_id", "size_id"),
    )
    op.execute(f"""INSERT INTO assortment_item (tenant_id, size_id, sku, ean, price_cents, currency)
        SELECT sellers.tenant_id, v.id, v.sku, v.ean, m.price_cents, m.currency
        FROM ({_STOCKED}
              UNION SELECT t.id, m.id FROM tenant t CROSS JOIN shoe_model m
                    WHERE m.id NOT IN (SELECT model_id FROM ({_STOCKED}) AS stocked)) AS sellers
        JOIN size_variant v ON v.model_id = sellers.model_id JOIN shoe_model m ON m.id = v.model_id""")
    op.execute("DELETE FROM stock WHERE store_id NOT IN (SELECT store_id FROM tenant_store)")
    # in place: SQLite (3.35+) then needs no copy of the table, whose swap its foreign keys would refuse
    for column in ("price_cents", "currency"):
        op.execute(f"ALTER TABLE shoe_model DROP COLUMN {column}")


def downgrade() -> None:
    op.add_column("shoe_model", sa.Column("price_cents", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("shoe_model", sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"))
    cheapest = ("FROM assortment_item a JOIN size_variant v ON v.id = a.size_id WHERE v.model_id = shoe_model.id "
                "ORDER BY a.price_cents, a.id LIMIT 1")
    op.execute(f"UPDATE shoe_model SET price_cents = COALESCE((SELECT a.price_cents {cheapest}), 0), "
               f"currency = COALESCE((SELECT a.currency {cheapest}), 'EUR')")
    op.drop_table("assortment_item")
