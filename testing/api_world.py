"""Shared by the tests of the fit service: a real uvicorn server on a free loopback port (in a thread), two
tenants with kiosk, webshop and admin keys, and a scan's files (passport.json + PLYs) measured from a
population foot."""

from __future__ import annotations

import csv
import io
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import uvicorn
from sqlmodel import Session, select

from api import auth, tenancy
from api.app import create_app
from api.auth import Principal
from api.catalog_upload import import_assortment
from api.db import open_service_db
from api.models import Tenant
from api.privacy import ply_bytes
from api.repository import Repository
from core.vocabulary import SIDES
from shoe_db.models import SizeVariant, Stock, Store

KIOSK_SCOPES = "scans:write,scans:read,customers:write,passports:read,recommendations:read,feedback:write"
WEBSHOP_SCOPES = "passports:read,recommendations:read,feedback:write,customers:write"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
POINTS_PER_FOOT = 12_000


@dataclass(frozen=True)
class ScanFiles:
    passport: bytes
    left: bytes
    right: bytes

    def multipart(self) -> dict:
        return {"passport": ("passport.json", self.passport, "application/json"),
                "left": ("left.ply", self.left, "application/octet-stream"),
                "right": ("right.ply", self.right, "application/octet-stream")}


@lru_cache(maxsize=4)
def scan_files(seed: int = 2) -> ScanFiles:
    """What a scan writes, for population subject `seed`: measured passport and foot-frame points (subsampled)."""
    from fitcore.scan.measure import measure_mesh, sample_surface
    from fitcore.scan.passport import build_passport
    from fitcore.scan.pressure import FootPressure, PlateMetrics
    from simulator.subjects import population_subject

    subject = population_subject(seed)
    measured, plys = {}, {}
    for side in SIDES:
        mesh = getattr(subject, side)
        measured[side] = measure_mesh(mesh, side)
        points, _ = sample_surface(mesh)
        t = measured[side].foot_from_plate
        points = points @ t[:3, :3].T + t[:3, 3]
        pick = np.random.default_rng(seed).choice(len(points), POINTS_PER_FOOT, replace=False)
        plys[side] = ply_bytes(points[pick])
    foot = FootPressure(contact_area_cm2=110.0, peak_kpa=130.0, mean_force_n=370.0, arch_index=0.23,
                        arch_type="normal", cop_sway_mm=1.4, axis_deg=2.0)
    plate = PlateMetrics(left=foot, right=foot, load_left_percent=50.5, cop_sway_mm=1.9, frames=200)
    passport = build_passport(measured["left"], measured["right"], plate, rig_serial="FF-RIG-0042",
                              calibration_id="cal-1", scanned_at=T0, finished_at=T0 + timedelta(seconds=40),
                              measured_at=T0 + timedelta(seconds=41))
    return ScanFiles(passport.to_json().encode(), plys["left"], plys["right"])


@contextmanager
def running(app) -> Iterator[str]:
    """The app behind a real uvicorn server on a free port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class TenantKeys:
    name: str
    store: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> token
    key_ids: dict[str, str] = field(default_factory=dict)


class World:
    """Two tenants (A, B), each with a store and kiosk, webshop and admin keys, behind a running server."""

    def __init__(self, base_url: str, engine):
        self.base_url = base_url
        self.engine = engine
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.tenants: dict[str, TenantKeys] = {}

    def call(self, tenant: str, role: str, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tenants[tenant].keys[role]}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    def customer(self, tenant: str, loyalty_id: str, consents=("scan_storage", "webshop")) -> None:
        assert self.call(tenant, "kiosk", "POST", "/v1/customers", json={"loyalty_id": loyalty_id}).status_code == 201
        for purpose in consents:
            r = self.call(tenant, "kiosk", "POST", f"/v1/customers/{loyalty_id}/consents",
                          json={"purpose": purpose, "granted": True, "source": "kiosk"})
            assert r.status_code == 201, r.text

    def passport(self, tenant: str, loyalty_id: str, files: ScanFiles | None = None) -> str:
        r = self.call(tenant, "kiosk", "POST", f"/v1/customers/{loyalty_id}/passports",
                      files=(files or scan_files()).multipart())
        assert r.status_code == 201, r.text
        return r.json()["id"]


def add_tenant(session: Session, name: str, store: str) -> TenantKeys:
    tenancy.create_tenant(session, name, retention_days=30)
    tenancy.add_store(session, name, store)
    keys = TenantKeys(name, store)
    for role, scopes, at_store in (("kiosk", KIOSK_SCOPES, store), ("webshop", WEBSHOP_SCOPES, None),
                                   ("admin", ",".join(auth.SCOPES), None)):
        row, token = auth.create_key(session, name, auth.parse_scopes(scopes), 30, store=at_store)
        keys.keys[role], keys.key_ids[role] = token, row.id
    return keys


@contextmanager
def world(database_url: str, batch: dict | None = None, **settings_changes) -> Iterator[World]:
    """The world behind a running server; `settings_changes` change the service's settings, `batch` the batch
    settings (core.settings.BatchSettings)."""
    engine = open_service_db(database_url)
    with Session(engine) as session:
        tenants = {"A": add_tenant(session, "tenant-a", "STORE-A"), "B": add_tenant(session, "tenant-b", "STORE-B")}
    settings = _settings(batch or {}, **settings_changes)
    app = create_app(engine=engine, settings=settings)
    with running(app) as url:
        w = World(url, engine)
        w.app, w.tenants = app, tenants
        try:
            yield w
        finally:
            w.http.close()
            for stop in app.router.on_shutdown:  # the server runs without lifespan: its background work stops here
                stop()
            engine.dispose()


def _settings(batch_changes: dict, **service_changes):
    from core.settings import get_settings

    settings = get_settings()
    return settings.model_copy(update={"service": settings.service.model_copy(update=service_changes),
                                       "batch": settings.batch.model_copy(update=batch_changes)})


@lru_cache(maxsize=2)
def catalogue_files(models: int = 3, seed: int = 1) -> Path:
    """A small synthetic catalogue in the import format (stores STORE-01, STORE-02), written once per process."""
    from simulator.catalog import generate_catalogue, write_catalogue

    folder = Path(tempfile.mkdtemp(prefix="footfit-test-catalogue-"))
    return write_catalogue(generate_catalogue(models, seed, stores=2), folder)


def import_catalogue(engine, models: int = 3) -> list[str]:
    """Import the small catalogue directly (not over the API) as the operator's interior database and as every
    tenant's assortment (the file's SKUs and prices), with the file's stock in STORE-01 and STORE-02 while no
    tenant owns them: a test that gives a tenant one of them (tenancy.add_store) gives it that stock. Its SKUs."""
    from shoe_db.importer import import_products

    products = catalogue_files(models)
    summary = import_products(products, products.parent / "interiors", engine=engine)
    assert summary.committed, summary.report()
    with Session(engine, expire_on_commit=False) as session:
        for tenant in session.exec(select(Tenant)).all():
            repo = Repository(session, Principal(f"test:{tenant.name}", tenant.id, None, frozenset()))
            summary = import_assortment(repo, products.name, without_stock(products.read_text()), False)
            assert summary.committed, summary.report()
    return [row["sku"] for row in store_stock(engine, products)]


def store_stock(engine, products: Path) -> list[dict]:
    """Put the stock of a CSV product file of the operator's SKUs into the stores it names, made when missing,
    whoever owns them (a tenant's import sets only its own stores'); the file's rows."""
    rows = list(csv.DictReader(io.StringIO(products.read_text())))
    with Session(engine) as session:
        size_ids = dict(session.exec(select(SizeVariant.sku, SizeVariant.id)).all())
        for code in sorted({code for row in rows for code in _stock(row)}):
            store = session.exec(select(Store).where(Store.code == code)).first() or Store(code=code)
            session.add(store)
            session.flush()
            session.add_all(Stock(store_id=store.id, size_id=size_ids[row["sku"]], quantity=_stock(row)[code])
                            for row in rows if _stock(row).get(code, 0) > 0)
        session.commit()
    return rows


def without_stock(products: str) -> str:
    """A CSV product file with its stock column emptied: an import of it leaves stock as it is."""
    rows = list(csv.DictReader(io.StringIO(products)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "stock": ""} for row in rows)
    return out.getvalue()


def _stock(row: dict) -> dict[str, int]:
    return {code: int(quantity) for code, quantity in (part.split("=") for part in row["stock"].split(";") if part)}
