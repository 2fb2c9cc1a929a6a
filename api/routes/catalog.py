"""The tenant's stores and their stock; catalogue import (scope catalog:write)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import Field

from api.access import access
from api.catalog_upload import import_catalog
from api.fitting import Fitting, fitting
from api.repository import Repository, stores
from api.schemas import ImportOut, ImportRowError, StockOut, StockUpdate, StoreOut
from core.errors import InvalidInput

router = APIRouter(tags=["catalogue"])
StoreCode = Annotated[str, Field(min_length=1, max_length=40)]


@router.get("/stores", response_model=list[StoreOut], summary="Your stores and their kiosks")
def list_stores(repo: Repository = Depends(access(None))) -> list[StoreOut]:
    return [StoreOut(**store._asdict()) for store in stores.with_kiosks(repo)]


@router.put("/stores/{code}/stock", response_model=StockOut,
            summary="Set the stock of SKUs in one of your stores (0 removes); all or nothing")
def update_stock(code: StoreCode, body: StockUpdate, repo: Repository = Depends(access("catalog:write")),
                 fit: Fitting = Depends(fitting)) -> StockOut:
    store_id = stores.id_of(repo, code)
    updated = stores.set_stock(repo, {store_id: {item.sku: item.quantity for item in body.items}})
    fit.invalidate()
    return StockOut(store=code, updated=updated)


@router.post("/catalog/import", response_model=ImportOut,
             summary="Import a product file (.csv/.jsonl, docs/catalog.md) and interior scans; stock only for "
                     "your stores")
def import_catalogue(products: UploadFile = File(description="products .csv or .jsonl"),
                    interiors: list[UploadFile] = File(default=[], description="interior scans (PLY/STL/OBJ, mm)"),
                    skip_invalid: bool = Form(default=False, description="import the valid rows anyway"),
                    repo: Repository = Depends(access("catalog:write")),
                    fit: Fitting = Depends(fitting)) -> ImportOut:
    summary, stock_rows = import_catalog(repo, fit.engine, products.filename, products.file.read(),
                                         {f.filename: f.file.read() for f in interiors}, skip_invalid)
    if not summary.committed:
        raise InvalidInput(f"nothing imported: {summary.rejected} of {summary.rows} rows rejected; fix them, or send "
                           f"skip_invalid=true to import the {summary.accepted} valid rows",
                           [(f"{e.file}, row {e.row}, column {e.column}", e.message) for e in summary.errors])
    fit.invalidate()
    return ImportOut(rows=summary.rows, rejected=summary.rejected,
                     created=summary.created, updated=summary.updated, unchanged=summary.unchanged,
                     scanned=summary.scanned, graded=summary.graded, without_interior=summary.without_interior,
                     stock_rows=stock_rows, warnings=summary.warnings,
                     errors=[ImportRowError(row=e.row, column=e.column, message=e.message) for e in summary.errors])
