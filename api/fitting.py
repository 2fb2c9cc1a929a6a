"""The matcher behind the fit routes: the whole catalogue in memory, built once per process on first use and
dropped after a catalogue import or stock change (the next request rebuilds it). Passports become the matcher's
ScannedFeet once per passport version, and a recommendation is computed once per passport version, request and
catalogue (small LRU caches), so a webshop asking again for the same customer skips that work."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from fastapi import Request
from sqlalchemy import Engine

from fitcore.matcher import Matcher, ScannedFeet
from fitcore.passport import Passport
from api.models import PassportRecord
from api.passport_upload import points_from_blob

T = TypeVar("T")
FEET_CACHE_SIZE = 256
ANSWER_CACHE_SIZE = 1024


class Fitting:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._matcher = None
        self._feet: OrderedDict = OrderedDict()
        self._answers: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def matcher(self) -> Matcher:
        with self._lock:
            if self._matcher is None:
                self._matcher = Matcher.from_engine(self.engine)
            return self._matcher

    def invalidate(self) -> None:
        """The catalogue or its stock changed."""
        with self._lock:
            self._matcher = None
            self._answers.clear()

    def feet(self, record: PassportRecord) -> ScannedFeet:
        key = (record.id, record.updated_at)
        with self._lock:
            if key in self._feet:
                self._feet.move_to_end(key)
                return self._feet[key]
        feet = ScannedFeet.from_arrays(Passport.model_validate_json(record.passport_json),
                                       points_from_blob(record.left_points), points_from_blob(record.right_points))
        with self._lock:
            self._feet[key] = feet
            while len(self._feet) > FEET_CACHE_SIZE:
                self._feet.popitem(last=False)
        return feet


    def answer(self, record: PassportRecord, request: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """compute() for this passport version and request, or the answer kept from last time; True if computed."""
        key = (record.id, record.updated_at, request)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key], False
        result = compute()
        with self._lock:
            self._answers[key] = result
            while len(self._answers) > ANSWER_CACHE_SIZE:
                self._answers.popitem(last=False)
        return result, True


def fitting(request: Request) -> Fitting:
    return request.app.state.fitting
