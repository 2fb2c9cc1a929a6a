"""The tenant's stores (catalogue stores it owns), their kiosks, and their stock of the sizes it sells."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete
from sqlmodel import select

from api.models import Kiosk, TenantStore
from api.repository import Repository, assortment
from core.errors import InvalidInput, NotFound
from shoe_db import versions
from shoe_db.importer import chunks
from shoe_db.models import Stock, Store


class StoreRow(NamedTuple):
    code: str
    kiosks: list[str]  # rig serials
    size_system: str


def with_kiosks(repo: Repository) -> list[StoreRow]:
    """The tenant's stores with their kiosks' rig serials and size systems."""
    stores = repo.session.exec(select(Store, TenantStore.size_system)
                               .join(TenantStore, TenantStore.store_id == Store.id).order_by(Store.code)).all()
    kiosks = repo.session.exec(select(Kiosk)).all()
    return [StoreRow(s.code, sorted(k.rig_serial for k in kiosks if k.store_id == s.id), size_system)
            for s, size_system in stores]


def id_of(repo: Repository, code: str) -> int:
    store_id = repo.session.exec(select(Store.id).join(TenantStore, TenantStore.store_id == Store.id)
                                 .where(Store.code == code)).first()
    if store_id is None:
        raise NotFound(f"no store {code!r}: GET /v1/stores lists yours")
    return store_id


def ids_by_code(repo: Repository) -> dict[str, int]:
    query = select(Store.code, Store.id).join(TenantStore, TenantStore.store_id == Store.id)
    return dict(repo.session.exec(query).all())


def code_of(repo: Repository, store_id: int | None) -> str | None:
    return None if store_id is None else repo.session.get(Store, store_id).code


def set_stock(repo: Repository, quantities: dict[int, dict[str, int]]) -> int:
    """Set stock per store id (one of the tenant's) and SKU of its assortment; 0 removes it. All SKUs are checked
    first; the caller commits."""
    skus = sorted({sku for per_store in quantities.values() for sku in per_store})
    ids = assortment.size_ids(repo, skus)
    unknown = [sku for sku in skus if sku not in ids]
    if unknown:
        raise InvalidInput(f"unknown SKUs {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}: your "
                           f"assortment has no such SKUs; import them first (POST /v1/catalog/import); nothing was "
                           f"changed", [("sku", f"unknown SKU {sku}") for sku in unknown])
    written = 0
    for store_id, per_store in quantities.items():
        for chunk in chunks([ids[sku] for sku in per_store]):
            repo.session.exec(delete(Stock).where(Stock.store_id == store_id, Stock.size_id.in_(chunk)))
        repo.session.add_all(Stock(store_id=store_id, size_id=ids[sku], quantity=quantity)
                             for sku, quantity in per_store.items() if quantity > 0)
        written += len(per_store)
    versions.count_write(repo.session.connection(), versions.CATALOGUE)
    return written
