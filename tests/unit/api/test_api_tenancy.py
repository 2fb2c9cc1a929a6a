"""Tenant isolation: every route with an id in its path answers tenant B's admin key (all scopes; for a rig agent's
route, which only a store's key may call, B's kiosk key) with 404 for tenant A's objects, and leaves them as they were; and a query on a repository's session, even one naming no tenant,
reaches only the caller's tenant."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, update
from sqlmodel import Session, select

from api import tenancy
from api.auth import authenticate
from api.db import open_service_db
from api.models import Customer, PassportRecord
from api.repository import Repository
from fitcore.scan.rig_scan import preview_jpeg
from testing.api_world import add_tenant, import_catalogue, scan_files, world
from tests.unit.api.test_api_kiosk import schematic_map

MULTIPART = {("post", "/v1/customers/{loyalty_id}/passports"), ("put", "/v1/passports/{passport_id}")}


def test_another_tenants_objects_are_not_found_on_every_route_with_an_id(database_url):
    with world(database_url) as w:  # no rig agent: A's scan waits for one, its id stays
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
        opened = w.call("A", "admin", "POST", "/v1/customers/C1/sessions", json={})
        assert scan.status_code == 202 and job.status_code == 202 and opened.status_code == 201, (
            scan.text, job.text, opened.text)
        ids = {"loyalty_id": "C1", "passport_id": passport_id, "code": "STORE-A", "side": "left", "model_id": "1",
               "rig_serial": "FF-RIG-A", "scan_id": scan.json()["id"], "job_id": job.json()["id"],
               "session_id": opened.json()["id"]}
        routes = [(method, path) for path, ops in w.http.get("/openapi.json").json()["paths"].items()
                  for method in ops if "{" in path]
        assert len(routes) >= 14
        for method, path in routes:
            kwargs = {"json": body} if (body := _body(method, path, skus[0])) else {}
            if (method, path) in MULTIPART:
                kwargs["files"] = scan_files().multipart()
            if path.endswith("/agent/passport"):
                kwargs["files"] = {**scan_files().multipart(), "pressure_map": (
                    "pressure_map.json", schematic_map().model_dump_json().encode(), "application/json")}
            if path.endswith("/agent/frame"):
                kwargs["content"] = preview_jpeg(np.zeros((48, 64), np.uint8))
            params = {"model_id": 1, "size_id": 1} if path.endswith("/tryon") else \
                {"agent": "b-agent"} if path.endswith("/agent/frame") else None
            url = path.format(**ids)
            r = w.call("B", "kiosk" if "/agent/" in path else "admin", method.upper(), url, params=params, **kwargs)
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
        ("post", "/v1/rigs/{rig_serial}/agent/take"): {"agent": "b-agent", "wait_s": 0},
        ("post", "/v1/scans/{scan_id}/agent/report"): {"agent": "b-agent", "phase": "left", "fraction": 0.5},
        ("post", "/v1/scans/{scan_id}/agent/end"): {"agent": "b-agent", "state": "failed", "message": "no"},
    }.get((method, path))


def test_a_query_on_a_repositorys_session_reaches_only_the_callers_tenant(database_url):
    engine = open_service_db(database_url)
    with Session(engine) as session:
        keys = add_tenant(session, "tenant-a", "STORE-A"), add_tenant(session, "tenant-b", "STORE-B")
        tenant_ids = [tenancy.tenant_named(session, k.name).id for k in keys]
        session.add_all([Customer(tenant_id=t, loyalty_id="C1") for t in tenant_ids])
        session.commit()
    with Session(engine) as session:
        repo = Repository(session, authenticate(session, keys[0].keys["admin"]))
        assert [c.tenant_id for c in session.exec(select(Customer))] == [tenant_ids[0]]
        assert session.exec(select(func.count()).select_from(Customer)).one() == 1
        assert session.exec(update(Customer).values(loyalty_id="C2")).rowcount == 1
        assert repo.tenant().name == "tenant-a"
    engine.dispose()
