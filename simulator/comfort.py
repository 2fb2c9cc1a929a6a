"""The TRUE comfort of a true foot in a true shoe interior: what a simulated customer feels when trying a size,
whether they keep it, and what they say when they do not.

This is the simulator playing the customer, so it reads only the simulator's truth: the subject's foot mesh (with
the FIND template's landmarks) and the true cavity mesh of the size (simulator.lasts.last_interior of
simulator.catalog.true_last), whatever family of last it is. It never reads size labels, the catalogue database or
fitcore's measuring and matching code, and it measures differently from the matcher: exact signed distances of
samples of the whole foot surface to the cavity's triangles (open3d), tape-measure girths of the foot's and the
cavity's sections through the foot's own ball landmarks, a free length from the cavity's tip, a settled pose of the
foot, where the matcher uses 48 cross-sections of 36 radial clearances of a scanned-or-graded interior.
docs/fit-quality.md states the model, its bands and its assumptions.

Placing the foot (shoe frame, docs/catalog.md): a right foot is mirrored into a left one; the foot is turned about
z so its own axis (heel landmark to second toe tip) runs along +x, its heel breadth is centred on y = 0, its sole
stands on the insole (z = 0); in each interior it slides forward until the back of its heel rests against the
counter, then turns about the heel and shifts sideways to where it is pressed least.

Regions along the foot (u = x / foot length): heel (u < 0.25), instep (0.25-0.55, the laced throat), forefoot
(0.55-0.8, the ball), toes (from 0.8: free length in front of the toes). The ball is judged the way lasts and feet
are measured in the studies its bands come from, so that any kind of last is judged alike: in the vertical
section through the foot's two ball landmarks, the girth is a tape measure around the section (the cavity's minus
the foot's) and the breadth its widest extent across the shoe (the cavity's minus the foot's); where the cavity is
narrower than the foot at the height the foot needs it, the wall presses, which the pressure terms (the skin's
depth in the wall, region by region) count. Each measure is compared with a comfortable band (shifted by the
customer's own Preferences); what lies outside costs (excess / perception threshold)^2 ("just noticeable
differences" squared), with the threshold on the tight side half that on the roomy side (tightness hurts, room
only slips). The customer's comfort is minus the weighted sum; 0 is a perfect fit.

A customer keeps a size when no region is tight by more than one threshold and the pair's cost is within
KEPT_MARGIN of their best size of that model (the lowest cost over its sizes and width fittings, issue 14's rule as
written); otherwise they name the worst complaint's region and direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import open3d as o3d

from core.errors import SimulatorError
from core.mesh import Mesh
from core.vocabulary import FIT_DIRECTIONS, HEEL_ZONE_HEIGHT_MM, SIDES
from simulator.subjects import ball_section, mirrored, standing_template, template_keypoints

SAMPLES_PER_MM2 = 0.03  # foot surface samples, ~6 mm apart (a foot has ~80,000 mm2 of skin: ~2,500 samples)
SAMPLE_SEED = 0
# regions, as fractions of the foot's length
HEEL_END, INSTEP_END, FOREFOOT_END = 0.25, 0.55, 0.8
SIDE_NORMAL_Y = 0.7  # a sample faces sideways (medial or lateral) when |normal y| exceeds this
HEEL_BACK_MM = 10.0  # the back of the heel: samples this near the pternion...
HEEL_BACK_HEIGHT_MM = (8.0, 40.0)  # ...between these heights, which meet the heel counter
HEEL_SEAT_PRESS_MM = 1.0  # the heel's soft tissue gives this much against the counter
HEEL_SEAT_MAX_SLIDE_MM = 12.0  # a heel cup that holds the foot further forward is not a shoe for it
HEEL_SEAT_COARSE_MM = 1.0
HEEL_SEAT_STEP_MM = 0.1
SETTLE_SUBSAMPLE = 10  # the settling search uses every 10th sample
SETTLE_GRIDS = ((2.0, 2.0, 1), (1.0, 1.0, 1))  # (yaw deg, shift mm, points each side): coarse, then fine
SETTLE_MAX_YAW_DEG = 8.0
SETTLE_MAX_SHIFT_MM = 4.0
# perception thresholds (docs/fit-model.md, fit priors): one size step of length, one width fitting of girth
LENGTH_JND_MM = 20.0 / 3.0
GIRTH_JND_MM = 6.4
GIRTH_PER_BREADTH = 2.47  # a forefoot's girth is ~2.47x its breadth (ANSUR)
WIDTH_JND_MM = GIRTH_JND_MM / GIRTH_PER_BREADTH  # a width fitting's breadth
TIGHT_STEEPNESS = 2.0  # the tight side's threshold is this much smaller than the roomy side's
KEPT_MARGIN = 1.0  # a size within this cost (squared thresholds) of the best is as good to the customer...
TIGHT_LIMIT = 1.0  # ...unless a region is tight by more than one threshold (its cost on the tight side exceeds 1)


@dataclass(frozen=True)
class Band:
    """A comfortable range of a fit value (mm): inside it costs nothing."""

    low_mm: float
    high_mm: float

    def shifted(self, by_mm: float) -> "Band":
        return Band(self.low_mm + by_mm, self.high_mm + by_mm)


# The customer's preferred toe room (free length in front of the longest toe, standing), docs/fit-model.md.
TOE_ROOM_MM = {
    "walking": Band(15.0, 20.0),
    "casual": Band(15.0, 20.0),
    "running": Band(12.0, 20.0),
    "trail": Band(11.0, 17.0),  # between running and hiking (not in the brief: an assumption)
    "hiking": Band(10.0, 12.0),
    "cycling": Band(3.0, 10.0),
}
SKI_TOE_ROOM_MM = {  # shell check, by the boot's level: race/performance 6-10 mm to comfort 13-25 mm
    "expert": Band(6.0, 10.0),
    "advanced": Band(8.0, 13.0),
    "intermediate": Band(12.0, 18.0),
    "beginner": Band(15.0, 25.0),
}
# The ball, last minus foot in well-fitted shoes (docs/fit-model.md, fit priors): ball girth -6.1..+4.8 mm, ball
# breadth -0.1..+2.9 mm. Both are read as lasts and feet are measured, on any cavity: in the section through the
# foot's ball landmarks, the girth as a tape measure around it, the breadth as its widest extent across the shoe.
FOREFOOT_GIRTH = Band(-6.1, 4.8)
FOREFOOT_WIDTH = Band(-0.1, 2.9)  # medial + lateral
# Pressures: 2 pi x the mean depth of a region's skin in the wall (a uniform offset c changes a convex girth by
# 2 pi c), i.e. how much girth the soft tissue must give. A shoe shaped like the foot reads ~0; the bands are what
# the soft tissue gives without complaint, about 1 mm over the toes and the ball, 1.4 mm under the laces.
TOE_BOX_PRESSURE = Band(0.0, 6.0)
FOREFOOT_PRESSURE = Band(0.0, 6.0)
INSTEP_PRESSURE = Band(0.0, 9.0)  # the laces give a few mm more
HEEL_WIDTH = Band(-3.0, 4.0)  # medial + lateral clearance: the heel pad gives; tighter pinches, looser slips
# Snug shoes (cycling; race and performance ski boots): the toes are expected to touch the toe box and the heel
# to be locked (docs/fit-model.md: "a few mm to 10 mm with the heel locked").
SNUG_TOE_BOX_PRESSURE = Band(0.0, 12.0)
SNUG_HEEL_WIDTH = Band(-3.0, 2.0)


@dataclass(frozen=True)
class Term:
    """One thing a customer feels: the region (core.vocabulary.REGIONS) they name when it is wrong, its perception
    threshold (mm, roomy side) and its weight in the comfort."""

    region: str
    jnd_mm: float
    weight: float


TERMS = {
    "toes": Term("toe", LENGTH_JND_MM, 1.0),  # free length: too little = the toes hit, too much = too long
    "toe_box": Term("toe", GIRTH_JND_MM, 1.0),
    "forefoot_girth": Term("ball", GIRTH_JND_MM, 2.0),  # forefoot tightness is the top cause of returns
    "forefoot_width": Term("ball", WIDTH_JND_MM, 2.0),
    "forefoot_pressure": Term("ball", GIRTH_JND_MM, 1.0),
    "instep": Term("instep", GIRTH_JND_MM, 0.5),
    "heel": Term("heel", WIDTH_JND_MM, 0.5),
}
WEIGHTS = {name: term.weight for name, term in TERMS.items()}


@dataclass(frozen=True)
class Preferences:
    """One customer's own taste on top of their category's bands (drawn by simulator.customers.preferences_of)."""

    toe_room_mm: float = 0.0  # + wants more room in front of the toes
    forefoot_girth_mm: float = 0.0  # + roomy, - snug; the breadth band moves by this / GIRTH_PER_BREADTH
    heel_width_mm: float = 0.0  # - wants the heel locked, + a looser heel


@dataclass(frozen=True)
class Preference:
    """What a customer wants in a kind of shoe: the bands that vary by category and by person."""

    toe_room: Band
    toe_box_pressure: Band = TOE_BOX_PRESSURE
    heel_width: Band = HEEL_WIDTH
    forefoot_girth: Band = FOREFOOT_GIRTH
    forefoot_width: Band = FOREFOOT_WIDTH


def preference(category: str, level: str = "", personal: Preferences | None = None) -> Preference:
    """The customer's preference in a shoe of this category (ski boots: of this level); `personal` shifts the bands
    (None: the category's own). The toe room never drops below none: nobody wants toes pressed into the toe."""
    if category == "ski":
        if level not in SKI_TOE_ROOM_MM:
            raise SimulatorError(f"ski boot level {level!r} unknown: use one of {', '.join(SKI_TOE_ROOM_MM)}")
        toe_room = SKI_TOE_ROOM_MM[level]
    elif category in TOE_ROOM_MM:
        toe_room = TOE_ROOM_MM[category]
    else:
        raise SimulatorError(f"category {category!r} unknown: use one of {', '.join([*TOE_ROOM_MM, 'ski'])}")
    snug = category == "cycling" or level in ("expert", "advanced") and category == "ski"
    toe_box, heel = (SNUG_TOE_BOX_PRESSURE, SNUG_HEEL_WIDTH) if snug else (TOE_BOX_PRESSURE, HEEL_WIDTH)
    if personal is None:
        return Preference(toe_room, toe_box, heel)
    return Preference(
        toe_room=toe_room.shifted(max(personal.toe_room_mm, -toe_room.low_mm)),
        toe_box_pressure=toe_box,
        heel_width=heel.shifted(personal.heel_width_mm),
        forefoot_girth=FOREFOOT_GIRTH.shifted(personal.forefoot_girth_mm),
        forefoot_width=FOREFOOT_WIDTH.shifted(personal.forefoot_girth_mm / GIRTH_PER_BREADTH),
    )


@dataclass(frozen=True)
class RegionFit:
    """How the foot sits in the interior (mm)."""

    toe_room_mm: float  # free length: the cavity's tip ahead of the foot's frontmost point, along the shoe
    toe_box_pressure_mm: float  # girth-equivalent depth of the toes' skin in the wall
    forefoot_girth_mm: float  # tape girth at the foot's ball line, cavity minus foot (+ room, - tight)
    forefoot_width_mm: float  # widest breadth across the shoe at the foot's ball line, cavity minus foot
    forefoot_pressure_mm: float  # girth-equivalent depth of the ball region's skin in the wall
    instep_pressure_mm: float  # girth-equivalent depth of the midfoot below the collar
    heel_width_mm: float  # medial + lateral clearance of the heel's sides below the collar (negative: pressed)
    heel_slide_mm: float  # how far in front of the counter's rearmost point the pternion sits
    yaw_deg: float  # how the foot settled: turned about the heel...
    shift_mm: float  # ...and moved sideways


@dataclass(frozen=True)
class Complaint:
    """What a customer says about a size they do not keep: a region of REGIONS, a direction of FIT_DIRECTIONS."""

    region: str
    direction: str


@dataclass(frozen=True)
class Comfort:
    fit: RegionFit
    costs: dict[str, float]  # term of TERMS -> cost in squared perception thresholds
    directions: dict[str, str]  # term -> "tight" or "loose", for the terms outside their band

    @property
    def score(self) -> float:
        """Higher is better; 0 is a perfect fit."""
        return -sum(WEIGHTS[k] * v for k, v in self.costs.items())


@dataclass(frozen=True)
class PairComfort:
    """Both feet in one size: the costs add up, so the tighter foot dominates (tightness costs more)."""

    left: Comfort
    right: Comfort

    @property
    def cost(self) -> float:
        """Squared perception thresholds, weighted, both feet; 0 is a perfect fit."""
        return -(self.left.score + self.right.score)

    @property
    def score(self) -> float:
        return -self.cost

    @property
    def pinches(self) -> tuple[str, ...]:
        """The terms (of TERMS) tight by more than one threshold in either foot."""
        return tuple(sorted({term for foot in (self.left, self.right) for term, cost in foot.costs.items()
                             if foot.directions.get(term) == FIT_DIRECTIONS[0] and cost > TIGHT_LIMIT}))

    @property
    def too_tight(self) -> bool:
        """A region of either foot is tight by more than one threshold: nobody keeps that, however the rest fits."""
        return bool(self.pinches)

    @property
    def complaint(self) -> Complaint | None:
        """The worst thing about this size (largest weighted cost of either foot), or None when nothing is wrong."""
        worst = max(((WEIGHTS[term] * cost, foot.directions[term], term)
                     for foot in (self.left, self.right) for term, cost in foot.costs.items() if cost > 0.0),
                    default=None)
        return None if worst is None else Complaint(TERMS[worst[2]].region, worst[1])


def kept(pair: PairComfort, best_cost: float) -> bool:
    """The customer keeps this size: no region tight by more than one threshold, and within one threshold of their
    best size of the model (cost <= best + 1.0). `best_cost` is the lowest cost over the model's sizes and width
    fittings, that size pinching or not: when it pinches and no size that does not is within one threshold of it,
    the customer keeps no size of the model."""
    return pair.cost <= best_cost + KEPT_MARGIN and not pair.too_tight


@dataclass(frozen=True)
class BallLine:
    """The foot's ball section: the vertical plane through its two ball landmarks (the first and fifth metatarsal
    heads), where a tape measures the ball girth. Fixed in the foot, so measured once. Section coordinates are
    (s, z): s along the plane from the lateral landmark toward the medial one, z up."""

    lateral_mm: np.ndarray  # (3,) landmarks in the placed foot's frame
    medial_mm: np.ndarray
    girth_mm: float  # perimeter of the section's convex hull
    extent_mm: float  # the section's extent along s


@dataclass(frozen=True)
class PlacedFoot:
    """A foot as a left foot in the shoe frame, heel at x = 0 (before seating), as surface samples."""

    points_mm: np.ndarray  # (n, 3)
    normals: np.ndarray  # (n, 3) outward
    length_mm: float
    ball: BallLine


def comfort(foot: PlacedFoot, interior: "Mesh | Cavity", wants: Preference) -> Comfort:
    """The true comfort of a placed foot in a cavity (left shoe frame; a Cavity serves several feet)."""
    return judged(region_fit(foot, interior), wants)


def judged(fit: RegionFit, wants: Preference) -> Comfort:
    """How a customer who wants `wants` feels about a foot sitting as `fit` says."""
    costs = region_costs(fit, wants)
    directions = {k: FIT_DIRECTIONS[0] if value < band.low_mm else FIT_DIRECTIONS[1]
                  for k, (value, band) in _measures(fit, wants).items() if costs[k] > 0.0}
    return Comfort(fit, costs, directions)


def pair_comfort(feet: dict[str, PlacedFoot], interior: "Mesh | Cavity", wants: Preference) -> PairComfort:
    """Both feet (SIDES -> placed foot) in one interior."""
    cavity = interior if isinstance(interior, Cavity) else Cavity(interior)
    return PairComfort(*(comfort(feet[side], cavity, wants) for side in SIDES))


def region_costs(fit: RegionFit, wants: Preference) -> dict[str, float]:
    """Each term's cost in squared perception thresholds."""
    return {k: band_cost(value, band, TERMS[k].jnd_mm) for k, (value, band) in _measures(fit, wants).items()}


def _measures(fit: RegionFit, wants: Preference) -> dict[str, tuple[float, Band]]:
    """Each term's value and comfortable band, pressures as negative clearances (more pressure = tighter)."""
    return {
        "toes": (fit.toe_room_mm, wants.toe_room),
        "toe_box": (-fit.toe_box_pressure_mm, _tight(wants.toe_box_pressure)),
        "forefoot_girth": (fit.forefoot_girth_mm, wants.forefoot_girth),
        "forefoot_width": (fit.forefoot_width_mm, wants.forefoot_width),
        "forefoot_pressure": (-fit.forefoot_pressure_mm, _tight(FOREFOOT_PRESSURE)),
        "instep": (-fit.instep_pressure_mm, _tight(INSTEP_PRESSURE)),
        "heel": (fit.heel_width_mm, wants.heel_width),
    }


def _tight(pressure: Band) -> Band:
    """A pressure band as a band of (negative) clearance, so that more pressure is the tight side."""
    return Band(-pressure.high_mm, -pressure.low_mm)


def band_cost(value_mm: float, band: Band, jnd_mm: float) -> float:
    """(distance outside the band / threshold)^2, the threshold TIGHT_STEEPNESS times smaller below the band."""
    if value_mm < band.low_mm:
        return float(((band.low_mm - value_mm) * TIGHT_STEEPNESS / jnd_mm) ** 2)
    return float((max(0.0, value_mm - band.high_mm) / jnd_mm) ** 2)


def place_foot(foot: Mesh, side: str) -> PlacedFoot:
    """Sample a subject's foot (subject frame, template vertex order) and turn it into the left shoe's frame:
    foot axis (heel landmark -> second toe tip) along +x, heel breadth centred on y = 0, pternion at x = 0."""
    if side not in SIDES:
        raise SimulatorError(f"unknown side {side!r}: say which foot it is, 'left' or 'right'")
    if len(foot.vertices_mm) != _template_vertex_count():
        raise SimulatorError(
            f"the foot has {len(foot.vertices_mm)} vertices, the FIND template {_template_vertex_count()}: true "
            "comfort needs a foot made from the template (a population or template subject), whose landmarks it uses"
        )
    left = mirrored(foot) if side == "right" else foot
    v = left.vertices_mm
    kp = template_keypoints()
    axis = v[kp["second_toe"], :2] - v[kp["heel"], :2]
    angle = np.arctan2(axis[1], axis[0])
    c, s = np.cos(-angle), np.sin(-angle)
    turned = np.column_stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]])
    low = turned[:, 2] < HEEL_ZONE_HEIGHT_MM
    pternion_x = turned[low, 0].min()
    length = float(turned[:, 0].max() - pternion_x)
    heel = turned[low & (turned[:, 0] < pternion_x + 0.2 * length)]
    turned -= [pternion_x, (heel[:, 1].min() + heel[:, 1].max()) / 2.0, 0.0]
    placed = Mesh(turned, left.triangles)
    points, normals = surface_samples(placed)
    ball = _ball_line(placed, turned[kp["lateral_ball"]], turned[kp["medial_ball"]])
    return PlacedFoot(points, normals, length, ball)


def _ball_line(foot: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> BallLine:
    outline = section_outline(foot, lateral_mm, medial_mm)
    return BallLine(lateral_mm, medial_mm, _perimeter_mm(outline), float(np.ptp(outline[:, 0])))


def section_outline(mesh: Mesh, lateral_mm: np.ndarray, medial_mm: np.ndarray) -> np.ndarray:
    """The convex hull (k, 2) of the mesh's section by the vertical plane through two points, in (s, z): s along
    the plane from `lateral_mm` toward `medial_mm`. Empty (0, 2) when the plane misses the mesh."""
    points = ball_section(mesh, lateral_mm, medial_mm)
    if len(points) < 3:
        return np.zeros((0, 2))
    along = (medial_mm[:2] - lateral_mm[:2]) / np.linalg.norm(medial_mm[:2] - lateral_mm[:2])
    in_plane = np.column_stack([(points[:, :2] - lateral_mm[:2]) @ along, points[:, 2]])
    return cv2.convexHull(in_plane.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _perimeter_mm(outline: np.ndarray) -> float:
    """The tape around a convex outline (0 for none: a section that misses the cavity has no room at all)."""
    return float(np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1).sum())


def surface_samples(mesh: Mesh, per_mm2: float = SAMPLES_PER_MM2) -> tuple[np.ndarray, np.ndarray]:
    """Points spread uniformly over the surface (area-weighted, fixed seed) with their triangles' normals."""
    tri = mesh.vertices_mm[mesh.triangles]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    rng = np.random.default_rng(SAMPLE_SEED)
    pick = rng.choice(len(tri), size=int(area.sum() * per_mm2), p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(len(pick)))[:, None], rng.random(len(pick))[:, None]
    t = tri[pick]
    points = (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
    normals = cross[pick] / np.maximum(2 * area[pick], 1e-12)[:, None]
    return points, normals


def region_fit(foot: PlacedFoot, interior: "Mesh | Cavity") -> RegionFit:
    """Seat the heel in the counter, let the forefoot settle, then read every region's clearance."""
    cavity = interior if isinstance(interior, Cavity) else Cavity(interior)
    slide = _heel_seat_mm(foot, cavity)
    yaw_deg, shift_mm = _settled(foot, cavity, slide)
    points = _moved(foot.points_mm, slide, yaw_deg, shift_mm)
    clearance = cavity.clearance_mm(points)
    u = foot.points_mm[:, 0] / foot.length_mm
    in_shoe = points[:, 2] < cavity.collar_height_mm
    side = np.abs(foot.normals[:, 1]) > SIDE_NORMAL_Y
    heel = (u < HEEL_END) & in_shoe
    instep = (u >= HEEL_END) & (u < INSTEP_END) & in_shoe
    forefoot = (u >= INSTEP_END) & (u < FOREFOOT_END)
    toes = u >= FOREFOOT_END
    girth_mm, width_mm = _ball_fit(foot.ball, cavity, slide, yaw_deg, shift_mm)
    return RegionFit(
        toe_room_mm=float(cavity.tip_x_mm - points[:, 0].max()),
        toe_box_pressure_mm=_girth_equivalent(np.maximum(-clearance[toes], 0.0)),
        forefoot_girth_mm=girth_mm,
        forefoot_width_mm=width_mm,
        forefoot_pressure_mm=_girth_equivalent(np.maximum(-clearance[forefoot], 0.0)),
        instep_pressure_mm=_girth_equivalent(np.maximum(-clearance[instep], 0.0)),
        heel_width_mm=_width_equivalent(clearance[heel & side]),
        heel_slide_mm=slide,
        yaw_deg=yaw_deg,
        shift_mm=shift_mm,
    )


def _ball_fit(ball: BallLine, cavity: "Cavity", slide_mm: float, yaw_deg: float,
              shift_mm: float) -> tuple[float, float]:
    """(girth, breadth) of the cavity minus the foot's in the foot's ball section, the foot where it settled; the
    breadth across the shoe (y), as a foot's ball breadth is measured."""
    lateral, medial = _moved(np.stack([ball.lateral_mm, ball.medial_mm]), slide_mm, yaw_deg, shift_mm)
    outline = section_outline(cavity.mesh, lateral, medial)
    across = abs(medial[1] - lateral[1]) / np.linalg.norm(medial[:2] - lateral[:2])  # y per mm of s
    extent = float(np.ptp(outline[:, 0])) if len(outline) else 0.0
    return _perimeter_mm(outline) - ball.girth_mm, (extent - ball.extent_mm) * float(across)


def _moved(points_mm: np.ndarray, slide_mm: float, yaw_deg: float, shift_mm: float) -> np.ndarray:
    """Turn about the pternion (x = y = 0) by yaw, then move forward by slide and sideways by shift."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    x, y = points_mm[:, 0], points_mm[:, 1]
    return np.column_stack([c * x - s * y + slide_mm, s * x + c * y + shift_mm, points_mm[:, 2]])


def _settled(foot: PlacedFoot, cavity: "Cavity", slide_mm: float) -> tuple[float, float]:
    """The yaw about the heel and sideways shift (within what the heel cup allows) at which the foot is
    pressed least: the sum of squared wall penetrations of the skin inside the shoe, on a subsample, over a
    coarse then a fine grid (a foot in a shoe settles where the pressures balance)."""
    p = foot.points_mm[::SETTLE_SUBSAMPLE]
    p = p[p[:, 2] < cavity.collar_height_mm]
    best = (0.0, 0.0)
    for yaw_step, shift_step, steps in SETTLE_GRIDS:
        around = np.arange(-steps, steps + 1)
        candidates = [(float(y), float(s)) for y in best[0] + yaw_step * around if abs(y) <= SETTLE_MAX_YAW_DEG
                      for s in best[1] + shift_step * around if abs(s) <= SETTLE_MAX_SHIFT_MM]
        moved = np.concatenate([_moved(p, slide_mm, y, s) for y, s in candidates])
        depth = np.minimum(cavity.clearance_mm(moved), 0.0).reshape(len(candidates), len(p))
        best = candidates[int(np.argmin(np.square(depth).sum(axis=1)))]
    return best


def _girth_equivalent(clearance_mm: np.ndarray) -> float:
    """A tape measure's change for this clearance all round: a uniform offset c changes a convex girth by 2 pi c."""
    return float(2.0 * np.pi * clearance_mm.mean())


def _width_equivalent(side_clearance_mm: np.ndarray) -> float:
    """Breadth change: the mean clearance of the sideways-facing skin, on both sides."""
    return float(2.0 * side_clearance_mm.mean())


def _heel_seat_mm(foot: PlacedFoot, cavity: "Cavity") -> float:
    """How far forward of x = 0 the foot must sit for the back of its heel to press the counter by no more than
    the heel pad gives (a customer pushes the heel back into the shoe): the first such slide on a coarse grid,
    refined on a fine one within the coarse step before it."""
    p = foot.points_mm
    back = p[(p[:, 0] < HEEL_BACK_MM) & (p[:, 2] > HEEL_BACK_HEIGHT_MM[0]) & (p[:, 2] < HEEL_BACK_HEIGHT_MM[1])]
    coarse = np.arange(0.0, HEEL_SEAT_MAX_SLIDE_MM + HEEL_SEAT_COARSE_MM / 2, HEEL_SEAT_COARSE_MM)
    first = _first_seated(back, cavity, coarse)
    fine = coarse[max(first - 1, 0)] + np.arange(0.0, HEEL_SEAT_COARSE_MM + HEEL_SEAT_STEP_MM / 2, HEEL_SEAT_STEP_MM)
    return float(fine[_first_seated(back, cavity, fine)])


def _first_seated(back_mm: np.ndarray, cavity: "Cavity", slides_mm: np.ndarray) -> int:
    """Index of the first slide at which no back-of-heel point presses the counter more than the pad gives (the
    last slide if none does: the shoe is far too short), in one distance query."""
    shifted = (back_mm[None, :, :] + slides_mm[:, None, None] * [1.0, 0.0, 0.0]).reshape(-1, 3)
    depth = -cavity.clearance_mm(shifted).reshape(len(slides_mm), len(back_mm)).min(axis=1)
    seated = np.flatnonzero(depth <= HEEL_SEAT_PRESS_MM)
    return int(seated[0]) if len(seated) else len(slides_mm) - 1


class Cavity:
    """Distance queries and sections of one interior mesh (left shoe frame)."""

    def __init__(self, interior: Mesh):
        self.mesh = interior
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(o3d.core.Tensor(interior.vertices_mm.astype(np.float32)),
                                  o3d.core.Tensor(interior.triangles.astype(np.uint32)))
        v = interior.vertices_mm
        length = float(np.ptp(v[:, 0]))
        self.collar_height_mm = float(v[v[:, 0] < v[:, 0].min() + 0.25 * length, 2].max())
        self.tip_x_mm = float(v[:, 0].max())

    def clearance_mm(self, points_mm: np.ndarray) -> np.ndarray:
        """Distance to the wall, positive inside the cavity (room), negative outside (the foot presses)."""
        query = o3d.core.Tensor(points_mm.astype(np.float32))
        return -self._scene.compute_signed_distance(query).numpy()


def _template_vertex_count() -> int:
    return len(standing_template().vertices_mm)
