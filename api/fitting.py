"""The matcher behind the fit routes: the whole catalogue in memory, built once per process on first use and
dropped after a catalogue import or stock change (the next request rebuilds it).

Per passport version and catalogue (small LRU caches): the matcher's ScannedFeet (with the points a try-on
drawing shows), the search of every model
(`Matcher.search`, the costly part of any fit answer), and each answer given. The search of a passport is
prepared in the background as soon as the passport is stored (`prepare`), so the first recommendation asked
for a new scan only filters and ranks; a webshop asking the same question again gets the kept answer."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np
from fastapi import Request
from sqlalchemy import Engine

from api.models import PassportRecord
from api.passport_upload import points_from_blob
from api.tryon_view import thinned
from core.errors import FootfitError
from fitcore.fit.matcher import FitSearch, Matcher, ScannedFeet
from fitcore.scan.passport import Passport
from shoe_db.loading import load_matcher_catalogue

log = logging.getLogger(__name__)
T = TypeVar("T")
FEET_CACHE_SIZE = 256
SEARCH_CACHE_SIZE = 256  # ~50 kB each for a catalogue of 6,000 sizes
ANSWER_CACHE_SIZE = 1024


class Searched(NamedTuple):
    matcher: Matcher
    feet: ScannedFeet
    search: FitSearch


class Fitting:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._matcher = None
        self._feet: OrderedDict = OrderedDict()
        self._drawn: OrderedDict = OrderedDict()
        self._searches: OrderedDict = OrderedDict()
        self._answers: OrderedDict = OrderedDict()
        self._generation = 0  # counts catalogue changes: what was kept before one is not found after it
        self._lock = threading.Lock()
        self._preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fit-prepare")

    def matcher(self) -> Matcher:
        with self._lock:
            if self._matcher is None:
                self._matcher = Matcher(load_matcher_catalogue(self.engine))
            return self._matcher

    def invalidate(self) -> None:
        """The catalogue or its stock changed."""
        with self._lock:
            self._matcher = None
            self._generation += 1
            self._searches.clear()
            self._answers.clear()

    def close(self) -> None:
        self._preparing.shutdown(wait=False, cancel_futures=True)

    def feet(self, record: PassportRecord) -> ScannedFeet:
        return self._kept(self._feet, FEET_CACHE_SIZE, (record.id, record.updated_at), lambda: ScannedFeet.from_arrays(
            Passport.model_validate_json(record.passport_json), points_from_blob(record.left_points),
            points_from_blob(record.right_points)))

    def drawn_points(self, record: PassportRecord) -> dict[str, np.ndarray]:
        """The points of this passport version's feet that a try-on drawing shows (api.tryon_view.thinned)."""
        return self._kept(self._drawn, FEET_CACHE_SIZE, (record.id, record.updated_at),
                          lambda: thinned(self.feet(record)))

    def searched(self, record: PassportRecord) -> "Searched":
        """The matcher with this passport version's feet and its search of every model (made once per catalogue:
        the search belongs to the matcher that made it)."""
        generation, matcher = self._generation, self.matcher()

        def search() -> Searched:
            feet = self.feet(record)
            return Searched(matcher, feet, matcher.search(feet))

        return self._kept(self._searches, SEARCH_CACHE_SIZE, (record.id, record.updated_at, generation), search)

    def answer(self, record: PassportRecord, request: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """compute() for this passport version and request, or the answer kept from last time; True if computed."""
        return self._kept_or_computed(self._answers, ANSWER_CACHE_SIZE,
                                      (record.id, record.updated_at, self._generation, request), compute)

    def prepare(self, record: PassportRecord) -> None:
        """Search for a newly stored passport in the background, before anyone asks."""
        self._preparing.submit(self._prepare, record)

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
        """The value kept under `key`, or compute() kept there (the oldest dropped beyond `size`); True if
        computed. Two threads may compute the same value at once: both are right, the later one is kept."""
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key], False
        value = compute()
        with self._lock:
            cache[key] = value
            while len(cache) > size:
                cache.popitem(last=False)
        return value, True


async def fitting(request: Request) -> Fitting:  # async: FastAPI runs it without a worker thread
    return request.app.state.fitting
