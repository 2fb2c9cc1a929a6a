"""Catalogue imports over the API, each writing only what its caller owns.

The operator's interior database (brands, models, sizes, interior scans, grading), shared by every tenant, is
imported with the catalogue's own importer (shoe_db.importer) by an operator key (`catalog:operator`). A tenant's
assortment (`catalog:write`) is its own: each row of its product file names one of the operator's sizes and makes
it the tenant's SKU at the tenant's price; the stock column may name only the tenant's stores, and sets the SKU's
stock in those alone (the tenant's stores a row does not name hold none). A tenant's import reads nothing else of
the file, so it never changes a model, an interior or another tenant's SKUs, prices or stock. Either import
checks every row before writing, and writes in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.repository import Repository, assortment, stores
from core.errors import InvalidInput
from core.mesh import MESH_SUFFIXES
from shoe_db.importer import ImportSummary, import_catalogue
from shoe_db.product_file import FileSummary, InteriorFile, interiors_by_stem, parse_assortment, parse_products

PRODUCT_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass
class AssortmentSummary(FileSummary):
    """FileSummary counting the tenant's SKUs (created: new to its assortment; updated: size, EAN or price
    changed) and the stock quantities set in its stores."""

    stock_rows: int = 0

    def written(self) -> str:
        return f"SKUs {super().written()}; {self.stock_rows} stock quantities set"


def uploaded_text(products_name: str | None, products: bytes) -> str:
    """The text of an uploaded product file."""
    if Path(products_name or "").suffix.lower() not in PRODUCT_SUFFIXES:
        raise InvalidInput(f"the product file {products_name!r} must be .csv or .jsonl (docs/catalog.md)")
    try:
        return products.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{products_name} is not UTF-8 text: save it as UTF-8") from None


def import_interiors(engine, products_name: str, products: str, interiors: dict[str, bytes],
                     skip_invalid: bool) -> ImportSummary:
    """The operator's import: models, sizes and interior scans into the shared interior database."""
    return import_catalogue(parse_products(products_name, products), _interior_scans(interiors), engine=engine,
                            skip_invalid=skip_invalid)


def import_assortment(repo: Repository, products_name: str, products: str, skip_invalid: bool) -> AssortmentSummary:
    """The tenant's import of a product file's text: its SKUs of the operator's sizes, their prices, and their
    stock in its stores."""
    parsed = parse_assortment(products_name, products)
    store_ids = stores.ids_by_code(repo)
    foreign = sorted({code for row in parsed.rows if row.stock for code in row.stock} - store_ids.keys())
    if foreign:
        raise InvalidInput(f"the stock column names stores that are not yours: {', '.join(foreign)}: give stock "
                           f"only for your stores (GET /v1/stores); nothing was imported")
    summary = AssortmentSummary(file=products_name, rows=parsed.row_count, warnings=list(parsed.warnings))
    items, errors = assortment.resolve(repo, products_name, parsed.rows)
    summary.reject(parsed.errors + errors)
    if summary.errors and not skip_invalid:
        return summary
    summary.created, summary.updated, summary.unchanged = assortment.upsert(repo, items)
    imported = {item.row for item in items}
    stocked = [row for row in parsed.rows if row.stock is not None and row.row in imported]
    summary.stock_rows = stores.set_stock(repo, {store_id: {row.sku: row.stock.get(code, 0) for row in stocked}
                                                 for code, store_id in store_ids.items()})
    repo.commit()
    summary.committed = True
    return summary


def _interior_scans(interiors: dict[str, bytes]) -> dict[str, InteriorFile]:
    """The uploaded scans as the importer takes them, named as if in a folder `interiors` (as `--interiors` is).
    A folder may hold other files, which the importer passes over; an upload names only scans, so a file that is
    not a mesh is refused rather than silently left out. Their contents are checked as they are read
    (core/mesh.py: format, size caps)."""
    files = []
    for name, data in interiors.items():
        safe = Path(name).name
        if not safe or safe.startswith("."):
            raise InvalidInput(f"interior file name {name!r} is not a file name: name scans after the SKU, "
                               f"e.g. AL1000-S-42.ply")
        if Path(safe).suffix.lower() not in MESH_SUFFIXES:
            raise InvalidInput(f"interior file {safe!r} is not a mesh: send interior scans as "
                               f"{', '.join(MESH_SUFFIXES)} files (mm); nothing was imported")
        files.append(InteriorFile(f"interiors/{safe}", data=data))
    return interiors_by_stem(files)
