"""Mailing jobs through the service (real server, SQLite and PostgreSQL): the job runs in the background with a
job id and progress, lists per product the customers it fits, leaves out everyone without marketing consent (and
whoever withdraws it later), loses its outputs with an erased customer, and stays inside its tenant."""

from __future__ import annotations

import threading
import time

import numpy as np
from sqlmodel import Session, select

from api.mailing import scanned_feet
from api.models import AuditEntry, MailingJob, MailingMatch, PassportRecord, Tenant
from fitcore.fit.mailing import mailing_filter_reference
from fitcore.fit.matcher import Matcher
from shoe_db.loading import load_matcher_catalogue
from testing.api_world import World, import_catalogue, scan_files, world

MODELS = 4
QUEUED = 4  # mailing jobs one tenant may have waiting, in the test


def marketing(w: World, loyalty_id: str, granted: bool) -> None:
    r = w.call("A", "admin", "POST", f"/v1/customers/{loyalty_id}/consents",
               json={"purpose": "marketing", "granted": granted, "source": "email"})
    assert r.status_code == 201, r.text


def run_job(w: World, model_ids: list[int]) -> dict:
    started = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running", "done") and job["model_ids"] == sorted(model_ids)
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = w.call("A", "admin", "GET", f"/v1/mailings/{job['id']}").json()
    return job


def expected_fits(engine, passport_ids: dict[str, str], model_ids: list[int]) -> dict[int, list[str]]:
    """Per product, the loyalty ids the mailing filter (plain reference) says it fits."""
    matcher = Matcher(load_matcher_catalogue(engine))
    with Session(engine) as session:
        records = [session.get(PassportRecord, pid) for pid in passport_ids.values()]
    descriptors = np.stack([matcher.mailing_descriptor(scanned_feet(r)) for r in records])
    fits = mailing_filter_reference(descriptors, matcher.mailing_products(model_ids), matcher.profiles)
    loyalty = list(passport_ids)
    return {m: sorted(loyalty[i] for i in np.flatnonzero(fits[:, j])) for j, m in enumerate(sorted(model_ids))}


def test_a_mailing_job_lists_who_each_product_fits_with_marketing_consent_only(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine, MODELS)
        model_ids = sorted({m["id"] for m in _models(w)})
        consenting = {}
        for i, loyalty_id in enumerate(("C1", "C2", "C3", "C4")):
            w.customer("A", loyalty_id)
            consenting[loyalty_id] = w.passport("A", loyalty_id, scan_files(2 + i))
            marketing(w, loyalty_id, True)
        w.customer("A", "NEVER")  # a passport, never asked for marketing
        w.passport("A", "NEVER", scan_files(2))
        w.customer("A", "WITHDREW")
        w.passport("A", "WITHDREW", scan_files(3))
        marketing(w, "WITHDREW", True)
        marketing(w, "WITHDREW", False)
        w.customer("A", "NOSCAN")  # consent but no passport: nothing to match
        marketing(w, "NOSCAN", True)
        w.customer("B", "C1")
        w.passport("B", "C1")

        job = run_job(w, model_ids)
        assert job["state"] == "done" and job["progress"] == 1.0 and job["error"] == ""
        assert job["passports"] == 4 and job["skipped"] == 2
        results = w.call("A", "admin", "GET", f"/v1/mailings/{job['id']}/results")
        assert results.status_code == 200, results.text
        got = {p["model_id"]: p["customers"] for p in results.json()["products"]}
        expected = expected_fits(w.engine, consenting, model_ids)
        assert got == expected
        assert any(got.values()), "some product fits someone: the test would not notice an empty output"
        everyone = {c for customers in got.values() for c in customers}
        assert not everyone & {"NEVER", "WITHDREW", "NOSCAN"}
        with Session(w.engine) as session:
            tenant_id = session.exec(select(Tenant.id).where(Tenant.name == "tenant-a")).one()
            entries = session.exec(select(AuditEntry).where(AuditEntry.object_id == job["id"])).all()
        assert [(e.action, e.object_type, e.tenant_id) for e in entries] == [("read", "mailing", tenant_id)]

        # withdrawing later drops the customer from the results; erasing the customer erases the job's rows
        fitted = sorted(everyone)
        marketing(w, fitted[0], False)
        erased = w.call("A", "admin", "DELETE", f"/v1/customers/{fitted[-1]}")
        assert erased.status_code == 200
        rows = sum(fitted[-1] in c for c in got.values())
        assert erased.json()["deleted"].get("mailing_match") == rows
        after = {p["model_id"]: p["customers"]
                 for p in w.call("A", "admin", "GET", f"/v1/mailings/{job['id']}/results").json()["products"]}
        assert after == {m: [c for c in cs if c not in (fitted[0], fitted[-1])] for m, cs in got.items()}
        with Session(w.engine) as session:
            kept = session.exec(select(MailingMatch.passport_id).where(MailingMatch.job_id == job["id"])).all()
        assert consenting[fitted[-1]] not in kept


def test_mailing_jobs_are_tenant_scoped_and_bad_product_lists_are_refused(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine, 2)
        model_ids = sorted({m["id"] for m in _models(w)})
        job = run_job(w, model_ids)
        assert job["state"] == "done" and job["passports"] == 0
        for path in (f"/v1/mailings/{job['id']}", f"/v1/mailings/{job['id']}/results"):
            assert w.call("B", "admin", "GET", path).status_code == 404
            assert w.call("A", "admin", "GET", path).status_code == 200
        kiosk = w.call("A", "kiosk", "POST", "/v1/mailings", json={"model_ids": model_ids})
        assert kiosk.status_code == 403 and "tenant key" in kiosk.json()["detail"]
        unknown = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": [model_ids[0], 999_999]})
        assert unknown.status_code == 422 and "999999" in unknown.json()["detail"]
        for bad in ({"model_ids": []}, {"model_ids": ["x"]}, {"model_ids": [1], "extra": 1}, {}):
            r = w.call("A", "admin", "POST", "/v1/mailings", json=bad)
            assert r.status_code == 422 and r.json()["detail"].startswith("invalid request")
        assert w.call("A", "admin", "GET", "/v1/mailings/nosuchjob").status_code == 404


def _models(w: World) -> list[dict]:
    with w.engine.connect() as conn:
        return [{"id": row[0]} for row in conn.exec_driver_sql("SELECT id FROM shoe_model")]


def test_tenants_take_turns_and_a_tenants_queue_is_bounded(database_url):
    """While a long job runs (the runner's one worker, held here), tenant A queues as many jobs as it may, then
    tenant B one: B's runs next, not after all of A's."""
    with world(database_url, mailing_jobs_queued_per_tenant=QUEUED) as w:
        import_catalogue(w.engine, MODELS)
        model_ids = sorted({m["id"] for m in _models(w)})
        for i in range(3):
            w.customer("A", f"C{i}")
            w.passport("A", f"C{i}", scan_files(2 + i))
            marketing(w, f"C{i}", True)
        running = threading.Event()
        w.app.state.mailing._pool.submit(running.wait)
        try:
            a_jobs = [w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
                      for _ in range(QUEUED + 1)]
            assert [r.status_code for r in a_jobs] == [202] * QUEUED + [409]
            assert f"{QUEUED} mailing jobs waiting" in a_jobs[-1].json()["detail"]
            b_job = w.call("B", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
            assert b_job.status_code == 202, b_job.text
        finally:
            running.set()
        b_id, a_ids = b_job.json()["id"], [r.json()["id"] for r in a_jobs[:QUEUED]]
        deadline, jobs = time.monotonic() + 120, _jobs(w)
        while any(job.state in ("queued", "running") for job in jobs.values()):
            assert time.monotonic() < deadline, jobs
            time.sleep(0.1)
            jobs = _jobs(w)
        assert all(jobs[j].state == "done" for j in [b_id, *a_ids])
        order = sorted([b_id, *a_ids], key=lambda j: jobs[j].finished_at)
        assert order.index(b_id) == 1  # after the A job first in line, before A's others


def _jobs(w: World) -> dict[str, MailingJob]:
    with Session(w.engine) as session:
        return {job.id: job for job in session.exec(select(MailingJob))}
