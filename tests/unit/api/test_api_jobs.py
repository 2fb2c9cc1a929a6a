"""Batch jobs through the service (real server, SQLite and PostgreSQL, a real Dask LocalCluster): a fit index
refresh job with its progress, the size of the index, and cancellation (a queued job at once, a running one at its
next step, keeping no output); another tenant's job is a 404."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from api import auth, tenancy
from api.mailing import MailingRunner
from api.models import FitIndexColumn, MailingJob, MailingMatch, utc_now
from api.repository import mailings
from testing.api_world import World, catalogue_files, import_catalogue, scan_files, without_stock, world

CUSTOMERS = 6
MODELS = 3  # the test catalogue's (testing.api_world.import_catalogue)


def _wait(w: World, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = w.call("A", "admin", "GET", f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _customers(w: World) -> None:
    for i in range(CUSTOMERS):
        w.customer("A", f"C{i}", consents=("scan_storage", "marketing"))
        w.passport("A", f"C{i}", scan_files(2 + i % 3))


@pytest.mark.slow
def test_a_fit_index_job_indexes_the_tenants_passports_with_progress(database_url):
    with world(database_url, batch={"chunk_passports": 16}) as w:
        import_catalogue(w.engine, MODELS)
        _customers(w)
        assert w.call("A", "admin", "GET", "/v1/fit-index").json() == {"chunks": 0, "passports": 0,
                                                                      "stored_bytes": 0}
        started = w.call("A", "admin", "POST", "/v1/fit-index/refresh")
        assert started.status_code == 202, started.text
        assert started.json()["kind"] == "fit-index" and started.json()["model_ids"] == []
        job = _wait(w, started.json()["id"])
        assert (job["state"], job["progress"], job["error"]) == ("done", 1.0, "")
        size = w.call("A", "admin", "GET", "/v1/fit-index").json()
        assert size["passports"] == CUSTOMERS and size["chunks"] == 1 and size["stored_bytes"] > 0
        assert w.call("B", "admin", "GET", "/v1/fit-index").json()["passports"] == 0
        assert w.call("B", "admin", "GET", f"/v1/jobs/{job['id']}").status_code == 404
        assert w.call("A", "admin", "GET", f"/v1/mailings/{job['id']}").status_code == 404, "not a mailing"
        assert [j["id"] for j in w.call("A", "admin", "GET", "/v1/jobs").json()] == [job["id"]]
        assert w.call("A", "webshop", "POST", "/v1/fit-index/refresh").status_code == 403


@pytest.mark.slow
def test_a_cancelled_job_stops_and_keeps_nothing(database_url):
    with world(database_url, runs_jobs=False, job_lease_s=1.0, job_poll_s=0.1) as w:
        import_catalogue(w.engine)
        _customers(w)
        with w.engine.connect() as conn:
            models = [row[0] for row in conn.exec_driver_sql("SELECT id FROM shoe_model")]
        queued = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": models}).json()
        assert w.call("B", "admin", "POST", f"/v1/jobs/{queued['id']}/cancel").status_code == 404
        cancelled = w.call("A", "admin", "POST", f"/v1/jobs/{queued['id']}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled", "a queued job at once"
        again = w.call("A", "admin", "POST", f"/v1/jobs/{queued['id']}/cancel")
        assert again.status_code == 409 and "cancelled" in again.json()["detail"]

        # a running job: taken by a process that then stops answering; cancelled meanwhile, the process taking it
        # over stops it at its first step
        running = w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": models}).json()
        with Session(w.engine) as session:
            job = session.exec(select(MailingJob).where(MailingJob.id == running["id"])).one()
            now = utc_now()
            assert mailings.take(session, job, "a-process-that-froze", now, now + timedelta(seconds=1))
        asked = w.call("A", "admin", "POST", f"/v1/jobs/{running['id']}/cancel").json()
        assert (asked["state"], asked["cancel_requested"]) == ("running", True)
        runner = MailingRunner(w.engine, w.app.state.fitting, w.app.state.settings.service.model_copy(
            update={"runs_jobs": True}), w.app.state.fit_index)
        runner.start()
        try:
            ended = _wait(w, running["id"])
        finally:
            runner.close()
        assert (ended["state"], ended["error"]) == ("cancelled", "cancelled on request")
        with Session(w.engine) as session:
            assert session.exec(select(MailingMatch).where(MailingMatch.job_id == running["id"])).all() == []
        assert w.call("A", "admin", "GET", f"/v1/mailings/{running['id']}/results").status_code == 409


@pytest.mark.slow
def test_an_operator_import_queues_a_refresh_for_every_tenant_with_an_index(database_url):
    """A new season: the operator imports the interiors with one model more; tenant A (which keeps an index) gets a
    fit index job that matches the new product, tenant B (no index) none."""
    with world(database_url, batch={"chunk_passports": 16}) as w:
        import_catalogue(w.engine, MODELS)
        _customers(w)
        assert _wait(w, w.call("A", "admin", "POST", "/v1/fit-index/refresh").json()["id"])["state"] == "done"
        with Session(w.engine) as session:
            tenancy.create_tenant(session, "operator", 30)
            operator = auth.create_key(session, "operator", frozenset(), 30, operator=True)[1]
        products = catalogue_files(MODELS + 1)  # the same models and one more
        files = [("products", ("products.csv", without_stock(products.read_text()).encode(), "text/csv")),
                 *(("interiors", (p.name, p.read_bytes(), "application/octet-stream"))
                   for p in sorted((products.parent / "interiors").iterdir()))]
        imported = w.http.post("/v1/catalog/interiors", files=files, headers={"Authorization": f"Bearer {operator}"})
        assert imported.status_code == 200, imported.text

        jobs = w.call("A", "admin", "GET", "/v1/jobs").json()
        assert [j["kind"] for j in jobs] == ["fit-index", "fit-index"], "the import queued A's refresh"
        assert _wait(w, jobs[0]["id"])["state"] == "done"
        assert w.call("B", "admin", "GET", "/v1/jobs").json() == [], "B keeps no index: nothing to refresh"
        with Session(w.engine) as session:
            models = session.exec(select(FitIndexColumn.model_id).distinct()).all()
        assert len(models) == MODELS + 1, "the new product's columns are there"
