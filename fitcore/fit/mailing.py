"""The mailing filter: for many passports and a list of products, which products fit which customer.

One numba-parallel pass over passports x products; it is the kernel a scale-out job runs per chunk of
passports. It cannot afford foot points (700,000 passports x 500 products), so each passport is stored as a
compact descriptor of its deciding (longer) foot, `DESCRIPTOR_FIELDS` below, written by
`Matcher.mailing_descriptor` when the passport is matched: the tape measures, where the heel's and the ball's
centres and the longest toe lie across the foot (so the foot is placed in each size exactly as the matcher places
it), the heel's breadth at three places, the ball's width, and the heel's shape signature: the line (offset, slope)
that maps the heel room predicted from the cavity's and the heel's breadths to the clearance the foot's heel points
find, fitted over the catalogue's sizes near the foot's length.

Per product (a shoe model; all its width fittings) and passport, the kernel does what the matcher does for the
deciding foot: per size run the size whose toe room is best from lengths alone, then a climb to the best-scoring
neighbour, with toe room, the ball's girth and width room and the instep's girth room computed by the same
formulas; only the heel comes from the signature instead of the foot's points. A product fits when its best size
scores at least the profiles' `fits_min_score` with no region tight (`ModelFit.fits`). docs/fit-model.md gives the
agreement with the matcher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import CatalogError
from core.jit import numba
from core.vocabulary import INSTEP_AT
from fitcore.fit.fit_model import (
    BALL_CENTRE_AT,
    BALL_WIDTH_STATIONS,
    FOREFOOT_STATIONS,
    HEEL_CENTRE_AT,
    HEEL_SLICES,
    MAX_YAW_DEG,
)
from fitcore.fit.profiles import FitProfiles

DESCRIPTOR_FIELDS = ("length_mm", "ball_girth_mm", "instep_girth_mm", "heel_offset_mm", "heel_slope",
                     "heel_centre_y_mm", "ball_centre_y_mm", "tip_y_mm",
                     *(f"heel_breadth_{round(100 * at)}_mm" for at in HEEL_SLICES), "ball_width_mm")
_BREADTHS = 8  # first heel breadth in a descriptor
_BALL_WIDTH = _BREADTHS + len(HEEL_SLICES)
TOE, BALL, INSTEP, HEEL, BALL_WIDTH = range(5)  # fitcore.fit.profiles.MEASURES


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
    profile: np.ndarray  # (sizes,) int64


@numba.njit(cache=True, inline="always")
def _at(row, u):
    """row (STATIONS,) interpolated at station coordinate u = x / length * STATIONS."""
    u = min(max(u - 0.5, 0.0), row.shape[0] - 1.0)
    k = min(int(u), row.shape[0] - 2)
    t = u - k
    return (1.0 - t) * row[k] + t * row[k + 1]


@numba.njit(cache=True, inline="always")
def _region_penalty(value, p, r, lo, ideal, unit, weight, tight_weight):
    dev = (value - ideal[p, r]) / unit[p, r]
    return weight[p, r] * dev * dev * (tight_weight if dev < 0 else 1.0), value < lo[p, r]


@numba.njit(cache=True, fastmath=True)
def _size_penalty(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, profile, lo, ideal, unit, weight,
                  tight_weight, max_sin):
    """(penalty, any region tight) of the foot with descriptor d in size s, placed as fitcore.fit.fit_model.poses does;
    the score is 100 exp(-penalty / score_scale)."""
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
    p = profile[s]
    toe, t0 = _region_penalty(length - (cos * foot - sin * d[7]), p, TOE, lo, ideal, unit, weight, tight_weight)
    forefoot = 0.0  # fitcore.fit.fit_model.forefoot_room_mm: the girth room over the vamp and the ball
    for at in FOREFOOT_STATIONS:
        girth = d[2] + (d[1] - d[2]) * min(max((at - INSTEP_AT) / (BALL_CENTRE_AT - INSTEP_AT), 0.0), 1.0)
        forefoot += _at(perimeter[s], cos * at * foot * per_mm) - girth
    ball, t1 = _region_penalty(forefoot / (len(FOREFOOT_STATIONS) * 2 * np.pi), p, BALL, lo, ideal, unit, weight,
                               tight_weight)
    instep, t2 = _region_penalty((_at(perimeter[s], cos * INSTEP_AT * foot * per_mm) - d[2]) / (2 * np.pi), p,
                                 INSTEP, lo, ideal, unit, weight, tight_weight)
    heel, t3 = _region_penalty(d[3] + d[4] * 0.5 * heel / len(HEEL_SLICES), p, HEEL, lo, ideal, unit, weight,
                               tight_weight)
    widest = -np.inf  # fitcore.fit.fit_model.ball_width_room_mm: the widest breadth near the sole over the forefoot
    for at in BALL_WIDTH_STATIONS:
        widest = max(widest, _at(ball_breadth[s], cos * at * foot * per_mm))
    width, t4 = _region_penalty(widest - d[_BALL_WIDTH], p, BALL_WIDTH, lo, ideal, unit, weight, tight_weight)
    return toe + ball + instep + heel + width, t0 or t1 or t2 or t3 or t4


def _fits_one(d, j, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth, profile, lo, ideal,
              unit, weight, tight_weight, max_penalty, max_sin):
    """Does product j fit the foot with descriptor d (its best size's penalty <= max_penalty, nothing tight)?"""
    best_penalty = np.inf
    best_tight = True
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
        cur_penalty, cur_tight = _size_penalty(d, cur, lengths, centre_y, perimeter, breadth, ball_breadth, profile,
                                               lo, ideal, unit, weight, tight_weight, max_sin)
        came_from = -1  # the size we climbed from: already scored, and not better
        while True:  # climb to the better neighbour (the smaller on a tie); walk on across equal ones (a shell)
            nxt, nxt_penalty, nxt_tight = cur, np.inf, cur_tight
            for s in (cur - 1, cur + 1):
                if a <= s < b and s != came_from:
                    pen, tg = _size_penalty(d, s, lengths, centre_y, perimeter, breadth, ball_breadth, profile, lo,
                                            ideal, unit, weight, tight_weight, max_sin)
                    if pen < nxt_penalty:
                        nxt, nxt_penalty, nxt_tight = s, pen, tg
            if nxt == cur or nxt_penalty > cur_penalty:
                break
            came_from, cur, cur_penalty, cur_tight = cur, nxt, nxt_penalty, nxt_tight
        if cur_penalty <= best_penalty:
            best_penalty, best_tight = cur_penalty, cur_tight
    return best_penalty <= max_penalty and not best_tight


_fits_one_jit = numba.njit(cache=True)(_fits_one)


@numba.njit(cache=True, parallel=True)
def _fits_matrix(descriptors, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth, profile,
                 lo, ideal, unit, weight, tight_weight, max_penalty, max_sin):
    n, m = descriptors.shape[0], run_start.shape[0] - 1
    out = np.zeros((n, m), dtype=np.bool_)
    for i in numba.prange(n):
        d = descriptors[i].astype(np.float64)
        for j in range(m):
            out[i, j] = _fits_one_jit(d, j, run_start, size_start, lengths, centre_y, perimeter, breadth, ball_breadth,
                                      profile, lo, ideal, unit, weight, tight_weight, max_penalty, max_sin)
    return out


def mailing_filter(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles) -> np.ndarray:
    """(passports, products) bool: which products fit which passport (descriptors (n, DESCRIPTOR_FIELDS))."""
    descriptors = _checked(descriptors)
    return _fits_matrix(descriptors, *_kernel_args(products, profiles))


def mailing_filter_reference(descriptors: np.ndarray, products: MailingProducts, profiles: FitProfiles) -> np.ndarray:
    """`mailing_filter` without numba's parallel pass: the same decision per pair, one at a time (for the tests;
    the scoring helpers are compiled, the loop over pairs is plain Python)."""
    descriptors = _checked(descriptors)
    args = _kernel_args(products, profiles)
    out = np.zeros((len(descriptors), len(products.model_ids)), dtype=bool)
    for i, d in enumerate(descriptors.astype(np.float64)):
        for j in range(len(products.model_ids)):
            out[i, j] = _fits_one(d, j, *args)
    return out


def _kernel_args(products: MailingProducts, profiles: FitProfiles) -> tuple:
    return (products.run_start, products.size_start, products.length_mm, products.centre_y_mm,
            products.perimeter_mm, products.breadth_mm, products.ball_breadth_mm, products.profile, profiles.lo,
            profiles.ideal, profiles.unit, profiles.weight, profiles.tight_weight,
            -profiles.score_scale * np.log(profiles.fits_min_score / 100.0),  # the penalty of the lowest fitting score
            float(np.sin(np.radians(MAX_YAW_DEG))))


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
