"""The tenant's assortment: which of the operator's sizes it sells, under its own SKUs and EANs, at its prices.

A tenant's product file names the operator's sizes (brand + model code + size + width, or the size's EAN); the
operator's tables are only read here. Items are tenant-owned (TENANT_OWNED), so every query on the repository's
session reaches the caller's alone, and one tenant's SKU or price never touches another's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlmodel import select

from api.models import AssortmentItem
from api.repository import Repository
from shoe_db import versions
from shoe_db.importer import chunks
from shoe_db.models import Brand, ShoeModel, SizeVariant
from shoe_db.product_file import AssortmentRow, RowError, SizeKey


@dataclass(frozen=True)
class Item:
    """A row of the tenant's product file with the operator's size it names."""

    row: int
    sku: str
    ean: str
    size_id: int
    price_cents: int
    currency: str


def resolve(repo: Repository, file: str, rows: list[AssortmentRow]) -> tuple[list[Item], list[RowError]]:
    """The items the rows describe; an error for a row naming a size the operator's interior database lacks, or
    a size the tenant sells under another SKU already."""
    by_key = _sizes_by_key(repo, {r.size for r in rows if r.size is not None})
    by_ean = _sizes_by_ean(repo, {r.ean for r in rows if r.size is None})
    sold = dict(repo.session.exec(select(AssortmentItem.size_id, AssortmentItem.sku)).all())
    items, errors, first_row = [], [], {}
    for row in rows:
        if row.size is not None:
            found = [by_key[row.size]] if row.size in by_key else []
        else:
            found = by_ean.get(row.ean, [])
        if not found:
            errors.append(RowError(file, row.row, "size" if row.size else "ean", f"{row.names()} is not in the "
                                   f"operator's interior database: check brand, model_code, size_system, size and "
                                   f"width (or the EAN), or ask the operator to import it"))
            continue
        if len(found) > 1:
            errors.append(RowError(file, row.row, "ean", f"EAN {row.ean} belongs to {len(found)} sizes of the "
                                   f"operator's interior database: name the size by brand, model_code, size_system "
                                   f"and size instead"))
            continue
        size_id = found[0]
        if sold.get(size_id, row.sku) != row.sku:
            errors.append(RowError(file, row.row, "sku", f"{row.names()} is your SKU {sold[size_id]!r} already: a "
                                                         f"size has one SKU in your assortment; give that SKU"))
        elif size_id in first_row:
            errors.append(RowError(file, row.row, "sku", f"{row.names()} is on row {first_row[size_id]} already: a "
                                                         f"size has one SKU in your assortment"))
        else:
            first_row[size_id] = row.row
            items.append(Item(row.row, row.sku, row.ean, size_id, row.price_cents, row.currency))
    return items, errors


def upsert(repo: Repository, items: list[Item]) -> tuple[int, int, int]:
    """Write the items by SKU (new ones added, changed ones updated; the caller commits): how many were created,
    updated and unchanged."""
    existing = {i.sku: i for i in _where_in(repo, select(AssortmentItem), AssortmentItem.sku, [i.sku for i in items])}
    created = updated = 0
    for item in items:
        values = dict(size_id=item.size_id, ean=item.ean, price_cents=item.price_cents, currency=item.currency)
        stored = existing.get(item.sku)
        if stored is None:
            repo.session.add(AssortmentItem(tenant_id=repo.tenant_id, sku=item.sku, **values))
            created += 1
        elif any(getattr(stored, k) != v for k, v in values.items()):
            stored.sqlmodel_update(values)
            updated += 1
    repo.session.flush()
    versions.count_write(repo.session.connection(), versions.assortment(repo.tenant_id))
    return created, updated, len(items) - created - updated


def size_ids(repo: Repository, skus: list[str]) -> dict[str, int]:
    """The operator's size of each of the tenant's SKUs that it has."""
    query = select(AssortmentItem.sku, AssortmentItem.size_id)
    return dict(_where_in(repo, query, AssortmentItem.sku, skus))


def _sizes_by_key(repo: Repository, keys: set[SizeKey]) -> dict[SizeKey, int]:
    query = (select(Brand.name, ShoeModel.code, SizeVariant.size_system, SizeVariant.size_value, SizeVariant.width,
                    SizeVariant.id)
             .join(ShoeModel, ShoeModel.id == SizeVariant.model_id).join(Brand, Brand.id == ShoeModel.brand_id))
    found = {}
    for *key, size_id in _where_in(repo, query, ShoeModel.code, sorted({k.model_code for k in keys})):
        if SizeKey(*key) in keys:
            found[SizeKey(*key)] = size_id
    return found


def _sizes_by_ean(repo: Repository, eans: set[str]) -> dict[str, list[int]]:
    found = defaultdict(list)
    for ean, size_id in _where_in(repo, select(SizeVariant.ean, SizeVariant.id), SizeVariant.ean, sorted(eans)):
        found[ean].append(size_id)
    return found


def _where_in(repo: Repository, query, column, values: list) -> Iterator:
    """The results of `query` restricted to column IN values, a chunk of values at a time."""
    for chunk in chunks(values):
        yield from repo.session.exec(query.where(column.in_(chunk)))
