"""Recommendations (filters, store stock), the size of one product and try-on over the API, kept as the
passport's fit results. On SQLite and PostgreSQL, through a real HTTP server."""

from __future__ import annotations

import json
import time

from sqlmodel import Session, select

from api import tenancy
from api.models import AuditEntry, FitResult, PassportRecord
from api.repository.fit_results import FIT_RESULTS_KEPT
from shoe_db.models import Stock, Store
from testing.api_world import POINTS_PER_FOOT, catalogue_files, import_catalogue, without_stock, world


def test_recommendations_size_and_tryon(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "STORE-01")  # a store of the generated catalogue's stock
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        base = f"/v1/passports/{passport_id}"

        top = w.call("A", "webshop", "GET", f"{base}/recommendations")
        assert top.status_code == 200, top.text
        top = top.json()
        assert 1 <= len(top) <= 3 and all(r["reason"] and r["fit"]["sku"] for r in top)
        assert [r["fit"]["score"] for r in top] == sorted((r["fit"]["score"] for r in top), reverse=True)

        in_store = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"store": "STORE-01", "n": 5}).json()
        with Session(w.engine) as session:
            stocked = set(session.exec(select(Stock.size_id).join(Store, Store.id == Stock.store_id)
                                       .where(Store.code == "STORE-01", Stock.quantity > 0)))
        assert all(r["fit"]["size_id"] in stocked for r in in_store)
        category = top[0]["category"]
        same = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"category": category}).json()
        assert same and all(r["category"] == category for r in same)
        assert w.call("A", "webshop", "GET", f"{base}/recommendations", params={"store": "STORE-B"}).status_code == 404
        bad = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"category": "flippers"})
        assert bad.status_code == 422 and "category" in bad.json()["detail"]

        model_id = top[0]["fit"]["model_id"]
        size = w.call("A", "webshop", "GET", f"{base}/sizes/{model_id}").json()
        assert size["size_id"] == top[0]["fit"]["size_id"] and size["sku"] == top[0]["fit"]["sku"]
        unknown = w.call("A", "webshop", "GET", f"{base}/sizes/999999")
        assert unknown.status_code == 422 and "unknown shoe model" in unknown.json()["detail"]

        tried = w.call("A", "webshop", "GET", f"{base}/tryon", params={"model_id": model_id,
                                                                       "size_id": size["size_id"]})
        assert tried.status_code == 200, tried.text
        tried = tried.json()
        assert tried["size"]["size_id"] == size["size_id"]
        for side in ("left", "right"):
            foot = tried[side]
            assert len(foot["clearance_mm"]) == len(foot["in_shoe"]) == POINTS_PER_FOOT
            assert {r["region"] for r in foot["fit"]["regions"]} == {"toe", "ball", "instep", "heel"}
        wrong = w.call("A", "webshop", "GET", f"{base}/tryon", params={"model_id": model_id + 1,
                                                                       "size_id": size["size_id"]})
        assert wrong.status_code == 422 and "belongs to model" in wrong.json()["detail"]

        view = w.call("A", "webshop", "GET", base).json()
        kinds = sorted(r["kind"] for r in view["fit_results"])
        assert kinds == ["recommendations", "recommendations", "recommendations", "size", "tryon"]
        kept_tryon = next(r for r in view["fit_results"] if r["kind"] == "tryon")["result"]
        assert "clearance_mm" not in kept_tryon["left"] and kept_tryon["left"]["fit"]["regions"]


def test_a_kept_recommendation_is_recomputed_when_the_stock_changes(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "STORE-01")
        w.customer("A", "C1")
        base = f"/v1/passports/{w.passport('A', 'C1')}"
        query = {"store": "STORE-01", "n": 5}
        anywhere = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"n": 5}).json()
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-01/stock",
                   json={"items": [{"sku": rec["fit"]["sku"], "quantity": 2} for rec in anywhere]})
        assert r.status_code == 200, r.text  # the store has the customer's sizes, whatever the random stock was

        first = w.call("A", "webshop", "GET", f"{base}/recommendations", params=query).json()
        assert first and w.call("A", "webshop", "GET", f"{base}/recommendations", params=query).json() == first
        sold_out = first[0]["fit"]["sku"]
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-01/stock", json={"items": [{"sku": sold_out, "quantity": 0}]})
        assert r.status_code == 200, r.text

        after = w.call("A", "webshop", "GET", f"{base}/recommendations", params=query).json()
        assert sold_out not in {rec["fit"]["sku"] for rec in after}
        kept = [f for f in w.call("A", "webshop", "GET", base).json()["fit_results"]
                if f["kind"] == "recommendations" and f["request"]["store"] == "STORE-01"]
        assert len(kept) == 1 and kept[0]["result"] == after  # the newest answer per request, stored once


def test_a_stored_passport_is_searched_before_anyone_asks(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        fitting = w.app.state.fitting
        deadline = time.monotonic() + 30
        while not any(key[0] == passport_id for key in fitting._searches) and time.monotonic() < deadline:
            time.sleep(0.05)
        (key, kept), = [(k, v) for k, v in fitting._searches.items() if k[0] == passport_id]
        assert kept.search.complete
        r = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations", params={"n": 3})
        assert r.status_code == 200 and len(r.json()) == 3
        assert r.json()[0]["fit"]["score"] == kept.matcher.top(kept.feet, 3)[0].fit.score
        assert list(fitting._searches) == [key]  # answered from the prepared search, not searched again


def test_a_passport_keeps_the_newest_answers_of_each_kind(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        base = f"/v1/passports/{w.passport('A', 'C1')}"
        limits = [500.0 + i for i in range(FIT_RESULTS_KEPT + 5)]
        for limit in limits:
            answer = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"price_max": limit})
            assert answer.status_code == 200
        kept = [f["request"]["price_max"] for f in w.call("A", "webshop", "GET", base).json()["fit_results"]
                if f["kind"] == "recommendations"]
        assert sorted(kept) == limits[-FIT_RESULTS_KEPT:]


def test_a_store_with_nothing_in_stock_has_no_recommendations(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        base = f"/v1/passports/{w.passport('A', 'C1')}"
        r = w.call("A", "webshop", "GET", f"{base}/recommendations", params={"store": "STORE-A"})
        assert r.status_code == 200 and r.json() == []  # STORE-A is the tenant's, and stocks nothing
        assert w.call("A", "webshop", "GET", f"{base}/recommendations", params={"store": "STORE-B"}).status_code == 404


def test_every_fit_answer_is_audited_once_and_a_failed_one_not_at_all(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        base = f"/v1/passports/{passport_id}"
        for _ in range(2):  # computed, then the kept answer
            assert w.call("A", "webshop", "GET", f"{base}/recommendations").status_code == 200
        top = w.call("A", "webshop", "GET", f"{base}/recommendations").json()[0]["fit"]
        assert w.call("A", "webshop", "GET", f"{base}/sizes/{top['model_id']}").status_code == 200
        r = w.call("A", "webshop", "GET", f"{base}/tryon", params={"model_id": top["model_id"], "size_id": 10**9})
        assert r.status_code == 422  # no such size: nothing was read out
        with Session(w.engine) as session:
            reads = session.exec(select(AuditEntry).where(AuditEntry.object_id == passport_id,
                                                          AuditEntry.action == "read")).all()
            purposes = [e.detail.split(": ", 1)[-1] for e in reads]  # after "customer <id>: "
        assert sorted(purposes) == ["recommendations"] * 3 + ["size for a product"]


def _caches(w) -> dict:
    fitting = w.app.state.fitting
    return {"feet": fitting._feet, "drawn": fitting._drawn, "searches": fitting._searches, "answers": fitting._answers}


def _answer_rows(w, passport_id: str) -> dict[str, int]:
    """The stored fit result of each recommendations request of the passport: a new row means a computed answer."""
    with Session(w.engine) as session:
        return {r.request_json: r.id for r in session.exec(select(FitResult).where(
            FitResult.passport_id == passport_id, FitResult.kind == "recommendations"))}


def test_a_stock_change_drops_only_the_answers_that_read_that_stores_stock(database_url):
    with world(database_url) as w:
        skus = import_catalogue(w.engine)
        with Session(w.engine) as session:
            tenancy.add_store(session, "tenant-a", "STORE-01")
            tenancy.add_store(session, "tenant-b", "STORE-02")
        asked = {}  # (tenant, passport id) -> the questions it asked
        for tenant, store in (("A", "STORE-01"), ("B", "STORE-02")):
            w.customer(tenant, "C1")
            passport_id = w.passport(tenant, "C1")
            asked[tenant, passport_id] = ({"store": store}, {})
        for (tenant, passport_id), questions in asked.items():
            for query in questions:
                r = w.call(tenant, "webshop", "GET", f"/v1/passports/{passport_id}/recommendations", params=query)
                assert r.status_code == 200, r.text
        rows = {p: _answer_rows(w, p) for _, p in asked}
        searches = list(_caches(w)["searches"].values())
        assert len(searches) == 2 and all(len(r) == 2 for r in rows.values())

        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-01/stock",  # it had stock: now it has none
                   json={"items": [{"sku": sku, "quantity": 0} for sku in skus]})
        assert r.status_code == 200, r.text
        for (tenant, passport_id), questions in asked.items():
            for query in questions:
                w.call(tenant, "webshop", "GET", f"/v1/passports/{passport_id}/recommendations", params=query)
        after = {p: _answer_rows(w, p) for _, p in asked}
        recomputed = {json.loads(request).get("store") for p in rows for request, row in after[p].items()
                      if rows[p][request] != row}
        assert recomputed == {"STORE-01"}  # B's answers and A's without a store were kept
        assert {id(s) for s in _caches(w)["searches"].values()} == {id(s) for s in searches}  # none made again


def test_an_erased_passport_leaves_the_fit_caches(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        passports = {}
        for loyalty_id in ("ERASED", "CUSTOMER-ERASED", "WITHDREW", "STAYS"):
            w.customer("A", loyalty_id)
            passports[loyalty_id] = passport_id = w.passport("A", loyalty_id)
            top = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/recommendations").json()[0]["fit"]
            tried = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/tryon", params={
                "model_id": top["model_id"], "size_id": top["size_id"], "drawing": "true", "per_point": "false"})
            assert tried.status_code == 200, tried.text

        def cached(passport_id: str) -> list[str]:
            return [name for name, cache in _caches(w).items() if any(key[0] == passport_id for key in cache)]

        assert all(cached(p) == ["feet", "drawn", "searches", "answers"] for p in passports.values())
        with Session(w.engine) as session:  # read before the erasure, as a request still computing would have
            stale = session.get(PassportRecord, passports["ERASED"])
        assert w.call("A", "admin", "DELETE", f"/v1/passports/{passports['ERASED']}").status_code == 200
        assert w.call("A", "admin", "DELETE", "/v1/customers/CUSTOMER-ERASED").status_code == 200
        r = w.call("A", "admin", "POST", "/v1/customers/WITHDREW/consents",
                   json={"purpose": "scan_storage", "granted": False, "source": "staff"})
        assert r.status_code == 201, r.text
        assert {name: cached(p) for name, p in passports.items()} == {
            "ERASED": [], "CUSTOMER-ERASED": [], "WITHDREW": [], "STAYS": ["feet", "drawn", "searches", "answers"]}
        w.app.state.fitting.searched(stale)  # a computation with the erased passport that ends after the erasure
        assert cached(passports["ERASED"]) == []


def test_an_assortment_import_drops_only_its_tenants_answers(database_url):
    """A tenant's assortment (its SKUs, prices) changes only its own customers' answers (issue 13, defect 12)."""
    with world(database_url) as w:
        import_catalogue(w.engine)
        passports = {}
        for tenant in ("A", "B"):
            w.customer(tenant, "C1")
            passports[tenant] = w.passport(tenant, "C1")
            assert w.call(tenant, "webshop", "GET", f"/v1/passports/{passports[tenant]}/recommendations").status_code \
                == 200
        rows = {t: _answer_rows(w, p) for t, p in passports.items()}
        products = without_stock(catalogue_files().read_text())
        r = w.call("A", "admin", "POST", "/v1/catalog/import",
                   files=[("products", ("products.csv", products.encode(), "text/csv"))])
        assert r.status_code == 200, r.text
        for tenant, passport_id in passports.items():
            w.call(tenant, "webshop", "GET", f"/v1/passports/{passport_id}/recommendations")
        recomputed = {t for t, p in passports.items() if _answer_rows(w, p) != rows[t]}
        assert recomputed == {"A"}
