"""The last families of the synthetic catalogue: how a LastSpec becomes the closed cavity of a left shoe.

Real shoes are made on lasts of different kinds, and a matcher must not depend on one generator's shapes, so the
catalogue draws each model's last from one of three families (docs/simulator.md, lasts). They differ in where their
girth and breadth sit:
- `superellipse`: parametric sections, a superellipse at every station, widest at mid-height; the forefoot keeps
  the ball's breadth until the toe box narrows over the front quarter (the generator's first family). Both
  parametric families raise the forefoot's top medially, over the first metatarsal head, as a foot's is.
- `foot`: cut from a real foot (the standing FIND template or a population foot, `Donor`): its cross-sections
  with a flat tread as wide as its footprint, toe spring, and a designed toe box ahead of the toes; widest where
  the foot is (low, over the tread), tapering toward the toes as feet do.
- `straight`: a straight, board-lasted last: a brick-like section widest at its flat bottom, the arch filled in,
  a broad heel seat, a forefoot that keeps its breadth to the toe box, a low toe box and less toe lean.

What they share is how they fit the nominal foot of their size (`nominal_foot`: the ANSUR II mean proportions),
measured as feet and lasts are measured: in the vertical section through the foot's ball line (its first and fifth
metatarsal heads, oblique to its axis) the last's tape girth and its breadth across the shoe are the foot's plus an
ease inside the published range of well-fitted shoes (`BALL_GIRTH_EASE_MM`, `BALL_WIDTH_EASE_MM`), plus the model's
girth bias. Each family's two ball knobs (the parametric families' breadth and girth at their widest section, the
foot family's scale across and its breadth's own scale) are solved for that (`_ball_knobs`).

Shoe frame as the importer's (docs/catalog.md): mm, the heel's rear at x = 0, +x toward the toe, the insole at
z = 0, +y lateral, the heel's centre on y = 0. Every cavity is RING_COUNT rings of RING_POINTS points between a
heel and a toe vertex: 2,816 triangles, closed.

A size graded from its model's master last (`Grade`, the brand's grading law in simulator/catalog.py) is the
master's cavity stretched along x to its inner length and scaled across (y about the heel's centre line, z about
the insole) by its ball girth over the master's, as a grading machine scales a model last: breadth follows girth in
the master's (the family's) proportion. Deterministic: the same spec gives the same mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from scipy.spatial import ConvexHull

from core.errors import SimulatorError
from core.mesh import Mesh
from core.vocabulary import HEEL_ZONE_FRACTION
from simulator.comfort import place_foot
from simulator.subjects import (
    FootDims,
    ball_breadth_mm,
    ball_girth_mm,
    deform_template,
    foot_length_mm,
    population_subject,
    standing_template,
)

LAST_FAMILIES = ("superellipse", "foot", "straight")
RING_COUNT = 44  # cross-sections of the generated cavity mesh
RING_POINTS = 32  # points per cross-section: 2,816 triangles per interior
RING_ANGLES = 2 * np.pi * np.arange(RING_POINTS) / RING_POINTS  # from +y toward +z
SUPERELLIPSE_EXPONENT = 2.6
TOE_SHAPES = {"round": 0.5, "square": 0.3, "pointed": 0.8}  # exponent of the toe box's taper
WARP_FROM = (0.4, 0.6)  # a parametric family's forefoot section shape takes over between these fractions
RISE_FROM = (0.45, 0.65)  # ...and its forefoot's top rises medially between these
BALL_AT = 0.68  # the parametric families' widest section (fraction of the inner length)
# The nominal foot of a size: the ANSUR II means of both sexes (docs/simulator.md, population data), over its length
NOMINAL_BREADTH, NOMINAL_GIRTH, NOMINAL_HEEL = 0.376, 0.929, 0.269
NOMINAL_REFERENCE_MM = 265.0  # the nominal foot is made once, at this length, and scaled to the others
# How a last fits the nominal foot of its size, last minus foot in the foot's ball section, inside the published
# ranges of well-fitted shoes (docs/fit-model.md, fit priors: girth -6.1..+4.8 mm, width -0.1..+2.9 mm): the width in
# the middle; the girth in the upper half, because the simulated foot is rigid and no last is shaped quite like it
# (in the middle, -0.65 mm, every family presses the forefoot's skin more than simulator.comfort lets pass:
# docs/simulator.md, Lasts)
BALL_GIRTH_EASE_MM = 3.0
BALL_WIDTH_EASE_MM = 1.4
WIDTH_PER_GIRTH_BIAS = 0.3  # a model's girth bias widens its ball by this much of it
BALL_FIT_TOLERANCE_MM = 0.05  # the knobs are solved until girth and width are this near (Newton steps)...
BALL_FIT_ROUNDS = 12  # ...in at most this many rounds
BALL_FIT_STEP = 1e-3  # relative step of a knob for the numerical derivatives
# the `foot` family
FOOT_STATIONS = 128  # cross-sections of a donor foot, evenly along its length
TREAD_BAND_MM = 4.0  # the footprint: the part of a section this near its lowest point (the sole spreads under load)
TREAD_REACH_MM = 10.0  # sections whose lowest point is higher than this have no tread (the heel's curve, the arch)
TREAD_SMOOTHING = 5  # the footprint's edges are a running median over this many donor sections
CENTRE_MAX_HEIGHT_MM = 25.0  # a section's centre stays this low (or 5 mm over its bottom), under every collar
THROAT = (0.25, 0.5)  # the opening falls from the collar here to the foot's top there (fractions of the foot)
TOE_BOX_FROM = 0.9  # the designed toe box takes over from the foot here (fraction of the foot's length)
TOE_SPRING_MM = 5.0  # the cavity's toe end lifted this much, growing over the front 20% of the length
TOE_SPRING_FROM = 0.8


@dataclass(frozen=True)
class Donor:
    """The foot a `foot`-family last is cut from: the standing template (seed None), or the population subject of
    that seed (simulator.subjects.population_subject) of that sex ("male", "female", None: either)."""

    seed: int | None = None
    sex: str | None = None


@dataclass(frozen=True)
class Grade:
    """A size graded from its model's master last by the brand's law: the master is made for this foot length,
    and the law adds this much ball girth (size steps and width fittings)."""

    master_foot_length_mm: float
    girth_change_mm: float


@dataclass(frozen=True)
class LastSpec:
    """Everything that shapes one generated interior (mm)."""

    foot_length_mm: float  # the nominal foot of the size label
    allowance_mm: float
    length_bias_mm: float  # brand + model: positive runs large
    girth_bias_mm: float  # ball girth over the family's design for the nominal foot (the model's)
    collar_height_mm: float
    toe_box_height_mm: float
    toe_shape: str
    toe_offset_mm: float  # how far the toe leans medially (-y) in a left shoe
    family: str = "superellipse"
    donor: Donor = field(default_factory=Donor)  # the `foot` family's foot
    grade: Grade | None = None  # None: a last made for its own foot (a master)

    def __post_init__(self):
        if self.family not in LAST_FAMILIES:
            raise SimulatorError(f"unknown last family {self.family!r}: use one of {', '.join(LAST_FAMILIES)}")
        if self.toe_shape not in TOE_SHAPES:
            raise SimulatorError(f"unknown toe shape {self.toe_shape!r}: use one of {', '.join(TOE_SHAPES)}")

    @property
    def inner_length_mm(self) -> float:
        return self.foot_length_mm + self.allowance_mm + self.length_bias_mm

    @property
    def master(self) -> LastSpec:
        """The last this size is graded from: itself when it is not graded."""
        if self.grade is None:
            return self
        return replace(self, foot_length_mm=self.grade.master_foot_length_mm, grade=None)

    @property
    def ball_girth_mm(self) -> float:
        """The tape girth round the ball line (`ball_line_mm`): the nominal foot's plus the ease and the model's
        girth bias; a graded size's, its master's plus what the brand's law adds."""
        if self.grade is not None:
            return self.master.ball_girth_mm + self.grade.girth_change_mm
        return NOMINAL_GIRTH * self.foot_length_mm + BALL_GIRTH_EASE_MM + self.girth_bias_mm

    @property
    def ball_width_mm(self) -> float:
        """The breadth across the shoe of the section through the ball line: the nominal foot's ball breadth plus
        the ease (and a share of the girth bias); a graded size's follows its girth in the master's proportion."""
        if self.grade is not None:
            master = self.master
            return master.ball_width_mm * self.ball_girth_mm / master.ball_girth_mm
        return NOMINAL_BREADTH * self.foot_length_mm + BALL_WIDTH_EASE_MM + WIDTH_PER_GIRTH_BIAS * self.girth_bias_mm

    @property
    def ball_line_mm(self) -> np.ndarray:
        """(2, 3) the lateral and medial ends of the ball line in the shoe frame: where the nominal foot of the size
        has its fifth and first metatarsal heads, its heel at the counter; a graded size's is its master's,
        stretched and scaled with the last."""
        if self.grade is not None:
            master = self.master
            girth_scale = self.ball_girth_mm / master.ball_girth_mm
            return master.ball_line_mm * [self.inner_length_mm / master.inner_length_mm, girth_scale, girth_scale]
        return _nominal_ball_line() * self.foot_length_mm


def last_interior(spec: LastSpec) -> Mesh:
    """The closed cavity of a left shoe on the last `spec` describes, in the shoe frame."""
    if spec.grade is not None:
        return _graded(last_interior(spec.master), spec.inner_length_mm / spec.master.inner_length_mm,
                       spec.ball_girth_mm / spec.master.ball_girth_mm)
    return _builder(spec)(_ball_knobs(spec))


def nominal_foot(length_mm: float) -> Mesh:
    """The nominal foot of a size: the standing template (left, subject frame) deformed to the ANSUR II mean
    proportions (NOMINAL_BREADTH, NOMINAL_GIRTH, NOMINAL_HEEL) at this length. Made once, and scaled: the
    proportions are the same at every length."""
    reference = _nominal_reference()
    return Mesh(reference.vertices_mm * (length_mm / foot_length_mm(reference)), reference.triangles)


@lru_cache(maxsize=1)
def _nominal_reference() -> Mesh:
    """The nominal foot at NOMINAL_REFERENCE_MM (~1.7 s: the template's deformation)."""
    length = NOMINAL_REFERENCE_MM
    return deform_template(FootDims(length, NOMINAL_BREADTH * length, NOMINAL_GIRTH * length, NOMINAL_HEEL * length))


@lru_cache(maxsize=1)
def _nominal_ball_line() -> np.ndarray:
    """(2, 3) the nominal foot's ball landmarks (lateral, medial), placed in the shoe as the customer's foot is
    (simulator.comfort.place_foot), over its length."""
    placed = place_foot(nominal_foot(NOMINAL_REFERENCE_MM), "left")
    return np.stack([placed.ball.lateral_mm, placed.ball.medial_mm]) / placed.length_mm


def _ball_measures_mm(mesh: Mesh, ball_line_mm: np.ndarray) -> tuple[float, float]:
    """(tape girth, breadth across the shoe) of a cavity's section through a ball line (`LastSpec.ball_line_mm`):
    a last measured as a foot is (simulator.subjects.ball_girth_mm and ball_breadth_mm)."""
    lateral, medial = ball_line_mm
    return ball_girth_mm(mesh, lateral, medial), ball_breadth_mm(mesh, lateral, medial)


def _builder(spec: LastSpec) -> Callable[[np.ndarray], Mesh]:
    """The master cavity of `spec` as a function of its family's two ball knobs."""
    if spec.family == "foot":
        return lambda knobs: _foot_interior(spec, *knobs)
    profile = _PROFILES[spec.family]
    return lambda knobs: _parametric_interior(spec, profile, *knobs)


@lru_cache(maxsize=512)
def _ball_knobs(spec: LastSpec) -> np.ndarray:
    """The knobs of a master's family that give the section through its ball line the spec's girth and width:
    Newton steps with numerical derivatives. The parametric families' knobs are the breadth and girth of their
    widest section (at BALL_AT), starting from the spec's own; the foot family's are the scale across and the
    breadth's own scale, starting from the donor's proportions. Cached, read-only: every graded size of the model
    asks again."""
    build, target, line = _builder(spec), np.array([spec.ball_girth_mm, spec.ball_width_mm]), spec.ball_line_mm
    if spec.family == "foot":
        knobs = np.array([spec.foot_length_mm / _foot_profile(spec.donor).length_mm, 1.0])
    else:
        knobs = np.array([spec.ball_width_mm, spec.ball_girth_mm])
    for _ in range(BALL_FIT_ROUNDS):
        got = np.array(_ball_measures_mm(build(knobs), line))
        error = target - got
        if np.abs(error).max() < BALL_FIT_TOLERANCE_MM:
            knobs.setflags(write=False)
            return knobs
        slopes = np.column_stack([(np.array(_ball_measures_mm(build(knobs + step), line)) - got) / step.sum()
                                  for step in np.diag(BALL_FIT_STEP * knobs)])
        knobs = knobs + np.linalg.solve(slopes, error)
    raise SimulatorError(f"cannot give a {spec.family} last a ball girth of {spec.ball_girth_mm:.1f} mm and a width "
                         f"of {spec.ball_width_mm:.1f} mm for a {spec.foot_length_mm:.0f} mm foot: report this as a "
                         "bug")


def _graded(master: Mesh, length_scale: float, girth_scale: float) -> Mesh:
    return Mesh(master.vertices_mm * [length_scale, girth_scale, girth_scale], master.triangles)


# --- the parametric families: superellipse and straight ------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    """How a parametric family lays its breadth and height along the length (fractions f of the inner length)."""

    heel_per_foot: float  # the heel's breadth (to f = 0.2) over the foot length
    nodes: tuple[float, ...]  # from f = 0.42 (the arch) to the toe...
    of_ball: tuple[float, ...]  # ...the breadth over the ball breadth
    toe_zone: float  # the toe box narrows over this front share of the length
    ball_hold_to: float  # the section keeps the ball's height from f = 0.68 to here (0: it falls at once)
    toe_box_at: float  # where the toe box has the spec's toe-box height
    warp: float  # the forefoot's section height runs as ((1 + sin) / 2) ** warp: 1 widest at mid-height, more lower
    toe_box: float  # the toe box's height over the spec's
    lean: float  # the toe's medial lean over the spec's
    rise: float  # the forefoot's heights times 1 + rise at its medial side, 1 - rise at its lateral side


_PROFILES = {
    "superellipse": _Profile(0.25, (0.42, 0.68, 0.76, 1.0), (0.82, 1.0, 0.99, 1.0), 0.25, 0.0, 0.85, 1.0, 1.0, 1.0,
                             0.4),
    "straight": _Profile(0.27, (0.42, 0.68, 0.84, 1.0), (0.93, 1.0, 0.99, 1.0), 0.15, 0.78, 0.85, 3.5, 0.85, 0.7, 0.4),
}


def _parametric_interior(spec: LastSpec, p: _Profile, ball_mm: float, girth_mm: float) -> Mesh:
    """The cavity of a parametric family, its widest section (at BALL_AT) `ball_mm` broad and `girth_mm` round."""
    length = spec.inner_length_mm
    f = _ring_fractions()
    rear = np.sqrt(np.minimum(f / 0.08, 1.0))
    front = np.minimum((1.0 - f) / p.toe_zone, 1.0) ** TOE_SHAPES[spec.toe_shape]
    ball_height = _height_for_girth(ball_mm, girth_mm, p.warp)
    foot = spec.foot_length_mm
    toe_box = p.toe_box * spec.toe_box_height_mm
    heel = p.heel_per_foot * foot
    width = rear * front * np.interp(f, [0.0, 0.2, *p.nodes], [heel, heel, *(k * ball_mm for k in p.of_ball)])
    hold = ([p.ball_hold_to], [ball_height]) if p.ball_hold_to else ([], [])
    height = np.interp(f, [0.0, 0.3, 0.5, BALL_AT, *hold[0], p.toe_box_at, 1.0],
                       [spec.collar_height_mm, spec.collar_height_mm, 0.24 * foot, ball_height, *hold[1], toe_box,
                        0.4 * toe_box])
    centre_y = -p.lean * spec.toe_offset_mm * np.clip((f - 0.45) / 0.55, 0.0, 1.0) ** 2
    cos, sin = _superellipse(RING_ANGLES)
    warp = 1.0 + (p.warp - 1.0) * _smoothstep(f, *WARP_FROM)[:, None]  # the heel and instep keep a round section
    rise = 1.0 - p.rise * _smoothstep(f, *RISE_FROM)[:, None] * cos  # cos -1: the medial side
    rings = np.stack([
        np.repeat(f * length, RING_POINTS),
        (centre_y[:, None] + 0.5 * width[:, None] * cos).ravel(),
        (height[:, None] * _lift(sin, warp) * rise).ravel(),
    ], axis=1)
    heel_point = [0.0, 0.0, 0.5 * spec.collar_height_mm]
    toe = [length, centre_y[-1], 0.5 * height[-1]]
    return Mesh(np.vstack([rings, [heel_point, toe]]), tube_triangles(RING_COUNT, RING_POINTS))


def _ring_fractions() -> np.ndarray:
    """Where the rings lie, as fractions of the inner length: denser at the heel and the toe."""
    return 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, RING_COUNT + 2)[1:-1])


def _smoothstep(u: np.ndarray, start: float, end: float) -> np.ndarray:
    t = np.clip((u - start) / (end - start), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _lift(sin: np.ndarray, warp: float | np.ndarray) -> np.ndarray:
    """Height over the section's height of each outline point: (1 + sin) / 2, warped toward the insole."""
    return (0.5 * (1.0 + sin)) ** warp


def _superellipse(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    power = 2.0 / SUPERELLIPSE_EXPONENT
    cos, sin = np.cos(angles), np.sin(angles)
    return np.sign(cos) * np.abs(cos) ** power, np.sign(sin) * np.abs(sin) ** power


def _height_for_girth(width_mm: float, girth_mm: float, warp: float = 1.0) -> float:
    """The section height that gives a (warped) superellipse of this width the wanted perimeter (bisection)."""
    cos, sin = _superellipse(np.linspace(0.0, 2 * np.pi, 257))
    across, up = np.diff(0.5 * width_mm * cos), np.diff(_lift(sin, warp))
    low, high = 5.0, 3.0 * width_mm
    for _ in range(50):
        mid = 0.5 * (low + high)
        perimeter = np.sqrt(across * across + (mid * up) ** 2).sum()
        low, high = (mid, high) if perimeter < girth_mm else (low, mid)
    return 0.5 * (low + high)


@lru_cache(maxsize=4)
def tube_triangles(rings: int, points: int) -> np.ndarray:
    """Triangles of a closed tube: quads between neighbouring rings, fans to the heel and toe vertices,
    counter-clockwise seen from outside. Read-only: every cavity of the same rings shares them."""
    ring = np.arange(points)
    nxt = (ring + 1) % points
    tris = []
    for r in range(rings - 1):
        a, b = r * points + ring, r * points + nxt
        c, d = (r + 1) * points + ring, (r + 1) * points + nxt
        tris += [np.stack([a, b, d], axis=1), np.stack([a, d, c], axis=1)]
    heel, toe = rings * points, rings * points + 1
    last = (rings - 1) * points
    tris += [np.stack([np.full(points, heel), nxt, ring], axis=1),
             np.stack([np.full(points, toe), last + ring, last + nxt], axis=1)]
    triangles = np.vstack(tris).astype(np.int32)
    triangles.setflags(write=False)
    return triangles


# --- the foot family -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FootProfile:
    """A donor foot's cross-sections, ready to be cut into lasts: at FOOT_STATIONS fractions `u` of its length,
    each section's centre and its radii at RING_ANGLES (convex, with the flat tread), in the donor's mm."""

    u: np.ndarray  # (S,)
    centre_mm: np.ndarray  # (S, 2): y, z
    radii_mm: np.ndarray  # (S, RING_POINTS)
    top_mm: np.ndarray  # (S,) the section's highest point
    length_mm: float  # the donor's foot length


@lru_cache(maxsize=16)
def _foot_profile(donor: Donor) -> _FootProfile:
    """The donor's left foot cut into sections, once per process (~0.2 s, and ~0.2 s to make a population foot)."""
    mesh = standing_template() if donor.seed is None else population_subject(donor.seed, donor.sex).left
    length = foot_length_mm(mesh)
    v = mesh.vertices_mm - [mesh.vertices_mm[:, 0].max() - length, 0.0, 0.0]  # the pternion at x = 0
    u = (np.arange(FOOT_STATIONS) + 0.5) / FOOT_STATIONS
    sections = _cut(v, mesh.triangles, u * length)
    treads = _treads(sections)
    centres, radii, tops = [], [], []
    for points, tread in zip(sections, treads):
        if not np.isnan(tread).any():
            points = np.vstack([points, [[tread[0], 0.0], [tread[1], 0.0]]])
        hull = points[ConvexHull(points).vertices]
        low = points[points[:, 1] <= points[:, 1].min() + 2 * CENTRE_MAX_HEIGHT_MM]
        bottom = hull[:, 1].min()
        centre = np.array([0.5 * (low[:, 0].min() + low[:, 0].max()),
                           min(0.5 * (bottom + hull[:, 1].max()), max(CENTRE_MAX_HEIGHT_MM, bottom + 5.0))])
        centres.append(centre)
        radii.append(_polar_radii(hull, centre))
        tops.append(hull[:, 1].max())
    return _FootProfile(u, np.array(centres), np.array(radii), np.array(tops), length)


def _cut(vertices: np.ndarray, triangles: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """The (y, z) points where the mesh's edges cross each plane at x (evenly spaced), all planes at once: each
    edge is found under the planes between its ends."""
    edges = triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    edges = edges[edges[:, 0] < edges[:, 1]]  # each edge of a closed mesh once
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    lo, hi = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    step = x[1] - x[0]
    first = np.maximum(np.ceil((lo - x[0]) / step).astype(int), 0)
    count = np.maximum(np.minimum(np.floor((hi - x[0]) / step).astype(int), len(x) - 1) - first + 1, 0)
    edge = np.repeat(np.arange(len(edges)), count)
    plane = np.repeat(first, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    a, b = a[edge], b[edge]
    t = (x[plane] - a[:, 0]) / (b[:, 0] - a[:, 0])
    points = (a + t[:, None] * (b - a))[:, 1:]
    order = np.argsort(plane, kind="stable")
    return np.split(points[order], np.searchsorted(plane[order], np.arange(1, len(x))))


def _treads(sections: list[np.ndarray]) -> np.ndarray:
    """(S, 2) the footprint's y edges at each section (NaN where the section does not reach the floor), their
    running median along the foot so that the tread's edges run smoothly."""
    edges = np.full((len(sections), 2), np.nan)
    for i, points in enumerate(sections):
        low = points[:, 1].min()
        if low <= TREAD_REACH_MM:
            band = points[points[:, 1] <= low + TREAD_BAND_MM, 0]
            edges[i] = band.min(), band.max()
    half = TREAD_SMOOTHING // 2
    smooth = edges.copy()
    for i in range(len(sections)):
        if not np.isnan(edges[i, 0]):
            smooth[i] = np.nanmedian(edges[max(0, i - half):i + half + 1], axis=0)
    return smooth


def _polar_radii(polygon: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Distance from `centre` to a convex polygon's boundary along each of RING_ANGLES."""
    p = polygon - centre
    q = np.roll(p, -1, axis=0)
    e = q - p
    d = np.stack([np.cos(RING_ANGLES), np.sin(RING_ANGLES)], axis=1)  # (A, 2)
    det = e[None, :, 0] * d[:, None, 1] - e[None, :, 1] * d[:, None, 0]  # (A, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (e[None, :, 0] * p[None, :, 1] - e[None, :, 1] * p[None, :, 0]) / det
        s = (d[:, None, 0] * p[None, :, 1] - d[:, None, 1] * p[None, :, 0]) / det
    r = np.where((r > 0) & (s >= -1e-9) & (s <= 1 + 1e-9), r, np.inf)
    return r.min(axis=1)


def _donor_sections(profile: _FootProfile, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N, 2) and radii (N, RING_POINTS) of the donor's sections at fractions `u` of its length, linearly
    between its stations; before its first station the sections shrink to the heel's point, after its last they
    are empty."""
    position = np.clip(u * len(profile.u) - 0.5, 0.0, len(profile.u) - 1.0)
    k = np.minimum(position.astype(int), len(profile.u) - 2)
    t = (position - k)[:, None]
    centres = (1 - t) * profile.centre_mm[k] + t * profile.centre_mm[k + 1]
    radii = (1 - t) * profile.radii_mm[k] + t * profile.radii_mm[k + 1]
    radii *= np.sqrt(np.clip(u / profile.u[0], 0.0, 1.0))[:, None]
    radii[u > 1.0] = 0.0
    return centres, radii


def _foot_interior(spec: LastSpec, scale: float, breadth_scale: float) -> Mesh:
    """The donor's sections stretched to the nominal foot's length and scaled across by `scale`, cut at the
    opening, a designed toe box ahead of the toes, toe spring; then its breadth alone scaled by `breadth_scale`
    (a last maker widens or narrows a model foot to the breadth the last is made for)."""
    profile = _foot_profile(spec.donor)
    foot, length = spec.foot_length_mm, spec.inner_length_mm
    x = _ring_fractions() * length
    u = x / foot
    centres, radii = _donor_sections(profile, u)
    centres, radii = centres * scale, radii * scale
    radii = np.minimum(radii, _opening_radii(profile, spec, u, centres, scale))
    centres, radii = _with_toe_box(spec, profile, x, u, centres, radii, scale)
    lift = TOE_SPRING_MM * np.clip((x / length - TOE_SPRING_FROM) / (1.0 - TOE_SPRING_FROM), 0.0, 1.0) ** 2
    rings = np.stack([
        np.repeat(x, RING_POINTS),
        (centres[:, :1] + radii * np.cos(RING_ANGLES)).ravel(),
        (centres[:, 1:] + lift[:, None] + radii * np.sin(RING_ANGLES)).ravel(),
    ], axis=1)
    heel = [0.0, centres[0, 0], centres[0, 1]]
    toe = [length, centres[-1, 0], centres[-1, 1] + lift[-1]]
    vertices = np.vstack([rings, [heel, toe]]) * [1.0, breadth_scale, 1.0]
    heel_zone = vertices[vertices[:, 0] <= HEEL_ZONE_FRACTION * length]
    vertices[:, 1] -= 0.5 * (heel_zone[:, 1].min() + heel_zone[:, 1].max())  # the heel's centre on y = 0
    return Mesh(vertices, tube_triangles(RING_COUNT, RING_POINTS))


def _opening_radii(profile: _FootProfile, spec: LastSpec, u: np.ndarray, centres: np.ndarray,
                   scale: float) -> np.ndarray:
    """The radii that keep each ring under the shoe's opening: the collar's height over the heel, falling (or
    rising) across the throat to the foot's own top at THROAT[1], nothing ahead of it (the foot's top is the
    cavity's there)."""
    top_at_throat = scale * float(np.interp(THROAT[1], profile.u, profile.top_mm))
    cap = np.interp(u, THROAT, [spec.collar_height_mm, top_at_throat])
    cap[u > THROAT[1]] = np.inf
    sin = np.sin(RING_ANGLES)
    with np.errstate(divide="ignore"):
        return np.where(sin > 1e-9, (cap[:, None] - centres[:, 1:]) / sin, np.inf)


def _with_toe_box(spec: LastSpec, profile: _FootProfile, x: np.ndarray, u: np.ndarray, centres: np.ndarray,
                  radii: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Rings from TOE_BOX_FROM of the foot on: the foot's sections united with a designed toe box, a
    superellipse standing on the insole whose breadth narrows to the tip by the toe shape, whose roof falls from
    the foot's (or the spec's toe-box height) to 0.4 of the spec's at the tip, and whose centre leans toe_offset
    medially from the toes' centre to the tip. Past the foot's toes a ring is the toe box alone, about its own
    centre."""
    start = TOE_BOX_FROM * spec.foot_length_mm
    box = x >= start
    start_centres, start_radii = _donor_sections(profile, np.array([TOE_BOX_FROM]))
    start_centre = scale * start_centres[0]
    directions = np.stack([np.cos(RING_ANGLES), np.sin(RING_ANGLES)], axis=1)
    start_outline = start_centre + scale * start_radii[0][:, None] * directions
    start_breadth, start_top = np.ptp(start_outline[:, 0]), start_outline[:, 1].max()
    tau = (x[box] - start) / (spec.inner_length_mm - start)
    breadth = start_breadth * (1.0 - tau) ** TOE_SHAPES[spec.toe_shape]
    roof_start = max(start_top, spec.toe_box_height_mm)
    roof = roof_start - (roof_start - 0.4 * spec.toe_box_height_mm) * tau ** 2
    box_centre = np.stack([start_centre[0] - spec.toe_offset_mm * tau, 0.5 * roof], axis=1)
    centres, radii = centres.copy(), radii.copy()
    past_toes = u[box] > 1.0
    centres[np.flatnonzero(box)[past_toes]] = box_centre[past_toes]
    radii[box] = np.maximum(radii[box], _box_radii(centres[box] - box_centre, 0.5 * breadth, 0.5 * roof))
    return centres, radii


def _box_radii(offset: np.ndarray, half_breadth: np.ndarray, half_height: np.ndarray) -> np.ndarray:
    """(N, RING_POINTS) distances from points `offset` from a superellipse's centre to its outline along
    RING_ANGLES (bisection; a point outside it gets 0)."""
    d = np.stack([np.cos(RING_ANGLES), np.sin(RING_ANGLES)], axis=1)
    a = np.maximum(half_breadth, 1e-6)[:, None]
    b = np.maximum(half_height, 1e-6)[:, None]

    def inside(r):
        y = (offset[:, :1] + r * d[:, 0]) / a
        z = (offset[:, 1:] + r * d[:, 1]) / b
        return np.abs(y) ** SUPERELLIPSE_EXPONENT + np.abs(z) ** SUPERELLIPSE_EXPONENT <= 1.0

    low = np.zeros((len(offset), RING_POINTS))
    high = np.full_like(low, 2.0) * np.maximum(a, b)
    low_inside = inside(low)
    for _ in range(30):
        mid = 0.5 * (low + high)
        ok = inside(mid)
        low, high = np.where(ok, mid, low), np.where(ok, high, mid)
    return np.where(low_inside, low, 0.0)
