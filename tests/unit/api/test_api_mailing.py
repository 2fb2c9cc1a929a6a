"""Mailing jobs through the service (real server, SQLite and PostgreSQL): the job runs in the background with a
job id and progress, lists per product the customers it fits, leaves out everyone without marketing consent (and
whoever withdraws it later), loses its outputs with an erased customer, and stays inside its tenant; with a learned
state in use it decides as the learned advice does for the learning arm, by geometry for the holdout."""

from __future__ import annotations

import time

import numpy as np
from sqlmodel import Session, select

from api.fitting import scanned_feet
from api.mailing import MailingRunner
from api.models import AuditEntry, Customer, LearnedStateRecord, MailingJob, MailingMatch, PassportRecord, Tenant
from api.repository import learning as stored
from api.repository import mailings
from fitcore.fit.advice import HOLDOUT, LEARNING, advice_arm, prior_state
from fitcore.fit.learning import Correction, LearnedState, ModelLearned
from fitcore.fit.mailing import LearnedMailing, mailing_filter_reference
from fitcore.fit.matcher import Matcher
from fitcore.fit.profiles import MEASURES
from shoe_db.loading import load_matcher_catalogue
from shoe_db.models import Brand, ShoeModel
from testing.api_world import World, import_catalogue, scan_files, world

MODELS = 4
QUEUED = 4  # mailing jobs one tenant may have waiting, in the test
RUNS_LONG_MM = 40.0  # the planted model's toe room as customers feel it beyond its reading: nobody keeps it
WIDE_BANDS = (3.0, 2.0, 1.5, 1.5, 2.0)  # the keep model the learner's synthetic world learns (docs/learning.md)
SEEDS_FITTING_A_MODEL = (2, 3, 4, 5, 9, 10)  # scanned customers; the geometry fits 4, 9 and 10 one model of four
FITS_KEEP_CHANCE = 0.3  # a new customer keeps a size of these four models with 8-48% (the prior's preference spread)


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


def expected_fits(engine, passport_ids: dict[str, str], model_ids: list[int], state: LearnedState | None = None,
                  fits_keep_chance: float = 0.5) -> dict[int, list[str]]:
    """Per product, the loyalty ids the mailing filter (plain reference) says it fits: by geometry, or with the
    learned state."""
    matcher = Matcher(load_matcher_catalogue(engine))
    with Session(engine) as session:
        records = [session.get(PassportRecord, pid) for pid in passport_ids.values()]
    descriptors = np.stack([matcher.mailing_descriptor(scanned_feet(r)) for r in records])
    products = matcher.mailing_products(model_ids)
    learned = None if state is None else LearnedMailing.of(state, matcher.catalogue, products, matcher.profiles,
                                                           fits_keep_chance)
    fits = mailing_filter_reference(descriptors, products, matcher.profiles, learned)
    loyalty = list(passport_ids)
    return {m: sorted(loyalty[i] for i in np.flatnonzero(fits[:, j])) for j, m in enumerate(sorted(model_ids))}


def test_a_mailing_job_lists_who_each_product_fits_with_marketing_consent_only(database_url, monkeypatch):
    monkeypatch.setattr(mailings, "ROWS_PER_STATEMENT", 2)  # its output written in several statements
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


def test_a_mailing_decides_with_the_learned_state_in_use_for_the_learning_arm_and_by_geometry_for_the_holdout(
        database_url):
    """A learned state in use says one model runs 40 mm long, so nobody keeps it: it drops out of the mailing for
    the customers of the learning arm and stays for the holdout's as the geometry has it; every product fits the
    learning arm as the learned decision says."""
    with world(database_url) as w:
        import_catalogue(w.engine, MODELS)
        model_ids = sorted({m["id"] for m in _models(w)})
        consenting = {}
        for seed in SEEDS_FITTING_A_MODEL:
            w.customer("A", f"C{seed}")
            consenting[f"C{seed}"] = w.passport("A", f"C{seed}", scan_files(seed))
            marketing(w, f"C{seed}", True)
        geometry = expected_fits(w.engine, consenting, model_ids)
        planted = max(model_ids, key=lambda m: len(geometry[m]))
        assert len(geometry[planted]) >= 2, geometry
        with Session(w.engine) as session:
            tenant_id = session.exec(select(Tenant.id).where(Tenant.name == "tenant-a")).one()
            customer_ids = dict(session.exec(select(Customer.loyalty_id, Customer.id)
                                             .where(Customer.tenant_id == tenant_id)).all())
        learning = w.app.state.learning
        share = _holding_out_below(tenant_id, [customer_ids[c] for c in geometry[planted]], customer_ids.values())
        learning.settings = learning.settings.model_copy(update={"ab_holdout_share": share,
                                                                 "fits_keep_chance": FITS_KEEP_CHANCE})
        arm = {c: advice_arm(tenant_id, customer_ids[c], share) for c in consenting}
        assert {arm[c] for c in geometry[planted]} == {LEARNING, HOLDOUT}
        state = _runs_long(w, planted)
        _adopt(w, state)

        job = run_job(w, model_ids)
        assert job["state"] == "done", job
        got = {p["model_id"]: p["customers"]
               for p in w.call("A", "admin", "GET", f"/v1/mailings/{job['id']}/results").json()["products"]}
        learned = expected_fits(w.engine, consenting, model_ids, state, FITS_KEEP_CHANCE)
        assert not learned[planted] and any(learned.values()), "learning drops the planted model only"
        assert got == {m: sorted([*(c for c in geometry[m] if arm[c] == HOLDOUT),
                                  *(c for c in learned[m] if arm[c] == LEARNING)]) for m in model_ids}
        assert got[planted] == [c for c in geometry[planted] if arm[c] == HOLDOUT]


def _holding_out_below(tenant_id: int, fitted: list[str], everyone) -> float:
    """A holdout share that keeps the last of `fitted` (by the hash advice_arm compares with the share; customer
    ids are random) in the learning arm and holds out everyone before it, so both arms hold some of them."""
    def hash_position(customer_id: str) -> float:  # the smallest share that holds the customer out
        low, high = 0.0, 1.0
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (low, mid) if advice_arm(tenant_id, customer_id, mid) == HOLDOUT else (mid, high)
        return high

    last = max(map(hash_position, fitted))
    below = max(p for p in map(hash_position, everyone) if p < last)
    return (below + last) / 2


def _runs_long(w: World, model_id: int) -> LearnedState:
    """A learned state: the model's toe room feels RUNS_LONG_MM longer than its reading; the keep model's bands as
    wide as the learner finds them, so other models are kept."""
    with Session(w.engine) as session:
        brand, code = session.exec(select(Brand.name, ShoeModel.code).join(Brand, Brand.id == ShoeModel.brand_id)
                                   .where(ShoeModel.id == model_id)).one()
    prior = prior_state()
    planted = ModelLearned(brand=brand, model=code, correction=Correction(
        mm=(RUNS_LONG_MM, *(0.0,) * (len(MEASURES) - 1)), sd_mm=(0.5,) * len(MEASURES), events=100, customers=50))
    state = prior.model_copy(update={"models": (planted,), "version": "",
                                     "keep": prior.keep.model_copy(update={"band_lo_scale": WIDE_BANDS,
                                                                           "band_hi_scale": WIDE_BANDS})})
    return state.model_copy(update={"version": state.content_hash()})


def _adopt(w: World, state: LearnedState) -> None:
    """The state stored as the pooled version in use, as a learning run adopts one."""
    with Session(w.engine) as session:
        record = stored.add(session, LearnedStateRecord(version=state.version, status="candidate", events=100,
                                                        held_out=20, state_json=state.to_json()))
        stored.judged(session, record, adopt=True)


def _models(w: World) -> list[dict]:
    with w.engine.connect() as conn:
        return [{"id": row[0]} for row in conn.exec_driver_sql("SELECT id FROM shoe_model")]


def test_tenants_take_turns_and_a_tenants_queue_is_bounded(database_url):
    """A service process that does not run jobs queues them: tenant A as many as it may, then tenant B one. A
    process that runs jobs then takes B's second, after the A job first in line, not after all of A's."""
    with world(database_url, mailing_jobs_queued_per_tenant=QUEUED, runs_jobs=False) as w:
        import_catalogue(w.engine, MODELS)
        model_ids = sorted({m["id"] for m in _models(w)})
        for i in range(3):
            w.customer("A", f"C{i}")
            w.passport("A", f"C{i}", scan_files(2 + i))
            marketing(w, f"C{i}", True)
        a_jobs = [w.call("A", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
                  for _ in range(QUEUED + 1)]
        assert [r.status_code for r in a_jobs] == [202] * QUEUED + [409]
        assert f"{QUEUED} batch jobs waiting" in a_jobs[-1].json()["detail"]
        b_job = w.call("B", "admin", "POST", "/v1/mailings", json={"model_ids": model_ids})
        assert b_job.status_code == 202, b_job.text
        time.sleep(0.5)
        assert {job.state for job in _jobs(w).values()} == {"queued"}, "nothing runs them in this process"

        runner = MailingRunner(w.engine, w.app.state.fitting, w.app.state.settings.service.model_copy(
            update={"runs_jobs": True}), w.app.state.fit_index)
        runner.start()
        try:
            b_id, a_ids = b_job.json()["id"], [r.json()["id"] for r in a_jobs[:QUEUED]]
            jobs = _finished(w)
        finally:
            runner.close()
        assert all(jobs[j].state == "done" for j in [b_id, *a_ids])
        order = sorted([b_id, *a_ids], key=lambda j: jobs[j].finished_at)
        assert order.index(b_id) == 1  # after the A job first in line, before A's others


def _finished(w: World, timeout_s: float = 120) -> dict[str, MailingJob]:
    """The jobs once none is queued or running."""
    deadline, jobs = time.monotonic() + timeout_s, _jobs(w)
    while any(job.state in ("queued", "running") for job in jobs.values()):
        assert time.monotonic() < deadline, jobs
        time.sleep(0.1)
        jobs = _jobs(w)
    return jobs


def _jobs(w: World) -> dict[str, MailingJob]:
    with Session(w.engine) as session:
        return {job.id: job for job in session.exec(select(MailingJob))}
