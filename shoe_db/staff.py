"""What the operator's staff and developers read from the catalogue: one line per model, one model in full,
stock per store (every tenant's)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from core.errors import CatalogError
from shoe_db.models import Brand, Interior, ShoeModel, SizeVariant, Stock, Store

_B, _M, _V, _I, _S, _ST = (t.__table__ for t in (Brand, ShoeModel, SizeVariant, Interior, Stock, Store))


@dataclass(frozen=True)
class ModelLine:
    brand: str
    code: str
    name: str
    category: str
    gender: str
    sizes: int
    scanned: int
    graded: int
    size_range: str

    def __str__(self) -> str:
        return (f"{self.brand:12s} {self.code:8s} {self.name:24s} {self.category:8s} {self.gender:6s} "
                f"{self.size_range:18s} {self.sizes:3d} sizes ({self.scanned} scanned, {self.graded} graded)")


def list_models(engine: Engine, category: str | None = None) -> list[ModelLine]:
    query = (select(_B.c.name, _M.c.code, _M.c.name.label("model_name"), _M.c.category, _M.c.gender,
                    func.count(_V.c.id).label("sizes"),
                    func.count(_I.c.size_id).filter(_I.c.source == "scanned").label("scanned"),
                    func.count(_I.c.size_id).filter(_I.c.source == "graded").label("graded"),
                    func.min(_V.c.size_system).label("system"), func.min(_V.c.size_value).label("lo"),
                    func.max(_V.c.size_value).label("hi"))
             .join(_M, _M.c.brand_id == _B.c.id).join(_V, _V.c.model_id == _M.c.id)
             .outerjoin(_I, _I.c.size_id == _V.c.id)
             .group_by(_B.c.name, _M.c.code, _M.c.name, _M.c.category, _M.c.gender)
             .order_by(_B.c.name, _M.c.code))
    if category:
        query = query.where(_M.c.category == category)
    with engine.connect() as conn:
        return [ModelLine(r.name, r.code, r.model_name, r.category, r.gender, r.sizes, r.scanned, r.graded,
                          f"{r.system} {r.lo:g}-{r.hi:g}") for r in conn.execute(query)]


def show(engine: Engine, key: str) -> str:
    """A model (by model code) or a size variant's model (by SKU), with every size's interior and its stock in
    every store."""
    with engine.connect() as conn:
        model = conn.execute(select(_M, _B.c.name.label("brand")).join(_B, _B.c.id == _M.c.brand_id)
                             .where((_M.c.code == key) | _M.c.id.in_(select(_V.c.model_id).where(_V.c.sku == key)))
                             ).mappings().first()
        if model is None:
            raise CatalogError(f"no model code or SKU {key!r} in the catalogue: `footfit catalog list` shows them")
        stock = func.coalesce(select(func.sum(_S.c.quantity)).where(_S.c.size_id == _V.c.id).scalar_subquery(), 0)
        sizes = conn.execute(select(_V, _I, stock.label("in_stock")).outerjoin(_I, _I.c.size_id == _V.c.id)
                             .where(_V.c.model_id == model["id"]).order_by(_V.c.width, _V.c.size_value)).mappings()
        lines = [f"{model['brand']} {model['code']} {model['name']}: {model['category']}, {model['gender']}, "
                 f"use {model['use'] or '-'}, level {model['level'] or '-'}, season {model['season'] or '-'}, "
                 f"attributes {model['attributes_json']}",
                 f"{'sku':16s} {'size':12s} {'width':10s} {'source':7s} {'length':>7s} {'ball_w':>6s} "
                 f"{'ball_g':>6s} {'instep':>6s} {'heel_w':>6s} {'toebox':>6s} {'vol_ml':>7s} {'stock':>5s}"]
        for s in sizes:
            size = f"{s['size_system']} {s['size_label']}"
            if s["source"] is None:
                lines.append(f"{s['sku']:16s} {size:12s} {s['width']:10s} {'none':7s} (no interior){'':41s} "
                             f"{s['in_stock']:5d}")
                continue
            lines.append(f"{s['sku']:16s} {size:12s} {s['width']:10s} {s['source']:7s} {s['inner_length_mm']:7.1f} "
                         f"{s['ball_width_mm']:6.1f} {s['ball_girth_mm']:6.1f} {s['instep_girth_mm']:6.1f} "
                         f"{s['heel_width_mm']:6.1f} {s['toe_box_height_mm']:6.1f} {s['volume_ml']:7.1f} "
                         f"{s['in_stock']:5d}")
    return "\n".join(lines)


@dataclass(frozen=True)
class StockLine:
    store: str
    sku: str
    model: str
    size: str
    width: str
    quantity: int

    def __str__(self) -> str:
        return f"{self.store:10s} {self.sku:16s} {self.model:24s} {self.size:10s} {self.width:10s} {self.quantity:4d}"


def stock(engine: Engine, store: str | None = None, key: str | None = None) -> list[StockLine]:
    """Stock on hand (quantity > 0), optionally of one store and of one model code or SKU."""
    query = (select(_ST.c.code, _V.c.sku, _B.c.name, _M.c.code.label("model_code"), _V.c.size_system,
                    _V.c.size_label, _V.c.width, _S.c.quantity)
             .join(_S, _S.c.store_id == _ST.c.id).join(_V, _V.c.id == _S.c.size_id)
             .join(_M, _M.c.id == _V.c.model_id).join(_B, _B.c.id == _M.c.brand_id)
             .order_by(_ST.c.code, _M.c.code, _V.c.width, _V.c.size_value))
    with engine.connect() as conn:
        if store:
            if conn.execute(select(_ST.c.id).where(_ST.c.code == store)).first() is None:
                raise CatalogError(f"no store {store!r} in the catalogue: `footfit tenants list` shows the "
                                   f"tenants' stores")
            query = query.where(_ST.c.code == store)
        if key:
            query = query.where((_M.c.code == key) | (_V.c.sku == key))
        return [StockLine(r.code, r.sku, f"{r.name} {r.model_code}", f"{r.size_system} {r.size_label}", r.width,
                          r.quantity) for r in conn.execute(query)]
