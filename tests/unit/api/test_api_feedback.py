"""Feedback that carries the signal (issue 14): a store's try (kept, or where and which way it was wrong), a webshop's
purchase, return (with or without a reason given) and keep, each validated with a message that says what to send;
SKUs as the tenant sells them; the source and store of the recording key; another tenant's passport not found; the
events in the customer's export and gone with an erasure; and the listing the learner reads, tenant by tenant,
audited. On SQLite and PostgreSQL, through a real HTTP server."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

from sqlmodel import Session, select

from api import tenancy
from api.auth import authenticate
from api.models import AssortmentItem, AuditEntry, Customer, Feedback, utc_now
from api.repository import Repository, feedback
from shoe_db.importer import import_products
from shoe_db.models import SizeVariant
from testing.api_world import World, catalogue_files, without_stock, world

ROWS = list(csv.DictReader(io.StringIO(catalogue_files().read_text())))
MODEL_SKUS = {code: [r["sku"] for r in ROWS if r["model_code"] == code] for code in dict.fromkeys(
    r["model_code"] for r in ROWS)}
FIRST, SECOND = list(MODEL_SKUS.values())[:2]  # the operator's SKUs of two models, size by size
NOT_SOLD_BY_A = ROWS[-1]["sku"]


def _a_sku(sku: str) -> str:
    """Tenant A's SKU of one of the operator's sizes."""
    return f"A-{sku}"


@contextmanager
def shop(database_url: str) -> Iterator[World]:
    """The operator's interior database; tenant A sells all of it but its last size under its own SKUs (A-...),
    tenant B all of it under the operator's; customer C1 of each with a passport (`w.passports`)."""
    with world(database_url) as w:
        products = catalogue_files()
        assert import_products(products, products.parent / "interiors", engine=w.engine).committed
        _sell(w, "A", lambda row: None if row["sku"] == NOT_SOLD_BY_A else _a_sku(row["sku"]))
        _sell(w, "B", lambda row: row["sku"])
        w.passports = {}
        for tenant in ("A", "B"):
            w.customer(tenant, "C1")
            w.passports[tenant] = w.passport(tenant, "C1")
        yield w


def _sell(w: World, tenant: str, sku_of: Callable[[dict], str | None]) -> None:
    """The tenant's assortment import (POST /v1/catalog/import): the rows `sku_of` names, under those SKUs."""
    rows = list(csv.DictReader(io.StringIO(without_stock(catalogue_files().read_text()))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "sku": sku_of(row)} for row in rows if sku_of(row))
    r = w.call(tenant, "admin", "POST", "/v1/catalog/import",
               files=[("products", ("products.csv", out.getvalue().encode(), "text/csv"))])
    assert r.status_code == 200 and r.json()["rejected"] == 0, r.text


def _post(w: World, role: str, event: dict, tenant: str = "A"):
    return w.call(tenant, role, "POST", f"/v1/passports/{w.passports[tenant]}/feedback", json=event)


def _stored(w: World) -> int:
    with Session(w.engine) as session:
        return len(session.exec(select(Feedback)).all())


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_store_try_and_a_webshop_purchase_return_and_keep_are_stored_as_sent(database_url):
    with shop(database_url) as w:
        first = [_a_sku(sku) for sku in FIRST]
        advice = {"recommended_sku": first[1], "learning_version": "ls-3f2a9c", "advice_arm": "learning"}
        store = [  # the store: the advised size pinches the ball, the next one up is kept and chosen
            {"event": "recommended", "sku": first[1], **advice},
            {"event": "tried", "sku": first[1], "kept": False, "complaint": {"region": "ball", "direction": "tight"},
             **advice},
            {"event": "tried", "sku": first[2], "kept": True, **advice},
            {"event": "tried", "sku": first[3], "kept": False},  # not kept, nothing said
            {"event": "tried", "sku": first[2]},  # as older clients send it: nothing said about keeping it
            {"event": "chosen", "sku": first[2], "store": "STORE-A", **advice}]
        for event in store:
            r = _post(w, "kiosk", event)
            assert r.status_code == 201, r.text
            assert r.json()["source"] == "store" and r.json()["store"] == "STORE-A"
        tried = _post(w, "kiosk", store[1]).json()
        assert {k: tried[k] for k in ("event", "sku", "kept", "complaint", "reason", "recommended_sku",
                                      "learning_version", "advice_arm")} == {
            "event": "tried", "sku": first[1], "kept": False, "complaint": {"region": "ball", "direction": "tight"},
            "reason": None, "recommended_sku": first[1], "learning_version": "ls-3f2a9c", "advice_arm": "learning"}

        a_month_ago = utc_now() - timedelta(days=30)
        webshop = [  # the webshop: bought a month ago, returned too small today (posted today), the next size kept
            {"event": "bought", "sku": first[0], "occurred_at": a_month_ago.isoformat()},
            {"event": "returned", "sku": first[0], "reason": "too_small"},
            {"event": "exchanged", "sku": first[1], "reason": "none_given"},
            {"event": "returned", "sku": first[2], "reason": "none_given", "source": "webshop"},
            {"event": "kept", "sku": first[3], "recommended_sku": first[3]}]
        for event in webshop:
            r = _post(w, "webshop", event)
            assert r.status_code == 201, r.text
            assert r.json()["source"] == "webshop" and r.json()["store"] is None

        events = w.call("A", "webshop", "GET", f"/v1/passports/{w.passports['A']}/feedback").json()
        assert events[0]["event"] == "bought", "in the order they happened: the backdated purchase first"
        assert abs(_time(events[0]["occurred_at"]) - a_month_ago) < timedelta(seconds=1)
        assert _time(events[0]["recorded_at"]) - _time(events[0]["occurred_at"]) > timedelta(days=29), "stored now"
        assert [(e["event"], e["kept"], e["reason"]) for e in events[1:]] == [
            ("recommended", None, None), ("tried", False, None), ("tried", True, None), ("tried", False, None),
            ("tried", None, None), ("chosen", None, None), ("tried", False, None), ("returned", None, "too_small"),
            ("exchanged", None, "none_given"), ("returned", None, "none_given"), ("kept", None, None)]
        assert {e["sku"] for e in events} <= set(first), "every size under tenant A's own SKU"
        assert all(e["occurred_at"].endswith(("Z", "+00:00")) for e in events), "times carry their zone"


def test_an_event_that_breaks_a_rule_is_refused_with_what_to_send_and_nothing_is_stored(database_url):
    with shop(database_url) as w:
        sku, other_model = _a_sku(FIRST[0]), _a_sku(SECOND[0])
        too_old = (utc_now() - timedelta(days=400)).isoformat()
        in_an_hour = (utc_now() + timedelta(hours=1)).isoformat()
        toes_hit, arch, short = ({"region": r, "direction": d} for r, d in (("toe", "tight"), ("arch", "tight"),
                                                                             ("toe", "short")))
        refused = (
            ("webshop", {"event": "bought", "sku": sku, "kept": True}, "'kept' belongs to 'tried' events only"),
            ("kiosk", {"event": "tried", "sku": sku, "kept": True, "complaint": toes_hit},
             "a complaint says why a tried size was not kept"),
            ("kiosk", {"event": "tried", "sku": sku, "complaint": toes_hit},
             "a complaint says why a tried size was not kept"),
            ("kiosk", {"event": "tried", "sku": sku, "kept": False, "complaint": arch}, "complaint.region"),
            ("kiosk", {"event": "tried", "sku": sku, "kept": False, "complaint": short}, "complaint.direction"),
            ("webshop", {"event": "returned", "sku": sku}, "none_given when the customer gave none"),
            ("webshop", {"event": "exchanged", "sku": sku}, "give a reason"),
            ("webshop", {"event": "bought", "sku": sku, "reason": "too_large"}, "give a reason"),
            ("webshop", {"event": "returned", "sku": sku, "reason": "too_tight"}, "reason"),
            ("webshop", {"event": "lost", "sku": sku}, "event"),
            ("webshop", {"event": "bought", "sku": sku, "size": "42"}, "size"),  # unknown fields are refused
            ("webshop", {"event": "bought", "sku": sku, "occurred_at": too_old}, "within the last 366 days"),
            ("webshop", {"event": "bought", "sku": sku, "occurred_at": in_an_hour}, "within the last 366 days"),
            ("webshop", {"event": "bought", "sku": sku, "source": "store"},
             "a tenant key records webshop events: record a store's events with a key of that store"),
            ("kiosk", {"event": "tried", "sku": sku, "source": "webshop"}, "a key of a store records store events"),
            ("webshop", {"event": "bought", "sku": "NO-SUCH-SKU"}, "unknown SKU 'NO-SUCH-SKU' in sku: send a SKU "
                                                                 "of your assortment"),
            ("webshop", {"event": "bought", "sku": sku, "recommended_sku": "NOPE"}, "unknown SKU 'NOPE' in "
                                                                                   "recommended_sku"),
            ("kiosk", {"event": "tried", "sku": sku, "recommended_sku": other_model},
             "is a size of another shoe than sku"),
            ("webshop", {"event": "bought", "sku": sku, "learning_version": "v 1; drop"}, "learning_version"),
        )
        for role, event, says in refused:
            r = _post(w, role, event)
            assert r.status_code == 422 and says in r.text, (event, r.text)
        with Session(w.engine) as session:  # a second store of tenant A: its key records there, not in STORE-A's
            tenancy.add_store(session, "tenant-a", "STORE-A2")
        r = _post(w, "kiosk", {"event": "tried", "sku": sku, "store": "STORE-A2"})
        assert r.status_code == 422 and "a key of store STORE-A records that store's events" in r.text
        r = _post(w, "webshop", {"event": "bought", "sku": sku, "store": "STORE-B"})
        assert r.status_code == 404 and "no store 'STORE-B'" in r.text  # tenant B's store
        assert _stored(w) == 0
        r = _post(w, "webshop", {"event": "returned", "sku": sku, "reason": "too_large", "store": "STORE-A2"})
        assert r.status_code == 201 and r.json()["store"] == "STORE-A2", "a webshop purchase returned in a store"


def test_skus_are_the_tenants_and_another_tenants_passport_is_not_found(database_url):
    with shop(database_url) as w:
        sold = _post(w, "webshop", {"event": "bought", "sku": _a_sku(FIRST[0])})
        by_operator_sku = _post(w, "webshop", {"event": "bought", "sku": FIRST[0], "recommended_sku": FIRST[1]})
        assert sold.status_code == 201 and by_operator_sku.status_code == 201, by_operator_sku.text
        assert (sold.json()["sku"], by_operator_sku.json()["sku"], by_operator_sku.json()["recommended_sku"]) == (
            _a_sku(FIRST[0]), _a_sku(FIRST[0]), _a_sku(FIRST[1])), "answered under A's own SKUs"
        r = _post(w, "webshop", {"event": "bought", "sku": NOT_SOLD_BY_A})
        assert r.status_code == 422 and f"unknown SKU {NOT_SOLD_BY_A!r}" in r.text  # the operator's, A sells none
        r = _post(w, "webshop", {"event": "bought", "sku": FIRST[0]}, tenant="B")
        assert r.status_code == 201 and r.json()["sku"] == FIRST[0]  # B sells it under the operator's SKU
        r = _post(w, "webshop", {"event": "bought", "sku": _a_sku(FIRST[0])}, tenant="B")
        assert r.status_code == 422, "A's SKU means nothing to B"
        with Session(w.engine) as session:
            size_ids = {f.id: f.size_id for f in session.exec(select(Feedback))}
        assert len(set(size_ids.values())) == 1, "all four name the same size of the operator's"

        for method, body in (("POST", {"event": "bought", "sku": FIRST[0]}), ("GET", None)):
            r = w.call("B", "admin", method, f"/v1/passports/{w.passports['A']}/feedback", json=body)
            assert r.status_code == 404 and "no passport" in r.json()["detail"]
        assert _stored(w) == 3
        assert len(w.call("A", "kiosk", "GET", f"/v1/passports/{w.passports['A']}/feedback").json()) == 2


def test_a_tenants_own_sku_wins_over_an_operators_sku_it_also_names(database_url):
    """A tenant may sell one size under a SKU that is the operator's SKU of another size: its own meaning wins."""
    with world(database_url) as w:
        products = catalogue_files()
        assert import_products(products, products.parent / "interiors", engine=w.engine).committed
        _sell(w, "A", lambda row: {FIRST[0]: "A-FIRST", FIRST[1]: FIRST[0]}.get(row["sku"]))
        w.customer("A", "C1")
        w.passports = {"A": w.passport("A", "C1")}
        r = _post(w, "webshop", {"event": "bought", "sku": FIRST[0]})
        assert r.status_code == 201 and r.json()["sku"] == FIRST[0]
        with Session(w.engine) as session:
            stored = session.exec(select(Feedback)).one()
            assert session.get(SizeVariant, stored.size_id).sku == FIRST[1], "the size A sells as FIRST[0]"


def test_feedback_is_in_the_customers_export_and_goes_with_each_erasure(database_url):
    with shop(database_url) as w:
        second = w.passport("A", "C1")
        tried = {"event": "tried", "sku": _a_sku(FIRST[1]), "kept": False,
                 "complaint": {"region": "heel", "direction": "loose"}, "recommended_sku": _a_sku(FIRST[1]),
                 "learning_version": "ls-1", "advice_arm": "holdout"}
        assert _post(w, "kiosk", tried).status_code == 201
        assert _post(w, "webshop", {"event": "returned", "sku": _a_sku(FIRST[2]), "reason": "none_given"}
                     ).status_code == 201
        w.passports["A"] = second
        assert _post(w, "webshop", {"event": "kept", "sku": _a_sku(FIRST[2])}).status_code == 201

        r = w.call("A", "admin", "GET", "/v1/customers/C1/export")
        assert r.status_code == 200
        exported = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("customer.json"))["feedback"]
        assert [(f["event"], f["source"], f["sku"], f["store"]) for f in exported] == [
            ("tried", "store", _a_sku(FIRST[1]), "STORE-A"), ("returned", "webshop", _a_sku(FIRST[2]), None),
            ("kept", "webshop", _a_sku(FIRST[2]), None)], "the SKUs on the customer's receipts, A's own"
        assert {k: exported[0][k] for k in ("kept", "complaint_region", "complaint_direction", "recommended_sku",
                                            "learning_version", "advice_arm")} == {
            "kept": False, "complaint_region": "heel", "complaint_direction": "loose",
            "recommended_sku": _a_sku(FIRST[1]), "learning_version": "ls-1", "advice_arm": "holdout"}
        assert exported[1]["reason"] == "none_given" and exported[0]["occurred_at"] and exported[0]["recorded_at"]
        assert not {"size_id", "store_id", "recommended_size_id"} & set(exported[0]), "no catalogue ids"

        r = w.call("A", "admin", "DELETE", f"/v1/passports/{second}")
        assert r.json()["deleted"]["feedback"] == 1
        r = w.call("A", "admin", "DELETE", "/v1/customers/C1")
        assert r.json()["deleted"]["feedback"] == 2
        assert _stored(w) == 0


def test_the_learner_reads_its_tenants_events_since_a_time_of_consenting_customers_audited(database_url):
    with shop(database_url) as w:
        w.customer("A", "C2")
        w.customer("A", "C3")
        theirs = {loyalty_id: w.passport("A", loyalty_id) for loyalty_id in ("C2", "C3")}
        sku, advised = _a_sku(FIRST[1]), _a_sku(FIRST[0])
        assert _post(w, "kiosk", {"event": "tried", "sku": sku, "kept": False, "recommended_sku": advised,
                                  "complaint": {"region": "toe", "direction": "tight"}}).status_code == 201
        before_the_rest = utc_now()
        last_week = (utc_now() - timedelta(days=7)).isoformat()
        for passport_id, event in ((theirs["C2"], {"event": "returned", "sku": sku, "reason": "too_large",
                                                   "occurred_at": last_week}),
                                   (theirs["C3"], {"event": "kept", "sku": sku})):
            r = w.call("A", "webshop", "POST", f"/v1/passports/{passport_id}/feedback", json=event)
            assert r.status_code == 201, r.text
        assert _post(w, "webshop", {"event": "bought", "sku": FIRST[0]}, tenant="B").status_code == 201
        r = w.call("A", "kiosk", "POST", "/v1/customers/C3/consents", json={"purpose": "scan_storage",
                                                                            "granted": False})
        assert r.status_code == 201  # a kiosk key may not erase: C3's passport waits for the purge, unused

        with Session(w.engine) as session:
            tenant_a = tenancy.tenant_named(session, "tenant-a").id
            ids = dict(session.exec(select(Customer.loyalty_id, Customer.id)
                                    .where(Customer.tenant_id == tenant_a)).all())
            repo = Repository(session, authenticate(session, w.tenants["A"].keys["admin"]))
            everything = feedback.for_learning(repo)
            recent = feedback.for_learning(repo, since=before_the_rest)
            entries = session.exec(select(AuditEntry).where(AuditEntry.detail.endswith("for learning"))).all()
            size_of = dict(session.exec(select(AssortmentItem.sku, AssortmentItem.size_id)
                                        .where(AssortmentItem.tenant_id == tenant_a)).all())

        assert [(e.customer_id, e.event) for e in everything] == [(ids["C1"], "tried"), (ids["C2"], "returned")]
        tried, returned = everything
        assert (tried.passport_id, tried.source, tried.store, tried.kept, tried.complaint_region,
                tried.complaint_direction, tried.reason) == (w.passports["A"], "store", "STORE-A", False, "toe",
                                                             "tight", None)
        assert (tried.size_id, tried.recommended_size_id) == (size_of[sku], size_of[advised])
        assert tried.model_id == returned.model_id and tried.width == "standard"
        assert (returned.source, returned.store, returned.reason) == ("webshop", None, "too_large")
        assert returned.occurred_at < before_the_rest < returned.recorded_at, "stored since, though it happened before"
        assert [e.id for e in recent] == [returned.id]
        assert sorted((e.object_id, e.detail) for e in entries) == sorted(
            [(ids["C1"], "1 feedback events for learning"), (ids["C2"], "1 feedback events for learning"),
             (ids["C2"], "1 feedback events for learning")]), "each read of a customer's events audited"

