"""How a foot fits one size: placement, region values, score and verdicts (docs/fit-model.md).

A foot enters the shoe frame as it is (left) or mirrored in y (right). It is placed as a foot sits in a shoe:
the pternion against the heel counter (x shift 0), the heel's centre on the cavity's centre line at the heel,
and turned about the pternion (yaw, at most MAX_YAW_DEG) so the ball's centre lies on the cavity's centre line
at the ball. The placement is solved in closed form from the cavity's section centres (no search), so every
size of every model is placed the same way at no cost.

Its surface points fall into regions (toe, ball, instep, heel, or none: arch side, leg). Region values: toe =
free length in front of the longest toe (inner length - placed tip); ball, instep = girth room as a mean
clearance, (cavity girth - the foot's tape girth) / 2 pi (a scan does not see what faces down), the ball's round
the foot's own oblique ball line (the cavity's section in the vertical plane through the placed foot's two ball
points, fitcore.fit.ball_line), the instep's square to the axis at INSTEP_AT; heel = mean
signed clearance of the heel's points (pressing points count negative_weight times). The ball is judged by its
width as well: the interior's widest breadth near the sole over the forefoot minus the foot's ball width (a
girth that fits can still be too narrow a sole for a wide, flat forefoot). Each value is compared with
the model's profile (fitcore.fit.profiles): verdict tight / good / roomy, and a penalty ((value - ideal) /
unit)^2 x weight, times tight_weight below the ideal; score = 100 exp(-sum / score_scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import MeasurementError
from core.vocabulary import INSTEP_AT, REGIONS, VERDICTS
from fitcore.fit.ball_line import ball_girth_table, girth_at_reference
from fitcore.fit.clearance import (
    N_REGIONS,
    OUTSIDE,
    outline_measures,
    placed_clearance_mm,
    summarise_pairs,
    summarise_pairs_reference,
    summarise_pairs_serial,
)
from fitcore.fit.pair_measures import FOOT_FIELDS, pair_measures, pair_measures_serial
from fitcore.fit.profiles import MEASURES, FitProfiles
from fitcore.scan.footframe import medial_sign
from fitcore.scan.measure import ball_points

MAX_YAW_DEG = 4.0
EVAL_POINTS = {"heel": 64, "toe": 48, "ball": 64}  # per foot: the evaluation sample; heel first: it scores
# Regions in the foot frame: fractions of the foot length along x, heights in mm.
TOE_FROM = 0.85
BALL_BAND = (0.62, 0.80)
BALL_MIN_Z_MM = 12.0  # a scan sees the sides from ~10 mm up: below, coverage would bias the mean
INSTEP_BAND = (0.42, 0.58)
INSTEP_FROM_HEIGHT = 0.5  # of the instep height: the dorsum and the upper sides
HEEL_BAND = (0.0, 0.22)
HEEL_Z_MM = (12.0, 35.0)
HEEL_SLICES = (0.03, 0.06, 0.09)  # where the heel breadth profile is taken (mailing descriptor): scans see it
HEEL_SLICE_HALF = 0.015
HEEL_SLICE_MIN_POINTS = 10  # a slice with fewer takes the nearest seen slice's breadth
HEEL_BREADTH_Z_MM = 23.5  # the cavity's heel breadth is read at this height (middle of HEEL_Z_MM)
BALL_CENTRE_AT = 0.71
# The ball's width: the interior's breadth at these heights above the insole (the widest of them) at these
# fractions of the foot length (the forefoot, vamp to toes' roots), against the passport's ball width.
BALL_WIDTH_HEIGHTS_MM = (6.0, 10.0, 14.0, 18.0)
BALL_WIDTH_STATIONS = tuple(round(0.55 + 0.025 * i, 3) for i in range(11))
HEEL_CENTRE_AT = 0.10
LEG_BEFORE = 0.4  # behind this fraction of the length, points above the cavity's cap are the leg
LEG_ABOVE_INSTEP_MM = 10.0  # and anywhere, points this far above the instep's top
MIN_POINTS = 500
PARALLEL_FROM_PAIRS = 64  # fewer (foot, size) pairs run on one thread
_BALL, _WIDTH = REGIONS.index("ball"), MEASURES.index("ball_width")
# the pair-measures kernel's geometry (fitcore.fit.pair_measures): heel, ball and instep fractions, the yaw limit
_PLACEMENT = np.array([HEEL_CENTRE_AT, BALL_CENTRE_AT, INSTEP_AT, np.sin(np.radians(MAX_YAW_DEG))])
_WIDTH_AT = np.array(BALL_WIDTH_STATIONS)


@dataclass(frozen=True)
class FootShape:
    """A foot ready for the matcher: points in the shoe-side frame (a right foot mirrored), regions, keys."""

    side: str
    length_mm: float
    points_mm: np.ndarray  # (N, 3) float64, all surface points
    eval_points_mm: np.ndarray  # (M, 3) float64, the stratified evaluation sample
    eval_regions: np.ndarray  # (M,) int64 region code
    scoring_points: int  # the first this many evaluation points (the heel's) are all a score needs
    tip_y_mm: float  # across position of the foremost point
    instep_height_mm: float
    ball_girth_mm: float  # the passport's tape girths
    instep_girth_mm: float
    ball_width_mm: float  # the passport's ball width
    ball_line_x_mm: float  # the middle of the ball line (between the two ball points), along the foot
    ball_line_y_mm: float  # ... and across it
    ball_line_angle_rad: float  # the ball line's angle off square to the foot's axis (medial point ahead: > 0)
    heel_breadths_mm: np.ndarray  # (len(HEEL_SLICES),) breadth of the heel's sides at those fractions of the length
    heel_centre_y_mm: float
    ball_centre_y_mm: float


def prepare_foot(points_mm: np.ndarray, side: str, length_mm: float, instep_height_mm: float,
                 ball_girth_mm: float, instep_girth_mm: float, ball_width_mm: float) -> FootShape:
    """The foot's points (foot frame, mm) put into the shoe-side frame and sampled per region.

    Raises MeasurementError for points that are not a finite (N, 3) array of at least MIN_POINTS.
    """
    points = np.asarray(points_mm, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < MIN_POINTS:
        raise MeasurementError(f"the {side} foot's points have shape {points.shape}: need at least {MIN_POINTS} "
                               f"points (N, 3) in the foot frame, mm; scan again")
    if not np.isfinite(points).all():
        raise MeasurementError(f"the {side} foot's points contain NaN or infinite values: the point file is "
                               f"damaged; scan again or re-export it")
    medial_ball, lateral_ball = ball_points(points, length_mm, medial_sign(side))
    points = points * np.array([1.0, medial_sign(side) * medial_sign("left"), 1.0])  # right: y -> -y
    regions = region_codes(points, length_mm, instep_height_mm)
    chosen = _stratified(regions)
    front = points[points[:, 0] >= points[:, 0].max() - 2.0]
    return FootShape(
        side=side, length_mm=float(length_mm), points_mm=points,
        eval_points_mm=np.ascontiguousarray(points[chosen]), eval_regions=regions[chosen].astype(np.int64),
        scoring_points=int((regions[chosen] == REGIONS.index("heel")).sum()),
        tip_y_mm=float(np.median(front[:, 1])), instep_height_mm=float(instep_height_mm),
        ball_girth_mm=float(ball_girth_mm), instep_girth_mm=float(instep_girth_mm),
        ball_width_mm=float(ball_width_mm),
        ball_line_x_mm=float(0.5 * (medial_ball[0] + lateral_ball[0])),
        ball_line_y_mm=float(0.5 * (medial_ball[1] + lateral_ball[1]) * medial_sign(side) * medial_sign("left")),
        ball_line_angle_rad=float(np.arctan2(medial_ball[0] - lateral_ball[0], abs(medial_ball[1] - lateral_ball[1]))),
        heel_breadths_mm=_heel_breadths(points, length_mm),
        heel_centre_y_mm=_mid_y(points[regions == REGIONS.index("heel")]),
        ball_centre_y_mm=_mid_y(points[regions == REGIONS.index("ball")]))


def region_codes(points_mm: np.ndarray, length_mm: float, instep_height_mm: float) -> np.ndarray:
    """Region code per point (index into REGIONS, OUTSIDE for none), from its place on the foot."""
    u = points_mm[:, 0] / length_mm
    z = points_mm[:, 2]
    codes = np.full(len(points_mm), OUTSIDE, dtype=np.int64)
    codes[(u >= HEEL_BAND[0]) & (u < HEEL_BAND[1]) & (z >= HEEL_Z_MM[0]) & (z < HEEL_Z_MM[1])] = REGIONS.index("heel")
    codes[(u >= INSTEP_BAND[0]) & (u < INSTEP_BAND[1])
          & (z >= INSTEP_FROM_HEIGHT * instep_height_mm)] = REGIONS.index("instep")
    codes[(u >= BALL_BAND[0]) & (u < BALL_BAND[1]) & (z >= BALL_MIN_Z_MM)] = REGIONS.index("ball")
    codes[u >= TOE_FROM] = REGIONS.index("toe")
    return codes


def _stratified(regions: np.ndarray) -> np.ndarray:
    """Indices of an even, deterministic sample of each region's points (all of them when fewer)."""
    chosen = []
    for name, count in EVAL_POINTS.items():  # the instep is judged by girth (instep_room_mm)
        members = np.flatnonzero(regions == REGIONS.index(name))
        if len(members) == 0:
            raise MeasurementError(f"the foot has no surface points in its {name} region: the scan misses part "
                                   f"of the foot; scan again")
        chosen.append(members[np.linspace(0, len(members) - 1, min(count, len(members))).round().astype(int)])
    return np.concatenate(chosen)


def _heel_breadths(points: np.ndarray, length_mm: float) -> np.ndarray:
    """Breadth of the heel's sides (HEEL_Z_MM) in slices at HEEL_SLICES of the length (the mailing's heel shape).

    A light scan often sees the heel's sides near the back only (the stripes thin out toward the arch): a slice
    with too few points takes the breadth of the nearest slice that has them (the sides run nearly parallel over
    these few mm); only a heel seen in no slice is refused."""
    band = points[(points[:, 2] >= HEEL_Z_MM[0]) & (points[:, 2] < HEEL_Z_MM[1])]
    out = np.full(len(HEEL_SLICES), np.nan)
    for i, at in enumerate(HEEL_SLICES):
        y = band[np.abs(band[:, 0] - at * length_mm) <= HEEL_SLICE_HALF * length_mm, 1]
        if len(y) >= HEEL_SLICE_MIN_POINTS:
            out[i] = np.percentile(y, 99) - np.percentile(y, 1)
    seen = np.flatnonzero(np.isfinite(out))
    if len(seen) == 0:
        raise MeasurementError(f"the foot has too few surface points at the heel's sides (12-35 mm up, "
                               f"{HEEL_SLICES[0]:.0%}-{HEEL_SLICES[-1]:.0%} of the length): the scan misses the heel; "
                               f"scan again")
    nearest = seen[np.abs(np.asarray(HEEL_SLICES)[:, None] - np.asarray(HEEL_SLICES)[seen]).argmin(axis=1)]
    return out[nearest]


def _mid_y(points: np.ndarray) -> float:
    return float(0.5 * (np.percentile(points[:, 1], 1) + np.percentile(points[:, 1], 99)))


# --- placement --------------------------------------------------------------------------------------------


def poses(foot: FootShape, centre_y_mm: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """(P, 4) cos, sin, dx, dy placing the foot in each of P sizes, from their sections' centre lines
    (centre_y_mm (P, STATIONS): column 0 of the sections)."""
    lengths = np.asarray(lengths_mm, dtype=np.float64)
    heel_x = np.full(len(lengths), HEEL_CENTRE_AT * foot.length_mm)
    ball_x = BALL_CENTRE_AT * foot.length_mm
    dy = _along(centre_y_mm, heel_x, lengths) - foot.heel_centre_y_mm
    sin = (_along(centre_y_mm, np.full(len(lengths), ball_x), lengths) - dy - foot.ball_centre_y_mm) / ball_x
    sin = np.clip(sin, -np.sin(np.radians(MAX_YAW_DEG)), np.sin(np.radians(MAX_YAW_DEG)))
    return np.stack([np.sqrt(1 - sin ** 2), sin, np.zeros_like(sin), dy], axis=1)


def toe_room_mm(foot: FootShape, pose: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """Free length in front of the longest toe: the inner length minus the placed tip's x."""
    tip_x = pose[..., 0] * foot.length_mm - pose[..., 1] * foot.tip_y_mm + pose[..., 2]
    return np.asarray(lengths_mm, dtype=np.float64) - tip_x


def heel_room_from_breadths_mm(pose: np.ndarray, breadths: np.ndarray, lengths_mm: np.ndarray, foot_length_mm: float,
                               foot_breadths_mm: np.ndarray) -> np.ndarray:
    """(P,) mean half-difference of the cavity's and the heel's breadths at HEEL_SLICES: the heel room that
    breadths alone predict (the mailing filter's heel, scaled and offset per foot to its points' clearance)."""
    out = np.zeros(len(pose))
    for at, foot_breadth in zip(HEEL_SLICES, foot_breadths_mm):
        out += _along(breadths, pose[:, 0] * at * foot_length_mm + pose[:, 2], lengths_mm) - foot_breadth
    return 0.5 * out / len(HEEL_SLICES)


def _along(rows: np.ndarray, x_mm: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """Per-station values (P, STATIONS) interpolated at x (P,) or (P, S) along each size's length."""
    k_count = rows.shape[1]
    x_mm = np.asarray(x_mm, dtype=np.float64)
    per_pair = (-1,) + (1,) * (x_mm.ndim - 1)
    u = np.clip(x_mm / np.asarray(lengths_mm, dtype=np.float64).reshape(per_pair) * k_count - 0.5, 0.0, k_count - 1.0)
    k = np.minimum(u.astype(np.int64), k_count - 2)
    t = u - k
    flat = k + (np.arange(len(k)) * k_count).reshape(per_pair)  # flat indices: a take is cheaper than rows[i, k]
    return (1 - t) * np.take(rows, flat) + t * np.take(rows, flat + 1)


def girth_room_mm(pose: np.ndarray, perimeters: np.ndarray, lengths_mm: np.ndarray, foot_x_mm: float,
                  foot_girth_mm: float) -> np.ndarray:
    """(cavity girth - foot girth) / 2 pi at foot_x_mm (a mean clearance, mm), per size (perimeters (P, STATIONS)).

    Ball and instep are judged by girth: a scan does not see the sole and the lowest sides, so a mean over the
    points seen would read the room above them only; the passport's tape girths close the section under the
    foot as a tape does, and an upper takes the dorsum's shape where the cavity's section is rounder.
    """
    return (_along(perimeters, pose[:, 0] * foot_x_mm + pose[:, 2], lengths_mm) - foot_girth_mm) / (2 * np.pi)


def ball_girth_room_mm(foot: FootShape, pose: np.ndarray, tables: "SizeTables", sizes: np.ndarray) -> np.ndarray:
    """(P,) the ball's girth room as a mean clearance: (the cavity's girth round the placed foot's ball line - the
    foot's ball girth) / 2 pi, the line moved by each pose, read where it crosses the sections' centre line
    (fitcore.fit.ball_line's table)."""
    x_mm = pose[:, 0] * foot.ball_line_x_mm - pose[:, 1] * foot.ball_line_y_mm + pose[:, 2]
    y_mm = pose[:, 1] * foot.ball_line_x_mm + pose[:, 0] * foot.ball_line_y_mm + pose[:, 3]
    angle = foot.ball_line_angle_rad + np.arcsin(pose[:, 1])
    lengths = tables.lengths_mm[sizes]
    # the table's planes pass through the sections' centres: this one crosses the centre line there
    crossing = x_mm + (y_mm - _along(tables.centre_y_mm[sizes], x_mm, lengths)) * np.tan(angle)
    return (girth_at_reference(tables.ball_girths_mm, sizes, crossing, lengths, angle)
            - foot.ball_girth_mm) / (2 * np.pi)


def ball_breadths_mm(sections: np.ndarray) -> np.ndarray:
    """(n, STATIONS) per size and station: the outline's widest breadth over BALL_WIDTH_HEIGHTS_MM (near the
    sole, where a forefoot is widest)."""
    return np.max([outline_measures(sections, z)[1] for z in BALL_WIDTH_HEIGHTS_MM], axis=0)


def ball_width_room_mm(pose: np.ndarray, ball_breadths: np.ndarray, lengths_mm: np.ndarray, foot_length_mm: float,
                       foot_ball_width_mm: float) -> np.ndarray:
    """(P,) the interior's widest breadth near the sole over the placed forefoot (BALL_WIDTH_STATIONS) minus the
    foot's ball width: the room across the ball (both sides together, mm)."""
    x_mm = pose[:, :1] * (np.asarray(BALL_WIDTH_STATIONS) * foot_length_mm) + pose[:, 2:3]
    return _along(ball_breadths, x_mm, lengths_mm).max(axis=1) - foot_ball_width_mm


# --- region values and score -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairValues:
    """Region values of P (foot, size) pairs: value (toe room or mean clearance) and mean pressure, mm."""

    value_mm: np.ndarray  # (P, N_REGIONS)
    pressure_mm: np.ndarray  # (P, N_REGIONS), <= 0
    ball_width_mm: np.ndarray  # (P,) room across the ball (ball_width_room_mm)


@dataclass(frozen=True)
class SizeTables:
    """What scoring reads of every size, computed once from the sections (a matcher keeps one for its catalogue)."""

    sections: np.ndarray  # (n, STATIONS, ROW) float32, fitcore.fit.sections
    lengths_mm: np.ndarray  # (n,) float64 inner lengths
    centre_y_mm: np.ndarray  # (n, STATIONS) float64: the sections' centre line across the shoe
    perimeters_mm: np.ndarray  # (n, STATIONS) the outlines' girths
    heel_breadths_mm: np.ndarray  # (n, STATIONS) breadth at HEEL_BREADTH_Z_MM (the mailing filter's heel)
    ball_breadths_mm: np.ndarray  # (n, STATIONS) ball_breadths_mm
    ball_girths_mm: np.ndarray  # (n, STATIONS, len(BALL_LINE_ANGLES_DEG)) the girth round a ball line there

    @classmethod
    def of(cls, sections: np.ndarray, lengths_mm: np.ndarray, ball_girths_mm: np.ndarray | None = None
           ) -> "SizeTables":
        """The tables of these sizes; the ball-line girths as given (stored with the interiors), else computed."""
        sections = np.ascontiguousarray(sections)
        lengths = np.asarray(lengths_mm, dtype=np.float64)
        perimeters, heel_breadths = outline_measures(sections, HEEL_BREADTH_Z_MM)
        girths = ball_girth_table(sections, lengths) if ball_girths_mm is None else \
            np.ascontiguousarray(ball_girths_mm, dtype=np.float64)
        return cls(sections, lengths, np.ascontiguousarray(sections[:, :, 0], dtype=np.float64), perimeters,
                   heel_breadths, ball_breadths_mm(sections), girths)


def evaluate_pairs(feet: list[FootShape], foot_of_pair: np.ndarray, size_of_pair: np.ndarray, tables: SizeTables,
                   negative_weight: float, scoring_only: bool = False, plain: bool = False) -> PairValues:
    """Region values of each (feet[foot_of_pair[p]], size size_of_pair[p]) pair (two numba passes); a point
    pressing the shoe out (negative clearance) counts `negative_weight` times in its region's mean.
    `scoring_only`: only the points a score needs (the toe's and the ball's pressure are then 0); `plain`: the
    numpy references of both kernels instead (the tests and the benchmark's plain way)."""
    foot_of_pair = np.asarray(foot_of_pair, dtype=np.int64)
    size_of_pair = np.asarray(size_of_pair, dtype=np.int64)
    few = len(foot_of_pair) < PARALLEL_FROM_PAIRS
    measure = pair_measures_reference if plain else _pair_measures
    pose, measures = measure(feet, foot_of_pair, size_of_pair, tables)
    used = [foot.scoring_points if scoring_only else len(foot.eval_points_mm) for foot in feet]
    points = np.concatenate([foot.eval_points_mm[:n] for foot, n in zip(feet, used)])
    regions = np.concatenate([foot.eval_regions[:n] for foot, n in zip(feet, used)])
    start = np.concatenate([[0], np.cumsum(used)]).astype(np.int64)
    kernel = summarise_pairs_reference if plain else summarise_pairs_serial if few else summarise_pairs
    stats = kernel(points, regions, start, foot_of_pair, size_of_pair, pose, tables.sections, tables.lengths_mm)
    count = np.maximum(stats[:, :, 1], 1.0)
    pressure = stats[:, :, 2] / count
    value = stats[:, :, 0] / count + (negative_weight - 1.0) * pressure
    value[:, REGIONS.index("toe")] = measures[:, 0]
    value[:, REGIONS.index("ball")] = measures[:, 1]
    value[:, REGIONS.index("instep")] = measures[:, 2]
    return PairValues(value, pressure, measures[:, 3])


def _pair_measures(feet: list[FootShape], foot_of_pair: np.ndarray, size_of_pair: np.ndarray,
                   tables: SizeTables) -> tuple[np.ndarray, np.ndarray]:
    """fitcore.fit.pair_measures' kernel on these feet (parallel from PARALLEL_FROM_PAIRS pairs)."""
    rows = np.array([[getattr(f, name) for name in FOOT_FIELDS] for f in feet])
    run = pair_measures_serial if len(foot_of_pair) < PARALLEL_FROM_PAIRS else pair_measures
    return run(rows, foot_of_pair, size_of_pair, tables.centre_y_mm, tables.perimeters_mm, tables.ball_breadths_mm,
               tables.ball_girths_mm, tables.lengths_mm, _PLACEMENT, _WIDTH_AT)


def pair_measures_reference(feet: list[FootShape], foot_of_pair: np.ndarray, size_of_pair: np.ndarray,
                            tables: SizeTables) -> tuple[np.ndarray, np.ndarray]:
    """(poses (P, 4), measures (P, 4): toe room, ball and instep girth room, room across the ball) in plain
    numpy, foot by foot: the formulas above, and the reference of fitcore.fit.pair_measures."""
    pose = np.empty((len(foot_of_pair), 4))
    measures = np.empty((len(foot_of_pair), 4))
    for f, foot in enumerate(feet):
        rows = np.flatnonzero(foot_of_pair == f)
        sizes = size_of_pair[rows]
        lengths, girths = tables.lengths_mm[sizes], tables.perimeters_mm[sizes]
        placed = pose[rows] = poses(foot, tables.centre_y_mm[sizes], lengths)
        measures[rows] = np.column_stack([
            toe_room_mm(foot, placed, lengths),
            ball_girth_room_mm(foot, placed, tables, sizes),
            girth_room_mm(placed, girths, lengths, INSTEP_AT * foot.length_mm, foot.instep_girth_mm),
            ball_width_room_mm(placed, tables.ball_breadths_mm[sizes], lengths, foot.length_mm, foot.ball_width_mm)])
    return pose, measures


def scores(values: PairValues, profile_of_pair: np.ndarray, profiles: FitProfiles) -> tuple[np.ndarray, np.ndarray]:
    """(score 0..100 (P,), verdict code per region (P, N_REGIONS): 0 tight, 1 good, 2 roomy)."""
    p = np.asarray(profile_of_pair, dtype=np.int64)
    value = np.column_stack([values.value_mm, values.ball_width_mm])  # the profile's MEASURES
    deviation = (value - profiles.ideal[p]) / profiles.unit[p]
    penalty = deviation ** 2 * np.where(deviation < 0, profiles.tight_weight, 1.0)
    total = (penalty * profiles.weight[p]).sum(axis=1)
    verdict = np.where(value < profiles.lo[p], 0, np.where(value > profiles.hi[p], 2, 1))
    return 100.0 * np.exp(-total / profiles.score_scale), _ball_judged_by_width(verdict)


def _ball_judged_by_width(verdict: np.ndarray) -> np.ndarray:
    """Per region verdicts (P, N_REGIONS) from the measures' (P, MEASURES): the ball is tight when its girth or its
    width is, else roomy when either is."""
    girth, width = verdict[:, _BALL], verdict[:, _WIDTH]
    out = verdict[:, :N_REGIONS].copy()
    out[:, _BALL] = np.where((girth == 0) | (width == 0), 0, np.maximum(girth, width))
    return out


# --- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionFit:
    region: str
    verdict: str  # tight | good | roomy (the ball's: by girth and width)
    value_mm: float  # toe: free length in front of the longest toe; ball, instep: girth room / 2 pi; heel: clearance
    pressure_mm: float  # mean of the negative clearances over the region's points (0: nothing presses)
    good_range_mm: tuple[float, float]
    width_mm: float | None = None  # ball only: room across the ball (interior's breadth - foot's ball width)
    width_good_range_mm: tuple[float, float] | None = None


@dataclass(frozen=True)
class FootFit:
    side: str
    score: float
    verdict: str  # tight if any region is tight, else roomy if any is roomy, else good
    regions: tuple[RegionFit, ...]

    def region(self, name: str) -> RegionFit:
        return self.regions[REGIONS.index(name)]


def foot_fit(side: str, values: PairValues, row: int, score: float, verdict: np.ndarray, profile: int,
             profiles: FitProfiles) -> FootFit:
    """The typed fit of one foot in one size from row `row` of the pair arrays."""
    def good_range(m: int) -> tuple[float, float]:
        return float(profiles.lo[profile, m]), float(profiles.hi[profile, m])

    width = dict(width_mm=round(float(values.ball_width_mm[row]), 2), width_good_range_mm=good_range(_WIDTH))
    regions = tuple(RegionFit(name, VERDICTS[int(verdict[r])], round(float(values.value_mm[row, r]), 2),
                              round(float(values.pressure_mm[row, r]), 2), good_range(r),
                              **(width if r == _BALL else {}))
                    for r, name in enumerate(REGIONS))
    codes = set(int(v) for v in verdict)
    overall = "tight" if 0 in codes else "roomy" if 2 in codes else "good"
    return FootFit(side, round(float(score), 1), overall, regions)


def point_clearance_mm(foot: FootShape, sections: np.ndarray,
                       length_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clearance of every point of the foot placed in one size, which points are in the shoe (not the leg), and
    the placement: pose (cos, sin, dx, dy) taking the foot's points into the shoe frame (`placed_points_mm`)."""
    pose = poses(foot, sections[None, :, 0], np.array([length_mm]))[0]
    clearance = placed_clearance_mm(foot.points_mm, sections.astype(np.float64), float(length_mm), pose)
    return clearance, ~_leg(foot, sections, length_mm), pose


def placed_points_mm(foot: FootShape, pose: np.ndarray) -> np.ndarray:
    """The foot's points (shoe side) moved by a pose (cos, sin, dx, dy) into the shoe frame: a yaw about the
    pternion, then the shift."""
    c, s, dx, dy = pose
    x, y = foot.points_mm[:, 0], foot.points_mm[:, 1]
    return np.column_stack([c * x - s * y + dx, s * x + c * y + dy, foot.points_mm[:, 2]])


def _leg(foot: FootShape, sections: np.ndarray, length_mm: float) -> np.ndarray:
    """Points above the cavity's cap (its top over the rear quarter) that are behind the instep or higher than
    the instep plus LEG_ABOVE_INSTEP_MM (the shin's front)."""
    k_rear = max(1, sections.shape[0] // 4)
    up = sections.shape[1] - 2
    cap_mm = float((sections[:k_rear, 1] + sections[:k_rear, 2 + up // 4]).max())
    p = foot.points_mm
    return (p[:, 2] > cap_mm) & ((p[:, 0] < LEG_BEFORE * foot.length_mm)
                                 | (p[:, 2] > foot.instep_height_mm + LEG_ABOVE_INSTEP_MM))


