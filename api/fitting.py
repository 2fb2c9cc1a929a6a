"""The matcher behind the fit routes, and what the service keeps in memory per process to answer fast.

The matcher holds the whole catalogue in memory, built once per process on first use. Per passport version (small
LRU caches): the matcher's ScannedFeet (with the points a try-on drawing shows), the search of every model
(`Matcher.search`, the costly part of any fit answer), and each answer given. The search of a passport is
prepared in the background as soon as the passport is stored (`prepare`), so the first recommendation asked
for a new scan only filters and ranks; a webshop asking the same question again gets the kept answer.

What a change drops, and no more: the shoes are shared by all tenants, stock belongs to a store and so to one
tenant. Every answer begins with `sync`, which compares the data versions in the database (shoe_db/versions.py)
with those this process last read, so a catalogue import or a stock update made through any process, or the CLI,
is seen by all. When the catalogue's version moved, the catalogue is read again; if its shoes are unchanged, the matcher takes the new stock, every search stays, and only the answers filtered on a
store whose stock moved go (tenant A's stock update leaves tenant B's answers); if shoes changed, everything
built on them goes. An erased passport is forgotten (`forget`): its points, search and answers go, and nothing
still being computed with it is kept.

A passport's answers are its tenant's: the search is made by the shared matcher, and answered by that matcher
`selling` the tenant's assortment (what it sells, its SKUs and prices), loaded once per tenant beside the shared
catalogue. An import of a tenant's assortment drops that assortment and that tenant's kept answers."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, is_dataclass
from typing import NamedTuple, TypeVar
from weakref import WeakSet

import numpy as np
from fastapi import Request
from sqlalchemy import Connection, Engine, select

from api.models import AssortmentItem, PassportRecord
from api.passport_upload import points_from_blob
from api.tryon_view import thinned
from core.errors import FootfitError
from fitcore.fit.catalogue import Assortment, MatcherCatalogue
from fitcore.fit.matcher import FitSearch, Matcher, MatchFilters, ScannedFeet
from fitcore.scan.passport import Passport
from shoe_db import versions
from shoe_db.loading import load_matcher_catalogue

log = logging.getLogger(__name__)
T = TypeVar("T")
ANSWERS_PER_PASSPORT = 4  # answers kept: this many per passport kept
FORGOTTEN_SIZE = 4096  # erased passports remembered: far more than can be computing at once
NO_STOCK = np.zeros(0, dtype=np.int64)


class Searched(NamedTuple):
    matcher: Matcher
    feet: ScannedFeet
    search: FitSearch


class Fitting:
    def __init__(self, engine: Engine, passports_in_memory: int = 256):
        """`passports_in_memory`: the most recently used passports whose feet and searches are kept (setting
        service.passports_in_memory): the bound of this process's memory beside the matcher."""
        self.engine, self.passports_in_memory = engine, passports_in_memory
        self._matcher: Matcher | None = None
        self._feet: OrderedDict = OrderedDict()
        self._drawn: OrderedDict = OrderedDict()
        self._searches: OrderedDict = OrderedDict()
        self._answers: OrderedDict = OrderedDict()
        self._assortments: dict[int, tuple[MatcherCatalogue, Assortment]] = {}  # tenant id -> its, over a catalogue
        self._versions: dict[str, int] = {}  # the data versions the copies below were last brought to
        self._changes = 0  # catalogue and stock changes: a value computed across one is not kept
        self._forgotten: OrderedDict[str, None] = OrderedDict()  # erased passports: nothing of them is kept again
        self._lock = threading.Lock()  # the caches and the two above
        self._loading = threading.Lock()  # one read of the catalogue at a time
        self._preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fit-prepare")
        _RUNNING.add(self)

    def matcher(self) -> Matcher:
        with self._loading:
            if self._matcher is None:
                self._matcher = Matcher(load_matcher_catalogue(self.engine))
            return self._matcher

    def sync(self, conn: Connection, tenant_id: int | None = None) -> None:
        """Bring this process's copies to the database's data versions (shoe_db/versions.py) before answering: the
        catalogue and every store's stock, and the tenant's assortment. A change made by any process (or the CLI)
        is answered from by every process from its next request on; an unchanged version costs one small query, on
        the caller's connection (a request holds one connection, not two)."""
        names = [versions.CATALOGUE] + ([versions.assortment(tenant_id)] if tenant_id is not None else [])
        counted = versions.read(conn, names)
        with self._lock:
            moved = {name for name, version in counted.items() if self._versions.get(name) != version}
        if tenant_id is not None and versions.assortment(tenant_id) in moved:
            self._drop_assortment(tenant_id)
        if versions.CATALOGUE in moved:
            self._reload_catalogue()
        with self._lock:
            self._versions.update(counted)

    def _drop_assortment(self, tenant_id: int) -> None:
        """The tenant's assortment changed: it and the tenant's kept answers go."""
        with self._lock:
            self._changes += 1
            self._assortments.pop(tenant_id, None)
            for key in [k for k in self._answers if k[3] == tenant_id]:
                del self._answers[key]

    def _reload_catalogue(self) -> None:
        """The catalogue or some store's stock changed: read it again and drop what depended on the change."""
        with self._loading:
            if self._matcher is None:
                return
            now = load_matcher_catalogue(self.engine)
            with self._lock:
                self._changes += 1
                if same_shoes(self._matcher.catalogue, now):
                    restocked = restock(self._matcher.catalogue.stock, now.stock)
                    for key in [k for k in self._answers if stock_read_by(k[2]) in restocked]:
                        del self._answers[key]
                else:
                    self._matcher = None
                    self._searches.clear()
                    self._answers.clear()
                    self._assortments.clear()

    def forget(self, passport_ids: Collection[str]) -> None:
        """Erased passports: drop their points, searches and answers, and keep nothing computed for them later (a
        request or a preparation may still be computing with a record read before the erasure)."""
        passport_ids = set(passport_ids)
        with self._lock:
            for passport_id in passport_ids:
                self._forgotten[passport_id] = None
            while len(self._forgotten) > FORGOTTEN_SIZE:
                self._forgotten.popitem(last=False)
            for cache in (self._feet, self._drawn, self._searches, self._answers):
                for key in [k for k in cache if k[0] in passport_ids]:
                    del cache[key]

    def close(self) -> None:
        self._preparing.shutdown(wait=False, cancel_futures=True)

    def feet(self, record: PassportRecord) -> ScannedFeet:
        return self._kept(self._feet, self.passports_in_memory, (record.id, record.updated_at),
                          lambda: scanned_feet(record))

    def drawn_points(self, record: PassportRecord) -> dict[str, np.ndarray]:
        """The points of this passport version's feet that a try-on drawing shows (api.tryon_view.thinned)."""
        return self._kept(self._drawn, self.passports_in_memory, (record.id, record.updated_at),
                          lambda: thinned(self.feet(record)))

    def searched(self, record: PassportRecord) -> "Searched":
        """The matcher of the passport's tenant with this passport version's feet and its search of every model
        (made once per catalogue: the search belongs to the matcher that made it)."""

        def search() -> Searched:
            matcher, feet = self.matcher(), self.feet(record)
            return Searched(matcher, feet, matcher.search(feet))

        kept = self._kept(self._searches, self.passports_in_memory, (record.id, record.updated_at), search)
        return kept._replace(matcher=self._selling(kept.matcher, record.tenant_id))

    def _selling(self, matcher: Matcher, tenant_id: int) -> Matcher:
        """`matcher` as the tenant's: selling its assortment, loaded once per tenant and catalogue."""
        with self._lock:
            catalogue, sold = self._assortments.get(tenant_id, (None, None))
            changes = self._changes
        if catalogue is not matcher.catalogue:
            sold = load_assortment(self.engine, tenant_id, matcher.catalogue.size_ids)
            with self._lock:
                if self._changes == changes:
                    self._assortments[tenant_id] = (matcher.catalogue, sold)
        return matcher.selling(sold)

    def answer(self, record: PassportRecord, request: tuple, compute: Callable[[], T]) -> tuple[T, bool]:
        """compute() for this passport version and request, or the answer kept from last time; True if computed.
        A MatchFilters with a store in `request` makes the answer depend on that store's stock."""
        key = (record.id, record.updated_at, request, record.tenant_id)
        return self._kept_or_computed(self._answers, ANSWERS_PER_PASSPORT * self.passports_in_memory, key, compute)

    def prepare(self, record: PassportRecord) -> None:
        """Search for a newly stored passport in the background, before anyone asks. The background works on a copy
        read now, while the caller's session is open (the record's session may close before the search starts)."""
        self._preparing.submit(self._prepare, PassportRecord(**record.model_dump()))

    def _prepare(self, record: PassportRecord) -> None:
        try:
            self.searched(record)
        except FootfitError as e:  # the request that needs it will get the error itself
            log.info("passport %s not prepared for fitting: %s", record.id, e)
        except Exception:  # a background thread: nobody else would hear of it
            log.exception("preparing passport %s for fitting failed", record.id)

    def _kept(self, cache: OrderedDict, size: int, key: Hashable, compute: Callable[[], T]) -> T:
        return self._kept_or_computed(cache, size, key, compute)[0]

    def _kept_or_computed(self, cache: OrderedDict, size: int, key: Hashable,
                          compute: Callable[[], T]) -> tuple[T, bool]:
        """The value kept under `key` (its passport id first), or compute() kept there (the oldest dropped beyond
        `size`); True if computed. Two threads may compute the same value at once: both are right, the later one is
        kept. A value is not kept when the catalogue or stock changed while it was computed, or its passport has
        been erased."""
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key], False
            changes = self._changes
        value = compute()
        with self._lock:
            if self._changes == changes and key[0] not in self._forgotten:
                cache[key] = value
                while len(cache) > size:
                    cache.popitem(last=False)
        return value, True


_RUNNING: WeakSet[Fitting] = WeakSet()


def forget(passport_ids: Collection[str]) -> None:
    """Erased passports leave every Fitting of this process (api/repository calls it where it erases them)."""
    for running in list(_RUNNING):
        running.forget(passport_ids)


def load_assortment(engine: Engine, tenant_id: int, size_ids: np.ndarray) -> Assortment:
    """The tenant's assortment over a catalogue's rows (their size ids). Read for the fit service's cache, outside
    any request and its Repository, so the query names the tenant itself."""
    item = AssortmentItem.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(item.c.size_id, item.c.sku, item.c.price_cents, item.c.currency)
                            .where(item.c.tenant_id == tenant_id)).all()
    sold, skus, cents, currencies = zip(*rows) if rows else ((), (), (), ())
    return Assortment.aligned(size_ids, sold, skus, np.array(cents) / 100.0, currencies)


def same_shoes(kept: MatcherCatalogue, now: MatcherCatalogue) -> bool:
    """Whether two reads of the catalogue hold the same shoes (sizes, interiors, models), whatever their stock."""
    if is_dataclass(kept):
        return all(same_shoes(getattr(kept, f.name), getattr(now, f.name)) for f in fields(kept) if f.name != "stock")
    return np.array_equal(kept, now) or (kept.dtype.kind == "f" and np.array_equal(kept, now, equal_nan=True))


def restock(stock: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> set[str]:
    """Bring a matcher's stock to `now` in place, one store at a time (requests may be reading it, and kept
    searches hold the matcher); the codes of the stores whose stock changed."""
    changed = {code for code in stock.keys() | now.keys()
               if not np.array_equal(stock.get(code, NO_STOCK), now.get(code, NO_STOCK))}
    for code in changed:
        if code in now:
            stock[code] = now[code]
        else:
            del stock[code]
    return changed


def stock_read_by(request: tuple) -> str | None:
    """The store whose stock an answer depends on: the store of the MatchFilters it was asked with, if any."""
    return next((part.store for part in request if isinstance(part, MatchFilters)), None)


async def fitting(request: Request) -> Fitting:  # async: FastAPI runs it without a worker thread
    return request.app.state.fitting


def scanned_feet(record: PassportRecord) -> ScannedFeet:
    """The matcher's view of a stored passport, read anew (Fitting.feet keeps the webshop's; a job reads each
    passport once)."""
    return feet_of(record.passport_json, record.left_points, record.right_points)


def feet_of(passport_json: str, left_points: bytes, right_points: bytes) -> ScannedFeet:
    """The matcher's view of a passport as stored: its JSON and both feet's points (a batch worker reads it so)."""
    return ScannedFeet.from_arrays(Passport.model_validate_json(passport_json), points_from_blob(left_points),
                                   points_from_blob(right_points))
