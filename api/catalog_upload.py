"""Catalogue import over the API: the product file and interior scans of a request, imported with the
catalogue's own importer (shoe_db.importer). The catalogue of models is shared by all tenants; stock is not:
the file's stock column may name only the caller's stores, and sets the SKU's stock in those stores alone
(the tenant's stores it does not name hold none), never touching other tenants' stock."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from api.repository import Repository, stores
from core.errors import InvalidInput
from shoe_db.importer import ImportSummary, import_catalogue
from shoe_db.product_file import InteriorFile, interiors_by_stem, parse_products

PRODUCT_SUFFIXES = (".csv", ".jsonl", ".ndjson")


def import_catalog(repo: Repository, engine, products_name: str, products: bytes, interiors: dict[str, bytes],
                   skip_invalid: bool) -> tuple[ImportSummary, int]:
    """The importer's summary and how many stock quantities were set in the tenant's stores."""
    suffix = Path(products_name or "").suffix.lower()
    if suffix not in PRODUCT_SUFFIXES:
        raise InvalidInput(f"the product file {products_name!r} must be .csv or .jsonl (docs/catalog.md)")
    try:
        text = products.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{products_name} is not UTF-8 text: save it as UTF-8") from None
    rows, _ = parse_products(products_name, text)
    stock = {row.sku: row.stock for row in rows if row.stock is not None}
    store_ids = stores.ids_by_code(repo)
    foreign = sorted({code for per_sku in stock.values() for code in per_sku} - store_ids.keys())
    if foreign:
        raise InvalidInput(f"the stock column names stores that are not yours: {', '.join(foreign)}: give stock "
                           f"only for your stores (GET /v1/stores); nothing was imported")
    summary = import_catalogue(products_name, parse_products(products_name, _without_stock(text, suffix)),
                               _interior_scans(interiors), engine=engine, skip_invalid=skip_invalid)
    if not summary.committed:
        return summary, 0
    rejected = {e.row for e in summary.errors}
    imported = {row.sku for row in rows if row.row not in rejected}
    per_store = {store_id: {sku: per_sku.get(code, 0) for sku, per_sku in stock.items() if sku in imported}
                 for code, store_id in store_ids.items()}
    return summary, stores.set_stock(repo, {s: q for s, q in per_store.items() if q})


def _interior_scans(interiors: dict[str, bytes]) -> dict[str, InteriorFile]:
    """The uploaded scans as the importer takes them, named as if in a folder `interiors` (as `--interiors` is)."""
    files = []
    for name, data in interiors.items():
        safe = Path(name).name
        if not safe or safe.startswith("."):
            raise InvalidInput(f"interior file name {name!r} is not a file name: name scans after the SKU, "
                               f"e.g. AL1000-S-42.ply")
        files.append(InteriorFile(f"interiors/{safe}", data=data))
    return interiors_by_stem(files)


def _without_stock(text: str, suffix: str) -> str:
    """The product file with every stock cell emptied (row numbers unchanged): the importer leaves stock alone."""
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        header = [name.strip() for name in rows[0]] if rows else []
        if "stock" not in header:
            return text
        at = header.index("stock")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for i, row in enumerate(rows):
            writer.writerow(row if i == 0 or len(row) <= at else row[:at] + [""] + row[at + 1:])
        return out.getvalue()
    lines = []
    for line in text.splitlines():
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            raw = None
        if isinstance(raw, dict) and "stock" in raw:
            raw.pop("stock")
            line = json.dumps(raw)
        lines.append(line)
    return "\n".join(lines) + "\n"
