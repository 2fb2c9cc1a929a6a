"""Customer session tokens, the only credential a shopper's browser holds: opened by the webshop's server for one
customer (scope sessions:create, tenant keys only, webshop consent in force), short-lived, limited to that
customer's recommendations, sizes and try-on, audited, and ended by revocation, by the revocation of the key that
opened it, by the customer withdrawing webshop consent, and by the customer's erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from api import audit, auth
from api.models import AuditEntry, Customer, SessionToken, utc_now
from testing.api_world import import_catalogue, world


def _open(w, loyalty_id: str, tenant: str = "A", role: str = "admin", **body):
    return w.call(tenant, role, "POST", f"/v1/customers/{loyalty_id}/sessions", json=body or None)


def _as(w, token: str, method: str, path: str, **kwargs):
    return w.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture
def shop(database_url):
    """Tenant A with customers C1 and C2 (each a passport, webshop consent) and a catalogue."""
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.passports = {}
        for loyalty_id in ("C1", "C2"):
            w.customer("A", loyalty_id)
            w.passports[loyalty_id] = w.passport("A", loyalty_id)
        yield w


def test_a_session_reads_only_its_customers_fit_answers_and_its_use_is_audited(shop):
    w = shop
    opened = _open(w, "C1")
    assert opened.status_code == 201, opened.text
    session = opened.json()
    token, mine, theirs = session["token"], w.passports["C1"], w.passports["C2"]
    assert token.startswith(f"ffs_{session['id']}_") and session["passport_id"] == mine
    fit = _as(w, token, "GET", f"/v1/passports/{mine}/sizes/1")
    assert fit.status_code == 200, fit.text
    assert _as(w, token, "GET", f"/v1/passports/{mine}/recommendations").status_code == 200
    tried = _as(w, token, "GET", f"/v1/passports/{mine}/tryon",
                params={"model_id": 1, "size_id": fit.json()["size_id"]})
    assert tried.status_code == 200, tried.text

    for path in (f"/v1/passports/{theirs}/sizes/1", f"/v1/passports/{theirs}/recommendations"):
        r = _as(w, token, "GET", path)
        assert r.status_code == 404 and theirs in r.json()["detail"], path  # as if it did not exist
    for method, path in (("GET", f"/v1/passports/{mine}"), ("GET", "/v1/me"), ("GET", "/v1/customers/C1"),
                         ("GET", "/v1/customers/C1/passports"), ("POST", "/v1/customers/C1/sessions"),
                         ("POST", f"/v1/passports/{mine}/feedback")):
        r = _as(w, token, method, path, json={})
        assert r.status_code == 403 and "customer session token" in r.json()["detail"], (method, path, r.text)

    with Session(w.engine) as db:
        c1 = db.exec(select(Customer).where(Customer.loyalty_id == "C1")).one()
        entries = db.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    opening = [e for e in entries if e.object_type == "session"]
    assert [(e.actor, e.action, e.object_id) for e in opening] == [(w.tenants["A"].key_ids["admin"], "create",
                                                                     session["id"])]
    assert opening[0].detail == audit.about(c1.id, "for 15 min")  # in the customer's trail
    used = {(e.action, e.object_id, e.detail) for e in entries if e.actor == f"session:{session['id']}"}
    assert used >= {("read", mine, audit.about(c1.id, purpose))
                    for purpose in ("size for a product", "recommendations", "try-on")}


def test_a_session_is_short_lived_and_stored_hashed(database_url):
    with world(database_url, customer_session_minutes=10) as w:
        w.customer("A", "C1")
        default, shorter = _open(w, "C1").json(), _open(w, "C1", minutes=3).json()
        too_long = _open(w, "C1", minutes=11)
        assert too_long.status_code == 422 and "at most 10 minutes" in too_long.json()["detail"]
        assert default["passport_id"] is None  # no passport yet: nothing to try on
        with Session(w.engine) as db:
            rows = {row.id: row for row in db.exec(select(SessionToken))}
            for opened, minutes in ((default, 10), (shorter, 3)):
                row = rows[opened["id"]]
                assert row.expires_at - row.created_at == pytest.approx(timedelta(minutes=minutes),
                                                                         abs=timedelta(seconds=1))
                secret = opened["token"].split("_", 2)[2]
                assert len(row.secret_sha256) == 64 and all(secret not in str(v) for v in row.model_dump().values())
            row = rows[default["id"]]
            row.expires_at = utc_now() - timedelta(seconds=1)
            db.add(row)
            db.commit()
        expired = _as(w, default["token"], "GET", "/v1/passports/x/recommendations")
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]
        forged = default["token"][:-4] + "AAAA"
        assert _as(w, forged, "GET", "/v1/passports/x/recommendations").status_code == 401


def test_only_tenant_keys_with_the_scope_open_sessions_for_their_consenting_customers(shop):
    w = shop
    for role in ("webshop", "kiosk"):  # the test world's webshop key lacks sessions:create; a kiosk key cannot hold it
        r = _open(w, "C1", role=role)
        assert r.status_code == 403 and "sessions:create" in r.json()["detail"], role
    assert _open(w, "C1", tenant="B").status_code == 404  # another tenant's customer
    assert _open(w, "nobody").status_code == 404
    w.customer("A", "C3", consents=("scan_storage",))
    refused = _open(w, "C3")
    assert refused.status_code == 403 and "webshop" in refused.json()["detail"]


def test_a_session_ends_when_revoked_with_its_key_on_withdrawal_and_on_erasure(shop):
    w = shop
    mine = f"/v1/passports/{w.passports['C1']}/recommendations"

    revoked = _open(w, "C1").json()
    assert w.call("B", "admin", "DELETE", f"/v1/customers/C1/sessions/{revoked['id']}").status_code == 404
    for _ in range(2):  # revoking again changes nothing
        assert w.call("A", "admin", "DELETE", f"/v1/customers/C1/sessions/{revoked['id']}").status_code == 204
    assert w.call("A", "admin", "DELETE", f"/v1/customers/C2/sessions/{revoked['id']}").status_code == 404
    r = _as(w, revoked["token"], "GET", mine)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]

    with Session(w.engine) as db:
        _, key = auth.create_key(db, "tenant-a", frozenset({"sessions:create"}), 1)
        by_key = _as(w, key, "POST", "/v1/customers/C1/sessions").json()
        assert _as(w, by_key["token"], "GET", mine).status_code == 200
        auth.revoke_key(db, key.split("_")[1])
    r = _as(w, by_key["token"], "GET", mine)
    assert r.status_code == 401 and "key that opened it" in r.json()["detail"]

    withdrawn = _open(w, "C1").json()
    for granted in (False, True):
        r = w.call("A", "admin", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "webshop", "granted": granted, "source": "webshop"})
        assert r.status_code == 201, r.text
    r = _as(w, withdrawn["token"], "GET", mine)  # given again since: the session stays ended
    assert r.status_code == 401 and "withdrew webshop consent" in r.json()["detail"]

    erased = _open(w, "C2").json()
    assert w.call("A", "admin", "DELETE", "/v1/customers/C2").status_code == 200
    r = _as(w, erased["token"], "GET", f"/v1/passports/{w.passports['C2']}/recommendations")
    assert r.status_code == 401 and "erased" in r.json()["detail"]
    with Session(w.engine) as db:
        assert db.get(SessionToken, erased["id"]) is None  # erased with its customer
