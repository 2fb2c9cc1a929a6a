"""API keys and the authentication every route goes through: hashed, scoped, expiring, revocable; kiosk keys
cannot export or erase; customer session tokens act for their customer with the session scopes only; no route
without the key check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, select

from api import auth
from api.access import authenticated
from api.app import create_app
from api.models import ApiKey, Customer, utc_now
from api.routes import ROUTERS
from cli.main import main
from core.errors import ConfigError, Forbidden, Unauthenticated
from testing.api_world import world


def _dependency_calls(dependant) -> set:
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _dependency_calls(sub)
    return calls


def test_every_route_but_the_schema_and_docs_requires_a_key(tmp_path):
    routes = [route for router in ROUTERS for route in router.routes]
    assert len(routes) >= 15 and all(isinstance(route, APIRoute) for route in routes)
    for route in routes:  # each reaches the data through access(scope), which authenticates
        assert authenticated in _dependency_calls(route.dependant), f"{route.path} is not authenticated"
    app = create_app(f"sqlite:///{tmp_path / 'db.sqlite'}")
    served = {(m, p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert served == {(m.lower(), "/v1" + r.path) for r in routes for m in r.methods}  # nothing else is served



def test_outside_v1_only_the_schema_docs_and_static_pages_are_served(tmp_path):
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from api.pages import ASSETS_PATH, PAGES, WEB_DIR, WithHeaders

    app = create_app(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert {r.original_router.prefix for r in app.routes if not hasattr(r, "path")} == {"/v1"}  # included routers
    outside = {route.path: route for route in app.routes if hasattr(route, "path")}
    schema_and_docs = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}
    assert set(outside) == schema_and_docs | set(PAGES) | {ASSETS_PATH}
    for path in PAGES:  # the pages: GET only, no parameters, no dependencies, not in the schema
        page = outside[path]
        assert page.methods == {"GET"} and not page.include_in_schema and not page.dependant.dependencies
        assert not page.dependant.query_params and not page.dependant.path_params
    static = outside[ASSETS_PATH]  # the assets: files of api/web, nothing else
    assert isinstance(static, Mount) and isinstance(static.app, WithHeaders) and isinstance(static.app.app, StaticFiles)
    assert static.app.app.directory == WEB_DIR


def test_no_route_answers_without_a_valid_key(database_url):
    with world(database_url) as w:
        schema = w.http.get("/openapi.json").json()
        for path, operations in schema["paths"].items():
            concrete = path.replace("{", "").replace("}", "")
            for method in operations:
                for token, named in ((None, "key"), ("ff_000000000000_wrong", "key"), ("nonsense", "key"),
                                     ("ffs_0000000000000000_wrong", "session token")):
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    r = w.http.request(method, concrete, headers=headers)
                    assert r.status_code == 401, (method, path, headers, r.text)
                    assert named in r.json()["detail"]


def test_keys_are_stored_hashed_and_shown_once(database_url):
    with world(database_url) as w, Session(w.engine) as session:
        token = w.tenants["A"].keys["admin"]
        row = session.get(ApiKey, w.tenants["A"].key_ids["admin"])
        secret = token.split("_", 2)[2]
        assert secret not in row.secret_sha256 and len(row.secret_sha256) == 64
        assert all(secret not in str(v) for v in row.model_dump().values())
        assert w.call("A", "admin", "GET", "/v1/me").json()["tenant"] == "tenant-a"


def test_revoked_and_expired_keys_are_refused(database_url):
    with world(database_url) as w:
        assert w.call("A", "webshop", "GET", "/v1/me").status_code == 200
        with Session(w.engine) as session:
            auth.revoke_key(session, w.tenants["A"].key_ids["webshop"])
            expired = session.get(ApiKey, w.tenants["B"].key_ids["webshop"])
            expired.expires_at = utc_now() - timedelta(minutes=1)
            session.add(expired)
            session.commit()
        revoked = w.call("A", "webshop", "GET", "/v1/me")
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
        gone = w.call("B", "webshop", "GET", "/v1/me")
        assert gone.status_code == 401 and "expired" in gone.json()["detail"]
        assert w.call("A", "admin", "GET", "/v1/me").status_code == 200  # the others still work


def test_a_key_without_the_scope_is_forbidden_and_kiosk_keys_cannot_export_or_erase(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        r = w.call("A", "webshop", "POST", "/v1/customers/C1/passports", files={})
        assert r.status_code == 403 and "scans:write" in r.json()["detail"]
        for method, path in (("GET", "/v1/customers/C1/export"), ("DELETE", "/v1/customers/C1")):
            r = w.call("A", "kiosk", method, path)
            assert r.status_code == 403 and "kiosk" in r.json()["detail"]
        assert w.call("A", "admin", "GET", "/v1/customers/C1/export").status_code == 200


def test_key_creation_refuses_unknown_scopes_tenants_stores_and_kiosk_erasure(database_url):
    with world(database_url) as w, Session(w.engine) as session:
        with pytest.raises(ConfigError, match="unknown scopes"):
            auth.parse_scopes("passports:read,passports:delete")
        with pytest.raises(ConfigError, match="no tenant"):
            auth.create_key(session, "nobody", frozenset({"passports:read"}), 10)
        with pytest.raises(ConfigError, match="has no store"):
            auth.create_key(session, "tenant-a", frozenset({"passports:read"}), 10, store="STORE-B")
        for tenant_only in ("passports:erase", "sessions:create"):
            with pytest.raises(ConfigError, match="kiosk key"):
                auth.create_key(session, "tenant-a", frozenset({tenant_only}), 10, store="STORE-A")
        with pytest.raises(ConfigError, match="positive"):
            auth.create_key(session, "tenant-a", frozenset({"passports:read"}), 0)
        row, token = auth.create_key(session, "tenant-a", frozenset({"passports:read"}), 10)
        assert auth.authenticate(session, token).tenant_id == row.tenant_id
        with pytest.raises(Unauthenticated, match="expired"):
            auth.authenticate(session, token, now=utc_now() + timedelta(days=11))


def test_a_customer_session_token_acts_for_its_customer_with_the_session_scopes_only(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        token = w.call("A", "admin", "POST", "/v1/customers/C1/sessions").json()["token"]
        with Session(w.engine) as session:
            principal = auth.authenticate(session, token)
            customer = session.exec(select(Customer).where(Customer.loyalty_id == "C1")).one()
            assert principal.customer_id == customer.id and principal.tenant_id == customer.tenant_id
            assert principal.scopes == auth.SESSION_SCOPES and not principal.is_kiosk
            assert principal.key_id == f"session:{token.split('_')[1]}"  # the audit log's actor
            with pytest.raises(Forbidden, match="customer session token cannot use passports:read"):
                auth.require_scope(principal, "passports:read")
            with pytest.raises(Forbidden, match="customer session token"):
                auth.require_api_key(principal)
            with pytest.raises(Unauthenticated, match="expired"):
                auth.authenticate(session, token, now=utc_now() + timedelta(minutes=16))
            with pytest.raises(Unauthenticated, match="malformed"):
                auth.authenticate(session, "ffx" + token[3:])


def test_cli_creates_lists_and_revokes_keys(tmp_path, monkeypatch, capsys):
    from core.settings import get_settings

    monkeypatch.setenv("FOOTFIT_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    get_settings.cache_clear()
    try:
        assert main(["tenants", "create", "shop", "--retention-days", "90"]) == 0
        assert main(["stores", "add", "--tenant", "shop", "S1"]) == 0
        assert main(["kiosks", "add", "--tenant", "shop", "--store", "S1", "--rig", "FF-RIG-0042"]) == 0
        capsys.readouterr()
        assert main(["keys", "create", "--tenant", "shop", "--scopes", "passports:read", "--expires-days", "5"]) == 0
        token = capsys.readouterr().out.strip()
        key_id = token.split("_")[1]
        assert main(["keys", "list"]) == 0
        listing = capsys.readouterr().out
        assert key_id in listing and token.split("_", 2)[2] not in listing
        assert main(["keys", "revoke", key_id]) == 0
        assert main(["keys", "list"]) == 0
        assert "revoked" in capsys.readouterr().out
        assert main(["keys", "create", "--tenant", "shop", "--store", "S1", "--scopes", "passports:erase"]) == 1
        assert "kiosk key" in capsys.readouterr().err
        assert main(["tenants", "create", "shop"]) == 1
    finally:
        get_settings.cache_clear()
