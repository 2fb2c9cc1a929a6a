"""The `footfit catalog ...` commands: each takes parsed arguments, prints, and returns an exit code."""

from __future__ import annotations

from pathlib import Path

from shoe_db.db import open_catalog
from shoe_db.importer import import_products
from shoe_db import staff


def import_command(products: Path, interiors: Path | None, skip_invalid: bool) -> int:
    summary = import_products(products, interiors, engine=open_catalog(), skip_invalid=skip_invalid)
    print(summary.report())
    return 0 if summary.committed and not summary.errors else 1


def list_command(category: str | None) -> int:
    lines = staff.list_models(open_catalog(), category)
    for line in lines:
        print(line)
    if not lines:
        print("the catalogue is empty: `footfit catalog import` or `footfit catalog generate` fills it")
    return 0


def show_command(key: str) -> int:
    print(staff.show(open_catalog(), key))
    return 0


def stock_command(store: str | None, key: str | None) -> int:
    lines = staff.stock(open_catalog(), store, key)
    for line in lines:
        print(line)
    if not lines:
        print("nothing in stock for that selection")
    return 0
