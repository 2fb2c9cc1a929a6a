"""Load the whole catalogue into the matcher's arrays (fitcore.fit.catalogue): a few queries, no per-row objects.

sections[i] is size i's (STATIONS, 2 + ANGLES) float32 block (layout in fitcore.fit.sections), ball_girths_mm[i]
its ball-line girth table as stored at import (fitcore.fit.ball_line); the other arrays
give its ids, inner length, descriptors and labels, so filters (category, gender, stock) select rows by index.
`models` holds one row per shoe model (brand, names, category...) and `stock` the size ids each store has on
hand: loaded with the sections in three queries. What each retailer sells and at what price is its assortment,
loaded apart (api/repository/assortment.py) over these rows.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, select

from fitcore.fit.ball_line import BALL_LINE_ANGLES_DEG, table_from_blob
from fitcore.fit.catalogue import MatcherCatalogue, ModelTable
from fitcore.fit.sections import ROW, STATIONS, sections_from_blob
from shoe_db.models import Brand, Interior, ShoeModel, SizeVariant, Stock, Store


def load_matcher_catalogue(engine: Engine) -> MatcherCatalogue:
    """Every size with an interior, ordered by size id, with its model's row and the stores' stock."""
    interior, variant = Interior.__table__, SizeVariant.__table__
    query = (select(interior.c.size_id, variant.c.model_id, interior.c.inner_length_mm, interior.c.ball_width_mm,
                    interior.c.ball_girth_mm, interior.c.sections, variant.c.sku, variant.c.size_system,
                    variant.c.size_label, variant.c.width, variant.c.nominal_foot_length_mm, interior.c.ball_girths)
             .join(variant, variant.c.id == interior.c.size_id).order_by(interior.c.size_id))
    with engine.connect() as conn:
        rows = _fetch_all(conn, query)
        models = _load_models(conn)
        stock = _load_stock(conn)
    sections = np.empty((len(rows), STATIONS, ROW), dtype=np.float32)
    girths = np.empty((len(rows), STATIONS, len(BALL_LINE_ANGLES_DEG)), dtype=np.float64)
    for i, row in enumerate(rows):
        sections[i] = sections_from_blob(bytes(row[5]))
        girths[i] = table_from_blob(bytes(row[11]), STATIONS)
    columns = list(zip(*rows)) if rows else [()] * 12
    return MatcherCatalogue(
        size_ids=np.array(columns[0], dtype=np.int64), model_ids=np.array(columns[1], dtype=np.int64),
        inner_length_mm=np.array(columns[2], dtype=np.float32), ball_width_mm=np.array(columns[3], dtype=np.float32),
        ball_girth_mm=np.array(columns[4], dtype=np.float32), sections=sections,
        sku=np.array(columns[6], dtype=object), size_system=np.array(columns[7], dtype=object),
        size_label=np.array(columns[8], dtype=object), width=np.array(columns[9], dtype=object),
        nominal_foot_length_mm=np.array(columns[10], dtype=np.float64), models=models, stock=stock,
        ball_girths_mm=girths)


def _load_models(conn) -> ModelTable:
    model, brand = ShoeModel.__table__, Brand.__table__
    query = (select(model.c.id, brand.c.name, model.c.code, model.c.name, model.c.category, model.c.gender,
                    model.c.use, model.c.level)
             .join(brand, brand.c.id == model.c.brand_id).order_by(model.c.id))
    rows = conn.execute(query).all()
    if not rows:
        return ModelTable.empty()
    c = list(zip(*rows))
    return ModelTable(np.array(c[0], dtype=np.int64), *(np.array(c[i], dtype=object) for i in range(1, 8)))


def _load_stock(conn) -> dict[str, np.ndarray]:
    stock, store = Stock.__table__, Store.__table__
    query = (select(store.c.code, stock.c.size_id).join(store, store.c.id == stock.c.store_id)
             .where(stock.c.quantity > 0).order_by(store.c.code, stock.c.size_id))
    by_store: dict[str, list[int]] = {}
    for code, size_id in conn.execute(query):
        by_store.setdefault(code, []).append(size_id)
    return {code: np.array(ids, dtype=np.int64) for code, ids in by_store.items()}


def _fetch_all(conn, query) -> list[tuple]:
    """All rows; on PostgreSQL in binary transfer, which moves the blobs about three times faster than hex text."""
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(query)]
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
