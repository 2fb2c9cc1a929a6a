"""`footfit catalog import|list|show|stock|generate`: the shoe catalogue in the database of the settings.

The functions do the work and return what they did; the `*_command` handlers print it and turn it into an exit
code, so other commands (`footfit demo`) call the functions, never a handler.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from api.db import open_service_db
from shoe_db import staff
from shoe_db.importer import ImportSummary, import_products
from shoe_db.models import CATEGORIES
from simulator.catalog import generate_catalogue, write_catalogue


def import_catalogue(products: Path, interiors: Path | None, skip_invalid: bool = False) -> ImportSummary:
    """Import a product file and its interior scans into the catalogue of the settings."""
    return import_products(products, interiors, engine=open_service_db(), skip_invalid=skip_invalid)


def import_generated_catalogue(models: int, seed: int, stores: int, fmt: str = "csv") -> ImportSummary:
    """A synthetic catalogue (simulator.catalog), written in the import format and imported like any supplier's."""
    catalogue = generate_catalogue(models, seed, stores)
    with tempfile.TemporaryDirectory(prefix="footfit-catalog-") as folder:
        products = write_catalogue(catalogue, Path(folder), fmt)
        return import_catalogue(products, Path(folder) / "interiors")


def _report(summary: ImportSummary) -> int:
    print(summary.report())
    return 0 if summary.committed and not summary.errors else 1


def _import_command(args: argparse.Namespace) -> int:
    return _report(import_catalogue(args.products, args.interiors, args.skip_invalid))


def _generate_command(args: argparse.Namespace) -> int:
    if args.out is None:
        return _report(import_generated_catalogue(args.models, args.seed, args.stores, args.format))
    catalogue = generate_catalogue(args.models, args.seed, args.stores)
    products = write_catalogue(catalogue, args.out, args.format)
    print(f"{len(catalogue.truth)} models, {len(catalogue.rows)} size variants, {len(catalogue.interiors)} "
          f"interior scans written to {args.out} ({products.name}, interiors/, truth.json)")
    return 0


def _list_command(args: argparse.Namespace) -> int:
    lines = staff.list_models(open_service_db(), args.category)
    for line in lines:
        print(line)
    if not lines:
        print("the catalogue is empty: `footfit catalog import` or `footfit catalog generate` fills it")
    return 0


def _show_command(args: argparse.Namespace) -> int:
    print(staff.show(open_service_db(), args.key))
    return 0


def _stock_command(args: argparse.Namespace) -> int:
    lines = staff.stock(open_service_db(), args.store, args.key)
    for line in lines:
        print(line)
    if not lines:
        print("nothing in stock for that selection")
    return 0


def add_catalog_commands(sub) -> None:
    catalog = sub.add_parser("catalog", help="the shoe catalogue", description="The shoe catalogue in the database "
                             "of the settings (FOOTFIT_DATABASE_URL, default a SQLite file under the data folder).")
    cat_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    imp = cat_sub.add_parser("import", help="import retailer product data and interior scans",
                             description="Import a product file (one row per size variant, docs/catalog.md) and "
                                         "the interior scans named by SKU or brand+model+size. Upserts by SKU.")
    imp.add_argument("products", type=Path, metavar="PRODUCTS", help="products .csv or .jsonl")
    imp.add_argument("--interiors", type=Path, metavar="DIR", help="folder of interior scans (PLY/STL/OBJ, mm)")
    imp.add_argument("--skip-invalid", action="store_true",
                     help="import the valid rows even when others are rejected (default: all or nothing)")
    imp.set_defaults(func=_import_command)
    lst = cat_sub.add_parser("list", help="one line per model")
    lst.add_argument("--category", choices=CATEGORIES)
    lst.set_defaults(func=_list_command)
    show = cat_sub.add_parser("show", help="a model with every size's interior and stock")
    show.add_argument("key", metavar="MODEL_CODE|SKU")
    show.set_defaults(func=_show_command)
    stock = cat_sub.add_parser("stock", help="stock on hand per store and size")
    stock.add_argument("key", nargs="?", metavar="MODEL_CODE|SKU")
    stock.add_argument("--store", metavar="CODE")
    stock.set_defaults(func=_stock_command)
    gen = cat_sub.add_parser("generate", help="a synthetic catalogue (simulator)",
                             description="Generate a synthetic catalogue: parametric-last interiors, brands that "
                                         "run small or large, stock. Imports it into the database, or with --out "
                                         "writes it in the import format.")
    gen.add_argument("--models", type=int, default=50, metavar="N")
    gen.add_argument("--seed", type=int, default=0, metavar="S")
    gen.add_argument("--stores", type=int, default=5, metavar="N")
    gen.add_argument("--out", type=Path, metavar="DIR", help="write products + interiors/ + truth.json here")
    gen.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    gen.set_defaults(func=_generate_command)
