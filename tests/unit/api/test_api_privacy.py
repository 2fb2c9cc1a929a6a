"""Privacy: export (JSON + PLY, the customer's audit trail), erasure by passport and by customer cascading to
everything derived, retention purge, the append-only audit log that never holds geometry, SQLite overwriting what it
deletes, and scan jobs that forget an erased customer. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import timedelta
from sqlite3 import dbapi2

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from api import audit
from api.db import open_service_db
from api.models import AuditEntry, Consent, Customer, Feedback, FitResult, PassportRecord, ScanJobRecord, utc_now
from api.privacy import purge_expired
from cli.main import main
from testing.api_world import import_catalogue, scan_files, world
from shoe_db.models import Store
from testing.kiosk_world import RIG, kiosk_world, start, wait_for


def _derive(w, passport_id: str, sku: str) -> None:
    """A fit result and a feedback event on the passport."""
    with Session(w.engine) as session:
        session.add(FitResult(passport_id=passport_id, kind="size", request_json='{"model_id": 1}',
                              result_json='{"size": "42"}'))
        session.commit()
    r = w.call("A", "kiosk", "POST", f"/v1/passports/{passport_id}/feedback", json={"event": "tried", "sku": sku})
    assert r.status_code == 201


def _nonzero(deleted: dict[str, int]) -> dict[str, int]:
    """Rows deleted per table, without the tables of personal data this scenario did not fill."""
    return {table: n for table, n in deleted.items() if n}


def _rows(engine, table, **where) -> int:
    with Session(engine) as session:
        query = select(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return len(session.exec(query).all())


def test_export_holds_everything_about_the_customer(database_url):
    with world(database_url) as w:
        sku = import_catalogue(w.engine)[0]
        w.customer("A", "C1", consents=("scan_storage", "webshop", "marketing"))
        passport_id = w.passport("A", "C1")
        _derive(w, passport_id, sku)
        r = w.call("A", "admin", "GET", "/v1/customers/C1/export")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        record = json.loads(archive.read("customer.json"))
        assert record["loyalty_id"] == "C1" and len(record["consent"]) == 3
        assert [p["id"] for p in record["passports"]] == [passport_id]
        assert record["feedback"][0]["event"] == "tried" and record["fit_result"][0]["kind"] == "size"
        assert [(f["sku"], f["store"]) for f in record["feedback"]] == [(sku, "STORE-A")]
        assert not {"size_id", "store_id"} & set(record["feedback"][0]), "catalogue ids mean nothing to a customer"
        kiosk = w.tenants["A"].key_ids["kiosk"]
        assert {("create", "customer", kiosk), ("consent", "customer", kiosk), ("create", "passport", kiosk),
                ("read", "passport", kiosk)} <= {(e["action"], e["object_type"], e["actor"]) for e in record["audit"]}
        assert json.loads(archive.read(f"passports/{passport_id}/passport.json")) == json.loads(scan_files().passport)
        for side in ("left", "right"):
            assert archive.read(f"passports/{passport_id}/{side}.ply") == getattr(scan_files(), side)
        with Session(w.engine) as session:
            entries = session.exec(select(AuditEntry).where(AuditEntry.action == "export")).all()
        assert [e.actor for e in entries] == [w.tenants["A"].key_ids["admin"]]


def test_erasure_cascades_and_is_audited_without_geometry(database_url):
    with world(database_url) as w:
        sku = import_catalogue(w.engine)[0]
        w.customer("A", "C1")
        w.customer("A", "C2")
        kept, erased = w.passport("A", "C1"), w.passport("A", "C1")
        other = w.passport("A", "C2")
        for passport_id in (kept, erased, other):
            _derive(w, passport_id, sku)
        r = w.call("A", "admin", "DELETE", f"/v1/passports/{erased}")
        assert _nonzero(r.json()["deleted"]) == {"fit_result": 1, "feedback": 1, "passport": 1}
        assert _rows(w.engine, PassportRecord, id=erased) == 0 and _rows(w.engine, FitResult, passport_id=erased) == 0
        assert _rows(w.engine, Feedback, passport_id=kept) == 1
        assert w.call("A", "admin", "DELETE", f"/v1/passports/{erased}").status_code == 404

        r = w.call("A", "admin", "DELETE", "/v1/customers/C1")
        assert _nonzero(r.json()["deleted"]) == {"fit_result": 1, "feedback": 1, "passport": 1, "consent": 2,
                                                 "customer": 1}
        with Session(w.engine) as session:
            assert session.exec(select(Customer).where(Customer.loyalty_id == "C1")).first() is None
            assert {c.customer_id for c in session.exec(select(Consent))} == {
                session.exec(select(Customer.id).where(Customer.loyalty_id == "C2")).one()}
        assert w.call("A", "admin", "GET", "/v1/customers/C1").status_code == 404
        assert w.call("A", "webshop", "GET", f"/v1/passports/{other}").status_code == 200  # others untouched
        with Session(w.engine) as session:
            log = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
        erasures = {(e.action, e.object_type, e.object_id) for e in log if e.action == "erase"}
        assert {("erase", "passport", erased), ("erase", "passport", kept)} <= erasures
        assert any(e.object_type == "customer" for e in log if e.action == "erase")
        reads = [e for e in log if e.action == "read" and e.object_id == other]
        assert reads and reads[-1].actor == w.tenants["A"].key_ids["webshop"]
        passport = json.loads(scan_files().passport)
        numbers = {f"{v:.3f}"[:6] for v in passport["feet"]["left"]["measurements"].values()}
        for entry in log:
            text_of_entry = " ".join(str(v) for v in entry.model_dump().values())
            assert "C1" not in text_of_entry and "C2" not in text_of_entry, "never a loyalty id"
            assert not any(n in text_of_entry for n in numbers), text_of_entry


def test_the_audit_log_refuses_changes(database_url):
    with world(database_url) as w:
        with Session(w.engine) as session:
            audit.record(session, 1, "test", "read", "passport", "x")
            session.commit()
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), w.engine.begin() as conn:
                conn.execute(text(statement))
        with Session(w.engine) as session:
            assert [e.actor for e in session.exec(select(AuditEntry))] == ["test"]


def test_sqlite_connections_overwrite_what_they_delete(tmp_path, monkeypatch):
    """Even where SQLite was built to leave deleted content in free pages (Debian's overwrites it by default)."""
    connect = dbapi2.connect

    def connect_as_built_without_secure_delete(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete = OFF")
        return connection

    monkeypatch.setattr(dbapi2, "connect", connect_as_built_without_secure_delete)
    engine = open_service_db(f"sqlite:///{tmp_path / 'footfit.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    engine.dispose()


@pytest.mark.slow
def test_scan_jobs_forget_an_erased_customer_and_keep_frames_only_for_a_timely_retry(tmp_path, monkeypatch):
    """A finished scan drops its frames and, once its customer is erased, their loyalty id; a failed scan keeps its
    frames (at its rig's agent) for a retry within the retry window only. The camera drops out for 6 s three quarters
    into every scan."""
    with kiosk_world(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, faults="disconnect=camera@0.75:6",
                     reconnect_window_s=1.0) as w:
        w.customer("A", "C1")
        w.customer("A", "C2")
        scan = start(w, "C1").json()
        failed = wait_for(w, scan["id"], lambda s: s["state"] != "running")
        assert failed["state"] == "failed" and failed["kept"] == ["plate", "left"], failed
        time.sleep(6)  # the camera is back
        assert w.call("A", "kiosk", "POST", f"/v1/scans/{scan['id']}/retry").status_code == 202
        done = wait_for(w, scan["id"], lambda s: s["state"] != "running")
        assert done["state"] == "done" and done["loyalty_id"] == "C1", done
        created = _rows(w.engine, AuditEntry, action="create", object_id=done["passport_id"],
                        actor=w.tenants["A"].key_ids["kiosk"])
        assert created == 1, "the kiosk scan's passport is audited as created by the key that started it"

        assert w.call("A", "admin", "DELETE", "/v1/customers/C1").status_code == 200
        forgotten = w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}")
        assert forgotten.json()["loyalty_id"] == "" and "C1" not in forgotten.text, forgotten.text

        monkeypatch.setattr(w.app.state.scans, "retry_window", timedelta(seconds=2))
        second = start(w, "C2").json()
        lapsed = wait_for(w, second["id"], lambda s: s["state"] == "cancelled")
        assert lapsed["kept"] == [] and "no retry within" in lapsed["message"], lapsed
        agent = next(a for a in w.agents if a.rig == RIG)
        deadline = time.monotonic() + 10
        while second["id"] in agent.held_scans():
            assert time.monotonic() < deadline, "the agent drops what it kept when the window has passed"
            time.sleep(0.2)


def test_retention_purge_erases_only_passports_past_their_tenants_period(database_url, monkeypatch, capsys):
    with world(database_url) as w:
        w.customer("A", "C1")
        w.customer("B", "C1")
        old, recent = w.passport("A", "C1"), w.passport("A", "C1")
        other_tenant = w.call("B", "kiosk", "POST", "/v1/customers/C1/passports",
                              files=scan_files().multipart()).json()["id"]
        with Session(w.engine) as session:
            for passport_id in (old, other_tenant):  # both tenants keep passports 30 days
                record = session.get(PassportRecord, passport_id)
                record.updated_at = utc_now() - timedelta(days=31 if passport_id == old else 29)
                session.add(record)
            tenant_a = session.get(PassportRecord, old).tenant_id
            store = session.exec(select(Store.id).where(Store.code == w.tenants["A"].store)).one()
            for name, state, ended_days_ago in (("ended-long-ago", "done", 8), ("ended-lately", "failed", 1),
                                                ("running", "running", None)):  # kiosk scans' rows, kept 7 days
                ended = None if ended_days_ago is None else utc_now() - timedelta(days=ended_days_ago)
                session.add(ScanJobRecord(id=name, tenant_id=tenant_a, store_id=store, rig_serial=name, loyalty_id="C1",
                                          created_by="k", state=state, phase="left", finished_at=ended,
                                          started_at=utc_now() - timedelta(days=9)))
            session.commit()
        from core.settings import get_settings

        monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
        get_settings.cache_clear()
        try:
            assert main(["privacy", "purge"]) == 0
        finally:
            get_settings.cache_clear()
        out = capsys.readouterr().out
        assert "tenant-a" in out and "1 passports erased" in out and "0 passports erased" in out
        assert "1 scan_job" in out
        with Session(w.engine) as session:
            assert set(session.exec(select(ScanJobRecord.id))) == {"ended-lately", "running"}
        assert _rows(w.engine, PassportRecord, id=old) == 0
        assert _rows(w.engine, PassportRecord, id=recent) == 1 and _rows(w.engine, PassportRecord, id=other_tenant) == 1
        assert _rows(w.engine, AuditEntry, action="purge", object_id=old) == 1
        with Session(w.engine) as session:  # a second run finds nothing more
            assert sum(r.passports for r in purge_expired(session, scan_rows_kept_days=7)) == 0
