"""The foot frame of docs/measurements.md, found from the surface of a standing foot.

Foot frame (F): mm; origin on the floor (z = 0) under the pternion (the rearmost heel point); +x along the foot
axis, from the pternion through the tip of the second toe, horizontal; +z up; +y = z cross x (the customer's
left, as in the plate frame). The input is any point set of the foot in the plate frame (toes roughly toward +x,
any yaw), standing on z = 0: a reconstructed surface without the sole, or a sampled mesh.

The axis and the pternion depend on each other (the pternion is the rearmost point *along the axis*), so both are
refined in turns, starting from the footprint's principal axis, until the axis stops turning. Extremes of the
surface (pternion, toe tips) come from a local quadratic fit (`surface_extreme`) rather than a single point, so
sampling density and scanner noise move them by far less than the point spacing. The foot's length ends at the
tip of its longest toe, read from that toe's front between a scan's stripes (`longest_toe_tip`, `front_apex`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import MeasurementError
from core.vocabulary import HEEL_ZONE_FRACTION, HEEL_ZONE_HEIGHT_MM, SIDES

FOOTPRINT_HEIGHT_MM = 40.0  # the first guess of the axis uses the foot below this height (no leg)
TOE_ZONE_FRACTION = 0.72  # toes are searched in front of this fraction of the length
TOE_BIN_MM = 1.0  # width of the columns of the toes' front profile
CLEFT_SEARCH_FRACTION = 0.55  # the big toe's cleft lies in the medial part of the toe zone's breadth
SECOND_TOE_SPAN = 0.2  # the second toe spans this fraction of the forefoot breadth lateral of the cleft
THIRD_TOE_SPAN = 0.2  # and the third toe the next such span
TIP_LEVEL_MM = 2.0  # a toe's tip: the centre of its front profile within this of its foremost, weighted by how near
CLEFT_RISE_MM = 0.05  # walking away from a toe's tip, a front profile rising by more than this is the next toe
TIP_FIT_DEPTH_MM = 2.0  # the longest toe's tip: a parabola through its front (seen from above) this far back
TOE_FRONT_RADIUS_MM = 4.0  # seen from above, a toe's front is at least this round (bridges the gaps between stripes)
ENVELOPE_REACH_MM = 6  # the front profile of a column borrows from columns at most this far away
EXTREME_BAND_MM = 1.5  # points this close to an extreme take part in its local surface fit
GAP_REACH_MM = 3.0  # an extreme's fit may be evaluated this far from the nearest point (half a gap between stripes)
EXTREME_GRID = 15  # the fit is evaluated on this many steps across each side of its points' bounding box
MAX_ROUNDS = 20
CONVERGED_DEG = 0.005


@dataclass(frozen=True)
class ToeTips:
    """Foremost points (foot frame, mm) of the first three toes, found from the front profile."""

    big_mm: np.ndarray  # (3,)
    second_mm: np.ndarray
    third_mm: np.ndarray


@dataclass(frozen=True)
class FootFrame:
    """Where the foot stands: the rigid transform plate frame -> foot frame and the landmarks that define it."""

    side: str
    foot_from_plate: np.ndarray  # 4x4, mm
    pternion_mm: np.ndarray  # (3,) plate frame
    second_toe_tip_mm: np.ndarray  # (3,) plate frame
    rounds: int  # refinement rounds until the axis settled

    def to_foot(self, points_mm: np.ndarray) -> np.ndarray:
        """Plate-frame points (N, 3) in the foot frame."""
        return points_mm @ self.foot_from_plate[:3, :3].T + self.foot_from_plate[:3, 3]

    @property
    def yaw_deg(self) -> float:
        """Direction of the foot axis on the plate, degrees from plate +x toward +y."""
        r = self.foot_from_plate[:3, :3].T  # plate_from_foot rotation: its first column is the axis
        return float(np.degrees(np.arctan2(r[1, 0], r[0, 0])))


def medial_sign(side: str) -> float:
    """+1 if the medial side (the big toe's) is +y of the foot frame, -1 if it is -y."""
    if side not in SIDES:
        raise MeasurementError(f"unknown side {side!r}: say which foot it is, 'left' or 'right'")
    return -1.0 if side == "left" else 1.0


def find_foot_frame(points_mm: np.ndarray, side: str) -> FootFrame:
    """The foot frame of a foot standing on z = 0 (points in the plate frame, mm; validated by the caller)."""
    medial = medial_sign(side)
    yaw = _footprint_yaw(points_mm)
    ends = _ends(points_mm, yaw)  # the rounds only look at the heel and the toes
    for rounds in range(1, MAX_ROUNDS + 1):
        frame = _frame_at(ends, yaw, side)
        local = frame.to_foot(ends)
        second = toe_tips(local, float(local[:, 0].max()), medial).second_mm
        turn = np.arctan2(second[1], second[0])
        if rounds > MAX_ROUNDS // 2:  # a tip that hops between two columns of the profile: settle in between
            turn *= 0.5 ** (rounds - MAX_ROUNDS // 2)
        yaw += turn
        if abs(np.degrees(turn)) < CONVERGED_DEG:
            break
    else:
        raise MeasurementError(
            f"the foot axis did not settle in {MAX_ROUNDS} rounds: the surface does not look like a single foot "
            "with visible toes; check the scan"
        )
    frame = _frame_at(ends, yaw, side, rounds)
    second_plate = frame.foot_from_plate[:3, :3].T @ (second - frame.foot_from_plate[:3, 3])
    return FootFrame(side, frame.foot_from_plate, frame.pternion_mm, second_plate, rounds)


def _ends(points_mm: np.ndarray, yaw_rad: float) -> np.ndarray:
    """The points of the heel zone and of the toe zone along a first guess of the axis, with a margin."""
    along = points_mm[:, :2] @ np.array([np.cos(yaw_rad), np.sin(yaw_rad)])
    u = (along - along.min()) / np.ptp(along)
    heel = (u < 2 * HEEL_ZONE_FRACTION) & (points_mm[:, 2] < HEEL_ZONE_HEIGHT_MM)
    return points_mm[heel | (u > TOE_ZONE_FRACTION - 0.1)]


def _footprint_yaw(points_mm: np.ndarray) -> float:
    """First guess of the axis direction (rad): the principal axis of the low part of the foot, heel to toes.

    The heel end is the one under the leg: the tallest points lie behind the footprint's centre."""
    low = points_mm[points_mm[:, 2] < FOOTPRINT_HEIGHT_MM, :2]
    centre = low.mean(axis=0)
    axis = np.linalg.eigh(np.cov((low - centre).T))[1][:, -1]
    tall = points_mm[points_mm[:, 2] > np.percentile(points_mm[:, 2], 95), :2]
    if (tall.mean(axis=0) - centre) @ axis > 0:
        axis = -axis
    return float(np.arctan2(axis[1], axis[0]))


def _frame_at(points_mm: np.ndarray, yaw_rad: float, side: str, rounds: int = 0) -> FootFrame:
    """The frame with its axis at `yaw_rad` and its origin under the rearmost heel point along that axis."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    rotation = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # foot_from_plate
    turned = points_mm @ rotation.T
    heel = turned[turned[:, 2] < HEEL_ZONE_HEIGHT_MM]
    back = surface_extreme(heel, np.array([-1.0, 0.0, 0.0]))
    foot_from_plate = np.eye(4)
    foot_from_plate[:3, :3] = rotation
    foot_from_plate[:2, 3] = -back[:2]
    pternion = rotation.T @ back
    return FootFrame(side, foot_from_plate, pternion, np.full(3, np.nan), rounds)


def toe_tips(local_mm: np.ndarray, length_mm: float, medial: float) -> ToeTips:
    """The tips of the first three toes of a foot in (a guess of) its foot frame.

    Seen from above, the toes' front edge (foremost x per column of y) dips deepest at the cleft between the big
    toe and the second toe. The big toe is the foremost part medial of that cleft; the second and third toes are
    the next spans of SECOND_TOE_SPAN and THIRD_TOE_SPAN of the forefoot breadth lateral of it."""
    toes = local_mm[local_mm[:, 0] > TOE_ZONE_FRACTION * length_mm]
    q = toes[:, 1] * medial  # grows toward the medial side
    centres, front = front_profile(toes[:, 0], q)
    cleft = _big_toe_cleft(front, centres)
    breadth = float(np.ptp(q))

    def tip(lo: float, hi: float) -> np.ndarray:
        pts = toes[(q >= lo) & (q <= hi)]
        x = surface_extreme(pts, np.array([1.0, 0.0, 0.0]))[0]
        span = (centres >= lo) & (centres <= hi)
        weight = np.clip(front[span] - (front[span].max() - TIP_LEVEL_MM), 0.0, None)  # per column, not per point
        y = medial * float(weight @ centres[span] / weight.sum())
        z = float(np.median(pts[np.abs(pts[:, 1] - y) < 2 * TOE_BIN_MM, 2])) if (np.abs(pts[:, 1] - y) < 2).any() \
            else float(np.median(pts[:, 2]))
        return np.array([x, y, z])

    second_end = cleft - SECOND_TOE_SPAN * breadth
    return ToeTips(
        big_mm=tip(cleft, centres[-1]),
        second_mm=tip(second_end, cleft),
        third_mm=tip(second_end - THIRD_TOE_SPAN * breadth, second_end),
    )


def longest_toe_tip(local_mm: np.ndarray) -> np.ndarray:
    """The foremost point of the foot (the tip of its longest toe, foot frame), fitted on that toe alone.

    A surface fit over the whole front would span several toes when they are nearly level (square toes) and
    read the smoothed bumps lower than any of them, by different amounts for a dense mesh and a scan's stripes.
    The longest toe is the part of the front profile around its foremost column down to the clefts on either
    side (where the profile starts rising again toward the next toe); its tip comes from `front_apex`."""
    toes = local_mm[local_mm[:, 0] > TOE_ZONE_FRACTION * local_mm[:, 0].max()]
    centres, front = front_profile(toes[:, 0], toes[:, 1])
    lo = hi = int(np.argmax(front))
    while lo > 0 and front[lo - 1] <= front[lo] + CLEFT_RISE_MM:
        lo -= 1
    while hi < len(front) - 1 and front[hi + 1] <= front[hi] + CLEFT_RISE_MM:
        hi += 1
    half = TOE_BIN_MM / 2
    return front_apex(toes[(toes[:, 1] >= centres[lo] - half) & (toes[:, 1] <= centres[hi] + half)])


def front_apex(toe_mm: np.ndarray) -> np.ndarray:
    """The tip of one toe (foot frame): the apex of its front seen from above, between a scan's stripes.

    Stripes cross a toe's front ~1.5-4 mm apart (a mesh's samples fill 1 mm columns), and the tip usually falls
    between two of them, ahead of every sample. The foremost point of each TOE_BIN_MM column is the front there;
    the fronts within TIP_FIT_DEPTH_MM of the foremost, and at least its neighbour on either side, are fitted
    with a parabola x(y) whose apex, inside their span, stands for the tip. A parabola through few samples can
    overshoot, so the apex may lead the foremost sample by at most what a front of TOE_FRONT_RADIUS_MM drops over
    half the gap to the farther of those two neighbours."""
    column = np.floor((toe_mm[:, 1] - toe_mm[:, 1].min()) / TOE_BIN_MM).astype(np.int64)
    order = np.lexsort((-toe_mm[:, 0], column))  # by column, foremost first
    fronts = toe_mm[order[np.r_[True, np.diff(column[order]) > 0]]]  # sorted by y
    k = int(np.argmax(fronts[:, 0]))
    if k == 0 or k == len(fronts) - 1:
        return fronts[k]
    y, x = fronts[:, 1] - fronts[k, 1], fronts[:, 0]
    used = x > x[k] - TIP_FIT_DEPTH_MM
    used[[k - 1, k + 1]] = True
    c = np.polyfit(y[used], x[used], 2)
    if c[0] >= 0:
        return fronts[k]
    apex_y = float(np.clip(-c[1] / (2 * c[0]), y[used].min(), y[used].max()))
    lead = (max(-y[k - 1], y[k + 1]) / 2) ** 2 / (2 * TOE_FRONT_RADIUS_MM)
    apex_x = float(np.clip(np.polyval(c, apex_y), x[k], x[k] + lead))
    return np.array([apex_x, fronts[k, 1] + apex_y, fronts[k, 2]])


def front_profile(x_mm: np.ndarray, q_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column centres, foremost x per column): the toes' front edge seen from above, 1 mm columns across.

    A scan samples the toes in stripes a few mm apart, so many columns miss the front itself. Each column takes
    the highest of its neighbours' fronts lowered as on a round toe of TOE_FRONT_RADIUS_MM (an upper envelope of
    parabolas): gaps between stripes fill nearly to the true front, while the clefts between toes stay."""
    edges = np.arange(q_mm.min(), q_mm.max() + TOE_BIN_MM, TOE_BIN_MM)
    column = np.clip(np.digitize(q_mm, edges) - 1, 0, len(edges) - 2)
    raw = np.full(len(edges) - 1, -np.inf)
    np.maximum.at(raw, column, x_mm)
    front = raw.copy()
    for shift in range(1, int(ENVELOPE_REACH_MM / TOE_BIN_MM) + 1):
        drop = (shift * TOE_BIN_MM) ** 2 / (2 * TOE_FRONT_RADIUS_MM)
        front[shift:] = np.maximum(front[shift:], raw[:-shift] - drop)
        front[:-shift] = np.maximum(front[:-shift], raw[shift:] - drop)
    centres = (edges[:-1] + edges[1:]) / 2
    filled = np.isfinite(front)
    return centres, np.interp(centres, centres[filled], front[filled])


def _big_toe_cleft(front: np.ndarray, centres: np.ndarray) -> float:
    """Medial coordinate of the deepest dip of the front profile in the medial part of the toe zone.

    Depth of a dip = the lower of the highest profile on either side, minus the profile there."""
    medial_peak = np.maximum.accumulate(front[::-1])[::-1]  # highest at or medial of each column
    lateral_peak = np.maximum.accumulate(front)
    depth = np.minimum(medial_peak, lateral_peak) - front
    search = centres >= centres[-1] - CLEFT_SEARCH_FRACTION * (centres[-1] - centres[0])
    if depth[search].max() <= 0:
        raise MeasurementError(
            "no cleft between the big toe and the second toe: the toes are not visible (foot too far forward, "
            "or not a foot); check the scan"
        )
    return float(centres[search][np.argmax(depth[search])])


def surface_extreme(points_mm: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The point of the surface sampled by `points_mm` that lies farthest along the unit `direction`.

    The points within EXTREME_BAND_MM of the farthest one are fitted with a quadratic height over the plane
    across `direction`, and the fit's highest value at those points, or between them (inside their convex hull and
    no farther than GAP_REACH_MM from one), stands for the extreme: this averages scanner noise, bridges the gaps
    between a scan's stripes, and never reaches beyond the points seen (a cap seen on one side only does not tilt
    it; a band that is a single stripe, where the fit across it is unconstrained, is read only along the stripe)."""
    height = points_mm @ direction
    band = points_mm[height > height.max() - EXTREME_BAND_MM]
    if len(band) < 12:
        return band[np.argmax(band @ direction)]
    across = np.linalg.svd(np.eye(3) - np.outer(direction, direction))[0][:, :2]
    mean = band.mean(axis=0)
    uv = (band - mean) @ across
    coefficients = np.linalg.lstsq(_quadratic(uv), band @ direction, rcond=None)[0]
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], EXTREME_GRID), np.linspace(lo[1], hi[1], EXTREME_GRID)),
                    axis=-1).reshape(-1, 2)
    gap = np.min(np.linalg.norm(grid[:, None, :] - uv[None, ::max(1, len(uv) // 300), :], axis=2), axis=1)
    candidates = np.vstack([uv, grid[(gap < GAP_REACH_MM) & _inside_hull(grid, uv)]])
    fitted = _quadratic(candidates) @ coefficients
    best = int(np.argmax(fitted))
    offset = mean @ direction
    return mean - direction * offset + across @ candidates[best] + direction * (fitted[best])


def _inside_hull(query: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which 2D `query` points lie inside the convex hull of `points` (none if the points are collinear)."""
    import cv2

    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return np.zeros(len(query), dtype=bool)
    edge = np.roll(hull, -1, axis=0) - hull
    to_query = query[:, None, :] - hull[None, :, :]
    cross = edge[None, :, 0] * to_query[..., 1] - edge[None, :, 1] * to_query[..., 0]
    return (cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)


def _quadratic(uv: np.ndarray) -> np.ndarray:
    u, v = uv.T
    return np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])
