"""The foot frame of DESIGN.md section 4, found from the surface of a standing foot.

Foot frame (F): mm; origin on the floor (z = 0) under the pternion (the rearmost heel point); +x along the foot
axis, from the pternion through the tip of the second toe, horizontal; +z up; +y = z cross x (the customer's
left, as in the plate frame). The input is any point set of the foot in the plate frame (toes roughly toward +x,
any yaw), standing on z = 0: a reconstructed surface without the sole, or a sampled mesh.

The axis and the pternion depend on each other (the pternion is the rearmost point *along the axis*), so both are
refined in turns, starting from the footprint's principal axis, until the axis stops turning. Extremes of the
surface (pternion, toe tips) come from a local quadratic fit (`surface_extreme`) rather than a single point, so
sampling density and scanner noise move them by far less than the point spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitcore.errors import MeasurementError

SIDES = ("left", "right")
HEEL_ZONE_HEIGHT_MM = 50.0  # pternion and heel width are taken below this height (under the malleoli)
HEEL_ZONE_FRACTION = 0.2  # the rear 20% of the foot length
FOOTPRINT_HEIGHT_MM = 40.0  # the first guess of the axis uses the foot below this height (no leg)
TOE_ZONE_FRACTION = 0.72  # toes are searched in front of this fraction of the length
TOE_BIN_MM = 1.0  # width of the columns of the toes' front profile
CLEFT_SEARCH_FRACTION = 0.55  # the big toe's cleft lies in the medial part of the toe zone's breadth
SECOND_TOE_SPAN = 0.2  # the second toe spans this fraction of the forefoot breadth lateral of the cleft
THIRD_TOE_SPAN = 0.2  # and the third toe the next such span
TIP_LEVEL_MM = 1.0  # a toe's tip: the centre of its points within this of its foremost, weighted by how near
EXTREME_BAND_MM = 1.5  # points this close to an extreme take part in its local surface fit
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
    edges = np.arange(q.min(), q.max() + TOE_BIN_MM, TOE_BIN_MM)
    column = np.clip(np.digitize(q, edges) - 1, 0, len(edges) - 2)
    front = np.full(len(edges) - 1, -np.inf)
    np.maximum.at(front, column, toes[:, 0])
    filled = np.isfinite(front)
    centres = (edges[:-1] + edges[1:]) / 2
    front = np.interp(centres, centres[filled], front[filled])
    cleft = _big_toe_cleft(front, centres)
    breadth = float(np.ptp(q))

    def tip(lo: float, hi: float) -> np.ndarray:
        pts = toes[(q >= lo) & (q <= hi)]
        x = surface_extreme(pts, np.array([1.0, 0.0, 0.0]))[0]
        weight = np.clip(pts[:, 0] - (x - TIP_LEVEL_MM), 0.0, None)  # smooth in the points: no jumps by column
        return np.array([x, *(weight @ pts[:, 1:] / weight.sum())])

    second_end = cleft - SECOND_TOE_SPAN * breadth
    return ToeTips(
        big_mm=tip(cleft, centres[-1]),
        second_mm=tip(second_end, cleft),
        third_mm=tip(second_end - THIRD_TOE_SPAN * breadth, second_end),
    )


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
    across `direction`, and the fit's highest value at those points stands for the extreme: this averages
    scanner noise and hardly depends on where the samples fall, and it never reaches beyond the points seen (a
    cap seen on one side only does not tilt it)."""
    height = points_mm @ direction
    band = points_mm[height > height.max() - EXTREME_BAND_MM]
    if len(band) < 12:
        return band[np.argmax(band @ direction)]
    across = np.linalg.svd(np.eye(3) - np.outer(direction, direction))[0][:, :2]
    u, v = ((band - band.mean(axis=0)) @ across).T
    design = np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])
    fitted = design @ np.linalg.lstsq(design, band @ direction, rcond=None)[0]
    best = int(np.argmax(fitted))
    return band[best] + direction * (fitted[best] - band[best] @ direction)
