"""The learning benchmark's world as the product meets it (issue 14): a real `footfit serve` process on its own
SQLite database under a folder of the caller's, the operator's catalogue imported through the API, one retailer
selling all of it in one store (a kiosk key) and a webshop (a tenant key), customers registered with consent and a
passport, simulated shoppers whose tries, choices, purchases and returns are posted as feedback, and the learning
job run as `footfit learn` in a process of its own (bench/bench_learning.py, tests/integration/
test_learning_world.py).

The customers' passports here come from the CHEAP path (`cheap_scan`): the subject's true foot meshes sampled and
measured by the product's own code (testing.fit_subjects), with no rendering and no reconstruction. The benchmark's
evaluation customers are scanned through the simulated rig instead (testing/scanned_customers.py) and uploaded
with `scan_files_in`.

Tenant, store and keys are made in this process with the functions `footfit tenants create`, `footfit stores add`
and `footfit keys create` call (api.tenancy, api.auth) on the service's database before the service starts: three
commands would cost ~10 s of interpreter start. Everything else goes over HTTP.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sqlmodel import Session

from api import auth, tenancy
from api.db import open_service_db
from api.schemas import FeedbackIn, FeedbackOut, FitComplaint, ModelFitOut, RecommendationOut
from core.errors import ServiceError
from core.mesh import write_points
from core.sizes import SIZE_SYSTEMS
from core.vocabulary import FEEDBACK_SOURCES, SIDES
from simulator.catalog import SyntheticCatalogue, last_interior, true_last
from simulator.comfort import PairComfort, pair_comfort, place_foot, preference
from simulator.customers import Customer, preferences_of, subject_of
from simulator.shoppers import Fitting, SizeOption, StoreVisit, WebshopPurchase, store_visit, webshop_purchase
from simulator.subjects import Subject
from testing.api_world import KIOSK_SCOPES, WEBSHOP_SCOPES, ScanFiles, without_stock
from testing.fit_subjects import foot_points, passport_of
from testing.net import free_port

STORE_CHANNEL, WEBSHOP_CHANNEL = FEEDBACK_SOURCES  # a kiosk key records store events, a tenant key webshop events
TENANT, STORE = "shop", "STORE-L"
SCAN_FILE_NAMES = ("passport.json", "left.ply", "right.ply")
STOCK_PER_SIZE = 10  # every size of the catalogue is on the store's shelf: stock never limits the advice
TOP = 3  # customer and staff look at the top three of the customer's category (issue 14)
START_TIMEOUT_S = 90.0
ADOPTION_WAIT_S = 120.0  # a service process re-reads the learned state in use every api.learning.RELOAD_S (30 s)
RETENTION_DAYS = 3650
_RUN_LINE = re.compile(r"^(?P<scope>[^:]+): (?P<outcome>\w+) (?P<version>\S+) \(in use: (?P<in_use>[^)]+)\)")


# --- passports --------------------------------------------------------------------------------------------------


def cheap_scan(subject: Subject, folder: Path) -> ScanFiles:
    """The CHEAP passport path: the subject's true feet sampled and measured by the product's code
    (testing.fit_subjects), written into `folder` as a scan writes them (passport.json, left.ply, right.ply, so
    fitcore.fit.matcher.ScannedFeet.load reads it), and what an upload sends."""
    folder.mkdir(parents=True, exist_ok=True)
    measured = {}
    for side in SIDES:
        points, measured[side] = foot_points(getattr(subject, side), side)
        write_points(folder / f"{side}.ply", points)
    passport_of(measured["left"], measured["right"]).save(folder / "passport.json")
    return scan_files_in(folder)


def scan_files_in(folder: Path) -> ScanFiles:
    """A scan folder's passport and points (what `footfit scan` and `cheap_scan` write) as an upload sends them."""
    return ScanFiles(*((folder / name).read_bytes() for name in SCAN_FILE_NAMES))


# --- the service ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceKeys:
    kiosk: str  # a key of the store: its events are store events
    webshop: str  # a tenant key: webshop events
    operator: str  # the tenant's catalogue and stock, the operator's interiors and learned versions

    def of(self, channel: str) -> str:
        """The key a channel (FEEDBACK_SOURCES) calls with."""
        return {STORE_CHANNEL: self.kiosk, WEBSHOP_CHANNEL: self.webshop}[channel]


@dataclass(frozen=True)
class ServiceAddress:
    """Where a running service answers and with which keys: all a worker process needs to shop there."""

    base_url: str
    keys: ServiceKeys


@dataclass(frozen=True)
class LearnRun:
    """One `footfit learn`: what it printed and the learned version in use after it ('prior': none)."""

    printed: str
    outcome: str  # adopted, rejected, unchanged, too_few_events
    in_use: str


class ShopClient:
    """What the store's kiosk and the webshop ask the service, over HTTP; answers parsed into the API's models."""

    def __init__(self, address: ServiceAddress):
        self.address = address
        self.http = httpx.Client(base_url=address.base_url, timeout=300)

    def close(self) -> None:
        self.http.close()

    def call(self, key: str, method: str, path: str, expect: int = 200, **kwargs) -> httpx.Response:
        r = self.http.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)
        if r.status_code != expect:
            raise ServiceError(f"{method} {path} answered {r.status_code}, expected {expect}: {r.text[:1000]}")
        return r

    def register(self, loyalty_id: str, files: ScanFiles) -> str:
        """A new customer with scan-storage and webshop consent and their passport, as a kiosk registers them; the
        passport's id."""
        kiosk = self.address.keys.kiosk
        self.call(kiosk, "POST", "/v1/customers", 201, json={"loyalty_id": loyalty_id})
        for purpose in ("scan_storage", "webshop"):
            self.call(kiosk, "POST", f"/v1/customers/{loyalty_id}/consents", 201,
                      json={"purpose": purpose, "granted": True})
        return self.call(kiosk, "POST", f"/v1/customers/{loyalty_id}/passports", 201,
                         files=files.multipart()).json()["id"]

    def recommendations(self, passport_id: str, channel: str, n: int, category: str,
                        gender: str) -> list[RecommendationOut]:
        r = self.call(self.address.keys.of(channel), "GET", f"/v1/passports/{passport_id}/recommendations",
                      params={"n": n, "category": category, "gender": gender})
        return [RecommendationOut.model_validate(item) for item in r.json()]

    def size(self, passport_id: str, model_id: int, channel: str = STORE_CHANNEL) -> ModelFitOut:
        """The advised size of one model, with the chance it is kept, as the channel's key is answered."""
        r = self.call(self.address.keys.of(channel), "GET", f"/v1/passports/{passport_id}/sizes/{model_id}")
        return ModelFitOut.model_validate(r.json())

    def post(self, passport_id: str, channel: str, event: FeedbackIn) -> FeedbackOut:
        r = self.call(self.address.keys.of(channel), "POST", f"/v1/passports/{passport_id}/feedback", 201,
                      json=event.model_dump(mode="json", exclude_none=True))
        return FeedbackOut.model_validate(r.json())

    def feedback(self, passport_id: str) -> list[FeedbackOut]:
        r = self.call(self.address.keys.kiosk, "GET", f"/v1/passports/{passport_id}/feedback")
        return [FeedbackOut.model_validate(item) for item in r.json()]


class LearningService:
    """A `footfit serve` process on a SQLite database in `folder`, learning only when `learn` runs (no schedule),
    and the environment its commands run in."""

    def __init__(self, folder: Path, holdout_share: float = 0.0):
        self.folder = Path(folder)
        self.database_url = f"sqlite:///{(self.folder / 'footfit.sqlite').resolve()}"
        self.env = {**os.environ, "FOOTFIT_DATA_DIR": str(self.folder / "var"),
                    "FOOTFIT_DATABASE_URL": self.database_url,
                    "FOOTFIT_LEARNING__INTERVAL_HOURS": "0",  # the benchmark runs the job after each season
                    "FOOTFIT_LEARNING__AB_HOLDOUT_SHARE": str(holdout_share),
                    "OPENBLAS_NUM_THREADS": "1"}
        self.process: subprocess.Popen | None = None
        self.address: ServiceAddress | None = None

    def start(self) -> ServiceAddress:
        """Make the tenant, its store and keys on a new database, start the service and wait for it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = _tenant_with_keys(self.database_url)
        port = free_port()
        log = (self.folder / "serve.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
                                         str(port), "--log-level", "warning"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT)
        log.close()
        self.address = ServiceAddress(f"http://127.0.0.1:{port}", keys)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise ServiceError(f"footfit serve exited with {self.process.returncode}: "
                                   f"{(self.folder / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.address.base_url}/openapi.json", timeout=2).status_code == 200:
                    return self.address
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"footfit serve did not answer within {START_TIMEOUT_S:.0f} s: see "
                                   f"{self.folder / 'serve.log'}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def import_catalogue(self, products: Path, interiors: Path) -> int:
        """The generated product file and interior scans through the API: the operator's interiors, then the same
        file as the tenant's assortment, every size STOCK_PER_SIZE in the store. The number of sizes sold."""
        client = ShopClient(self.address)
        operator = self.address.keys.operator
        try:
            scans = [("interiors", (p.name, p.read_bytes(), "application/octet-stream"))
                     for p in sorted(interiors.iterdir())]
            client.call(operator, "POST", "/v1/catalog/interiors",
                        files=[("products", (products.name, products.read_bytes(), "text/csv")), *scans])
            client.call(operator, "POST", "/v1/catalog/import",
                        files={"products": (products.name, without_stock(products.read_text()), "text/csv")})
            skus = [row["sku"] for row in csv.DictReader(io.StringIO(products.read_text()))]
            client.call(operator, "PUT", f"/v1/stores/{STORE}/stock",
                        json={"items": [{"sku": sku, "quantity": STOCK_PER_SIZE} for sku in skus]})
        finally:
            client.close()
        return len(skus)

    def learn(self) -> LearnRun:
        """`footfit learn` in its own process, then the version in use as the service reports it."""
        done = subprocess.run([sys.executable, "-m", "cli.main", "learn"], env=self.env, capture_output=True,
                              text=True, timeout=3600)
        if done.returncode != 0:
            raise ServiceError(f"footfit learn failed ({done.returncode}): {done.stderr[-2000:]}")
        line = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
        parsed = _RUN_LINE.match(line)
        if parsed is None:
            raise ServiceError(f"footfit learn printed {done.stdout[:500]!r}: not a run's line (scope: outcome "
                               f"version (in use: version); ...): has its output changed?")
        return LearnRun(line, parsed["outcome"], parsed["in_use"])

    def wait_until_used(self, version: str, passport_id: str, model_id: int) -> float:
        """Wait until the service's answers come from `version` (a service process re-reads the version in use
        every api.learning.RELOAD_S); the seconds waited."""
        client, started = ShopClient(self.address), time.monotonic()
        try:
            while client.size(passport_id, model_id).learning_version != version:
                if time.monotonic() - started > ADOPTION_WAIT_S:
                    raise ServiceError(f"the service still answers without learned version {version} after "
                                       f"{ADOPTION_WAIT_S:.0f} s")
                time.sleep(1.0)
        finally:
            client.close()
        return time.monotonic() - started


def _tenant_with_keys(database_url: str) -> ServiceKeys:
    """The tenant, its store and its keys, as `footfit tenants create`, `stores add` and `keys create` make them."""
    engine = open_service_db(database_url)
    try:
        with Session(engine) as session:
            tenancy.create_tenant(session, TENANT, RETENTION_DAYS)
            tenancy.add_store(session, TENANT, STORE)
            _, kiosk = auth.create_key(session, TENANT, auth.parse_scopes(KIOSK_SCOPES), RETENTION_DAYS, store=STORE)
            _, webshop = auth.create_key(session, TENANT, auth.parse_scopes(WEBSHOP_SCOPES), RETENTION_DAYS)
            _, operator = auth.create_key(session, TENANT, frozenset({"catalog:write"}), RETENTION_DAYS,
                                          operator=True)
    finally:
        engine.dispose()
    return ServiceKeys(kiosk, webshop, operator)


@contextmanager
def learning_service(folder: Path, products: Path, interiors: Path, holdout_share: float = 0.0
                     ) -> Iterator[LearningService]:
    """A started service with the catalogue imported; stopped on leaving."""
    service = LearningService(folder, holdout_share)
    try:
        service.start()
        service.import_catalogue(products, interiors)
        yield service
    finally:
        service.stop()


# --- shoppers ---------------------------------------------------------------------------------------------------


class TrueCustomer:
    """A simulated customer's true feet and taste against the catalogue's true lasts (the simulator's truth, which
    only the shopper's behaviour and the benchmark's scoring read): the Fitting of any model."""

    def __init__(self, customer: Customer, catalogue: SyntheticCatalogue):
        self.subject = subject = subject_of(customer)
        self.customer, self.catalogue = customer, catalogue
        self.feet = {side: place_foot(getattr(subject, side), side) for side in SIDES}
        self.foot_length_mm = max(subject.left_dims.length_mm, subject.right_dims.length_mm)
        self.personal = preferences_of(customer)

    def fitting(self, model_code: str) -> Fitting:
        rows = [r for r in self.catalogue.rows if r["model_code"] == model_code]
        sizes = [SizeOption(r["sku"], r["width"], SIZE_SYSTEMS[r["size_system"]].foot_length_mm(float(r["size"])))
                 for r in rows]
        wants = preference(rows[0]["category"], rows[0]["level"], self.personal)

        def comfort(sku: str) -> PairComfort:
            return pair_comfort(self.feet, last_interior(true_last(self.catalogue, sku)), wants)

        return Fitting(sizes, comfort, self.foot_length_mm)



@dataclass(frozen=True)
class Said:
    """One event that says what became of a size (what the learner reads): a try kept or not (and where and which
    way it was wrong), a webshop purchase returned (and the reason given) or kept."""

    model_code: str
    sku: str
    source: str  # FEEDBACK_SOURCES
    kept: bool
    complaint_region: str | None = None
    complaint_direction: str | None = None
    return_reason: str | None = None  # core.vocabulary.RETURN_REASONS, or None: none given


@dataclass(frozen=True)
class Visit:
    """What one customer did in one season, all of it posted."""

    channel: str
    shown: tuple[str, ...]  # the model codes of the top three shown
    said: tuple[Said, ...]
    posted: int  # every event posted (tries, choices, purchases, returns, keeps)
    chosen_sku: str | None  # the size taken home (None: nothing fitted, or bought and returned)


def shop(client: ShopClient, passport_id: str, customer: Customer, channel: str,
         fitting_of: Callable[[str], Fitting], purchase_seed: int | list[int]) -> Visit:
    """The customer sees the top three of their category (in their gender or unisex) and behaves as
    simulator.shoppers says, every event posted with the advice it followed:
    - store (kiosk key): each of the three in its recommended size (`store_visit`: up to three tries, staff bring
      the next size or width fitting the way the customer says); of the models they would take, they choose the
      one that feels best, and buy it;
    - webshop (tenant key): one of the three, drawn from `purchase_seed`, bought in its recommended size and
      returned (with the reason given, or none) or kept (`webshop_purchase`, with the field's label noise).
    `fitting_of(model_code)` is the customer's true comfort of that model's sizes."""
    shown = client.recommendations(passport_id, channel, TOP, customer.category, customer.gender)
    if not shown:  # nothing of their category in their gender: they leave
        return Visit(channel, (), (), 0, None)
    posted = []
    if channel == STORE_CHANNEL:
        said, taken = [], []
        for r in shown:
            fitting = fitting_of(r.model_code)
            visit = store_visit(fitting, r.fit.sku)
            posted += tried_events(visit, r.fit)
            said += [Said(r.model_code, t.sku, channel, t.kept, *((t.complaint.region, t.complaint.direction)
                                                                  if t.complaint else (None, None)))
                     for t in visit.tries]
            if visit.chosen_sku is not None:
                taken.append((fitting.comfort(visit.chosen_sku).score, r, visit.chosen_sku))
        chosen = max(taken, key=lambda t: t[0], default=None)
        chosen_sku = None
        if chosen is not None:
            _, r, chosen_sku = chosen
            posted += [_event("chosen", chosen_sku, r.fit), _event("bought", chosen_sku, r.fit)]
    else:
        r = shown[int(np.random.default_rng(purchase_seed).integers(len(shown)))]
        purchase = webshop_purchase(fitting_of(r.model_code), r.fit.sku, purchase_seed)
        posted += webshop_events(purchase, r.fit)
        said = [Said(r.model_code, purchase.sku, channel, purchase.kept, return_reason=purchase.reason)]
        chosen_sku = purchase.sku if purchase.kept else None
    for event in posted:
        client.post(passport_id, channel, event)
    return Visit(channel, tuple(r.model_code for r in shown), tuple(said), len(posted), chosen_sku)


def tried_events(visit: StoreVisit, advice: ModelFitOut) -> list[FeedbackIn]:
    """Every try of a store visit: kept, or not with where and which way."""
    return [_event("tried", t.sku, advice, kept=t.kept,
                   complaint=FitComplaint(region=t.complaint.region, direction=t.complaint.direction)
                   if t.complaint else None) for t in visit.tries]


def webshop_events(purchase: WebshopPurchase, advice: ModelFitOut) -> list[FeedbackIn]:
    """The purchase, then its return with the reason given (none_given when none) or its keep past the return
    window."""
    after = (_event("kept", purchase.sku, advice) if purchase.kept else
             _event("returned", purchase.sku, advice, reason=purchase.reason or "none_given"))
    return [_event("bought", purchase.sku, advice), after]


def _event(event: str, sku: str, advice: ModelFitOut, **fields) -> FeedbackIn:
    """An event about `sku`, with the advice it followed (its size, learning version and A/B arm)."""
    return FeedbackIn(event=event, sku=sku, recommended_sku=advice.sku, learning_version=advice.learning_version,
                      advice_arm=advice.advice_arm, **fields)
