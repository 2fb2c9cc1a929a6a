"""Several service processes on one database (issue 15): each a real `footfit serve` process. What one process
changes, the other answers from at once (data versions, shoe_db/versions.py); a mailing job whose process is killed
with -9 is taken over by the other when its lease runs out and finishes once, with no duplicate rows."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import Session, select

from api.models import MailingJob
from testing.api_world import World, catalogue_files, import_catalogue, scan_files, without_stock, world
from testing.postgres import PostgresServer
from testing.service_process import ServiceProcess

LEASE_S = 2.0
CLIENTS = 50
SUBJECTS = (2, 3, 4)  # the population feet of the customers whose answers are compared
EXPENSIVE = 449.95  # the price of the small catalogue's ski model ...
CHEAP = 300  # ... and a price limit below it
CUSTOMERS = 40  # a mailing of one passport a step over this many takes far longer than a kill


@pytest.fixture
def two_services(database_url, tmp_path):
    """The store's world (tenants, keys, catalogue, customers), then two service processes on its database."""
    with world(database_url, runs_jobs=False) as w:
        skus = import_catalogue(w.engine)
        env = {"FOOTFIT_DATABASE_URL": database_url, "FOOTFIT_DATA_DIR": str(tmp_path / "var"),
               "FOOTFIT_SERVICE__JOB_LEASE_S": str(LEASE_S), "FOOTFIT_SERVICE__JOB_POLL_S": "0.2",
               "FOOTFIT_BATCH__CHUNK_PASSPORTS": "16"}
        services = [ServiceProcess(env), ServiceProcess(env)]
        try:
            yield w, skus, services
        finally:
            for service in services:
                if service.process.poll() is None:
                    service.signal(signal.SIGCONT)
                    service.stop()


def _call(w: World, service: ServiceProcess, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {w.tenants['A'].keys['admin']}"}
    return httpx.request(method, service.url + path, headers=headers, timeout=60, **kwargs)


@pytest.mark.slow
def test_a_stock_change_through_one_process_is_answered_from_by_the_other(two_services):
    w, skus, (one, other) = two_services
    w.customer("A", "K-1")
    passport = w.passport("A", "K-1", scan_files())
    in_store = f"/v1/passports/{passport}/recommendations?store=STORE-A&n=5"
    anywhere = f"/v1/passports/{passport}/recommendations?n=5"
    assert _call(w, other, "GET", in_store).json() == [], "nothing in stock in STORE-A yet"
    before = _call(w, other, "GET", anywhere).json()

    stocked = _call(w, one, "PUT", "/v1/stores/STORE-A/stock",
                    json={"items": [{"sku": sku, "quantity": 3} for sku in skus]})
    assert stocked.status_code == 200, stocked.text

    shown = _call(w, other, "GET", in_store)
    assert shown.status_code == 200 and shown.json(), "the other process sees the new stock at its next request"
    assert shown.json() == before, "every size in stock: the same shoes as anywhere"
    assert _call(w, one, "GET", in_store).json() == shown.json(), "both processes answer alike"

    emptied = _call(w, other, "PUT", "/v1/stores/STORE-A/stock",
                    json={"items": [{"sku": sku, "quantity": 0} for sku in skus]})
    assert emptied.status_code == 200
    assert _call(w, one, "GET", in_store).json() == [], "and back, the other way round"


@pytest.mark.slow
def test_a_mailing_whose_process_is_killed_is_finished_once_by_the_other(two_services):
    w, _skus, (dying, surviving) = two_services
    files = scan_files()
    for i in range(CUSTOMERS):
        w.customer("A", f"M-{i}", consents=("scan_storage", "marketing"))
        w.passport("A", f"M-{i}", files)
    models = sorted({row[0] for row in _rows(w, "SELECT id FROM shoe_model")})

    surviving.signal(signal.SIGSTOP)  # so the dying process takes the job
    job_id = _call(w, dying, "POST", "/v1/mailings", json={"model_ids": models}).json()["id"]
    job = _wait_for(w, job_id, lambda j: j.state == "running" and 0 < j.progress < 0.5)
    dying.signal(signal.SIGSTOP)  # frozen mid-job, holding its lease
    assert str(dying.pid) in job.lease_holder and _job(w, job_id).state == "running"
    dying.kill()
    surviving.signal(signal.SIGCONT)
    killed_at = time.monotonic()

    done = _wait_for(w, job_id, lambda j: j.state in ("done", "failed"), timeout_s=120)
    assert done.state == "done", done.error
    assert done.attempts == 2 and str(surviving.pid) in (done.lease_holder or str(surviving.pid))
    assert time.monotonic() - killed_at < LEASE_S + 30, "taken over soon after the lease ran out"
    matches = _rows(w, f"SELECT passport_id, model_id FROM mailing_match WHERE job_id = '{job_id}'")
    assert len(matches) == len(set(matches)), "no duplicate rows from the dead turn"

    again = _call(w, surviving, "POST", "/v1/mailings", json={"model_ids": models}).json()["id"]
    assert _wait_for(w, again, lambda j: j.state == "done").state == "done"
    rerun = _rows(w, f"SELECT passport_id, model_id FROM mailing_match WHERE job_id = '{again}'")
    assert sorted(matches) == sorted(rerun), "the same output as a job no process died in"
    results = _call(w, surviving, "GET", f"/v1/mailings/{job_id}/results")
    assert results.status_code == 200 and sum(len(p["customers"]) for p in results.json()["products"]) == len(matches)


@pytest.mark.slow
def test_two_processes_under_50_clients_answer_as_one_after_changes_made_through_the_other(postgres_server, tmp_path):
    """PostgreSQL, as a deployment of several processes runs. The answers of one process, one request at a time,
    are the reference; then 50 clients ask both processes at once. Again after a stock change and after a
    catalogue change (the tenant's assortment: a new price), each made through the second process."""
    url = postgres_server.new_database()
    with world(url, runs_jobs=False) as w:
        import_catalogue(w.engine)
        passports = []
        for seed in SUBJECTS:
            w.customer("A", f"K-{seed}")
            passports.append(w.passport("A", f"K-{seed}", scan_files(seed)))
        env = {"FOOTFIT_DATABASE_URL": url, "FOOTFIT_DATA_DIR": str(tmp_path / "var")}
        one, other = ServiceProcess(env), ServiceProcess(env)
        try:
            questions = [f"/v1/passports/{p}/recommendations?n=5{where}" for p in passports
                         for where in ("", "&store=STORE-A", f"&price_max={CHEAP}")]
            answers = _answer_alike(w, one, other, questions)
            assert not any(answers[q] for q in questions if "store=" in q), "nothing in stock in STORE-A yet"

            skus = [row[0] for row in _rows(w, "SELECT sku FROM assortment_item JOIN tenant ON tenant.id = tenant_id "
                                               f"WHERE tenant.name = '{w.tenants['A'].name}'")]
            stocked = _call(w, other, "PUT", "/v1/stores/STORE-A/stock",
                            json={"items": [{"sku": sku, "quantity": 2} for sku in skus]})
            assert stocked.status_code == 200, stocked.text
            answers = _answer_alike(w, one, other, questions)
            assert all(answers[q] for q in questions if "store=" in q), "in stock now, in both processes"

            products = catalogue_files().read_text()
            cheaper = without_stock(products.replace(f",{EXPENSIVE},", f",{CHEAP - 50},"))
            imported = _call(w, other, "POST", "/v1/catalog/import",
                             files=[("products", ("products.csv", cheaper.encode(), "text/csv"))])
            assert imported.status_code == 200, imported.text
            after = _answer_alike(w, one, other, questions)
            assert any(len(after[q]) > len(answers[q]) for q in questions if "price_max" in q), \
                "the model whose price fell is within the price limit now, in both processes"
        finally:
            one.stop()
            other.stop()


def _answer_alike(w: World, one: ServiceProcess, other: ServiceProcess, questions: list[str]) -> dict[str, list]:
    """The reference answers of `one`, asked one at a time; then CLIENTS clients ask both processes every question
    a few times over, each answer equal to the reference."""
    reference = {}
    for q in questions:
        r = _call(w, one, "GET", q)
        assert r.status_code == 200, r.text
        reference[q] = r.json()
    asked = [(questions[i % len(questions)], (one, other)[i % 2]) for i in range(CLIENTS * 4)]
    with ThreadPoolExecutor(CLIENTS) as clients:
        answered = list(clients.map(lambda ask: (ask[0], _call(w, ask[1], "GET", ask[0])), asked))
    for q, r in answered:
        assert r.status_code == 200, r.text
        assert r.json() == reference[q], f"{q}: another answer under load, or from the other process"
    return reference


@pytest.mark.slow
def test_requests_fail_cleanly_while_postgresql_restarts_and_succeed_after(tmp_path):
    """PostgreSQL stopped under 50 requests and started again: 503 with a reason while it is away, the same answers
    as before once it is back, with no restart of the service."""
    database = PostgresServer()
    service = None
    try:
        url = database.new_database()
        with world(url, runs_jobs=False) as w:
            import_catalogue(w.engine)
            w.customer("A", "K-1")
            path = f"/v1/passports/{w.passport('A', 'K-1', scan_files())}/recommendations"
            service = ServiceProcess({"FOOTFIT_DATABASE_URL": url, "FOOTFIT_DATA_DIR": str(tmp_path / "var")})
            before = _call(w, service, "GET", path)
            assert before.status_code == 200, before.text

            database.halt()
            with ThreadPoolExecutor(10) as clients:
                during = list(clients.map(lambda _: _call(w, service, "GET", path), range(50)))
            assert {r.status_code for r in during} == {503}, {r.status_code for r in during}
            assert "database is not answering" in during[0].json()["detail"] and during[0].headers["Retry-After"]

            database.start_server()
            with ThreadPoolExecutor(10) as clients:
                after = list(clients.map(lambda _: _call(w, service, "GET", path), range(50)))
            assert [r.status_code for r in after] == [200] * 50
            assert all(r.json() == before.json() for r in after)
    finally:
        if service is not None:
            service.stop()
        database.stop()


def _job(w: World, job_id: str) -> MailingJob:
    with Session(w.engine) as session:
        return session.exec(select(MailingJob).where(MailingJob.id == job_id)).one()


def _wait_for(w: World, job_id: str, condition, timeout_s: float = 60) -> MailingJob:
    deadline = time.monotonic() + timeout_s
    while not condition(job := _job(w, job_id)):
        assert time.monotonic() < deadline, f"job {job_id}: {job}"
        time.sleep(0.01)
    return job


def _rows(w: World, sql: str) -> list[tuple]:
    with w.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]
