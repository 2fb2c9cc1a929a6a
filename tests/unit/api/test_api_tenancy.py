"""Tenant isolation: every route with an id in its path answers tenant B's admin key (all scopes) with 404 for
tenant A's objects, and leaves them as they were."""

from __future__ import annotations

from sqlmodel import Session

from api import tenancy
from api.models import PassportRecord
from testing.api_world import import_catalogue, scan_files, world

MULTIPART = {("post", "/v1/customers/{loyalty_id}/passports"), ("put", "/v1/passports/{passport_id}")}


def test_another_tenants_objects_are_not_found_on_every_route_with_an_id(database_url):
    with world(database_url, rigs="hardware") as w:  # no rig wired: A's scan fails at once, its id stays
        skus = import_catalogue(w.engine)
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        r = w.call("A", "kiosk", "POST", f"/v1/passports/{passport_id}/feedback",
                   json={"event": "tried", "sku": skus[0]})
        assert r.status_code == 201
        with Session(w.engine) as session:
            tenancy.add_kiosk(session, "tenant-a", "STORE-A", "FF-RIG-A")
        scan = w.call("A", "kiosk", "POST", "/v1/rigs/FF-RIG-A/scans", json={"loyalty_id": "C1"})
        job = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": [1]})
        assert scan.status_code == 202 and job.status_code == 202, (scan.text, job.text)
        ids = {"loyalty_id": "C1", "passport_id": passport_id, "code": "STORE-A", "side": "left", "model_id": "1",
               "rig_serial": "FF-RIG-A", "scan_id": scan.json()["id"], "job_id": job.json()["id"]}
        routes = [(method, path) for path, ops in w.http.get("/openapi.json").json()["paths"].items()
                  for method in ops if "{" in path]
        assert len(routes) >= 14
        for method, path in routes:
            kwargs = {"json": body} if (body := _body(method, path, skus[0])) else {}
            if (method, path) in MULTIPART:
                kwargs["files"] = scan_files().multipart()
            params = {"model_id": 1, "size_id": 1} if path.endswith("/tryon") else None
            url = path.format(**ids)
            r = w.call("B", "admin", method.upper(), url, params=params, **kwargs)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert "C1" not in r.text or "loyalty id" in r.text  # says only what was asked for
            mine = w.call("A", "admin" if method == "delete" or path.endswith("export") else "kiosk", "GET",
                          f"/v1/passports/{passport_id}")
            assert mine.status_code == 200, (method, path)  # A's passport survived B's request
        with Session(w.engine) as session:
            assert session.get(PassportRecord, passport_id).passport_json == scan_files().passport.decode()
        stock = w.call("A", "webshop", "GET", "/v1/customers/C1").json()
        assert stock["consent"]["marketing"] is False  # B's consent request did not reach A's customer


def _body(method: str, path: str, sku: str) -> dict | None:
    """A valid body for the route, so only the object's owner decides the answer."""
    return {
        ("post", "/v1/customers/{loyalty_id}/consents"): {"purpose": "marketing", "granted": True, "source": "webshop"},
        ("put", "/v1/stores/{code}/stock"): {"items": [{"sku": sku, "quantity": 4}]},
        ("post", "/v1/passports/{passport_id}/feedback"): {"event": "bought", "sku": sku},
        ("post", "/v1/rigs/{rig_serial}/scans"): {"loyalty_id": "C1"},
    }.get((method, path))
