"""What a page needs to draw a try-on (`GET .../tryon?drawing=true`): each foot as the matcher placed it in the
shoe, thinned to a few thousand points, with their clearance, and the shoe interior's cross-sections.

Everything is in the shoe frame (docs/catalog.md): mm, the LEFT shoe, heel counter at x = 0, +x toward the toe,
insole at z = 0, +y lateral. A right foot is mirrored (y -> -y) as the matcher mirrors it (fitcore.fit.fit_model.
prepare_foot); then both feet are placed by the pose the matcher's try-on used for that size (a yaw about the
pternion and a shift in x and y), so a drawn point's clearance is the clearance of the interior at that very
place.

Thinning is a voxel grid on the foot's own points, once per passport (`thinned`; the service keeps the result
with the feet, api/fitting.py): a placement is a rigid motion, so the points kept stay even in any shoe. The
first point (in PLY order) of every occupied cube is kept, and the cube grows from VOXEL_START_MM until at most
`max_points` remain: deterministic, and even over the surface (a random sample would leave holes and clumps).
A surface occupies a number of cubes that falls as the square of their size, so each step grows the cube by the
square root of how many too many there were, and a little more: one or two steps.
"""

from __future__ import annotations

import numpy as np

from api.schemas import DrawnFootOut, ShoeRingOut, TryOnDrawingOut
from core.vocabulary import SIDES
from fitcore.fit.fit_model import placed_points_mm
from fitcore.fit.matcher import Matcher, ScannedFeet, TryOn
from fitcore.fit.sections import ANGLES_RAD, station_x_mm

MAX_DRAWN_POINTS = 3000
VOXEL_START_MM = 3.0
VOXEL_OVERSHOOT = 1.1  # grow the cube a little more than the surface's square law asks, to land in one step


def thinned(feet: ScannedFeet, max_points: int = MAX_DRAWN_POINTS) -> dict[str, np.ndarray]:
    """Per side, the indices of the foot's points a drawing shows (voxel_subsample of the matcher's points)."""
    return {side: voxel_subsample(feet.foot(side).shape.points_mm, max_points) for side in SIDES}


def tryon_drawing(matcher: Matcher, feet: ScannedFeet, tried: TryOn,
                  drawn_points: dict[str, np.ndarray]) -> TryOnDrawingOut:
    """Both feet of a try-on placed in its size and the size's interior, in the shoe frame; `drawn_points`: the
    indices `thinned` gave for these feet."""
    sections, length_mm = _interior(matcher, tried.size.size_id)
    drawn = {}
    for side in SIDES:
        result, keep = getattr(tried, side), drawn_points[side]
        placed = placed_points_mm(feet.foot(side).shape, result.pose)  # a right foot is mirrored (y -> -y)
        drawn[side] = DrawnFootOut(points_mm=np.round(placed[keep], 1).tolist(),
                                   clearance_mm=np.round(result.clearance_mm[keep].astype(float), 2).tolist(),
                                   in_shoe=result.in_shoe[keep].tolist(), points_total=len(placed))
    return TryOnDrawingOut(inner_length_mm=round(length_mm, 1), shoe=interior_rings(sections, length_mm), **drawn)


def voxel_subsample(points_mm: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of at most `max_points` points: the first of each occupied voxel, voxels grown until
    few enough remain."""
    voxel = VOXEL_START_MM
    offset = points_mm - points_mm.min(axis=0)
    while True:
        cells = (offset / voxel).astype(np.int64)
        span = cells.max(axis=0) + 1
        key = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]  # one integer per voxel
        _, first = np.unique(key, return_index=True)
        if len(first) <= max_points:
            return np.sort(first)
        voxel *= np.sqrt(len(first) / max_points) * VOXEL_OVERSHOOT


def interior_rings(sections: np.ndarray, length_mm: float) -> list[ShoeRingOut]:
    """Each cross-section of the interior as a closed ring of (y, z) wall points at its station x."""
    rings = []
    for x, row in zip(station_x_mm(length_mm), sections.astype(np.float64)):
        cy, cz, radii = row[0], row[1], row[2:]
        wall = np.column_stack([cy + radii * np.cos(ANGLES_RAD), cz + radii * np.sin(ANGLES_RAD)])
        rings.append(ShoeRingOut(x_mm=round(float(x), 1), points_mm=np.round(wall, 1).tolist()))
    return rings


def _interior(matcher: Matcher, size_id: int) -> tuple[np.ndarray, float]:
    """The sections and inner length of a size the matcher has (the try-on found it, so it is there)."""
    c = matcher.catalogue
    i = int(np.searchsorted(c.size_ids, size_id))
    return c.sections[i], float(c.inner_length_mm[i])
