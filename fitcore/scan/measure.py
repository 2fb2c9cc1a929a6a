"""Foot measurements (docs/measurements.md) from the surface of a standing foot, and from mesh files.

One code path for everything: a point set in the plate frame (mm, standing on z = 0) is put into its foot frame
(fitcore/scan/footframe.py) and measured there. A mesh is first sampled densely over its surface, so a reconstructed
scan (top and sides, no sole) and a reference mesh are measured alike. What the scanner cannot see, the sole, is
never needed: lengths and widths are extremes of the top and sides, and a girth's tape runs along the floor under
the foot (see `girth_mm`). Definitions and numbers: docs/measurements.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import MeasurementError, MeshError
from core.mesh import MESH_SUFFIXES, Mesh, read_mesh
from core.vocabulary import HEEL_ZONE_FRACTION, HEEL_ZONE_HEIGHT_MM, INSTEP_AT, foot_extent_problem
from fitcore.scan.footframe import (
    EXTREME_BAND_MM,
    FootFrame,
    find_foot_frame,
    longest_toe_tip,
    medial_sign,
    surface_extreme,
    toe_tips,
)

SAMPLES_PER_MM2 = 1.0  # a mesh is measured through points sampled this densely over its surface
MIN_SAMPLES, MAX_SAMPLES = 20_000, 2_000_000  # whatever its size (a mesh in metres must still read as one)
BALL_ZONE = (0.55, 0.85)  # the ball points are the medial and lateral extremes between these fractions of length
INSTEP_OFFSETS_MM = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the instep's section is averaged over cuts this near INSTEP_AT
SECTION_HALF_THICKNESS_MM = 4.0  # points this near a section's plane take part in it (a stripe or two of a scan)
SECTION_BIN_DEG = 3.0  # a section's outline: one point per this much angle around its centre
SECTION_MIN_POINTS = 4  # fewer points in an angle bin leave it empty (the outline's hull spans the gap)
APEX_REACH_MM = 3.0  # a side's widest point may lie this far below the lowest point seen there
CORNER_STEPS = 16  # points on each quarter circle that closes a section under the foot
SQUARE_TOES_MM = 2.5  # the first three toe tips within this of each other: square toes
TOE_SHAPES = ("egyptian", "greek", "square")
# plausibility of the input (an adult's or a child's foot standing on the plate, in mm)
MIN_POINTS = 500
FLOOR_TOLERANCE_MM = 3.0  # the lowest points must lie within this of z = 0
MAX_FLOOR_GAP_MM = 8.0  # the scanner loses the lowest few mm; more than this above z = 0: not standing on it
METRE_EXTENT = 1.0  # a foot in metres is less than this across


@dataclass(frozen=True)
class FootMeasurements:
    """One foot's measures (mm) and where it stood. Landmarks are in the foot frame."""

    side: str
    length_mm: float
    ball_width_mm: float
    ball_girth_mm: float
    instep_girth_mm: float
    heel_width_mm: float
    instep_height_mm: float
    toe_shape: str  # "egyptian", "greek" or "square"
    foot_from_plate: np.ndarray  # 4x4: plate frame -> foot frame (the passport's rig_to_foot)
    medial_ball_mm: np.ndarray  # (3,)
    lateral_ball_mm: np.ndarray  # (3,)
    toe_tips_mm: np.ndarray  # (3, 3): big, second, third toe
    points: int  # how many surface points were measured


# --- entry points ---


def measure_points(points_mm: np.ndarray, side: str) -> FootMeasurements:
    """Measure a foot from points on its surface (N, 3), plate frame, mm, standing on z = 0."""
    medial = medial_sign(side)
    points_mm = checked_points(points_mm)
    frame = find_foot_frame(points_mm, side)
    local = frame.to_foot(points_mm)
    length = float(longest_toe_tip(local)[0])
    medial_ball, lateral_ball = ball_points(local, length, medial)
    ball = ball_section(local, medial_ball, lateral_ball)
    instep_girth, instep_height = instep_mm(local, length)
    tips = toe_tips(local, length, medial)
    return FootMeasurements(
        side=side,
        length_mm=length,
        ball_width_mm=float(abs(medial_ball[1] - lateral_ball[1])),
        ball_girth_mm=girth_mm(ball),
        instep_girth_mm=instep_girth,
        heel_width_mm=heel_width_mm(local, length),
        instep_height_mm=instep_height,
        toe_shape=toe_shape(tips.big_mm[0], tips.second_mm[0], tips.third_mm[0]),
        foot_from_plate=frame.foot_from_plate,
        medial_ball_mm=medial_ball,
        lateral_ball_mm=lateral_ball,
        toe_tips_mm=np.stack([tips.big_mm, tips.second_mm, tips.third_mm]),
        points=len(points_mm),
    )


def measure_mesh(mesh: Mesh, side: str, seed: int = 0) -> FootMeasurements:
    """Measure a foot mesh (plate frame or subject frame, mm, standing on z = 0) through its sampled surface."""
    return measure_points(sample_surface(mesh, seed=seed)[0], side)


def measure_file(path: str | Path, side: str) -> FootMeasurements:
    """Measure a foot mesh (.ply, .stl, .obj) or a PLY point cloud, in mm, standing on z = 0, toes toward +x."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".ply" and _ply_has_no_faces(path):
            return measure_points(read_points(path), side)
        return measure_mesh(read_mesh(path), side)
    except MeshError as e:
        raise MeasurementError(str(e)) from None
    except MeasurementError as e:
        raise MeasurementError(f"{path}: {e}") from None


def frame_of(points_mm: np.ndarray, side: str) -> FootFrame:
    """Only the foot frame of a foot surface (for writing the scan's points in the foot frame)."""
    return find_foot_frame(checked_points(points_mm), side)


# --- input ---


def sample_surface(mesh: Mesh, per_mm2: float = SAMPLES_PER_MM2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(points, unit normals), both (N, 3): spread uniformly over the mesh's triangles, `per_mm2` on average
    (area-weighted, seeded); a point's normal is its triangle's (counter-clockwise seen from outside)."""
    v = np.asarray(mesh.vertices_mm, dtype=np.float64)
    if len(v) == 0 or not np.isfinite(v).all():
        raise MeasurementError("the mesh has no vertices or NaN/infinite ones: repair it and export it again")
    tri = v[mesh.triangles]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    total = float(area.sum())
    if total <= 0.0:
        raise MeasurementError("the mesh has no surface area: export the foot's surface, not a line or a point")
    rng = np.random.default_rng(seed)
    n = int(np.clip(total * per_mm2, MIN_SAMPLES, MAX_SAMPLES))
    which = np.minimum(np.searchsorted(np.cumsum(area), rng.random(n) * total), len(tri) - 1)
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    t = tri[which]
    points = (1 - r1)[:, None] * t[:, 0] + (r1 * (1 - r2))[:, None] * t[:, 1] + (r1 * r2)[:, None] * t[:, 2]
    return points, cross[which] / (2 * area[which])[:, None]


def read_points(path: str | Path) -> np.ndarray:
    """The vertices of a PLY point cloud (N, 3), as stored (mm expected)."""
    import open3d as o3d

    path = Path(path)
    if not path.is_file():
        raise MeasurementError(f"no point cloud file at {path}: check the path")
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return np.asarray(o3d.io.read_point_cloud(str(path)).points, dtype=np.float64)


def _ply_has_no_faces(path: Path) -> bool:
    """True for a PLY point cloud: its header declares no faces (or zero of them)."""
    if path.suffix.lower() not in MESH_SUFFIXES or not path.is_file():
        return False
    with path.open("rb") as f:
        header = f.read(4096).split(b"end_header")[0].decode("latin-1")
    faces = [line.split() for line in header.splitlines() if line.startswith("element face")]
    return not faces or int(faces[0][2]) == 0


def checked_points(points_mm: np.ndarray) -> np.ndarray:
    """The points as float64 (N, 3) if they can be a foot standing on z = 0 in mm; else a MeasurementError."""
    p = np.asarray(points_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise MeasurementError(f"expected points as an (N, 3) array in mm, got shape {p.shape}")
    if len(p) == 0:
        raise MeasurementError("no points to measure: the foot surface is empty; scan again")
    bad = int((~np.isfinite(p)).any(axis=1).sum())
    if bad:
        raise MeasurementError(f"{bad} of {len(p)} points are NaN or infinite: repair the surface or scan again")
    if len(p) < MIN_POINTS:
        raise MeasurementError(
            f"only {len(p)} points: at least {MIN_POINTS} are needed to measure a foot; scan again"
        )
    extent = np.ptp(p, axis=0)
    if extent.max() < METRE_EXTENT:
        raise MeasurementError(
            f"the foot is only {extent.max():.3f} across: it looks like metres; scale it by 1000 to millimetres"
        )
    floor = float(np.percentile(p[:, 2], 0.1))
    if floor < -FLOOR_TOLERANCE_MM or floor > MAX_FLOOR_GAP_MM:
        raise MeasurementError(
            f"the lowest points are at z = {floor:.1f} mm: the foot must stand on z = 0 (the plate), +z up; "
            "move it onto the floor"
        )
    xy = p[:, :2] - p[:, :2].mean(axis=0)
    length, width = np.ptp(xy @ np.linalg.eigh(xy.T @ xy)[1][:, ::-1], axis=0)  # along the principal axes
    problem = foot_extent_problem(length, width, extent[2])
    if problem:
        raise MeasurementError(f"the surface is {problem}: check that it is one foot (not two or something else), "
                               "in millimetres, standing with +z up")
    return p


# --- measures (foot frame) ---


def ball_points(local_mm: np.ndarray, length_mm: float, medial: float) -> tuple[np.ndarray, np.ndarray]:
    """(medial, lateral) ball points: the foot's extremes across the axis in the ball zone.

    The side of the forefoot is nearly flat along the axis, so a single farthest point would wander along it with
    every resampling (and the ball girth's plane with it). The breadth comes from the extreme; where along the foot
    and how high the point sits is the centre of the bulge: the points within EXTREME_BAND_MM of the extreme,
    weighted by how near they come to it."""
    zone = local_mm[(local_mm[:, 0] > BALL_ZONE[0] * length_mm) & (local_mm[:, 0] < BALL_ZONE[1] * length_mm)]
    found = []
    for direction in (medial, -medial):
        extreme = surface_extreme(zone, np.array([0.0, direction, 0.0]))
        weight = np.clip(zone[:, 1] * direction - (extreme[1] * direction - EXTREME_BAND_MM), 0.0, None)
        centre = weight @ zone / weight.sum()
        found.append(np.array([centre[0], extreme[1], centre[2]]))
    return found[0], found[1]


def heel_width_mm(local_mm: np.ndarray, length_mm: float) -> float:
    """Largest breadth across the axis of the rear 20% of the foot, under the malleoli."""
    heel = local_mm[(local_mm[:, 0] < HEEL_ZONE_FRACTION * length_mm) & (local_mm[:, 2] < HEEL_ZONE_HEIGHT_MM)]
    left, right = surface_extreme(heel, np.array([0.0, 1.0, 0.0])), surface_extreme(heel, np.array([0.0, -1.0, 0.0]))
    return float(left[1] - right[1])


def instep_mm(local_mm: np.ndarray, length_mm: float) -> tuple[float, float]:
    """(girth, height) of the instep: the section perpendicular to the axis at INSTEP_AT of the length.

    A scan's section gathers the stripes that pass near its plane, and which ones do changes from one placement
    to the next: moving a single cut by 0.5 mm changed its girth by up to ~1.3 mm more than the mesh's smooth
    growth toward the ankle (~1.7 mm per mm) on 1.5 deg scans. The mean over the parallel cuts at
    INSTEP_OFFSETS_MM from it (symmetric, so a girth that grows linearly along the foot keeps its value at 50%)
    averages those jumps."""
    cuts = [section(local_mm, np.array([INSTEP_AT * length_mm + offset, 0.0]), np.array([0.0, 1.0]))
            for offset in INSTEP_OFFSETS_MM]
    return float(np.mean([girth_mm(cut) for cut in cuts])), float(np.mean([cut.top_mm for cut in cuts]))


@dataclass(frozen=True)
class Section:
    """A vertical cut through the foot, in its plane's coordinates: (distance along the cut, height), mm."""

    outline: np.ndarray  # (K, 2) the surface in the plane, one point per angle bin around the cut's centre
    widest: np.ndarray  # (2, 2) the cut's extremes along it: [near end, far end]

    @property
    def top_mm(self) -> float:
        return float(self.outline[:, 1].max())


def section(local_mm: np.ndarray, origin_xy: np.ndarray, along_xy: np.ndarray) -> Section:
    """The cut of the foot by the vertical plane through `origin_xy` along `along_xy` (foot frame).

    The points near the plane are binned by angle around the cut's centre; in each bin the radius is fitted
    linearly in the distance from the plane and the angle, so the outline is the surface *in* the plane, with the
    scanner's noise averaged. The two widest points come from a local surface fit (`_widest_in_plane`)."""
    along = along_xy / np.linalg.norm(along_xy)
    normal = np.array([-along[1], along[0]])
    offset = (local_mm[:, :2] - origin_xy) @ normal
    near = np.abs(offset) < SECTION_HALF_THICKNESS_MM
    a = (local_mm[near, :2] - origin_xy) @ along
    z, s = local_mm[near, 2], offset[near]
    if len(a) < 3 * SECTION_MIN_POINTS:
        raise MeasurementError("a section of the foot holds almost no points: the surface has a hole there; scan again")
    centre = np.array([(a.min() + a.max()) / 2, (z.min() + z.max()) / 2])
    angle = np.arctan2(z - centre[1], a - centre[0])
    radius = np.hypot(a - centre[0], z - centre[1])
    width = np.radians(SECTION_BIN_DEG)
    bins, bin_of, counts = np.unique(np.floor((angle + np.pi) / width).astype(int), return_inverse=True,
                                     return_counts=True)
    mid = -np.pi + (bins + 0.5) * width
    r = _bin_intercepts(np.column_stack([np.ones_like(s), s, angle - mid[bin_of]]), radius, bin_of, len(bins))
    full = counts >= SECTION_MIN_POINTS
    outline = centre + r[full, None] * np.column_stack([np.cos(mid[full]), np.sin(mid[full])])
    return Section(outline, np.array([_widest(outline, -1.0), _widest(outline, 1.0)]))


def _bin_intercepts(design: np.ndarray, value: np.ndarray, bin_of: np.ndarray, bins: int) -> np.ndarray:
    """Per bin, the first coefficient of the least-squares fit value ~ design (rows of that bin): all bins at once
    through their normal equations (the minimum-norm solution where a bin's rows do not fix every coefficient,
    as lstsq gives)."""
    k = design.shape[1]
    products = design[:, :, None] * design[:, None, :]
    normal = np.stack([np.bincount(bin_of, products[:, i, j], bins) for i in range(k) for j in range(k)], axis=1)
    rhs = np.stack([np.bincount(bin_of, design[:, i] * value, bins) for i in range(k)], axis=1)
    return (np.linalg.pinv(normal.reshape(bins, k, k)) @ rhs[:, :, None])[:, 0, 0]


def ball_section(local_mm: np.ndarray, medial_ball_mm: np.ndarray, lateral_ball_mm: np.ndarray) -> Section:
    """The section through the two ball points, whose widest points are the ball points themselves.

    The ball points come from all of the forefoot's side, the section's own outline only from the points near its
    plane, which a scan may sample sparsely there (stripes cross the side at a slant)."""
    cut = section(local_mm, lateral_ball_mm[:2], medial_ball_mm[:2] - lateral_ball_mm[:2])
    span = float(np.linalg.norm(medial_ball_mm[:2] - lateral_ball_mm[:2]))
    return Section(cut.outline, np.array([[0.0, lateral_ball_mm[2]], [span, medial_ball_mm[2]]]))


def _widest(outline: np.ndarray, sign: float) -> np.ndarray:
    """(a, z) of the outline's farthest point toward `sign` along the cut.

    The side is nearly vertical there, so the height of a single farthest bin is poorly defined: the outline
    within EXTREME_BAND_MM of the farthest is fitted with a = quadratic(z), and its apex (up to APEX_REACH_MM below
    those points) is the widest point. Below the farthest bin the surface faces down and may be unseen: the fit
    uses only the outline at and above it. When the fit is not a cap the farthest bin stands."""
    out = outline[:, 0] * sign
    farthest = outline[np.argmax(out)]
    band = outline[(out > out.max() - EXTREME_BAND_MM) & (outline[:, 1] >= farthest[1])]
    if len(band) < 3:
        return farthest
    z = band[:, 1] - band[:, 1].mean()
    c = np.polyfit(z, band[:, 0] * sign, 2)
    if c[0] >= 0:
        return farthest
    z_apex = float(np.clip(-c[1] / (2 * c[0]), z.min() - APEX_REACH_MM, z.max()))
    return np.array([sign * np.polyval(c, z_apex), z_apex + band[:, 1].mean()])


def girth_mm(cut: Section) -> float:
    """Tape-measure girth of a section: the perimeter of the convex hull of its outline, closed under the foot.

    Under the widest point of each side the surface turns toward the floor and faces down, where the scanner
    cannot see it (and the sole rests on the plate). So only the outline above the two widest points is used, and
    under each the tape follows a quarter circle down to the floor (radius = that point's height; standing soft
    tissue bulges so), then runs along the floor. A full mesh and a scan without its sole measure alike."""
    a, z = cut.outline[:, 0], cut.outline[:, 1]
    middle = cut.widest[:, 0].mean()
    kept, corners = [], []
    for widest, outward in zip(cut.widest, (-1.0, 1.0)):
        same_side = (a - middle) * outward > 0
        kept.append(cut.outline[same_side & (z >= widest[1]) & ((a - widest[0]) * outward <= 0)])
        radius = max(float(widest[1]), 0.0)
        turn = np.linspace(0.0, np.pi / 2, CORNER_STEPS)
        corners.append(np.column_stack([widest[0] - outward * radius * (1 - np.cos(turn)),
                                        widest[1] - radius * np.sin(turn)]))
    return _hull_perimeter(np.vstack(kept + corners))


def _hull_perimeter(points: np.ndarray) -> float:
    import cv2

    hull = cv2.convexHull(points.astype(np.float32))
    return float(cv2.arcLength(hull, closed=True))


def toe_shape(big_tip_mm: float, second_tip_mm: float, third_tip_mm: float) -> str:
    """Which toe is longest (x of the tips along the foot axis): square if the first three are level within
    SQUARE_TOES_MM; else Egyptian if the big toe leads, Greek if the second (or third) does."""
    tips = (big_tip_mm, second_tip_mm, third_tip_mm)
    if max(tips) - min(tips) <= SQUARE_TOES_MM:
        return "square"
    return "egyptian" if big_tip_mm >= max(second_tip_mm, third_tip_mm) else "greek"
