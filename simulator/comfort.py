"""The TRUE comfort of a true foot in a true shoe interior: what a simulated customer feels when trying a size.

This is the simulator playing the customer, so it reads only the simulator's truth: the subject's foot mesh (with
the FIND template's landmarks) and the true cavity mesh of the size (simulator.catalog.last_interior of the true
LastSpec). It never reads size labels, the catalogue database or fitcore's measuring and matching code, and it
measures differently from the matcher: exact signed distances of samples of the whole foot surface to the
cavity's triangles (open3d), a free length from the cavity's tip, a settled pose of the foot, where the matcher
uses 48 cross-sections of 36 radial clearances of a scanned-or-graded interior. docs/fit-quality.md states the
model, its bands and its assumptions.

Placing the foot (shoe frame, docs/catalog.md): a right foot is mirrored into a left one; the foot is turned about
z so its own axis (heel landmark to second toe tip) runs along +x, its heel breadth is centred on y = 0, its sole
stands on the insole (z = 0); in each interior it slides forward until the back of its heel rests against the
counter, then turns about the heel and shifts sideways to where it is pressed least.

Regions along the foot (u = x / foot length): heel (u < 0.25), instep (0.25-0.55, the laced throat), forefoot
(0.55-0.8, the ball: width and girth), toes (from 0.8: free length in front of the toes). Each region's fit is
compared with a comfortable band; what lies outside costs (excess / perception threshold)^2 ("just noticeable
differences" squared), with the threshold on the tight side half that on the roomy side (tightness hurts, room
only slips). The customer's comfort is minus the weighted sum; 0 is a perfect fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from core.errors import SimulatorError
from core.mesh import Mesh
from core.vocabulary import HEEL_ZONE_HEIGHT_MM, SIDES
from simulator.subjects import mirrored, standing_template, template_keypoints

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
WIDTH_JND_MM = GIRTH_JND_MM / 2.47  # a width fitting's breadth: a forefoot's girth is ~2.47x its breadth (ANSUR)
TIGHT_STEEPNESS = 2.0  # the tight side's threshold is this much smaller than the roomy side's


@dataclass(frozen=True)
class Band:
    """A comfortable range of a fit value (mm): inside it costs nothing."""

    low_mm: float
    high_mm: float


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
# Forefoot girth: the upper is laced around the foot, so what the foot feels is the perimeter, the tape measure's
# girth of the upper against the foot's: 2 pi x the mean signed clearance of the ball region's skin (a uniform
# offset c changes a convex girth by 2 pi c). The pressures are 2 pi x the mean depth of a region's skin in the
# wall (the toe box and the throat do not stretch to spread it). Forefoot bands: the ranges of well-fitted shoes
# in docs/fit-model.md (last minus foot: ball girth -6.1..+4.8 mm, ball width -0.1..+2.9 mm), shifted by what
# this method reads for a last against the foot it was made for (the generator's lasts are 2 mm of girth and
# 1 mm of width over the nominal foot, and that foot reads +29.2 and +2.2: the cavity is rounder than a foot, with
# room over the dorsum and pressure at the sole's edges). The pressure and heel bands hold that foot (toe-box
# pressure ~4, instep ~5, heel width ~+1.5 mm) with a margin (docs/fit-quality.md).
FOREFOOT_GIRTH = Band(29.2 - 2.0 - 6.1, 29.2 - 2.0 + 4.8)
FOREFOOT_WIDTH = Band(2.2 - 1.0 - 0.1, 2.2 - 1.0 + 2.9)  # medial + lateral clearance of the ball's sides
TOE_BOX_PRESSURE = Band(0.0, 6.0)
INSTEP_PRESSURE = Band(0.0, 9.0)  # the laces give a few mm more
HEEL_WIDTH = Band(-3.0, 4.0)  # medial + lateral clearance: the heel pad gives; tighter pinches, looser slips
# Snug shoes (cycling; race and performance ski boots): the toes are expected to touch the toe box and the heel
# to be locked (docs/fit-model.md: "a few mm to 10 mm with the heel locked").
SNUG_TOE_BOX_PRESSURE = Band(0.0, 12.0)
SNUG_HEEL_WIDTH = Band(-3.0, 2.0)
WEIGHTS = {"toes": 1.0, "toe_box": 1.0, "forefoot_girth": 2.0, "forefoot_width": 2.0, "instep": 0.5, "heel": 0.5}


@dataclass(frozen=True)
class Preference:
    """What a customer wants in a kind of shoe: the bands that vary by category."""

    toe_room: Band
    toe_box_pressure: Band = TOE_BOX_PRESSURE
    heel_width: Band = HEEL_WIDTH


def preference(category: str, level: str = "") -> Preference:
    """The customer's preference in a shoe of this category (ski boots: of this level)."""
    if category == "ski":
        if level not in SKI_TOE_ROOM_MM:
            raise SimulatorError(f"ski boot level {level!r} unknown: use one of {', '.join(SKI_TOE_ROOM_MM)}")
        toe_room = SKI_TOE_ROOM_MM[level]
    elif category in TOE_ROOM_MM:
        toe_room = TOE_ROOM_MM[category]
    else:
        raise SimulatorError(f"category {category!r} unknown: use one of {', '.join([*TOE_ROOM_MM, 'ski'])}")
    if category == "cycling" or level in ("expert", "advanced") and category == "ski":
        return Preference(toe_room, SNUG_TOE_BOX_PRESSURE, SNUG_HEEL_WIDTH)
    return Preference(toe_room)


@dataclass(frozen=True)
class RegionFit:
    """How the foot sits in the interior (mm)."""

    toe_room_mm: float  # free length: the cavity's tip ahead of the foot's frontmost point, along the shoe
    toe_box_pressure_mm: float  # girth-equivalent depth of the toes' skin in the wall
    forefoot_girth_mm: float  # girth-equivalent signed clearance of the ball region (+ room, - tight)
    forefoot_width_mm: float  # medial + lateral clearance of the ball region's sides
    instep_pressure_mm: float  # girth-equivalent depth of the midfoot below the collar
    heel_width_mm: float  # medial + lateral clearance of the heel's sides below the collar (negative: pressed)
    heel_slide_mm: float  # how far in front of the counter's rearmost point the pternion sits
    yaw_deg: float  # how the foot settled: turned about the heel...
    shift_mm: float  # ...and moved sideways


@dataclass(frozen=True)
class Comfort:
    fit: RegionFit
    costs: dict[str, float]  # region -> cost in squared perception thresholds

    @property
    def score(self) -> float:
        """Higher is better; 0 is a perfect fit."""
        return -sum(WEIGHTS[k] * v for k, v in self.costs.items())


@dataclass(frozen=True)
class PlacedFoot:
    """A foot as a left foot in the shoe frame, heel at x = 0 (before seating), as surface samples."""

    points_mm: np.ndarray  # (n, 3)
    normals: np.ndarray  # (n, 3) outward
    length_mm: float


def comfort(foot: PlacedFoot, interior: "Mesh | Cavity", wants: Preference) -> Comfort:
    """The true comfort of a placed foot in a cavity (left shoe frame; a Cavity serves several feet)."""
    fit = region_fit(foot, interior)
    return Comfort(fit, region_costs(fit, wants))


def region_costs(fit: RegionFit, wants: Preference) -> dict[str, float]:
    """Each region's cost in squared perception thresholds."""
    return {
        "toes": band_cost(fit.toe_room_mm, wants.toe_room, LENGTH_JND_MM),
        "toe_box": band_cost(-fit.toe_box_pressure_mm, _tight(wants.toe_box_pressure), GIRTH_JND_MM),
        "forefoot_girth": band_cost(fit.forefoot_girth_mm, FOREFOOT_GIRTH, GIRTH_JND_MM),
        "forefoot_width": band_cost(fit.forefoot_width_mm, FOREFOOT_WIDTH, WIDTH_JND_MM),
        "instep": band_cost(-fit.instep_pressure_mm, _tight(INSTEP_PRESSURE), GIRTH_JND_MM),
        "heel": band_cost(fit.heel_width_mm, wants.heel_width, WIDTH_JND_MM),
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
    points, normals = surface_samples(Mesh(turned, left.triangles))
    return PlacedFoot(points, normals, length)


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
    return RegionFit(
        toe_room_mm=float(cavity.tip_x_mm - points[:, 0].max()),
        toe_box_pressure_mm=_girth_equivalent(np.maximum(-clearance[toes], 0.0)),
        forefoot_girth_mm=_girth_equivalent(clearance[forefoot]),
        forefoot_width_mm=_width_equivalent(clearance[forefoot & side]),
        instep_pressure_mm=_girth_equivalent(np.maximum(-clearance[instep], 0.0)),
        heel_width_mm=_width_equivalent(clearance[heel & side]),
        heel_slide_mm=slide,
        yaw_deg=yaw_deg,
        shift_mm=shift_mm,
    )


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
    """Distance queries against one interior mesh (left shoe frame)."""

    def __init__(self, interior: Mesh):
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
