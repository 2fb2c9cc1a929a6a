"""The audit log: the database refuses to rewrite it (an insert over an existing entry, TRUNCATE; the service's own
role may only insert and read it), every touch of a customer is in it (created, scanned, read, shown in a scan's
status, named by a mailing) and so is every refused attempt, without the secret; a tenant admin asks who touched a
customer and who tried, over the API or the command line. On SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from api import auth, migrations, tenancy
from api.access import record_refusal
from api.db import database_url as sqlalchemy_url
from api.db import open_service_db
from api.models import AuditEntry
from cli.main import main
from core.settings import get_settings
from testing.api_world import World, import_catalogue, scan_files, world

INSERT = ("INSERT INTO audit_log (id, at, tenant_id, actor, action, object_type, object_id, detail) "
          "VALUES (1, CURRENT_TIMESTAMP, 1, '{actor}', 'read', 'passport', 'x', '')")
OVERWRITE = {"sqlite": INSERT.replace("INSERT", "INSERT OR REPLACE"),
             "postgresql": INSERT + " ON CONFLICT (id) DO UPDATE SET actor = excluded.actor"}
UNGUARDED = {"sqlite": OVERWRITE["sqlite"].format(actor="rewritten"), "postgresql": "TRUNCATE audit_log"}
# docs/security.md, "Running the service": the service's role, next to the owner that migrates
SERVICE_ROLE_GRANTS = """
CREATE ROLE {role} LOGIN;
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE ON audit_log FROM {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
"""
MODELS = 4


def test_the_log_refuses_rewrites_and_its_guard_goes_with_a_downgrade(database_url):
    engine = open_service_db(database_url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenant (name, retention_days, created_at) VALUES ('t', 1, CURRENT_TIMESTAMP)"))
        conn.execute(text(INSERT.format(actor="first")))
    rewrites = [OVERWRITE[dialect], INSERT] + (["TRUNCATE audit_log"] if dialect == "postgresql" else [])
    for statement in rewrites:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement.format(actor="someone else")))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).all() == [("first",)]

    migrations.downgrade(engine, "api0003")
    with engine.begin() as conn:  # the guard is gone with its revision
        conn.execute(text(UNGUARDED[dialect]))
        assert conn.execute(text("SELECT actor FROM audit_log")).all() == ([("rewritten",)] if dialect == "sqlite"
                                                                           else [])
    engine.dispose()


def test_the_services_own_role_may_only_insert_and_read_the_log(postgres_server):
    owner_url = postgres_server.new_database()
    owner = open_service_db(owner_url)  # the owner migrates
    role = f"footfit_service_{make_url(owner_url).database}"
    with owner.begin() as conn:
        conn.execute(text(SERVICE_ROLE_GRANTS.format(role=role)))
        conn.execute(text("INSERT INTO tenant (name, retention_days, created_at) VALUES ('t', 1, CURRENT_TIMESTAMP)"))
    service = open_service_db(make_url(owner_url).set(username=role).render_as_string(hide_password=False))
    with service.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, tenant_id, actor, action, object_type, object_id, detail) "
                          "VALUES (CURRENT_TIMESTAMP, 1, 'a', 'read', 'passport', 'x', '')"))
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1
    for statement, refusal in (("UPDATE audit_log SET actor = 'b'", "permission denied"),
                               ("DELETE FROM audit_log", "permission denied"),
                               ("TRUNCATE audit_log", "permission denied"),
                               ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner"),
                               ("DROP TABLE audit_log", "must be owner")):
        with pytest.raises(DBAPIError, match=refusal), service.begin() as conn:
            conn.execute(text(statement))
    with service.begin() as conn:  # and everything else as usual
        conn.execute(text("UPDATE tenant SET retention_days = 2"))
    service.dispose()
    owner.dispose()
    with create_engine(sqlalchemy_url(postgres_server.url("postgres"))).connect() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))


def test_the_trail_shows_who_touched_a_customer_and_who_tried(database_url, monkeypatch, capsys):
    with world(database_url, rigs="hardware") as w:  # no rig wired: a kiosk scan fails at once, its job stays
        import_catalogue(w.engine, MODELS)
        keys = w.tenants["A"].key_ids
        w.customer("A", "C1", consents=("scan_storage", "marketing"))  # no webshop consent
        passport_id = w.passport("A", "C1", scan_files(5))  # feet that some of the models fit (for the mailing)
        assert w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}").status_code == 403
        revoked = _revoked_meanwhile(w)  # refused by the route's own key check (401), the key id still known
        assert w.http.get(f"/v1/passports/{passport_id}/recommendations", headers=revoked).status_code == 401
        assert w.call("B", "admin", "DELETE", f"/v1/passports/{passport_id}").status_code == 404
        with Session(w.engine) as session:
            tenancy.add_kiosk(session, "tenant-a", "STORE-A", "FF-RIG-A")
        scan = w.call("A", "kiosk", "POST", "/v1/rigs/FF-RIG-A/scans", json={"loyalty_id": "C1"}).json()
        assert w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}").json()["loyalty_id"] == "C1"
        mailing = _mailing_results(w)
        assert any("C1" in product["customers"] for product in mailing["products"]), mailing

        r = w.call("A", "admin", "GET", "/v1/customers/C1/audit")
        assert r.status_code == 200, r.text
        trail = r.json()
        customer_id = next(e["object_id"] for e in trail if e["object_type"] == "customer")
        touched = {(e["actor"], e["action"], e["object_type"]) for e in trail}
        assert {(keys["kiosk"], "create", "customer"), (keys["kiosk"], "consent", "customer"),
                (keys["kiosk"], "create", "passport"), (keys["admin"], "read", "customer")} <= touched
        assert any(e["actor"] == keys["kiosk"] and e["action"] == "read" and scan["id"] in e["detail"] for e in trail)
        assert any(e["actor"] == keys["admin"] and mailing["job"]["id"] in e["detail"] for e in trail)
        tried = {(e["actor"], e["object_id"], e["detail"].removeprefix(f"customer {customer_id}: "))
                 for e in trail if e["action"] == "refused"}
        assert tried == {(keys["webshop"], passport_id, "403 GET /v1/passports/{passport_id}"),
                         (revoked["key_id"], passport_id, "401 GET /v1/passports/{passport_id}/recommendations"),
                         (w.tenants["B"].key_ids["admin"], passport_id, "404 DELETE /v1/passports/{passport_id}")}
        tokens = [*(token for t in w.tenants.values() for token in t.keys.values()), revoked["Authorization"]]
        assert not any(token.split("_", 2)[2] in r.text for token in tokens) and "C1" not in r.text
        for role, says in (("kiosk", "kiosk keys cannot"), ("webshop", "lacks the scope audit:read")):
            refused = w.call("A", role, "GET", "/v1/customers/C1/audit")
            assert refused.status_code == 403 and says in refused.json()["detail"]

        assert w.call("A", "admin", "DELETE", "/v1/customers/C1").status_code == 200
        monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
        get_settings.cache_clear()
        try:  # erased: the loyalty id is gone, the customer's public id still finds the trail
            assert main(["privacy", "audit", "--tenant", "tenant-a", "--customer", customer_id]) == 0
            printed = capsys.readouterr().out.splitlines()
            assert main(["privacy", "audit", "--tenant", "tenant-a", "--customer", "C1"]) == 1
            assert "no customer" in capsys.readouterr().err
        finally:
            get_settings.cache_clear()
        assert any("erase" in line and keys["admin"] in line for line in printed)
        refused = [line for line in printed if "refused" in line]  # the three above, and the tries at the trail
        assert len(refused) == 5 and sum("403 GET /v1/customers/{loyalty_id}/audit" in line for line in refused) == 2
        assert not any("C1" in line for line in printed)


def test_a_key_refused_at_the_door_is_audited_by_its_key_id(database_url):
    """The admission (api/gate.py) refuses a bad key before any route is matched: record_refusal matches the route
    itself from the request's scope, as the admission hands it over."""
    with world(database_url) as w:
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        key_id = w.tenants["A"].key_ids["webshop"]
        scope = {"type": "http", "method": "GET", "path": f"/v1/passports/{passport_id}/tryon", "app": w.app,
                 "headers": [(b"authorization", f"Bearer ff_{key_id}_not-the-secret".encode())]}
        record_refusal(scope, 401)
        record_refusal({**scope, "headers": [(b"authorization", b"Bearer ff_000000000000_x")]}, 401)
        with Session(w.engine) as session:
            refused = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).all()
        assert [(e.actor, e.object_type, e.object_id, e.detail.endswith("401 GET /v1/passports/{passport_id}/tryon"))
                for e in refused] == [(key_id, "passport", passport_id, True),
                                      ("anonymous", "passport", passport_id, True)]
        assert all("not-the-secret" not in e.detail for e in refused)


def _revoked_meanwhile(w: World) -> dict:
    """The headers of a key of tenant A that was used a moment ago and is revoked now, and its key id."""
    with Session(w.engine) as session:
        row, token = auth.create_key(session, "tenant-a", frozenset({"recommendations:read"}), 1)
        headers = {"Authorization": f"Bearer {token}"}
        assert w.http.get("/v1/me", headers=headers).status_code == 200
        auth.revoke_key(session, row.id)
    return {**headers, "key_id": row.id}


def _mailing_results(w: World) -> dict:
    """The results of a mailing job of every model of the catalogue."""
    with w.engine.connect() as conn:
        model_ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM shoe_model")]
    job = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while (state := w.call("A", "admin", "GET", f"/v1/mailings/{job.json()['id']}").json()["state"]) != "done":
        assert state in ("queued", "running") and time.monotonic() < deadline, state
        time.sleep(0.1)
    return w.call("A", "admin", "GET", f"/v1/mailings/{job.json()['id']}/results").json()
