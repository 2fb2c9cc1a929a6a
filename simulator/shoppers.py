"""How simulated customers shop (issue 14, "Behaviour that produces feedback"): in a store they try sizes that
staff bring, in a webshop they buy a size and return it or not, and some come back in a later season.

Pure decision logic over the customer's true comfort of a size (a `pair_comfort(sku) -> PairComfort` callable:
both true feet in the size's true interior, simulator/comfort.py) and the model's sizes; no HTTP and nothing of
the product. Driving the service's API with these events is the benchmark's. Each event says what the product
may hear (the size, kept or not, the complaint or the return's reason); a webshop purchase also carries the
benchmark's truth (`right`), which is never sent. docs/fit-quality.md states the rules and the noise rates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core.errors import SimulatorError
from core.sizes import WIDTH_FITTINGS
from core.vocabulary import FIT_DIRECTIONS, RETURN_REASONS
from simulator.comfort import KEPT_MARGIN, Complaint, PairComfort, kept
from simulator.customers import Customer

SAME_COST = 1e-9  # sizes whose cost differs less than this feel the same (a ski boot's whole and half size: one shell)
MAX_STORE_TRIES = 3
# Complaints that staff answer with another width fitting of the same size, when the model has one that way;
# every other complaint (toes, heel), and these where there is none, with the next size that way.
WIDTH_REGIONS = ("ball", "instep")
# Field noise of webshop labels (assumptions; docs/fit-quality.md says why each):
NO_REASON_SHARE = 0.20  # returns that give no reason
KEPT_ANYWAY_SHARE = 0.05  # purchases that are not right but are kept all the same (returning is a chore)
WIDTH_REASON_FLIP_SHARE = 0.15  # returns for a width complaint that tick the other box (no box says "narrow")
RETURNING_SHARE = 0.35  # chance that a customer shops again in each season after their first
_SEASON_STREAM = 4  # simulator.customers keeps streams 2 and 3 of a customer's seed


@dataclass(frozen=True)
class SizeOption:
    """One size of a model, as staff find it on the shelf."""

    sku: str
    width: str  # one of core.sizes.WIDTH_FITTINGS
    nominal_mm: float  # the nominal foot length of its label: orders the sizes of one width


class Fitting:
    """One customer and one model: the customer's true comfort of each size, asked once per size, their best
    size of the model (the lowest cost over its sizes and width fittings) and whether they keep a size
    (simulator.comfort.kept)."""

    def __init__(self, sizes: Sequence[SizeOption], pair_comfort: Callable[[str], PairComfort],
                 foot_length_mm: float):
        if not sizes:
            raise SimulatorError("a model without sizes cannot be tried: give the model's size run")
        unknown = {s.width for s in sizes} - set(WIDTH_FITTINGS)
        if unknown:
            raise SimulatorError(f"width fitting {sorted(unknown)} unknown: use {', '.join(WIDTH_FITTINGS)}")
        self._pair_comfort = pair_comfort
        self._foot_length_mm = foot_length_mm
        self._by_sku = {s.sku: s for s in sizes}
        self._runs = {w: sorted((s for s in sizes if s.width == w), key=lambda s: s.nominal_mm)
                      for w in sorted({s.width for s in sizes}, key=WIDTH_FITTINGS.index)}
        self._tried: dict[str, PairComfort] = {}

    def comfort(self, sku: str) -> PairComfort:
        if sku not in self._by_sku:
            raise SimulatorError(f"size {sku!r} is not one of this model's: try one of its run")
        if sku not in self._tried:
            self._tried[sku] = self._pair_comfort(sku)
        return self._tried[sku]

    @property
    def tried(self) -> dict[str, PairComfort]:
        """Every size whose comfort was asked for so far."""
        return dict(self._tried)

    @cached_property
    def best_cost(self) -> float:
        """The cost of the customer's best size of the model: the lowest pair cost over all its sizes and width
        fittings, whether or not that size pinches (issue 14's rule, literally). Each width's run is walked from the
        size made for the foot's length, each way while the cost falls: the cost has one dip along a run; equal
        cost, as in a ski boot's shared shell, walks on."""
        for run in self._runs.values():
            start = int(np.argmin([abs(s.nominal_mm - self._foot_length_mm) for s in run]))
            self._walk(run, start, -1)
            self._walk(run, start, 1)
        return min(c.cost for c in self._tried.values())

    def _walk(self, run: list[SizeOption], start: int, step: int) -> None:
        """Try sizes from `start` one way (step -1: smaller, +1: larger) until the cost rises: the lowest cost
        cannot lie further."""
        previous, k = self.comfort(run[start].sku), start + step
        while 0 <= k < len(run):
            here = self.comfort(run[k].sku)
            if here.cost > previous.cost + SAME_COST:
                return
            previous, k = here, k + step

    @cached_property
    def kept_skus(self) -> frozenset[str]:
        """Every size of the model the customer keeps: each width's walk goes on outward while the cost stays within
        KEPT_MARGIN of the best (the cost only rises further out), so no kept size is left untried."""
        best = self.best_cost
        for run in self._runs.values():
            tried = [k for k, size in enumerate(run) if size.sku in self._tried]
            for k, step in ((min(tried), -1), (max(tried), 1)):
                while 0 <= k + step < len(run) and self.comfort(run[k].sku).cost <= best + KEPT_MARGIN:
                    k += step
                    self.comfort(run[k].sku)
        return frozenset(sku for sku, pair in self._tried.items() if kept(pair, best))

    def kept(self, sku: str) -> bool:
        return kept(self.comfort(sku), self.best_cost)

    def next_size(self, sku: str, complaint: Complaint) -> str | None:
        """The size staff bring after this complaint: the next width fitting that way for a ball or instep
        complaint when the model has it, else the next size that way (tight: larger, loose: smaller) that feels
        different (staff do not bring the same shell again); None at the end of the run."""
        size, wider = self._by_sku[sku], complaint.direction == FIT_DIRECTIONS[0]
        if complaint.region in WIDTH_REGIONS:
            widths = list(self._runs)
            k = widths.index(size.width) + (1 if wider else -1)
            if 0 <= k < len(widths):
                same_length = [s for s in self._runs[widths[k]] if abs(s.nominal_mm - size.nominal_mm) < 1e-6]
                if same_length:
                    return same_length[0].sku
        run = self._runs[size.width]
        step = 1 if wider else -1
        k = run.index(size) + step
        while 0 <= k < len(run):
            if abs(self.comfort(run[k].sku).cost - self.comfort(sku).cost) > SAME_COST:
                return run[k].sku
            k += step
        return None


@dataclass(frozen=True)
class Try:
    """One size tried in a store: kept, or what the customer said about it."""

    sku: str
    kept: bool
    complaint: Complaint | None  # None when kept


@dataclass(frozen=True)
class StoreVisit:
    """A customer trying one model in a store: every try, in order, and the size they took (None: none fitted)."""

    tries: tuple[Try, ...]
    chosen_sku: str | None


def store_visit(fitting: Fitting, recommended_sku: str) -> StoreVisit:
    """The customer tries the recommended size; while they do not keep it, they say where and which way and staff
    bring the next size or width fitting that way (Fitting.next_size), up to MAX_STORE_TRIES tries. A size already
    tried is not brought again: the visit ends without a choice (neither size fits)."""
    tries: list[Try] = []
    sku: str | None = recommended_sku
    while sku is not None and len(tries) < MAX_STORE_TRIES and sku not in {t.sku for t in tries}:
        if fitting.kept(sku):
            tries.append(Try(sku, True, None))
            return StoreVisit(tuple(tries), sku)
        complaint = fitting.comfort(sku).complaint
        tries.append(Try(sku, False, complaint))
        sku = fitting.next_size(sku, complaint)
    return StoreVisit(tuple(tries), None)


@dataclass(frozen=True)
class WebshopPurchase:
    """A size bought online: kept or sent back, with the reason the return form got."""

    sku: str
    kept: bool  # what the customer did
    reason: str | None  # a return's reason (core.vocabulary.RETURN_REASONS); None when kept or when none was given
    right: bool  # the benchmark's truth, never sent: the size passes the kept rule (a kept size may not)


def webshop_purchase(fitting: Fitting, sku: str, seed: int | Sequence[int]) -> WebshopPurchase:
    """The customer buys this size and returns it if they would not keep it, with the field's label noise
    (NO_REASON_SHARE, KEPT_ANYWAY_SHARE, WIDTH_REASON_FLIP_SHARE) drawn from `seed` (e.g. the customer's seed,
    the model's index and the season: the same purchase gives the same labels)."""
    keep_anyway, flip, silent = np.random.default_rng(seed).random(3)
    right = fitting.kept(sku)
    if right or keep_anyway < KEPT_ANYWAY_SHARE:
        return WebshopPurchase(sku, True, None, right)
    complaint = fitting.comfort(sku).complaint
    too_small = complaint.direction == FIT_DIRECTIONS[0]
    if complaint.region in WIDTH_REGIONS and flip < WIDTH_REASON_FLIP_SHARE:
        too_small = not too_small
    reason = None if silent < NO_REASON_SHARE else RETURN_REASONS[0 if too_small else 1]
    return WebshopPurchase(sku, False, reason, right)


def returns_in_season(customer: Customer, season: int) -> bool:
    """Whether the customer shops again `season` seasons after their first visit (season 0), with the same feet
    and preferences: RETURNING_SHARE of customers each season, drawn from their seed."""
    if season < 1:
        raise SimulatorError(f"season {season}: season 0 is the customer's first visit; ask about seasons 1 and on")
    return bool(np.random.default_rng([customer.seed, _SEASON_STREAM, season]).random() < RETURNING_SHARE)
