"""`footfit catalog import|list|show|stock|generate`: the shoe catalogue in the database of the settings.

These are the operator's commands, run on the server: an import writes the interior database every tenant shares
(brands, models, sizes, interior scans), or, with --tenant, that tenant's assortment (its SKUs of the operator's
sizes, its prices, the stock of its stores), as the tenant's own import over the API would. The functions do the
work and return what they did; the `*_command` handlers print it and turn it into an exit code, so other commands
(`footfit demo`) call the functions, never a handler.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sqlmodel import Session

from api.auth import Principal
from api.catalog_upload import import_assortment
from api.db import open_service_db
from api.repository import Repository, mailings
from api.tenancy import tenant_named
from cli.learn import add_quality_command
from core.errors import ConfigError
from core.settings import get_settings
from shoe_db import staff
from shoe_db.importer import import_products
from shoe_db.models import CATEGORIES
from shoe_db.product_file import FileSummary, read_text
from simulator.catalog import generate_catalogue, write_catalogue


def import_catalogue(products: Path, interiors: Path | None, skip_invalid: bool = False) -> FileSummary:
    """Import a product file and its interior scans into the interior database of the settings; then queue a
    refresh of every tenant's fit index, which the service's processes run (docs/batch.md)."""
    engine = open_service_db()
    summary = import_products(products, interiors, engine=engine, skip_invalid=skip_invalid)
    if summary.committed:
        with Session(engine) as session:
            queued = mailings.queue_fit_index_refreshes(session, "cli:catalog-import",
                                                        get_settings().service.mailing_jobs_queued_per_tenant)
        if queued:
            print(f"fit index refreshes queued for {len(queued)} tenants", file=sys.stderr)
    return summary


def import_tenant_assortment(products: Path, tenant: str, skip_invalid: bool = False) -> FileSummary:
    """Import a product file as the assortment of `tenant`, as the tenant's own import over the API would."""
    with Session(open_service_db(), expire_on_commit=False) as session:
        caller = Principal("cli:catalog-import", tenant_named(session, tenant).id, None, frozenset({"catalog:write"}))
        return import_assortment(Repository(session, caller), products.name, read_text(products), skip_invalid)


def import_generated_catalogue(models: int, seed: int, stores: int, fmt: str = "csv",
                               tenant: str | None = None) -> list[FileSummary]:
    """A synthetic catalogue (simulator.catalog), written in the import format and imported like any supplier's;
    with a tenant, also as that tenant's assortment (the file's stock names stores STORE-01 ... : the tenant's)."""
    catalogue = generate_catalogue(models, seed, stores)
    with tempfile.TemporaryDirectory(prefix="footfit-catalog-") as folder:
        products = write_catalogue(catalogue, Path(folder), fmt)
        summaries = [import_catalogue(products, Path(folder) / "interiors")]
        if tenant and summaries[0].committed:
            summaries.append(import_tenant_assortment(products, tenant))
        return summaries


def _report(*summaries: FileSummary) -> int:
    for summary in summaries:
        print(summary.report())
    return 0 if all(s.committed and not s.errors for s in summaries) else 1


def _import_command(args: argparse.Namespace) -> int:
    if args.tenant is None:
        return _report(import_catalogue(args.products, args.interiors, args.skip_invalid))
    if args.interiors is not None:
        raise ConfigError("--interiors with --tenant: interior scans are the operator's interior database, which "
                          "every tenant shares; import them without --tenant, and the tenant's assortment apart")
    return _report(import_tenant_assortment(args.products, args.tenant, args.skip_invalid))


def _generate_command(args: argparse.Namespace) -> int:
    if args.out is not None and args.tenant is not None:
        raise ConfigError("--tenant with --out: nothing is imported when the files are written; import them with "
                          "`footfit catalog import` and `footfit catalog import --tenant NAME`")
    if args.out is None:
        return _report(*import_generated_catalogue(args.models, args.seed, args.stores, args.format, args.tenant))
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
    imp = cat_sub.add_parser("import", help="import the interior database, or a tenant's assortment",
                             description="Import a product file (one row per size variant, docs/catalog.md): into "
                                         "the interior database every tenant shares, with the interior scans named "
                                         "by SKU or brand+model+size (upserts by SKU); or with --tenant as that "
                                         "tenant's assortment: its SKUs of those sizes, prices, stock in its "
                                         "stores (upserts by the tenant's SKU).")
    imp.add_argument("products", type=Path, metavar="PRODUCTS", help="products .csv or .jsonl")
    imp.add_argument("--interiors", type=Path, metavar="DIR", help="folder of interior scans (PLY/STL/OBJ, mm)")
    imp.add_argument("--tenant", metavar="NAME", help="import the file as this tenant's assortment")
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
    gen.add_argument("--tenant", metavar="NAME", help="also make it this tenant's assortment (it must own the "
                                                      "stores STORE-01 ... the stock names)")
    gen.set_defaults(func=_generate_command)
    add_quality_command(cat_sub)
