"""A shoe size's interior: checking a scanned cavity, its descriptors, and grading it to other sizes.

Scanned cavities arrive as closed triangle meshes of the LEFT shoe in millimetres (docs/catalog.md). The
importer moves each into the shoe frame by translation only (rearmost point to x = 0, lowest point to z = 0,
the heel's centre to y = 0): a scanner's frame may sit anywhere, but it must already be axis-aligned.
Descriptors are measured on the sections (fitcore.fit.sections), so scanned and graded sizes are measured alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

from core.errors import CatalogError
from core.mesh import Mesh
from core.vocabulary import HEEL_ZONE_FRACTION, INSTEP_AT
from fitcore.fit.sections import ANGLES_RAD, STATIONS, section_outlines_mm, sections_from_mesh
from shoe_db.models import Descriptors

MIN_INNER_LENGTH_MM = 80.0  # anything shorter was exported in metres or centimetres
HEEL_ZONE = (0.0, HEEL_ZONE_FRACTION)  # heel width: the widest section at the rear of the inner length
BALL_ZONE = (0.55, 0.8)  # ball width and girth: the widest section in this part of the length
TOE_BOX_AT = 0.85  # toe-box height: the cavity's height here
TOE_ZONE = 0.08  # the front 8% of the cavity decides which side its toe leans to
MIRRORED_TOE_OFFSET_MM = 1.5  # a left shoe's toe leans medially (-y); this far to +y means it is a right shoe
# Grading (docs/reference.md, sizes): ball girth grows 6.35 mm per UK/US size (8.47 mm of length): 0.75 mm per mm.
GIRTH_PER_LENGTH = 6.35 / (25.4 / 3.0)


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


def graded(scanned: Interior, length_change_mm: float, width_steps: int, girth_per_width_mm: float) -> Interior:
    """The interior of another size, derived from a scanned one by the grading rules in docs/catalog.md.

    Length grows by the nominal foot length difference (one size step per size); the sections scale along x
    with it, and across (about their centre line on the insole) so that the ball girth grows 0.75 mm per mm of
    length plus `girth_per_width_mm` per width fitting.
    """
    length = round(scanned.length_mm + length_change_mm, 2)
    girth = scanned.descriptors.ball_girth_mm
    scale = (girth + GIRTH_PER_LENGTH * length_change_mm + girth_per_width_mm * width_steps) / girth
    sections = scanned.sections.astype(np.float64)
    sections[:, 1:] *= scale  # centre height and radii: the section scales about (cy, 0), the insole stays at z = 0
    sections = sections.astype(np.float32)
    return Interior(length, sections, describe(sections, length))


def describe(sections: np.ndarray, length_mm: float) -> Descriptors:
    """The descriptors of an interior, measured on its sections (definitions in docs/catalog.md)."""
    ball_x, ball_width = _widest(sections, length_mm, BALL_ZONE)
    _, heel_width = _widest(sections, length_mm, HEEL_ZONE)
    at_mm = np.array([ball_x, INSTEP_AT * length_mm, TOE_BOX_AT * length_mm])
    ball, instep, toe_box = section_outlines_mm(sections, length_mm, at_mm)
    radii = sections[:, 2:].astype(np.float64)
    areas = 0.5 * np.sin(2 * np.pi / len(ANGLES_RAD)) * (radii * np.roll(radii, -1, axis=1)).sum(axis=1)
    return Descriptors(
        inner_length_mm=round(float(length_mm), 2),
        ball_width_mm=round(ball_width, 2),
        ball_girth_mm=round(_girth(ball), 2),
        instep_girth_mm=round(_girth(instep), 2),
        heel_width_mm=round(heel_width, 2),
        toe_box_height_mm=round(float(toe_box[:, 1].max()), 2),
        volume_ml=round(float(areas.sum() * length_mm / STATIONS / 1000.0), 2),
    )


def _widest(sections: np.ndarray, length_mm: float, zone: tuple[float, float]) -> tuple[float, float]:
    """Where in the zone (fractions of the length) the cavity is widest, and that width."""
    xs = np.linspace(zone[0], zone[1], 26) * length_mm
    widths = np.ptp(section_outlines_mm(sections, length_mm, xs)[:, :, 0], axis=1)
    best = int(np.argmax(widths))
    return float(xs[best]), float(widths[best])


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
