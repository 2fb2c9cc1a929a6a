"""The mailing filter: for many passports and a list of products, which products fit which customer.

One numba-parallel pass over passports x products; it is the kernel a scale-out job runs per chunk of
passports. It cannot afford foot points (700,000 passports x 500 products), so each passport is stored as a
compact descriptor of its deciding (longer) foot, `DESCRIPTOR_FIELDS` below, written by
`Matcher.mailing_descriptor` when the passport is matched: the tape measures, where the heel's and the ball's
centres and the longest toe lie across the foot (so the foot is placed in each size exactly as the matcher places
it), the heel's breadth at three places, the ball's width, the ball line's middle and angle, and the heel's shape signature: the line (offset, slope)
that maps the heel room predicted from the cavity's and the heel's breadths to the clearance the foot's heel points
find, fitted over the catalogue's sizes near the foot's length.

Per product (a shoe model; all its width fittings) and passport, the kernel does what the matcher does for the
deciding foot: per size run the size whose toe room is best from lengths alone, then a climb to the best-scoring
neighbour, with toe room, the ball's girth and width room and the instep's girth room computed by the same
formulas; only the heel comes from the signature instead of the foot's points. A product fits when its best size
scores at least the profiles' `fits_min_score` with no region tight (`ModelFit.fits`). docs/fit-model.md gives the
agreement with the matcher.

With a learned state (`LearnedMailing`) a product fits as the learned advice (fitcore.fit.advice.Advisor) decides
for one model: the kernel adds each size's learned correction less its category's shift to the same five readings
and takes the chance a new customer keeps the size when bought in the webshop (LearnedState.keep_probability:
fitcore.fit.keep_model's formulas); the product fits when the most likely kept of its geometry-best size and that
size's neighbours in its run is kept with at least `fits_keep_chance`. docs/learning.md gives the agreement with
the Advisor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import CatalogError
from core.jit import numba
from core.vocabulary import FEEDBACK_SOURCES, INSTEP_AT
from fitcore.fit.ball_line import girth_at
from fitcore.fit.catalogue import MatcherCatalogue
from fitcore.fit.fit_model import (
    BALL_CENTRE_AT,
    BALL_WIDTH_STATIONS,
    HEEL_CENTRE_AT,
    HEEL_SLICES,
    MAX_YAW_DEG,
)
from fitcore.fit.keep_model import keep_chance, measure_chances
from fitcore.fit.learning import LearnedState, SizeKeys, category_key
from fitcore.fit.profiles import MEASURES, FitProfiles

DESCRIPTOR_FIELDS = ("length_mm", "ball_girth_mm", "instep_girth_mm", "heel_offset_mm", "heel_slope",
                     "heel_centre_y_mm", "ball_centre_y_mm", "tip_y_mm",
                     *(f"heel_breadth_{round(100 * at)}_mm" for at in HEEL_SLICES), "ball_width_mm",
                     "ball_line_x_mm", "ball_line_y_mm", "ball_line_angle_rad")
_BREADTHS = 8  # first heel breadth in a descriptor
_BALL_WIDTH = _BREADTHS + len(HEEL_SLICES)
_BALL_LINE = _BALL_WIDTH + 1  # the ball line's middle (x, y) and angle (fitcore.fit.fit_model.FootShape)
TOE = MEASURES.index("toe")  # the readings come in the order of MEASURES
MAILING_SOURCE = "webshop"  # a mailing sells in the webshop: the keep chances carry its buyers' lapse
_MAX_SIN = float(np.sin(np.radians(MAX_YAW_DEG)))  # the placement's yaw is clamped to this


@dataclass(frozen=True)
class MailingProducts:
    """The products of a mailing as the kernel reads them: per product its size runs, per size what scoring needs."""

    model_ids: np.ndarray  # (products,) int64
    run_start: np.ndarray  # (products + 1,) product j owns runs run_start[j]:run_start[j+1]
    size_start: np.ndarray  # (runs + 1,) run r owns sizes size_start[r]:size_start[r+1], by length
    length_mm: np.ndarray  # (sizes,) float64
    centre_y_mm: np.ndarray  # (sizes, STATIONS) float64, the sections' centre line
    perimeter_mm: np.ndarray  # (sizes, STATIONS) float64
    breadth_mm: np.ndarray  # (sizes, STATIONS) float64, breadth at fitcore.fit.fit_model.HEEL_BREADTH_Z_MM
    ball_breadth_mm: np.ndarray  # (sizes, STATIONS) float64, fitcore.fit.fit_model.ball_breadths_mm
    ball_girth_mm: np.ndarray  # (sizes, STATIONS, angles) float64, fitcore.fit.ball_line.ball_girth_table
    profile: np.ndarray  # (sizes,) int64


@dataclass(frozen=True)
class LearnedMailing:
    """The learned decision for a mailing's products: per size of their MailingProducts, what the learned state adds
    to the kernel's readings (LearnedState.keep_terms) for a new customer (no preference, the prior's spread of
    them) buying in the webshop. Build it with `LearnedMailing.of`."""

    version: str  # the learned state's
    offset_mm: np.ndarray  # (sizes, MEASURES) float64: the learned correction less the category's shift
    t_lo: np.ndarray  # (sizes, MEASURES) float64: the keep model's thresholds, in the profile's units
    t_hi: np.ndarray
    slope: np.ndarray  # (sizes, MEASURES) float64: per unit, softened by how unsure the offset is
    band: np.ndarray  # (sizes, MEASURES) float64: -expm1(-slope (t_hi - t_lo)), P(good)'s factor that no reading moves
    lapse: float  # the webshop's: a buyer keeps a size that is not right
    fits_keep_chance: float  # a product fits when a size around its best is kept with at least this chance

    @classmethod
    def of(cls, state: LearnedState, catalogue: MatcherCatalogue, products: MailingProducts, profiles: FitProfiles,
           fits_keep_chance: float) -> LearnedMailing:
        """The decision with `state` for `products` (laid out from this catalogue by Matcher.mailing_products)."""
        terms = state.keep_terms(_size_keys(catalogue, products), profiles)
        return cls(state.version, terms.offset_mm, terms.t_lo, terms.t_hi, terms.slope,
                   -np.expm1(-terms.slope * (terms.t_hi - terms.t_lo)),
                   float(state.keep.lapse[FEEDBACK_SOURCES.index(MAILING_SOURCE)]), fits_keep_chance)


def _size_keys(catalogue: MatcherCatalogue, products: MailingProducts) -> SizeKeys:
    """What the learned state knows each of the products' sizes by, read from the catalogue's columns as
    fitcore.fit.advice.shoe_of reads one size's (advice imports the matcher, which imports this module)."""
    nominal = catalogue.nominal_foot_length_mm if len(catalogue.nominal_foot_length_mm) else catalogue.inner_length_mm
    width = catalogue.width if len(catalogue.width) else np.full(len(catalogue.size_ids), "standard", dtype=object)
    rows = []
    for model_id in products.model_ids:  # per model its runs by width fitting, each by nominal length (the matcher's)
        own = np.flatnonzero(catalogue.model_ids == model_id)
        rows.append(own[np.lexsort((nominal[own], width[own]))])
    rows = np.concatenate(rows)
    if len(rows) != len(products.length_mm) or not np.array_equal(catalogue.inner_length_mm[rows], products.length_mm):
        raise CatalogError("the mailing's products were laid out from another catalogue than this one: lay them out "
                           "with its matcher (Matcher.mailing_products)")
    models = catalogue.models
    r = models.rows(catalogue.model_ids[rows])
    return SizeKeys(models.brand[r].tolist(), models.code[r].tolist(), width[rows].tolist(),
                    [category_key(c, level) for c, level in zip(models.category[r], models.level[r])],
                    nominal[rows].astype(np.float64), products.profile)


@numba.njit(cache=True, inline="always")
def _at(row, u):
    """row (STATIONS,) interpolated at station coordinate u = x / length * STATIONS."""
    u = min(max(u - 0.5, 0.0), row.shape[0] - 1.0)
    k = min(int(u), row.shape[0] - 2)
    t = u - k
    return (1.0 - t) * row[k] + t * row[k + 1]


@numba.njit(cache=True, fastmath=True)
def _readings(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, max_sin):
    """The five readings (mm, MEASURES) of the foot with descriptor d in size s, placed as
    fitcore.fit.fit_model.poses does: toe room, the ball's and the instep's girth room / 2 pi, heel room (from
    the heel's signature) and the room across the ball, as the matcher reads them (fitcore.fit.advice.readings_mm)."""
    length = lengths[s]
    per_mm = centre_y.shape[1] / length  # station coordinate per mm
    foot = d[0]
    dy = _at(centre_y[s], HEEL_CENTRE_AT * foot * per_mm) - d[5]
    ball_x = BALL_CENTRE_AT * foot
    sin = (_at(centre_y[s], ball_x * per_mm) - dy - d[6]) / ball_x
    sin = min(max(sin, -max_sin), max_sin)
    cos = np.sqrt(1.0 - sin * sin)
    heel = 0.0
    for i in range(len(HEEL_SLICES)):
        heel += _at(breadth[s], cos * HEEL_SLICES[i] * foot * per_mm) - d[_BREADTHS + i]
    toe = length - (cos * foot - sin * d[7])
    # fitcore.fit.fit_model.ball_girth_room_mm: the girth round the placed foot's ball line
    line_x = cos * d[_BALL_LINE] - sin * d[_BALL_LINE + 1]
    line_y = sin * d[_BALL_LINE] + cos * d[_BALL_LINE + 1] + dy
    angle = d[_BALL_LINE + 2] + np.arcsin(sin)
    crossing = line_x + (line_y - _at(centre_y[s], line_x * per_mm)) * np.tan(angle)
    ball = (girth_at(ball_girth, s, crossing, length, angle) - d[1]) / (2 * np.pi)
    widest = -np.inf  # fitcore.fit.fit_model.ball_width_room_mm: the widest breadth near the sole over the forefoot
    for at in BALL_WIDTH_STATIONS:
        widest = max(widest, _at(ball_breadth[s], cos * at * foot * per_mm))
    return (toe, ball,
            (_at(perimeter[s], cos * INSTEP_AT * foot * per_mm) - d[2]) / (2 * np.pi),
            d[3] + d[4] * 0.5 * heel / len(HEEL_SLICES), widest - d[_BALL_WIDTH])


@numba.njit(cache=True, fastmath=True)
def _scored(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, profile, lo, ideal, unit, weight, tight_weight,
            max_sin):
    """(penalty, any region tight, the readings) of the foot with descriptor d in size s; the score is
    100 exp(-penalty / score_scale)."""
    readings = _readings(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, max_sin)
    p = profile[s]
    penalty, tight = 0.0, False
    for m in range(len(readings)):
        dev = (readings[m] - ideal[p, m]) / unit[p, m]
        penalty += weight[p, m] * dev * dev * (tight_weight if dev < 0 else 1.0)
        tight = tight or readings[m] < lo[p, m]
    return penalty, tight, readings


_UNREAD = (np.nan,) * len(MEASURES)  # the readings of a size past the end of its run


def _best_size(d, j, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, profile, lo, ideal,
               unit, weight, tight_weight, max_sin):
    """Product j's best size for the foot with descriptor d, found as the matcher finds it: (the size, its run's
    first size and end, its penalty, any region tight, its readings and those of the sizes one down and one up,
    which the search has read too)."""
    best, best_a, best_b, best_penalty, best_tight = -1, 0, 0, np.inf, True
    best_readings, best_down, best_up = _UNREAD, _UNREAD, _UNREAD
    for r in range(run_start[j], run_start[j + 1]):
        a, b = size_start[r], size_start[r + 1]
        guess, guess_penalty = a, np.inf  # the size whose toe room (length alone) is best
        for s in range(a, b):
            p = profile[s]
            dev = (lengths[s] - d[0] - ideal[p, TOE]) / unit[p, TOE]
            penalty = dev * dev * (tight_weight if dev < 0 else 1.0)
            if penalty < guess_penalty:
                guess, guess_penalty = s, penalty
            elif dev > 0:
                break  # sizes grow along the run: the toe room only gets worse from here
        cur = guess
        cur_penalty, cur_tight, cur_readings = _scored(d, cur, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth,
                                                       profile, lo, ideal, unit, weight, tight_weight, max_sin)
        came_from, came_readings = -1, _UNREAD  # the size we climbed from: already scored, and not better
        while True:  # climb to the better neighbour (the smaller on a tie); walk on across equal ones (a shell)
            nxt, nxt_penalty, nxt_tight, nxt_readings = cur, np.inf, cur_tight, cur_readings
            down = came_readings if came_from == cur - 1 else _UNREAD
            up = came_readings if came_from == cur + 1 else _UNREAD
            for s in (cur - 1, cur + 1):
                if a <= s < b and s != came_from:
                    pen, tg, readings = _scored(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, profile, lo,
                                                ideal, unit, weight, tight_weight, max_sin)
                    if s < cur:
                        down = readings
                    else:
                        up = readings
                    if pen < nxt_penalty:
                        nxt, nxt_penalty, nxt_tight, nxt_readings = s, pen, tg, readings
            if nxt == cur or nxt_penalty > cur_penalty:
                break
            came_from, came_readings = cur, cur_readings
            cur, cur_penalty, cur_tight, cur_readings = nxt, nxt_penalty, nxt_tight, nxt_readings
        if cur_penalty <= best_penalty:  # a later run wins a tie, as in the matcher
            best, best_a, best_b, best_penalty, best_tight = cur, a, b, cur_penalty, cur_tight
            best_readings, best_down, best_up = cur_readings, down, up
    return best, best_a, best_b, best_penalty, best_tight, best_readings, best_down, best_up


_best_size_jit = numba.njit(cache=True)(_best_size)


@numba.njit(cache=True, inline="always")
def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


@numba.njit(cache=True)
def _kept_enough(sizes, readings, profile, ideal, unit, offset, t_lo, t_hi, slope, band, lapse, fits_keep_chance):
    """Is one of `sizes` (size indices, -1: none), read as `readings`, kept with at least fits_keep_chance? A size
    is kept when every measure feels good (fitcore.fit.keep_model.measure_chances: P(good) = s(k (d - t_lo))
    s(k (t_hi - d)) band), or with the lapse (keep_chance). The product over the measures only falls, so a size is
    given up as soon as it falls short (the decision is the same)."""
    for i in range(len(sizes)):
        s = sizes[i]
        if s < 0:
            continue
        p = profile[s]
        good = 1.0
        for m in range(len(MEASURES)):
            dev = (readings[i][m] + offset[s, m] - ideal[p, m]) / unit[p, m]
            k = slope[s, m]
            good *= _logistic(k * (dev - t_lo[s, m])) * _logistic(k * (t_hi[s, m] - dev)) * band[s, m]
            if lapse + (1.0 - lapse) * good < fits_keep_chance:
                break
        if lapse + (1.0 - lapse) * good >= fits_keep_chance:
            return True
    return False


@dataclass(frozen=True)
class MailingOutcomes:
    """Per passport and product what the filter found: does the product fit, and its best size by geometry with that
    size's score. The fit index (fitcore.fit.fit_index) keeps these."""

    fits: np.ndarray  # (passports, products) bool: the decision (by geometry, or with a learned state)
    size: np.ndarray  # (passports, products) uint8: the best size by geometry, its place among the product's sizes
    score: np.ndarray  # (passports, products) uint8: that size's score, 0-100 (the matcher's, rounded)


NO_SIZE = 255  # MailingOutcomes.size of a product without sizes; a product has at most NO_SIZE sizes


@numba.njit(cache=True, parallel=True)
def _outcomes(descriptors, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth,
              profile, lo, ideal, unit, weight, tight_weight, max_sin, max_penalty, by_keep_chance, offset, t_lo,
              t_hi, slope, band, lapse, fits_keep_chance, score_scale):
    n, m = descriptors.shape[0], run_start.shape[0] - 1
    fits = np.zeros((n, m), dtype=np.bool_)
    size = np.full((n, m), NO_SIZE, dtype=np.uint8)
    score = np.zeros((n, m), dtype=np.uint8)
    for i in numba.prange(n):
        d = descriptors[i].astype(np.float64)
        for j in range(m):
            best, a, b, penalty, tight, at, down, up = _best_size_jit(
                d, j, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth, ball_girth, profile,
                lo, ideal, unit, weight, tight_weight, max_sin)
            if best < 0:
                continue
            size[i, j] = best - size_start[run_start[j]]
            score[i, j] = np.uint8(round(100.0 * np.exp(-penalty / score_scale)))
            if by_keep_chance:
                sizes = (best, best - 1 if best > a else -1, best + 1 if best + 1 < b else -1)
                fits[i, j] = _kept_enough(sizes, (at, down, up), profile, ideal, unit, offset, t_lo, t_hi, slope,
                                          band, lapse, fits_keep_chance)
            else:
                fits[i, j] = penalty <= max_penalty and not tight
    return fits, size, score


def mailing_outcomes(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles,
                     learned: LearnedMailing | None = None) -> MailingOutcomes:
    """Which products fit which passport (descriptors (n, DESCRIPTOR_FIELDS)), by geometry, or with `learned` by
    the chance a size around the best is kept; and each product's best size by geometry with its score."""
    descriptors = _checked(descriptors)
    _check_sizes(products)
    return MailingOutcomes(*_outcomes(descriptors, *_kernel_args(products, profiles),
                                      *_decision_args(products, profiles, learned), profiles.score_scale))


def mailing_filter(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles,
                   learned: LearnedMailing | None = None) -> np.ndarray:
    """(passports, products) bool: `mailing_outcomes`' decisions."""
    return mailing_outcomes(descriptors, products, profiles, learned).fits


def mailing_outcomes_reference(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles,
                               learned: LearnedMailing | None = None) -> MailingOutcomes:
    """`mailing_outcomes` one pair at a time, for the tests: the search is the same source run by Python (calling
    the compiled scoring), the keep chances are numpy's (fitcore.fit.keep_model, as LearnedState.keep_probability
    computes them)."""
    descriptors = _checked(descriptors)
    args = _kernel_args(products, profiles)
    if learned is not None:
        _check_covers(learned, products)
    shape = (len(descriptors), len(products.model_ids))
    out = MailingOutcomes(np.zeros(shape, dtype=bool), np.full(shape, NO_SIZE, dtype=np.uint8),
                          np.zeros(shape, dtype=np.uint8))
    for i, d in enumerate(descriptors.astype(np.float64)):
        for j in range(len(products.model_ids)):
            best, a, b, penalty, tight = _best_size(d, j, *args)[:5]
            if best < 0:
                continue
            out.size[i, j] = best - products.size_start[products.run_start[j]]
            out.score[i, j] = round(100.0 * np.exp(-penalty / profiles.score_scale))
            if learned is None:
                out.fits[i, j] = penalty <= _max_penalty(profiles) and not tight
                continue
            around = np.arange(max(best - 1, a), min(best + 2, b))
            readings = np.array([_readings(d, s, products.length_mm, products.centre_y_mm, products.perimeter_mm,
                                           products.breadth_mm, products.ball_breadth_mm, products.ball_girth_mm,
                                           _MAX_SIN) for s in around])
            q = products.profile[around]
            chances = measure_chances((readings + learned.offset_mm[around] - profiles.ideal[q]) / profiles.unit[q],
                                      learned.t_lo[around], learned.t_hi[around], learned.slope[around])
            out.fits[i, j] = keep_chance(chances, learned.lapse).max() >= learned.fits_keep_chance
    return out


def mailing_filter_reference(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles,
                             learned: LearnedMailing | None = None) -> np.ndarray:
    """`mailing_filter`'s reference: `mailing_outcomes_reference`' decisions."""
    return mailing_outcomes_reference(descriptors, products, profiles, learned).fits


def _check_sizes(products: MailingProducts) -> None:
    """A size's place among its product's sizes is kept in a byte."""
    per_product = np.diff(products.size_start[products.run_start])
    if len(per_product) and per_product.max() >= NO_SIZE:
        j = int(np.argmax(per_product))
        raise CatalogError(f"model {int(products.model_ids[j])} has {int(per_product[j])} sizes, more than the "
                           f"{NO_SIZE - 1} the mailing filter counts: split it into models by width fitting")


def _kernel_args(products: MailingProducts, profiles: FitProfiles) -> tuple:
    """What the search reads: the products' sizes and the profiles."""
    return (products.run_start, products.size_start, products.length_mm, products.centre_y_mm,
            products.perimeter_mm, products.breadth_mm, products.ball_breadth_mm, products.ball_girth_mm, products.profile, profiles.lo,
            profiles.ideal, profiles.unit, profiles.weight, profiles.tight_weight, _MAX_SIN)


def _decision_args(products: MailingProducts, profiles: FitProfiles, learned: LearnedMailing | None) -> tuple:
    """What decides whether the best size fits: the penalty of the lowest fitting score, or the learned terms
    (empty without learning)."""
    if learned is None:
        none = np.zeros((0, len(MEASURES)))
        return _max_penalty(profiles), False, none, none, none, none, none, 0.0, 1.0
    _check_covers(learned, products)
    return (_max_penalty(profiles), True, learned.offset_mm, learned.t_lo, learned.t_hi, learned.slope, learned.band,
            learned.lapse, learned.fits_keep_chance)


def _check_covers(learned: LearnedMailing, products: MailingProducts) -> None:
    """The kernel reads the learned terms by the products' size index, unchecked: they must be these products'."""
    if learned.offset_mm.shape != (len(products.length_mm), len(MEASURES)):
        raise CatalogError(f"the learned mailing terms cover {learned.offset_mm.shape[0]} sizes, the products "
                           f"{len(products.length_mm)}: build them for these products (LearnedMailing.of)")


def _max_penalty(profiles: FitProfiles) -> float:
    """The penalty of the lowest score that fits (fits_min_score)."""
    return float(-profiles.score_scale * np.log(profiles.fits_min_score / 100.0))


def _checked(descriptors: np.ndarray) -> np.ndarray:
    d = np.ascontiguousarray(descriptors, dtype=np.float32)
    if d.ndim != 2 or d.shape[1] != len(DESCRIPTOR_FIELDS):
        raise CatalogError(f"mailing descriptors have shape {d.shape}: need (passports, {len(DESCRIPTOR_FIELDS)}) "
                           f"with {', '.join(DESCRIPTOR_FIELDS)} (Matcher.mailing_descriptor)")
    if not np.isfinite(d).all():
        bad = int(np.flatnonzero(~np.isfinite(d).all(axis=1))[0])
        raise CatalogError(f"mailing descriptor row {bad} has NaN or infinite values: recompute it from its "
                           f"passport (Matcher.mailing_descriptor) or leave the passport out")
    return d
