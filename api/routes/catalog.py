"""The tenant's stores, their stock and its assortment (scope catalog:write); the operator's interior database
(scope catalog:operator, held only by the operator's keys). Each write counts its data version in its transaction
(shoe_db/versions.py): every service process answers from the new data from its next request on."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import Field

from api.access import access
from api.auth import OPERATOR_SCOPE
from api.catalog_upload import import_assortment, import_interiors, uploaded_text
from api.fitting import Fitting, fitting
from api.mailing import MailingRunner
from api.repository import Repository, stores
from api.routes.mailing import mailing_runner
from api.schemas import ImportOut, ImportRowError, StockOut, StockUpdate, StoreOut
from core.errors import InvalidInput
from shoe_db.product_file import FileSummary

router = APIRouter(tags=["catalogue"])
Summary = TypeVar("Summary", bound=FileSummary)
StoreCode = Annotated[str, Field(min_length=1, max_length=40)]
Products = Annotated[UploadFile, File(description="products .csv or .jsonl")]
SkipInvalid = Annotated[bool, Form(description="import the valid rows anyway")]
Interiors = Annotated[list[UploadFile], File(description="interior scans (PLY/STL/OBJ, mm)")]
NotRead = Annotated[list[UploadFile], File(description="interior scans: not read here, they are the operator's "
                                                      "(POST /v1/catalog/interiors)")]


@router.get("/stores", response_model=list[StoreOut], summary="Your stores and their kiosks")
def list_stores(repo: Repository = Depends(access(None))) -> list[StoreOut]:
    return [StoreOut(**store._asdict()) for store in stores.with_kiosks(repo)]


@router.put("/stores/{code}/stock", response_model=StockOut,
            summary="Set the stock of SKUs of your assortment in one of your stores (0 removes); all or nothing")
def update_stock(code: StoreCode, body: StockUpdate, repo: Repository = Depends(access("catalog:write"))
                 ) -> StockOut:
    store_id = stores.id_of(repo, code)
    updated = stores.set_stock(repo, {store_id: {item.sku: item.quantity for item in body.items}})
    repo.commit()
    return StockOut(store=code, updated=updated)


@router.post("/catalog/import", response_model=ImportOut,
             summary="Import your assortment: a product file (.csv/.jsonl, docs/catalog.md) whose rows name the "
                     "operator's sizes, with your SKUs, prices and stock in your stores")
def import_your_assortment(products: Products, skip_invalid: SkipInvalid = False, interiors: NotRead = [],
                           repo: Repository = Depends(access("catalog:write"))) -> ImportOut:
    text = uploaded_text(products.filename, products.file.read())
    summary = _committed(import_assortment(repo, products.filename, text, skip_invalid))
    if interiors:
        summary.warnings.append(f"{len(interiors)} interior scan(s) were not read: interiors belong to the "
                                f"operator's interior database, which every retailer shares, and only an operator "
                                f"key (catalog:operator) imports them (POST /v1/catalog/interiors)")
    return _out(summary, stock_rows=summary.stock_rows)


@router.post("/catalog/interiors", response_model=ImportOut,
             summary="Operator only: import models, sizes and interior scans into the interior database every "
                     "retailer shares (a product file .csv/.jsonl, docs/catalog.md, and PLY/STL/OBJ scans)")
def import_interior_database(products: Products, skip_invalid: SkipInvalid = False, interiors: Interiors = [],
                             _repo: Repository = Depends(access(OPERATOR_SCOPE)),
                             fit: Fitting = Depends(fitting),
                             runner: MailingRunner = Depends(mailing_runner)) -> ImportOut:
    text = uploaded_text(products.filename, products.file.read())
    summary = _committed(import_interiors(fit.engine, products.filename, text,
                                          {f.filename: f.file.read() for f in interiors}, skip_invalid))
    runner.refresh_fit_indexes("api:catalog-import")
    return _out(summary, scanned=summary.scanned, graded=summary.graded, without_interior=summary.without_interior)


def _committed(summary: Summary) -> Summary:
    """The summary of an import that wrote; InvalidInput naming the rows to fix when a rejected row stopped it."""
    if not summary.committed:
        raise InvalidInput(f"nothing imported: {summary.rejected} of {summary.rows} rows rejected; fix them, or send "
                           f"skip_invalid=true to import the {summary.accepted} valid rows",
                           [(f"{e.file}, row {e.row}, column {e.column}", e.message) for e in summary.errors])
    return summary


def _out(summary: FileSummary, scanned: int = 0, graded: int = 0, without_interior: int = 0,
         stock_rows: int = 0) -> ImportOut:
    return ImportOut(rows=summary.rows, rejected=summary.rejected, created=summary.created, updated=summary.updated,
                     unchanged=summary.unchanged, scanned=scanned, graded=graded, without_interior=without_interior,
                     stock_rows=stock_rows, warnings=summary.warnings,
                     errors=[ImportRowError(row=e.row, column=e.column, message=e.message) for e in summary.errors])
