"""Catalogue import and stock updates over the API (scope catalog:write): the catalogue is shared, stock is
per tenant; the matcher sees the new catalogue at once. On SQLite and PostgreSQL, through a real HTTP server."""

from __future__ import annotations

import csv
import io

from sqlmodel import Session, func, select

from api import tenancy
from shoe_db.models import SizeVariant, Stock, Store
from testing.api_world import catalogue_files, world


def _upload(products: bytes, name: str = "products.csv", interiors: bool = True) -> list:
    files = [("products", (name, products, "text/csv"))]
    if interiors:
        folder = catalogue_files().parent / "interiors"
        files += [("interiors", (p.name, p.read_bytes(), "application/octet-stream")) for p in sorted(folder.iterdir())]
    return files


def _stock(engine, store: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(SizeVariant.sku, Stock.quantity).join(Stock, Stock.size_id == SizeVariant.id)
                            .join(Store, Store.id == Stock.store_id).where(Store.code == store))
        return dict(rows.all())


def _variants(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(SizeVariant)).one()


def _file_stock(products: bytes, store: str) -> dict[str, int]:
    stock = {}
    for row in csv.DictReader(io.StringIO(products.decode())):
        quantities = dict(part.split("=") for part in row["stock"].split(";") if part)
        if int(quantities.get(store, 0)) > 0:
            stock[row["sku"]] = int(quantities[store])
    return stock


def test_import_sets_stock_only_in_the_callers_stores(database_url):
    products = catalogue_files().read_bytes()
    with world(database_url) as w:
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "STORE-01")
            tenancy.add_store(session, "tenant-b", "STORE-02")
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        empty = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations")
        assert empty.status_code == 422 and "catalogue is empty" in empty.json()["detail"]

        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(products))
        assert r.status_code == 422 and "not yours: STORE-02" in r.json()["detail"]
        assert _variants(w.engine) == 0  # nothing imported

        mine = products.decode().replace(";STORE-02=", ";X=")  # X: a second store of tenant A
        r = w.call("B", "admin", "PUT", "/v1/stores/STORE-02/stock", json={"items": [{"sku": "none", "quantity": 1}]})
        assert r.status_code == 422 and "unknown SKUs none" in r.json()["detail"]
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "X")
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(mine.encode()))
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["created"] == _variants(w.engine) > 0 and summary["rejected"] == 0 and summary["scanned"] > 0
        assert _stock(w.engine, "STORE-01") == _file_stock(products, "STORE-01")
        assert w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations").json()  # matcher reloaded

        sku = next(iter(_file_stock(products, "STORE-01")))
        r = w.call("B", "admin", "PUT", "/v1/stores/STORE-02/stock", json={"items": [{"sku": sku, "quantity": 7}]})
        assert r.status_code == 200 and r.json() == {"store": "STORE-02", "updated": 1}
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(mine.encode(), interiors=False))
        assert r.status_code == 200 and r.json()["created"] == 0
        assert _stock(w.engine, "STORE-02") == {sku: 7}  # tenant A's import left tenant B's stock alone


def test_stock_updates_are_checked_and_scoped(database_url):
    products = catalogue_files().read_bytes()
    with world(database_url) as w:
        r = w.call("A", "admin", "POST", "/v1/catalog/import",
                   files=_upload(_without_stock_column(products), interiors=False))
        assert r.status_code == 200, r.text
        skus = [row["sku"] for row in csv.DictReader(io.StringIO(products.decode()))][:2]
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock",
                   json={"items": [{"sku": skus[0], "quantity": 2}, {"sku": skus[1], "quantity": 5}]})
        assert r.status_code == 200 and _stock(w.engine, "STORE-A") == {skus[0]: 2, skus[1]: 5}
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock",
                   json={"items": [{"sku": skus[0], "quantity": 0}, {"sku": "NOPE", "quantity": 1}]})
        assert r.status_code == 422 and _stock(w.engine, "STORE-A") == {skus[0]: 2, skus[1]: 5}  # all or nothing
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock", json={"items": [{"sku": skus[0], "quantity": 0}]})
        assert r.status_code == 200 and _stock(w.engine, "STORE-A") == {skus[1]: 5}
        for body in ({"items": []}, {"items": [{"sku": skus[0], "quantity": -1}]}):
            assert w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock", json=body).status_code == 422
        r = w.call("A", "kiosk", "PUT", "/v1/stores/STORE-A/stock", json={"items": [{"sku": skus[0], "quantity": 1}]})
        assert r.status_code == 403
        assert w.call("A", "webshop", "GET", "/v1/stores").json() == [
            {"code": "STORE-A", "kiosks": [], "size_system": "eu"}]


def test_bad_product_files_are_refused_with_the_rows_to_fix(database_url):
    products = catalogue_files().read_bytes().decode()
    broken = products.replace(",men,", ",aliens,", 1)
    with world(database_url) as w:
        with Session(w.engine) as session:
            for store in ("STORE-01", "STORE-02"):
                tenancy.add_store(session, "tenant-a", store)
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(broken.encode(), interiors=False))
        body = r.json()
        assert r.status_code == 422 and "skip_invalid" in body["detail"]
        assert any("row 2" in e["location"] and "gender" in e["location"] for e in body["errors"])
        assert _variants(w.engine) == 0
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(broken.encode(), interiors=False),
                   data={"skip_invalid": "true"})
        assert r.status_code == 200 and r.json()["rejected"] >= 1 and _variants(w.engine) > 0
        for name, content, says in (("products.xlsx", b"PK", ".csv or .jsonl"),
                                    ("products.csv", b"\xff\xfe\x00", "UTF-8"),
                                    ("products.csv", b"sku,brand\nX,Y\n", "lacks the column")):
            r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(content, name, interiors=False))
            assert r.status_code == 422 and says in r.json()["detail"], r.text


def _without_stock_column(products: bytes) -> bytes:
    rows = list(csv.reader(io.StringIO(products.decode())))
    at = rows[0].index("stock")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(row[:at] + row[at + 1:] for row in rows)
    return out.getvalue().encode()
