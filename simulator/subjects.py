"""Subjects for the simulator: the pair of feet that stands on the virtual rig, with their true dimensions.

A population subject is a real ANSUR II soldier's foot dimensions (so length, breadth, girth, heel breadth and
body weight keep their real correlations) put onto the shape of a real foot: the FIND template, deformed
smoothly until it measures what the soldier measured. The template is first put into a standing posture (it
was scanned unloaded, toes in the air) and given the subject's toe shape (Egyptian, Greek or square). A mesh
subject is any foot scan the developer has.

Subject frame (what simulator.scene.Scene expects): mm, sole on z = 0 at its lowest point, toes toward +x, +y to
the foot's LEFT side for both feet (the plate frame's convention: lateral for a left foot, medial for a right
one). Template and population feet have the pternion at x = 0 and the foot axis (pternion to second toe tip)
on y = 0.

The measures below are the simulator's own approximations of the docs/measurements.md definitions, good enough
to steer the deformation and to state the truth of a simulated scan. The product's measurement code lives in
fitcore and must not use them.
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from core.errors import MeshError, SimulatorError
from core.mesh import Mesh, read_mesh
from core.settings import get_settings
from core.vocabulary import HEEL_ZONE_FRACTION, HEEL_ZONE_HEIGHT_MM, foot_extent_problem

BALL_ZONE = (0.5, 0.9)  # where a scanned foot's ball points are searched, as fractions of its length
ASYMMETRY_SD_MM = {"length": 1.5, "ball_breadth": 1.0, "ball_girth": 2.0, "heel_breadth": 1.0}
FIT_TOLERANCE_MM = 0.05
FIT_MAX_ROUNDS = 30
FOREFOOT_HEIGHT_SCALE_RANGE = (0.45, 1.6)  # beyond this the forefoot would no longer look like a foot
MAX_DRAWS = 20
# standing: the unloaded template put under load (see `standing_template`)
PRONATION_START_MM = 100.0  # the forefoot's roll toward the floor grows from here (midfoot) to the ball
MEDIAL_BALL_RADIUS_MM = 30.0  # the medial ball's sole is the lowest point within this of its landmark (xy)
TOE_BEND_BLEND_MM = 25.0  # the toes' bend grows from 0 at the joints' axis to full over this distance (x)
TOE_PAD_FROM = 0.5  # a toe's pad is searched beyond this fraction of its joints'-axis-to-tip distance
TOE_BEND_TOLERANCE_MM = 0.05
TOE_BEND_MAX_ROUNDS = 20
# toe shapes (docs/measurements.md); approximate prevalences from the literature
TOE_SHAPE_PREVALENCE = {"egyptian": 0.58, "greek": 0.24, "square": 0.18}
TOE_LEAD_MM = {"egyptian": (3.0, 9.0), "greek": (3.0, 8.0)}  # how far the longest toe leads the next one
SQUARE_SPREAD_MM = 0.6  # square: each of the first three tips within this of their common level
LESSER_TOES_FOLLOW = (0.7, 0.4)  # square: 4th and 5th toes lengthen by these fractions of the 3rd's change
_TOE_SHAPE_STREAM = 1  # the toe shape's random stream, apart from the soldier draws of the same seed

_TEMPLATE_OBJ = "data/feet/find_template.obj"
SHARED_SETTLE_S = 20.0
_TEMPLATE_KEYPOINTS = "data/feet/find_template_keypoints.csv"
_ANSUR_FILES = {"male": "data/ansur2/ANSUR_II_MALE_Public.csv", "female": "data/ansur2/ANSUR_II_FEMALE_Public.csv"}
_ANSUR_ID_COLUMN = {"male": "subjectid", "female": "SubjectId"}
# FIND keypoint column -> our name (0-based vertex indices of the template, in OBJ file order)
_KEYPOINT_NAMES = {
    "big toe": "big_toe",
    "2nd toe": "second_toe",
    "3rd toe": "third_toe",
    "4th toe": "fourth_toe",
    "little toe": "little_toe",
    "heel": "heel",
    "outer extrema": "lateral_ball",
    "inner extrema": "medial_ball",
    "lower heel": "lower_heel",
    "arch1": "arch1",
    "arch2": "arch2",
    "arch3": "arch3",
}
TOES = ("big_toe", "second_toe", "third_toe", "fourth_toe", "little_toe")  # medial to lateral


@dataclass(frozen=True)
class FootDims:
    """The dimensions a simulated foot was made to have (mm), as the simulator measures them."""

    length_mm: float
    ball_breadth_mm: float
    ball_girth_mm: float
    heel_breadth_mm: float


@dataclass(frozen=True)
class Subject:
    """Both feet of one simulated customer, in the subject frame (see the module docstring)."""

    left: Mesh
    right: Mesh
    sex: str | None  # "male", "female", or None when unknown
    body_weight_kg: float
    source: str  # "ansur:female:10037", "template", or the mesh file's path
    left_dims: FootDims
    right_dims: FootDims
    toe_shape: str | None = None  # "egyptian", "greek" or "square" (both feet); None when unknown


# --- measures -----------------------------------------------------------------------------------------------


def foot_length_mm(mesh: Mesh) -> float:
    """Extent along x from the pternion (rearmost point below the heel-zone height) to the frontmost point.

    Below the height only, because the template's lower leg leans back behind the heel."""
    v = mesh.vertices_mm
    return float(v[:, 0].max() - _pternion_x_mm(mesh))


def heel_breadth_mm(mesh: Mesh) -> float:
    """Largest y extent of the rear 20% of the foot, below the heel-zone height (under the malleoli)."""
    v = mesh.vertices_mm
    rear_x = _pternion_x_mm(mesh) + HEEL_ZONE_FRACTION * foot_length_mm(mesh)
    heel = v[(v[:, 0] <= rear_x) & (v[:, 2] < HEEL_ZONE_HEIGHT_MM)]
    return float(np.ptp(heel[:, 1]))


def ball_section(mesh: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> np.ndarray:
    """Points (K, 3) where the mesh's edges cross the vertical plane through the two ball points."""
    along = np.array([medial_mm[0] - lateral_mm[0], medial_mm[1] - lateral_mm[1], 0.0])
    normal = np.cross(along, [0.0, 0.0, 1.0])
    normal /= np.linalg.norm(normal)
    v = mesh.vertices_mm
    side = (v - lateral_mm) @ normal
    edges = mesh.triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    a, b = edges[:, 0], edges[:, 1]
    crossing = side[a] * side[b] < 0
    a, b = a[crossing], b[crossing]
    t = side[a] / (side[a] - side[b])
    return v[a] + t[:, None] * (v[b] - v[a])


def ball_breadth_mm(mesh: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> float:
    """Y extent of the ball section (ball width perpendicular to the foot axis)."""
    return _section_breadth_mm(ball_section(mesh, lateral_mm, medial_mm))


def ball_girth_mm(mesh: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> float:
    """Perimeter of the convex hull of the ball section (a tape measure around the ball)."""
    return _section_girth_mm(ball_section(mesh, lateral_mm, medial_mm), lateral_mm, medial_mm)


def _section_breadth_mm(section: np.ndarray) -> float:
    return float(np.ptp(section[:, 1]))


def _section_girth_mm(section: np.ndarray, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> float:
    along = medial_mm[:2] - lateral_mm[:2]
    along = along / np.linalg.norm(along)
    in_plane = np.column_stack([section[:, :2] @ along, section[:, 2]]).astype(np.float32)
    return float(cv2.arcLength(cv2.convexHull(in_plane), closed=True))


def scanned_ball_points(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(lateral, medial) ball points of a foot without landmarks: the y extremes of the forefoot zone.

    Which one is lateral depends on the side; the measures use both, so the order does not matter to them."""
    v = mesh.vertices_mm
    u = (v[:, 0] - _pternion_x_mm(mesh)) / foot_length_mm(mesh)
    zone = v[(u >= BALL_ZONE[0]) & (u <= BALL_ZONE[1])]
    return zone[np.argmax(zone[:, 1])], zone[np.argmin(zone[:, 1])]


def measure(mesh: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> FootDims:
    """All four dimensions of a foot in the subject frame, given its two ball points."""
    section = ball_section(mesh, lateral_mm, medial_mm)  # cut once: it is most of a fitting round's time
    return FootDims(
        length_mm=foot_length_mm(mesh),
        ball_breadth_mm=_section_breadth_mm(section),
        ball_girth_mm=_section_girth_mm(section, lateral_mm, medial_mm),
        heel_breadth_mm=heel_breadth_mm(mesh),
    )


def _pternion_x_mm(mesh: Mesh) -> float:
    v = mesh.vertices_mm
    return float(v[v[:, 2] < HEEL_ZONE_HEIGHT_MM, 0].min())


# --- template -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def template_keypoints() -> dict[str, int]:
    """The FIND template's landmarks: name -> 0-based vertex index (big_toe, second_toe, ..., heel,
    lateral_ball, medial_ball, lower_heel, arch1..arch3)."""
    path = _shared_path(_TEMPLATE_KEYPOINTS)
    with path.open(encoding="latin-1") as f:
        row = next(r for r in csv.DictReader(f) if r["model"] == "FIND")
    return {name: int(row[column]) for column, name in _KEYPOINT_NAMES.items()}


def _shared_path(relative: str) -> Path:
    """A file of the shared data once it holds no NUL bytes (waiting up to SHARED_SETTLE_S): a fresh checkout's
    ../shared may still be being copied when the first test reads it (seen in CI: the first 64 KiB of the
    template read as NUL bytes, a moment later intact). After that the file's reader says what is wrong."""
    path = get_settings().shared_dir / relative
    deadline = time.monotonic() + SHARED_SETTLE_S
    while path.is_file() and b"\0" in path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.5)
    return path


@lru_cache(maxsize=1)
def template_foot() -> Mesh:
    """The FIND template as a left foot in the subject frame: metres -> mm, turned about z so that the foot
    axis (heel landmark to second toe tip) lies on +x, heel landmark at x = y = 0, sole on z = 0.

    The arrays are read-only because the mesh is cached and shared."""
    raw = read_mesh(_shared_path(_TEMPLATE_OBJ))
    kp = template_keypoints()
    v = raw.vertices_mm * 1000.0
    heel, toe = v[kp["heel"]], v[kp["second_toe"]]
    angle = np.arctan2(toe[1] - heel[1], toe[0] - heel[0])
    c, s = np.cos(-angle), np.sin(-angle)
    v[:, :2] = (v[:, :2] - heel[:2]) @ np.array([[c, -s], [s, c]]).T
    v[:, 2] -= v[:, 2].min()
    triangles = raw.triangles.copy()
    v.setflags(write=False)
    triangles.setflags(write=False)
    return Mesh(v, triangles)


# --- standing and toe shape ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def standing_template() -> Mesh:
    """The template as a foot standing with weight on it: the FIND foot is unloaded, its forefoot rolled onto
    the lateral side (the first metatarsal head ~13 mm up) and its toes lifted ~20 mm off the floor.

    Two smooth deformations put it down, leaving the heel and the lateral ball where they are: the forefoot is
    rolled medially (`_pronated`) until the medial ball touches, then each toe is bent down about the
    metatarsophalangeal joints (`_bent_toes`) until its pad touches. Read-only arrays: cached and shared."""
    pronated = _pronated(template_foot())
    angles_rad = np.zeros(len(TOES))
    for _ in range(TOE_BEND_MAX_ROUNDS):
        bent = _bent_toes(pronated, angles_rad)
        heights_mm, levers_mm = _toe_pads(pronated, bent)
        if np.abs(heights_mm).max() < TOE_BEND_TOLERANCE_MM:
            break
        angles_rad = angles_rad + heights_mm / levers_mm  # small-angle step: drop = lever * angle
    else:
        raise SimulatorError("the template's toes do not settle onto the floor: report this as a bug")
    v = bent.vertices_mm - [0.0, 0.0, bent.vertices_mm[:, 2].min()]
    v.setflags(write=False)
    return Mesh(v, bent.triangles)


def _pronated(mesh: Mesh) -> Mesh:
    """The forefoot rolled down on its medial side until the medial ball's sole touches the floor.

    A vertical shear (z minus a smooth function of x and y), so it cannot fold the surface: the drop grows
    from 0 at PRONATION_START_MM to full at the lateral ball, and across the foot from 0 at the lateral
    forefoot's contact to full at the medial ball. The arch lowers with it, as it does under load."""
    v = mesh.vertices_mm
    kp = template_keypoints()
    lateral, medial = v[kp["lateral_ball"]], v[kp["medial_ball"]]
    forefoot = (v[:, 0] > PRONATION_START_MM) & (v[:, 2] < HEEL_ZONE_HEIGHT_MM)
    contact_y = v[forefoot][np.argmin(v[forefoot, 2]), 1]
    shape = _smoothstep(v[:, 0], PRONATION_START_MM, lateral[0]) * _smoothstep(v[:, 1], contact_y, medial[1])
    near_medial = np.hypot(*(v[:, :2] - medial[:2]).T) < MEDIAL_BALL_RADIUS_MM
    drop_mm = np.min(v[near_medial, 2] / shape[near_medial])  # the largest drop that keeps that sole on z >= 0
    return Mesh(v - np.outer(drop_mm * shape, [0.0, 0.0, 1.0]), mesh.triangles)


def _joint_line(mesh: Mesh, y_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, z) at each y of the line through the two ball landmarks (the metatarsal heads): the
    metatarsophalangeal joints' axis. Its vertical plane is the ball section's."""
    kp = template_keypoints()
    lateral, medial = mesh.vertices_mm[kp["lateral_ball"]], mesh.vertices_mm[kp["medial_ball"]]
    t = (y_mm - lateral[1]) / (medial[1] - lateral[1])
    return lateral[0] + t * (medial[0] - lateral[0]), lateral[2] + t * (medial[2] - lateral[2])


def _bent_toes(mesh: Mesh, angles_rad: np.ndarray) -> Mesh:
    """Each toe turned down about the joint axis by its angle (`angles_rad`, one per toe in TOES order).

    Every slice of constant y turns in its own x-z plane about the joint axis's point in it, so y (and with it
    the breadth) is kept. The angle blends between the toes across y and grows smoothly from 0 at the axis to
    full TOE_BEND_BLEND_MM in front of it; behind the axis (the ball section and the rest of the foot) nothing
    moves. The angle grows slowly enough that the sole under the joint is compressed, never folded."""
    v = mesh.vertices_mm
    joint_x, joint_z = _joint_line(mesh, v[:, 1])
    dx, dz = v[:, 0] - joint_x, v[:, 2] - joint_z
    tips_y = v[[template_keypoints()[t] for t in TOES], 1]
    angle = _across_toes(v[:, 1], tips_y, angles_rad) * _smoothstep(dx, 0.0, TOE_BEND_BLEND_MM)
    c, s = np.cos(angle), np.sin(angle)
    out = np.column_stack([joint_x + dx * c + dz * s, v[:, 1], joint_z + dz * c - dx * s])
    return Mesh(out, mesh.triangles)


def _toe_pads(unbent: Mesh, bent: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Per toe (TOES order): the height of its lowest point (its pad) and that point's distance in front of the
    joint axis. A toe is the band of y nearer its tip landmark than its neighbours', beyond TOE_PAD_FROM of
    the way from the axis to its tip (nearer the axis lies the forefoot's own sole)."""
    v = unbent.vertices_mm
    ahead_mm = v[:, 0] - _joint_line(unbent, v[:, 1])[0]
    tips = [template_keypoints()[t] for t in TOES]
    tips_y = v[tips, 1]
    toe_of = np.searchsorted((tips_y[1:] + tips_y[:-1]) / 2.0, v[:, 1])  # TOES run medial to lateral: up y
    heights, levers = np.empty(len(TOES)), np.empty(len(TOES))
    for k, tip in enumerate(tips):
        toe = np.flatnonzero((toe_of == k) & (ahead_mm > TOE_PAD_FROM * ahead_mm[tip]))
        pad = toe[np.argmin(bent.vertices_mm[toe, 2])]
        heights[k], levers[k] = bent.vertices_mm[pad, 2], ahead_mm[pad]
    return heights, levers


def _across_toes(y: np.ndarray, tips_y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A per-toe value spread over y: each toe's own value at its tip's y, a smoothstep from one toe's to the
    next's over the whole gap between their tips (narrower blends shear the fused toes of the template into
    creases), the outer toes' values beyond them."""
    order = np.argsort(tips_y)
    nodes, values = tips_y[order], np.asarray(values, dtype=float)[order]
    out = np.full(y.shape, values[0])
    for k in range(len(nodes) - 1):
        out += (values[k + 1] - values[k]) * _smoothstep(y, nodes[k], nodes[k + 1])
    return out


@dataclass(frozen=True)
class ToeShape:
    """Which toe is longest (docs/measurements.md) and how far each toe tip (TOES order) moves along x."""

    name: str  # "egyptian" (big toe longest), "greek" (second toe), "square" (first three level)
    tip_shift_mm: tuple[float, float, float, float, float]


def population_toe_shape(seed: int) -> ToeShape:
    """The toe shape of the population subject of this seed, at TOE_SHAPE_PREVALENCE, with its own lead
    (egyptian, greek) or spread (square). Deterministic by seed and independent of the soldier drawn."""
    rng = np.random.default_rng([seed, _TOE_SHAPE_STREAM])
    name = str(rng.choice(list(TOE_SHAPE_PREVALENCE), p=list(TOE_SHAPE_PREVALENCE.values())))
    tips_x = standing_template().vertices_mm[[template_keypoints()[t] for t in TOES], 0]
    level = (tips_x[0] + tips_x[1]) / 2.0  # the longest toe reaches about as far as on the template
    target = tips_x.copy()
    if name == "square":
        target[:3] = level + rng.uniform(-SQUARE_SPREAD_MM, SQUARE_SPREAD_MM, size=3)
        third = target[2] - tips_x[2]
        target[3:] += np.multiply(LESSER_TOES_FOLLOW, third)
    else:
        lead = rng.uniform(*TOE_LEAD_MM[name])
        longest, next_ = (0, 1) if name == "egyptian" else (1, 0)
        target[longest], target[next_] = level + lead / 2.0, level - lead / 2.0
    return ToeShape(name, tuple(float(x) for x in target - tips_x))


def with_toe_shape(mesh: Mesh, shape: ToeShape) -> Mesh:
    """A foot made from the template (its landmarks are used) with each toe lengthened or shortened so that its
    tip moves by the shape's shift.

    Points move along x only, by the shift of their toe (spread over y as the bend's angles are) times a
    smoothstep from 0 at the ball section's vertical plane to 1 at the toe's tip: the toe stretches along its
    length and the ball section stays put. Each line along x maps onto itself in order as long as the shift's
    slope along x stays above -1, so the surface cannot fold; larger shortenings are refused."""
    v = mesh.vertices_mm
    tips = v[[template_keypoints()[t] for t in TOES]]
    base_x = _joint_line(mesh, v[:, 1])[0]
    tip_x = _across_toes(v[:, 1], tips[:, 1], tips[:, 0])
    tip_shift = _across_toes(v[:, 1], tips[:, 1], np.array(shape.tip_shift_mm))
    if np.any(1.5 * -tip_shift >= tip_x - base_x):  # 1.5 = the smoothstep's steepest slope
        raise SimulatorError(
            f"toe shifts {shape.tip_shift_mm} mm would fold the toes over: shorten a toe by less than 2/3 of its "
            "length from the ball"
        )
    shift = tip_shift * _smoothstep(v[:, 0], base_x, tip_x)
    return Mesh(v + np.outer(shift, [1.0, 0.0, 0.0]), mesh.triangles)


# --- deformation --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scales:
    """Scale factors of the template deformation (see `_deformed`)."""

    length: float = 1.0  # x
    heel_breadth: float = 1.0  # y in the rear
    ball_breadth: float = 1.0  # y from the midfoot to the toes
    forefoot_height: float = 1.0  # z from the midfoot to the toes


def _smoothstep(u: np.ndarray, start: float, end: float) -> np.ndarray:
    t = np.clip((u - start) / (end - start), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _deformed(template: Mesh, scales: _Scales) -> Mesh:
    """The template stretched smoothly: x uniformly; y by a factor that blends from the heel's to the ball's
    between 20% and 55% of the length (the ball section lies beyond 60%); z about the sole by a factor that
    blends from the rear's (mean of the length and heel scales: the heel and ankle grow with the foot) to the
    forefoot's between 30% and 60%."""
    v = template.vertices_mm
    u = v[:, 0] / foot_length_mm(template)
    y_scale = scales.heel_breadth + (scales.ball_breadth - scales.heel_breadth) * _smoothstep(u, 0.2, 0.55)
    rear_height = np.sqrt(scales.length * scales.heel_breadth)
    z_scale = rear_height + (scales.forefoot_height - rear_height) * _smoothstep(u, 0.3, 0.6)
    out = np.column_stack([v[:, 0] * scales.length, v[:, 1] * y_scale, v[:, 2] * z_scale])
    return Mesh(out, template.triangles)


def deform_template(target: FootDims, toe_shape: ToeShape | None = None) -> Mesh:
    """The standing template (left foot), its toes reshaped if `toe_shape` is given (else the template's own,
    Egyptian), deformed until it measures `target` within FIT_TOLERANCE_MM.

    Length, heel and ball breadth each follow one scale nearly proportionally; ball girth follows the forefoot
    height at a slope found by secant steps."""
    template = standing_template() if toe_shape is None else with_toe_shape(standing_template(), toe_shape)
    kp = template_keypoints()
    scales = _Scales()
    previous: tuple[float, float] | None = None  # (forefoot_height, girth) of the last round
    for _ in range(FIT_MAX_ROUNDS):
        mesh = _deformed(template, scales)
        got = measure(mesh, mesh.vertices_mm[kp["lateral_ball"]], mesh.vertices_mm[kp["medial_ball"]])
        errors = [
            target.length_mm - got.length_mm,
            target.ball_breadth_mm - got.ball_breadth_mm,
            target.ball_girth_mm - got.ball_girth_mm,
            target.heel_breadth_mm - got.heel_breadth_mm,
        ]
        if max(abs(e) for e in errors) < FIT_TOLERANCE_MM:
            return mesh
        height = scales.forefoot_height
        if previous is None or abs(height - previous[0]) < 1e-12:
            next_height = height * (target.ball_girth_mm / got.ball_girth_mm) ** 2
        else:
            slope = (got.ball_girth_mm - previous[1]) / (height - previous[0])
            next_height = height + errors[2] / slope
        lo, hi = FOREFOOT_HEIGHT_SCALE_RANGE
        if not lo <= next_height <= hi and height in (lo, hi):
            break  # the girth needs a forefoot flatter or taller than a foot's
        previous = (height, got.ball_girth_mm)
        scales = _Scales(
            length=scales.length * target.length_mm / got.length_mm,
            heel_breadth=scales.heel_breadth * target.heel_breadth_mm / got.heel_breadth_mm,
            ball_breadth=scales.ball_breadth * target.ball_breadth_mm / got.ball_breadth_mm,
            forefoot_height=float(np.clip(next_height, lo, hi)),
        )
    raise SimulatorError(
        f"cannot shape the template foot to {target}: a ball girth of {target.ball_girth_mm:.0f} mm does not fit "
        f"a ball breadth of {target.ball_breadth_mm:.0f} mm on its forefoot; give dimensions of a plausible foot"
    )


def mirrored(mesh: Mesh) -> Mesh:
    """The other foot: y -> -y, with the triangle winding flipped so normals still point outward."""
    v = mesh.vertices_mm * np.array([1.0, -1.0, 1.0])
    return Mesh(v, np.ascontiguousarray(mesh.triangles[:, ::-1]))


# --- subjects -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Soldier:
    sex: str
    subject_id: str
    dims: FootDims
    body_weight_kg: float


@lru_cache(maxsize=2)
def _ansur(sex: str) -> tuple[_Soldier, ...]:
    """All soldiers of one sex from ANSUR II (mm; weight stored in tenths of kg)."""
    path = _shared_path(_ANSUR_FILES[sex])
    with path.open(encoding="latin-1", newline="") as f:
        return tuple(
            _Soldier(
                sex=sex,
                subject_id=row[_ANSUR_ID_COLUMN[sex]],
                dims=FootDims(
                    length_mm=float(row["footlength"]),
                    ball_breadth_mm=float(row["footbreadthhorizontal"]),
                    ball_girth_mm=float(row["balloffootcircumference"]),
                    heel_breadth_mm=float(row["heelbreadth"]),
                ),
                body_weight_kg=float(row["weightkg"]) / 10.0,
            )
            for row in csv.DictReader(f)
        )


def population_draws(seed: int, sex: str | None = None) -> Iterator[tuple[_Soldier, FootDims]]:
    """Soldiers drawn with replacement for a seed, each with the right-foot dims that go with the soldier's
    (left) foot: the soldier's own plus a normal left/right asymmetry. Deterministic by seed."""
    if sex not in (None, "male", "female"):
        raise SimulatorError(f"unknown sex {sex!r}: use 'male', 'female' or None for either")
    rng = np.random.default_rng(seed)
    while True:
        drawn_sex = sex or ("male" if rng.random() < 0.5 else "female")
        soldiers = _ansur(drawn_sex)
        soldier = soldiers[int(rng.integers(len(soldiers)))]
        d = soldier.dims
        right = FootDims(
            length_mm=d.length_mm + rng.normal(0.0, ASYMMETRY_SD_MM["length"]),
            ball_breadth_mm=d.ball_breadth_mm + rng.normal(0.0, ASYMMETRY_SD_MM["ball_breadth"]),
            ball_girth_mm=d.ball_girth_mm + rng.normal(0.0, ASYMMETRY_SD_MM["ball_girth"]),
            heel_breadth_mm=d.heel_breadth_mm + rng.normal(0.0, ASYMMETRY_SD_MM["heel_breadth"]),
        )
        yield soldier, right


def population_subject(seed: int, sex: str | None = None) -> Subject:
    """A real ANSUR II soldier of that sex (either, 50/50, if None) on the template's shape; same seed, same
    subject, both feet with the seed's toe shape (`population_toe_shape`). The rare soldier whose ball girth is
    too small for the ball breadth to fit on the template's forefoot (see `deform_template`) is passed over for
    the seed's next draw."""
    toes = population_toe_shape(seed)
    for soldier, right_dims in itertools.islice(population_draws(seed, sex), MAX_DRAWS):
        try:
            left, right = deform_template(soldier.dims, toes), deform_template(right_dims, toes)
        except SimulatorError:
            continue
        return Subject(
            left=left,
            right=mirrored(right),
            sex=soldier.sex,
            body_weight_kg=soldier.body_weight_kg,
            source=f"ansur:{soldier.sex}:{soldier.subject_id}",
            left_dims=soldier.dims,
            right_dims=right_dims,
            toe_shape=toes.name,
        )
    raise SimulatorError(f"no soldier of {MAX_DRAWS} drawn for seed {seed} fits the template: report this as a bug")


def template_subject(body_weight_kg: float = 75.0) -> Subject:
    """The standing template, not resized, as the left foot and its mirror image as the right."""
    foot = standing_template()
    kp = template_keypoints()
    dims = measure(foot, foot.vertices_mm[kp["lateral_ball"]], foot.vertices_mm[kp["medial_ball"]])
    return Subject(foot, mirrored(foot), None, body_weight_kg, "template", dims, dims, toe_shape="egyptian")


def mesh_subject(path: str | Path, side: str, body_weight_kg: float = 75.0) -> Subject:
    """A foot scan from a .ply/.stl/.obj file as the subject; the other foot is its mirror image.

    The file must be in mm, +z up, toes toward +x; it is lifted so its lowest point is on z = 0."""
    if side not in ("left", "right"):
        raise SimulatorError(f"unknown side {side!r} for {path}: say which foot the mesh is, 'left' or 'right'")
    if not 20.0 <= body_weight_kg <= 300.0:
        raise SimulatorError(f"body weight {body_weight_kg} kg is not a person's: give it in kg (20-300)")
    try:
        mesh = read_mesh(path)
    except MeshError as e:
        raise SimulatorError(f"cannot use {path} as a subject: {e}") from e
    mesh = Mesh(mesh.vertices_mm - [0.0, 0.0, mesh.vertices_mm[:, 2].min()], mesh.triangles)
    _check_foot(Path(path), mesh)
    dims = measure(mesh, *scanned_ball_points(mesh))
    other = mirrored(mesh)
    left, right = (mesh, other) if side == "left" else (other, mesh)
    return Subject(left, right, None, float(body_weight_kg), str(path), dims, dims)


def _check_foot(path: Path, mesh: Mesh) -> None:
    """Refuse meshes that cannot be a foot in the subject frame, saying what to fix."""
    extent = np.ptp(mesh.vertices_mm, axis=0)
    length, width, height = (float(e) for e in extent)
    if extent.max() < 1.0:
        raise SimulatorError(
            f"{path} is {length:.3f} long: it looks like metres; scale it by 1000 to millimetres"
        )
    problem = foot_extent_problem(length, width, height)
    if problem:
        raise SimulatorError(f"{path} is {problem} along x, y and z: check that it is in mm, the toes point "
                             "toward +x and +z is up")
