"""The catalogue over the API, split as the business is: the operator's interior database (models, sizes, interior
scans), written only with an operator key, and each tenant's assortment (its SKUs of those sizes, its prices, its
stores' stock), written by the tenant alone; recommendations read the caller's assortment. Stock updates, bad
product files, and the migration that made existing data into assortments. On SQLite and PostgreSQL, through a
real HTTP server."""

from __future__ import annotations

import csv
import io

from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, select

from api import auth, migrations, tenancy
from api.db import database_url as sqlalchemy_url
from api.db import open_service_db
from api.models import AssortmentItem, Tenant
from cli.main import main
from core.settings import get_settings
from shoe_db.models import SizeVariant, Stock, Store
from testing.api_world import World, catalogue_files, without_stock, world

PRODUCTS = catalogue_files().read_text()
ROWS = list(csv.DictReader(io.StringIO(PRODUCTS)))


def _upload(products: str, name: str = "products.csv", interiors: list[tuple[str, bytes]] = ()) -> list:
    return [("products", (name, products.encode(), "text/csv")),
            *(("interiors", (file, data, "application/octet-stream")) for file, data in interiors)]


def _scans() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((catalogue_files().parent / "interiors").iterdir())]


def _operator_key(w: World) -> str:
    with Session(w.engine) as session:
        tenancy.create_tenant(session, "operator", 30)
        return auth.create_key(session, "operator", frozenset(), 30, operator=True)[1]


def _as(token: str, w: World, method: str, path: str, **kwargs):
    return w.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _import_interiors(w: World) -> None:
    r = _as(_operator_key(w), w, "POST", "/v1/catalog/interiors", files=_upload(PRODUCTS, interiors=_scans()))
    assert r.status_code == 200 and r.json()["created"] == len(ROWS) and r.json()["scanned"] > 0, r.text


def _stock(engine, store: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(SizeVariant.sku, Stock.quantity).join(Stock, Stock.size_id == SizeVariant.id)
                            .join(Store, Store.id == Stock.store_id).where(Store.code == store))
        return dict(rows.all())


def _assortment(engine, tenant: str) -> dict[str, int]:
    with Session(engine) as session:
        return dict(session.exec(select(AssortmentItem.sku, AssortmentItem.price_cents)
                                 .join(Tenant, Tenant.id == AssortmentItem.tenant_id).where(Tenant.name == tenant)
                                 ).all())


def _file_stock(products: str, store: str) -> dict[str, int]:
    stock = {}
    for row in csv.DictReader(io.StringIO(products)):
        quantities = dict(part.split("=") for part in row["stock"].split(";") if part)
        if int(quantities.get(store, 0)) > 0:
            stock[row["sku"]] = int(quantities[store])
    return stock


def _edited(products: str, **cells) -> str:
    """The product file with these cells in every row (a callable makes a cell from the row)."""
    rows = list(csv.DictReader(io.StringIO(products)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, **{k: v(row) if callable(v) else v for k, v in cells.items()}} for row in rows)
    return out.getvalue()


def test_a_tenants_import_changes_only_its_own_assortment(database_url):
    """Issue 13: tenant B's import renamed tenant A's recommended models, set their price to 1.00 and replaced the
    interior scan of an existing SKU. Now B's import makes B's assortment, and nothing else."""
    with world(database_url) as w:
        _import_interiors(w)
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(without_stock(PRODUCTS)))
        assert r.status_code == 200 and r.json()["created"] == len(ROWS), r.text
        shown = {}
        for tenant in ("A", "B"):
            w.customer(tenant, "C1")
            base = f"/v1/passports/{w.passport(tenant, 'C1')}/recommendations"
            shown[tenant] = lambda base=base, tenant=tenant: [
                (r["brand"], r["model_name"], r["price"], r["currency"], r["fit"]["sku"])
                for r in w.call(tenant, "webshop", "GET", base, params={"n": 10}).json()]
        assert w.call("B", "webshop", "GET", base).json() == []  # B sells nothing yet
        before = shown["A"]()
        assert before and {sku for *_, sku in before} <= {row["sku"] for row in ROWS}
        with w.engine.connect() as conn:
            interiors = conn.execute(text("SELECT size_id, sha256 FROM interior_scan ORDER BY size_id")).all()
            models = conn.execute(text("SELECT id, name FROM shoe_model ORDER BY id")).all()

        scans = _scans()
        swapped = [(scans[0][0], scans[-1][1]), *scans[1:]]  # another shoe's scan named after an existing SKU
        tampered = _edited(without_stock(PRODUCTS), model_name="Knock-off", price="1.00",
                           sku=lambda row: f"B-{row['sku']}")
        r = w.call("B", "admin", "POST", "/v1/catalog/import", files=_upload(tampered, interiors=swapped))
        assert r.status_code == 200 and r.json()["created"] == len(ROWS), r.text
        warnings = " ".join(r.json()["warnings"])
        assert "model_name" in warnings and f"{len(scans)} interior scan(s) were not read" in warnings

        assert shown["A"]() == before  # names, prices and SKUs as A's own
        with w.engine.connect() as conn:
            assert conn.execute(text("SELECT size_id, sha256 FROM interior_scan ORDER BY size_id")).all() == interiors
            assert conn.execute(text("SELECT id, name FROM shoe_model ORDER BY id")).all() == models
        theirs = shown["B"]()
        assert theirs and all(price == 1.0 and sku.startswith("B-") for _, _, price, _, sku in theirs)
        assert set(_assortment(w.engine, "tenant-a").values()) == {int(row["price"].replace(".", "")) for row in ROWS}
        r = w.call("B", "admin", "POST", "/v1/catalog/interiors", files=_upload(PRODUCTS, interiors=swapped))
        assert r.status_code == 403 and "catalog:operator" in r.json()["detail"]


def test_only_the_operators_keys_write_the_interior_database(database_url, monkeypatch, capsys):
    with world(database_url) as w:
        monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
        get_settings.cache_clear()
        try:
            assert main(["tenants", "create", "operator"]) == 0
            capsys.readouterr()
            assert main(["keys", "create", "--tenant", "operator", "--operator"]) == 0
            token = capsys.readouterr().out.strip()
            assert main(["keys", "create", "--tenant", "tenant-a", "--scopes", "catalog:write,catalog:operator"]) == 1
            assert "create the operator's key with --operator" in capsys.readouterr().err
            assert main(["keys", "create", "--tenant", "tenant-a", "--store", "STORE-A", "--operator"]) == 1
            assert "kiosk key" in capsys.readouterr().err
        finally:
            get_settings.cache_clear()
        assert _as(token, w, "GET", "/v1/me").json()["scopes"] == [auth.OPERATOR_SCOPE]
        for tenant in ("A", "B"):  # a tenant's key of every scope
            r = w.call(tenant, "admin", "POST", "/v1/catalog/interiors", files=_upload(PRODUCTS))
            assert r.status_code == 403 and "lacks the scope catalog:operator" in r.json()["detail"]
        r = _as(token, w, "POST", "/v1/catalog/interiors", files=_upload(PRODUCTS, interiors=_scans()))
        assert r.status_code == 200 and r.json()["created"] == len(ROWS), r.text
        assert "price, currency, stock were not read" in r.json()["warnings"][0]
        assert _assortment(w.engine, "tenant-a") == {} and _stock(w.engine, "STORE-01") == {}


def test_import_sets_stock_only_in_the_callers_stores(database_url):
    with world(database_url) as w:
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "STORE-01")
            tenancy.add_store(session, "tenant-b", "STORE-02")
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        empty = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations")
        assert empty.status_code == 422 and "catalogue is empty" in empty.json()["detail"]

        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(PRODUCTS))
        assert r.status_code == 422 and "not yours: STORE-02" in r.json()["detail"]
        _import_interiors(w)
        mine = PRODUCTS.replace(";STORE-02=", ";X=")  # X: a second store of tenant A
        r = w.call("B", "admin", "PUT", "/v1/stores/STORE-02/stock", json={"items": [{"sku": ROWS[0]["sku"],
                                                                                     "quantity": 1}]})
        assert r.status_code == 422 and f"unknown SKUs {ROWS[0]['sku']}" in r.json()["detail"]  # B sells none
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "X")
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(mine))
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["created"] == len(_assortment(w.engine, "tenant-a")) == len(ROWS) and summary["rejected"] == 0
        assert summary["stock_rows"] == 3 * len(ROWS)  # in STORE-A, STORE-01, X: unnamed, none
        assert _stock(w.engine, "STORE-01") == _file_stock(PRODUCTS, "STORE-01")
        assert w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations").json()  # reloaded

        r = w.call("B", "admin", "POST", "/v1/catalog/import", files=_upload(without_stock(PRODUCTS)))
        assert r.status_code == 200 and r.json()["stock_rows"] == 0
        sku = next(iter(_file_stock(PRODUCTS, "STORE-01")))
        r = w.call("B", "admin", "PUT", "/v1/stores/STORE-02/stock", json={"items": [{"sku": sku, "quantity": 7}]})
        assert r.status_code == 200 and r.json() == {"store": "STORE-02", "updated": 1}
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(mine))
        assert r.status_code == 200 and (r.json()["created"], r.json()["updated"]) == (0, 0)
        assert _stock(w.engine, "STORE-02") == {sku: 7}  # tenant A's import left tenant B's stock alone


def test_stock_updates_are_checked_and_scoped(database_url):
    with world(database_url) as w:
        _import_interiors(w)
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(without_stock(PRODUCTS)))
        assert r.status_code == 200, r.text
        skus = [row["sku"] for row in ROWS][:2]
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
    broken = without_stock(PRODUCTS).replace(f",{ROWS[0]['price']},", ",12.345,", 1)
    with world(database_url) as w:
        _import_interiors(w)
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(broken))
        body = r.json()
        assert r.status_code == 422 and "skip_invalid" in body["detail"]
        assert any("row 2" in e["location"] and "price" in e["location"] for e in body["errors"])
        assert _assortment(w.engine, "tenant-a") == {}
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(broken), data={"skip_invalid": "true"})
        assert r.status_code == 200 and r.json()["rejected"] == 1
        assert len(_assortment(w.engine, "tenant-a")) == len(ROWS) - 1
        for name, content, says in (("products.xlsx", b"PK", ".csv or .jsonl"),
                                    ("products.csv", b"\xff\xfe\x00", "UTF-8"),
                                    ("products.csv", b"sku,brand\nX,Y\n", "lacks the column(s) price")):
            r = w.call("A", "admin", "POST", "/v1/catalog/import", files=[("products", (name, content, "text/csv"))])
            assert r.status_code == 422 and says in r.json()["detail"], r.text


def test_a_row_names_one_of_the_operators_sizes_by_model_or_ean_with_one_sku_each(database_url):
    first, second = ROWS[0], ROWS[1]
    with world(database_url) as w:
        _import_interiors(w)
        by_ean = (f"sku,ean,brand,model_code,size_system,size,price\n"
                  f"MINE-1,{first['ean']},,,,,99.00\n"  # by EAN alone
                  f"MINE-2,4006381333931,,,,,99.00\n"  # an EAN the operator has not
                  f"MINE-3,,{first['brand']},{first['model_code']},{first['size_system']},{first['size']},99.00\n"
                  f"MINE-4,,{second['brand']},,,,99.00\n"  # half a size
                  f"MINE-5,,{second['brand']},{second['model_code']},{second['size_system']},{second['size']},"
                  f"89.00\n")
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(by_ean))
        found = {(e["location"].split(", ")[1], e["message"].split(":")[0]) for e in r.json()["errors"]}
        assert r.status_code == 422 and found == {
            ("row 3", "the size with EAN 4006381333931 is not in the operator's interior database"),
            ("row 4", f"{first['brand']} {first['model_code']} size {first['size_system']} {first['size']} "
                      f"(standard) is on row 2 already"),
            ("row 5", "model_code is missing")}, found
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(by_ean), data={"skip_invalid": "true"})
        assert r.status_code == 200 and r.json()["created"] == 2
        assert _assortment(w.engine, "tenant-a") == {"MINE-1": 9900, "MINE-5": 8900}
        again = f"sku,ean,price\nOTHER,{first['ean']},1.00\n"
        r = w.call("A", "admin", "POST", "/v1/catalog/import", files=_upload(again))
        assert r.status_code == 422 and "is your SKU 'MINE-1' already" in r.json()["errors"][0]["message"]
        r = w.call("B", "admin", "POST", "/v1/catalog/import", files=_upload(again))  # B's SKUs are B's
        assert r.status_code == 200 and _assortment(w.engine, "tenant-b") == {"OTHER": 100}


def test_the_migration_makes_each_tenants_assortment_of_what_its_stores_stock(database_url):
    """Tenant a stocks model 1 (in STORE-A), b stocks model 2 and none of model 1, c has no store; STORE-X, which
    no tenant owns, stocks model 3: every tenant keeps selling model 3 and STORE-X's stock goes."""
    old = create_engine(sqlalchemy_url(database_url))
    migrations.upgrade(old, "api0003")
    with old.begin() as conn:
        for statement in (
            "INSERT INTO brand (id, name) VALUES (1, 'Alpina')",
            *(f"INSERT INTO shoe_model (id, brand_id, code, name, category, gender, use, level, price_cents, currency, "
              f"season, attributes_json) VALUES ({m}, 1, 'M{m}', 'Model {m}', 'hiking', 'unisex', '', '', {cents}, "
              f"'{currency}', '', '{{}}')" for m, cents, currency in ((1, 10000, "EUR"), (2, 12000, "EUR"),
                                                                     (3, 8000, "GBP"))),
            *(f"INSERT INTO size_variant (id, model_id, sku, ean, size_system, size_label, size_value, width, "
              f"nominal_foot_length_mm) VALUES ({s}, {s // 10}, 'SKU-{s}', '', 'EU', '{s}', {s}, 'standard', 250)"
              for s in (11, 12, 21, 31)),
            *(f"INSERT INTO tenant (id, name, retention_days, created_at) VALUES ({t}, '{name}', 30, "
              f"CURRENT_TIMESTAMP)" for t, name in ((1, "a"), (2, "b"), (3, "c"))),
            "INSERT INTO store (id, code) VALUES (1, 'STORE-A'), (2, 'STORE-B'), (3, 'STORE-X')",
            "INSERT INTO tenant_store (store_id, tenant_id) VALUES (1, 1), (2, 2)",
            "INSERT INTO stock (store_id, size_id, quantity) VALUES (1, 11, 2), (2, 21, 1), (2, 12, 0), (3, 31, 5)",
        ):
            conn.execute(text(statement))
    old.dispose()

    engine = open_service_db(database_url)
    with engine.connect() as conn:
        items = conn.execute(text("SELECT tenant_id, size_id, sku, ean, price_cents, currency FROM assortment_item "
                                  "ORDER BY tenant_id, size_id")).all()
        stock = conn.execute(text("SELECT store_id, size_id, quantity FROM stock ORDER BY store_id, size_id")).all()
    a, b, c = (("SKU-11", "", 10000, "EUR"), ("SKU-12", "", 10000, "EUR")), (("SKU-21", "", 12000, "EUR"),), ()
    everyone = (("SKU-31", "", 8000, "GBP"),)
    assert [tuple(i) for i in items] == [(t, int(row[0][4:]), *row) for t, rows in ((1, a), (2, b), (3, c))
                                         for row in sorted(rows + everyone)]
    assert [tuple(s) for s in stock] == [(1, 11, 2), (2, 12, 0), (2, 21, 1)]
    assert {"price_cents", "currency"}.isdisjoint(c["name"] for c in inspect(engine).get_columns("shoe_model"))

    with Session(engine) as session:  # b's price of model 3 goes down; the way back keeps the lowest
        session.exec(select(AssortmentItem).where(AssortmentItem.tenant_id == 2, AssortmentItem.size_id == 31)
                     ).one().price_cents = 7000
        session.commit()
    migrations.downgrade(engine, "api0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, price_cents, currency FROM shoe_model ORDER BY id")).all() == [
            (1, 10000, "EUR"), (2, 12000, "EUR"), (3, 7000, "GBP")]
        assert "assortment_item" not in inspect(engine).get_table_names()
    engine.dispose()

