"""A shoe size's interior: checking a scanned cavity, its descriptors, and grading it to other sizes.

Scanned cavities arrive as closed triangle meshes of the LEFT shoe in millimetres (docs/catalog.md). The
importer moves each into the shoe frame by translation only (rearmost point to x = 0, lowest point to z = 0,
the heel's centre to y = 0): a scanner's frame may sit anywhere, but it must already be axis-aligned.
Descriptors are measured on the sections (fitcore.fit.sections), so scanned and graded sizes are measured alike, and
the ball's as a foot's are (docs/measurements.md): round the oblique line through the cavity's widest points on
either side, so that a shoe's ball girth and width compare with a foot's.

Grading follows the fixed law of the size systems (0.75 mm of ball girth per mm of length, 6.5 mm per width
fitting), unless a model has two or more scans of one width fitting: brands grade their own way, so their scans
say how that model grows (`model_grading`), station by station, and its other sizes are graded by that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

from core.errors import CatalogError
from core.mesh import Mesh
from core.vocabulary import HEEL_ZONE_FRACTION, INSTEP_AT
from fitcore.fit.sections import ANGLES_RAD, STATIONS, section_outlines_mm, sections_from_mesh, station_x_mm
from fitcore.scan.footframe import EXTREME_BAND_MM
from shoe_db.models import Descriptors

MIN_INNER_LENGTH_MM = 80.0  # anything shorter was exported in metres or centimetres
HEEL_ZONE = (0.0, HEEL_ZONE_FRACTION)  # heel width: the widest section at the rear of the inner length
BALL_ZONE = (0.55, 0.8)  # the ball points: the cavity's widest points on either side in this part of its length
BALL_CUT_STEP_MM = 1.0  # the wall is searched for the ball points in cuts square to the axis this far apart
BALL_LINE_SAMPLES = 96  # the ball section is cut at this many places across the shoe, closer near its ends
TOE_BOX_AT = 0.85  # toe-box height: the cavity's height here
TOE_ZONE = 0.08  # the front 8% of the cavity decides which side its toe leans to
MIRRORED_TOE_OFFSET_MM = 1.5  # a left shoe's toe leans medially (-y); this far to +y means it is a right shoe
# Grading (docs/reference.md, sizes): ball girth grows 6.35 mm per UK/US size (8.47 mm of length): 0.75 mm per mm.
GIRTH_PER_LENGTH = 6.35 / (25.4 / 3.0)
MIN_GRADING_SPAN_MM = 4.0  # scans closer in length than this do not say how a model grades
# a station's own growth is kept within this range of what the fixed law gives it, so that a scan's flaw cannot
# grade a size into an absurd shape
OWN_GRADING_RANGE = (0.25, 2.5)


@dataclass(frozen=True)
class Interior:
    """One size's interior as the matcher uses it: inner length, sections, descriptors."""

    length_mm: float
    sections: np.ndarray  # (STATIONS, 2 + ANGLES) float32, see fitcore.fit.sections
    descriptors: Descriptors


def interior_from_scan(mesh: Mesh, nominal_foot_length_mm: float) -> tuple[Interior, Mesh]:
    """The checked interior of a scanned cavity and the mesh moved into the shoe frame.

    Raises CatalogError saying what is wrong: not closed, in metres, shorter than the foot the label is for,
    mirrored (a right shoe), or not a cavity seen along +x.
    """
    _check_closed(mesh)
    extent = np.ptp(mesh.vertices_mm, axis=0)
    if extent.max() < MIN_INNER_LENGTH_MM:
        raise CatalogError(f"the interior is only {extent.max():.3g} units long: it looks like metres (or cm); "
                           f"export it in millimetres")
    shoe = _to_shoe_frame(mesh)
    length = round(float(shoe.vertices_mm[:, 0].max()), 2)  # as stored, so grading from the database agrees
    if length < nominal_foot_length_mm:
        raise CatalogError(f"the interior is {length:.1f} mm long, shorter than the {nominal_foot_length_mm:.1f} mm "
                           f"foot its size label is for: check the size label, the scale, and that the heel-to-toe "
                           f"axis is x")
    toe_offset = _toe_offset_mm(shoe)
    if toe_offset > MIRRORED_TOE_OFFSET_MM:
        raise CatalogError(f"the interior is mirrored: its toe leans {toe_offset:.1f} mm to +y (lateral for a left "
                           f"shoe): scan the left shoe, or mirror the mesh in y (y -> -y) before import")
    sections = sections_from_mesh(shoe.vertices_mm, shoe.triangles, length)
    return Interior(length, sections, describe(sections, length)), shoe


@dataclass(frozen=True)
class ModelGrading:
    """How a model's sections grow with its length, estimated from its own scans (`model_grading`): per station,
    mm of girth (the section's perimeter) and of breadth per mm of inner length."""

    girth_per_mm: np.ndarray  # (STATIONS,)
    breadth_per_mm: np.ndarray  # (STATIONS,)


def model_grading(scans: list[tuple[float, Interior]]) -> ModelGrading | None:
    """A model's own grading from its scans of one width fitting, each with the foot length it is graded for: per
    station, the least-squares slope of girth and of breadth over that length, kept within OWN_GRADING_RANGE of
    the fixed law's slope there. None with fewer than two scans or scans closer than MIN_GRADING_SPAN_MM."""
    if len(scans) < 2:
        return None
    lengths = np.array([length for length, _ in scans])
    if np.ptp(lengths) < MIN_GRADING_SPAN_MM:
        return None
    measures = np.array([_station_measures(interior.sections) for _, interior in scans])  # (scans, 2, STATIONS)
    centred = lengths - lengths.mean()
    slopes = np.tensordot(centred, measures - measures.mean(axis=0), axes=1) / (centred ** 2).sum()
    ball_girth = np.mean([interior.descriptors.ball_girth_mm for _, interior in scans])
    fixed = measures.mean(axis=0) * GIRTH_PER_LENGTH / ball_girth  # the fixed law scales every station alike
    low, high = OWN_GRADING_RANGE
    girth, breadth = np.clip(slopes, low * fixed, high * fixed)
    return ModelGrading(girth, breadth)


def graded(scanned: Interior, length_change_mm: float, width_steps: int, girth_per_width_mm: float,
           grading: ModelGrading | None = None) -> Interior:
    """The interior of another size, derived from a scanned one by the grading rules in docs/catalog.md.

    Length grows by the nominal foot length difference (one size step per size); the sections stretch along x with
    it. Across, by the fixed law (`grading` None) every section scales about its centre line on the insole so that
    the ball girth grows 0.75 mm per mm of length; by a model's own grading each section's breadth and girth grow as
    its scans say. Either way `girth_per_width_mm` of ball girth is added per width fitting.
    """
    length = round(scanned.length_mm + length_change_mm, 2)
    if grading is None:
        girth = scanned.descriptors.ball_girth_mm
        scale = (girth + GIRTH_PER_LENGTH * length_change_mm + girth_per_width_mm * width_steps) / girth
        sections = scanned.sections.astype(np.float64)
        sections[:, 1:] *= scale  # centre height and radii: the section scales about (cy, 0), the insole at z = 0
    else:
        sections = _own_graded(scanned, length_change_mm, width_steps * girth_per_width_mm, grading)
    sections = sections.astype(np.float32)
    return Interior(length, sections, describe(sections, length))


def _own_graded(scanned: Interior, length_change_mm: float, fitting_girth_mm: float,
                grading: ModelGrading) -> np.ndarray:
    """Each section scaled across (y about its centre, z about the insole) so that its breadth and girth grow as
    the model's grading says, then all by the width fittings' share of the ball girth; the radii are taken again
    along the sections' angles."""
    sections = scanned.sections.astype(np.float64)
    girth, breadth = _station_measures(sections)
    across = 1.0 + grading.breadth_per_mm * length_change_mm / breadth
    girth_ratio = 1.0 + grading.girth_per_mm * length_change_mm / girth
    share_y, share_z = _perimeter_shares(sections)
    up = np.where(share_z > 0.05, 1.0 + (girth_ratio - 1.0 - share_y * (across - 1.0)) / np.maximum(share_z, 0.05),
                  across)  # a perimeter grows by the shares of its run across and up (to first order)
    joints = ball_points(sections, scanned.length_mm)
    ball_x = 0.5 * (joints.medial_mm[0] + joints.lateral_mm[0])  # the ball girth's plane crosses the axis about here
    ball = int(np.argmin(np.abs(station_x_mm(scanned.length_mm) - ball_x)))
    ball_girth = scanned.descriptors.ball_girth_mm * girth_ratio[ball]
    fittings = 1.0 + fitting_girth_mm / ball_girth
    across, up = across * fittings, np.clip(up, 0.5, 2.0) * fittings
    out = sections.copy()
    out[:, 1] *= up
    cos, sin = np.cos(ANGLES_RAD), np.sin(ANGLES_RAD)
    for k in range(len(out)):
        y, z = across[k] * sections[k, 2:] * cos, up[k] * sections[k, 2:] * sin
        angle = np.arctan2(z, y) % (2 * np.pi)
        out[k, 2:] = np.interp(ANGLES_RAD, angle, np.hypot(y, z), period=2 * np.pi)
    return out


def _station_measures(sections: np.ndarray) -> np.ndarray:
    """(2, STATIONS): each section's girth (the perimeter of its outline) and breadth."""
    outline = sections[:, None, :2] + sections[:, 2:, None] * np.stack([np.cos(ANGLES_RAD), np.sin(ANGLES_RAD)],
                                                                        axis=1)
    steps = np.roll(outline, -1, axis=1) - outline
    return np.stack([np.hypot(steps[..., 0], steps[..., 1]).sum(axis=1), np.ptp(outline[..., 0], axis=1)])


def _perimeter_shares(sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much of each section's perimeter runs across (y) and up (z): scaling a section by (1 + a) across and
    (1 + b) up grows its perimeter by about share_y a + share_z b (the shares sum to 1)."""
    radii = sections[:, 2:]
    outline = radii[:, :, None] * np.stack([np.cos(ANGLES_RAD), np.sin(ANGLES_RAD)], axis=1)
    steps = np.roll(outline, -1, axis=1) - outline
    lengths = np.maximum(np.hypot(steps[..., 0], steps[..., 1]), 1e-9)
    perimeter = lengths.sum(axis=1)
    return ((steps[..., 0] ** 2 / lengths).sum(axis=1) / perimeter,
            (steps[..., 1] ** 2 / lengths).sum(axis=1) / perimeter)


def describe(sections: np.ndarray, length_mm: float) -> Descriptors:
    """The descriptors of an interior, measured on its sections (definitions in docs/catalog.md)."""
    ball = ball_points(sections, length_mm)
    heel_width = _widest(sections, length_mm, HEEL_ZONE)
    instep, toe_box = section_outlines_mm(sections, length_mm, np.array([INSTEP_AT, TOE_BOX_AT]) * length_mm)
    radii = sections[:, 2:].astype(np.float64)
    areas = 0.5 * np.sin(2 * np.pi / len(ANGLES_RAD)) * (radii * np.roll(radii, -1, axis=1)).sum(axis=1)
    return Descriptors(
        inner_length_mm=round(float(length_mm), 2),
        ball_width_mm=round(ball.width_mm, 2),
        ball_girth_mm=round(_ball_girth_mm(sections, length_mm, ball), 2),
        instep_girth_mm=round(_girth(instep), 2),
        heel_width_mm=round(heel_width, 2),
        toe_box_height_mm=round(float(toe_box[:, 1].max()), 2),
        volume_ml=round(float(areas.sum() * length_mm / STATIONS / 1000.0), 2),
    )


@dataclass(frozen=True)
class BallPoints:
    """Where a cavity's forefoot is widest on either side, (x, y, z) in the shoe frame: the last's ball joints, over
    the first metatarsal head (medial, -y in a left shoe) and the fifth (lateral, +y)."""

    medial_mm: np.ndarray  # (3,)
    lateral_mm: np.ndarray  # (3,)

    @property
    def width_mm(self) -> float:
        """The ball width: the breadth across the axis between the two (they need not be at the same x)."""
        return float(self.lateral_mm[1] - self.medial_mm[1])


def ball_points(sections: np.ndarray, length_mm: float) -> BallPoints:
    """The cavity's ball points, found as a foot's are (fitcore.scan.measure.ball_points): on each side the wall's
    extreme across the axis in BALL_ZONE gives the point's y; its x and z are the centre of the bulge, the wall
    within EXTREME_BAND_MM of the extreme weighted by how near it comes, because the forefoot's side is nearly
    flat along the axis and its single farthest point would wander along it. The wall is read in cuts square to
    the axis BALL_CUT_STEP_MM apart, each outline's edges integrated exactly (`_band_weights`)."""
    zone_mm = np.array(BALL_ZONE) * length_mm
    xs = np.linspace(*zone_mm, int(np.ptp(zone_mm) / BALL_CUT_STEP_MM) + 1)
    start = section_outlines_mm(sections, length_mm, xs)  # (cuts, ANGLES, 2): y, z
    end = np.roll(start, -1, axis=1)
    found = []
    for outward in (-1.0, 1.0):
        weight, z_moment = _band_weights(start, end, outward)
        x = float(weight.sum(axis=1) @ xs / weight.sum())
        found.append(np.array([x, outward * float((start[..., 0] * outward).max()), z_moment.sum() / weight.sum()]))
    return BallPoints(*found)


def _band_weights(start: np.ndarray, end: np.ndarray, outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Per outline edge (start -> end, (y, z)), the integral along it of the weight w = how far the wall comes
    within EXTREME_BAND_MM of its extreme toward `outward` (0 outside the band), and of w times the height z.
    Along an edge at parameter t in [0, 1] the weight is a + (b - a) t and the height z0 + (z1 - z0) t, integrated
    over the part of the edge where the weight is positive."""
    reach_start, reach_end = start[..., 0] * outward, end[..., 0] * outward
    floor = reach_start.max() - EXTREME_BAND_MM
    a, b = reach_start - floor, reach_end - floor
    slope, z0, rise = b - a, start[..., 1], end[..., 1] - start[..., 1]
    zero = np.clip(np.divide(a, a - b, out=np.zeros_like(a), where=a != b), 0.0, 1.0)  # where the weight is 0
    t0, t1 = np.where(a >= 0.0, 0.0, zero), np.where(b >= 0.0, 1.0, zero)
    span, span2, span3 = t1 - t0, (t1 ** 2 - t0 ** 2) / 2.0, (t1 ** 3 - t0 ** 3) / 3.0
    length = np.linalg.norm(end - start, axis=-1)
    weight = length * (a * span + slope * span2)
    z_moment = length * (a * z0 * span + (a * rise + slope * z0) * span2 + slope * rise * span3)
    return weight, z_moment


def _ball_girth_mm(sections: np.ndarray, length_mm: float, ball: BallPoints) -> float:
    """Tape girth round the ball: the convex perimeter of the cavity's cut by the vertical plane through its two
    ball points (as a foot's, docs/measurements.md), the tape passing over the ball points themselves. The plane is
    cut at BALL_LINE_SAMPLES places across the shoe, closer toward its ends, where the walls are steep: at each, the
    section at its x is crossed by the vertical line at its y."""
    medial, lateral = ball.medial_mm, ball.lateral_mm
    u = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, BALL_LINE_SAMPLES))
    x, y = medial[0] + u * (lateral[0] - medial[0]), medial[1] + u * (lateral[1] - medial[1])
    outlines = section_outlines_mm(sections, length_mm, x)
    y0, z0 = outlines[..., 0], outlines[..., 1]
    y1, z1 = np.roll(y0, -1, axis=1), np.roll(z0, -1, axis=1)
    crosses = ((y0 - y[:, None]) * (y1 - y[:, None]) <= 0) & (y0 != y1)
    at = np.where(crosses, (y[:, None] - y0) / np.where(y0 != y1, y1 - y0, 1.0), 0.0)
    z = z0 + at * (z1 - z0)
    low, high = np.where(crosses, z, np.inf).min(axis=1), np.where(crosses, z, -np.inf).max(axis=1)
    seen = crosses.any(axis=1)
    along = u * float(np.hypot(*(lateral - medial)[:2]))
    cut = np.concatenate([np.column_stack([along, low])[seen], np.column_stack([along, high])[seen],
                          [[0.0, medial[2]], [along[-1], lateral[2]]]])
    return _girth(cut)


def _widest(sections: np.ndarray, length_mm: float, zone: tuple[float, float]) -> float:
    """The largest breadth of the cavity's sections in the zone (fractions of the length)."""
    xs = np.linspace(zone[0], zone[1], 26) * length_mm
    return float(np.ptp(section_outlines_mm(sections, length_mm, xs)[:, :, 0], axis=1).max())


def _girth(outline: np.ndarray) -> float:
    """Tape-measure girth: the perimeter of the section's convex hull (for 2-D hulls scipy calls it area)."""
    return float(ConvexHull(outline).area)


def _check_closed(mesh: Mesh) -> None:
    edges = np.sort(mesh.triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = int((counts == 1).sum())
    other = int((counts > 2).sum())
    if open_edges or other:
        raise CatalogError(f"the interior is not closed ({open_edges} open edges, {other} edges shared by more "
                           f"than two triangles): export a watertight cavity with its opening capped")


def _to_shoe_frame(mesh: Mesh) -> Mesh:
    v = mesh.vertices_mm
    lo = v.min(axis=0)
    length = v[:, 0].max() - lo[0]
    heel = v[v[:, 0] <= lo[0] + HEEL_ZONE[1] * length]
    heel_centre_y = 0.5 * (heel[:, 1].min() + heel[:, 1].max())
    return Mesh(v - np.array([lo[0], heel_centre_y, lo[2]]), mesh.triangles)


def _toe_offset_mm(shoe: Mesh) -> float:
    """How far (mm, +y) the front of the cavity's toe lies from the heel's centre line."""
    v = shoe.vertices_mm
    length = v[:, 0].max()
    toe = v[v[:, 0] >= (1.0 - TOE_ZONE) * length]
    return float(0.5 * (toe[:, 1].min() + toe[:, 1].max()))
