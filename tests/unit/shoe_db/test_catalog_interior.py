"""Size systems, the sections representation, interior checks, descriptors and grading (no database)."""

from dataclasses import replace

import numpy as np
import pytest

from scipy.spatial import ConvexHull

from core.errors import CatalogError
from core.mesh import Mesh
from core.sizes import SIZE_SYSTEMS, UK_US_STEP_MM, parse_size_label, size_system
from core.vocabulary import HEEL_ZONE_FRACTION
from fitcore.fit.clearance import IDENTITY_POSE, placed_clearance_mm
from fitcore.fit.sections import ANGLES, STATIONS, sections_from_blob, sections_to_blob, station_x_mm
from fitcore.scan.footframe import EXTREME_BAND_MM
from fitcore.scan.measure import sample_surface
from shoe_db.interior import (
    BALL_ZONE,
    Interior,
    GIRTH_PER_LENGTH,
    OWN_GRADING_RANGE,
    ball_points,
    graded,
    interior_from_scan,
    model_grading,
)
from simulator.lasts import LAST_FAMILIES, Donor, Grade, LastSpec, last_interior, tube_triangles
from simulator.subjects import ball_girth_mm
from testing.interiors import DEFECTS, mesh_section, spoiled

SPEC = LastSpec(foot_length_mm=266.67, allowance_mm=15.0, length_bias_mm=2.0, girth_bias_mm=0.0,
                collar_height_mm=55.0, toe_box_height_mm=29.0, toe_shape="round", toe_offset_mm=6.0)


@pytest.mark.parametrize("system, label, foot_mm", [
    ("EU", "42", 266.67), ("EU", "42 2/3", 271.11), ("UK", "8", 262.47), ("US-M", "9", 262.47),
    ("US-W", "10", 262.47), ("MP", "270", 270.0), ("MP", "27.5", 275.0),
])
def test_label_to_nominal_foot_length(system, label, foot_mm):
    s = size_system(system)
    assert s.foot_length_mm(parse_size_label(s, label)) == pytest.approx(foot_mm, abs=0.01)


def test_one_size_step_is_the_documented_length():
    eu, uk = SIZE_SYSTEMS["EU"], SIZE_SYSTEMS["UK"]
    assert eu.foot_length_mm(43) - eu.foot_length_mm(42) == pytest.approx(6.667, abs=0.001)
    assert uk.foot_length_mm(9) - uk.foot_length_mm(8) == pytest.approx(8.467, abs=0.001)


@pytest.mark.parametrize("system, label, words", [
    ("", "42", "size system is missing"), ("FR", "42", "unknown size system 'FR'"),
    ("EU", "99", "outside EU .* sizes 15-56"), ("EU", "large", "not a size label"),
])
def test_bad_sizes_say_what_to_write(system, label, words):
    with pytest.raises(CatalogError, match=words):
        parse_size_label(size_system(system), label)


def _elliptic_tube(length_mm, half_width_mm, half_height_mm, rings=60, points=96) -> Mesh:
    """A closed elliptic cylinder along x on the insole (z >= 0), with flat-ish ends fanned to a point."""
    x = np.linspace(0.0, length_mm, rings + 2)[1:-1]
    a = 2 * np.pi * np.arange(points) / points
    ring = np.stack([half_width_mm * np.cos(a), half_height_mm * (1 + np.sin(a))], axis=1)
    v = np.concatenate([np.repeat(x, points)[:, None], np.tile(ring, (rings, 1))], axis=1)
    v = np.vstack([v, [[0.0, 0.0, half_height_mm], [length_mm, 0.0, half_height_mm]]])
    return Mesh(v, tube_triangles(rings, points))


def test_sections_of_an_elliptic_tube_are_its_ellipse_and_clearance_is_radial():
    interior, shoe = interior_from_scan(_elliptic_tube(300.0, 50.0, 30.0), 250.0)
    middle = interior.sections[STATIONS // 2]
    assert middle[:2] == pytest.approx([0.0, 30.0], abs=0.01)
    theta = 2 * np.pi * np.arange(ANGLES) / ANGLES
    ellipse_r = 1.0 / np.sqrt((np.cos(theta) / 50.0) ** 2 + (np.sin(theta) / 30.0) ** 2)
    assert np.abs(middle[2:] - ellipse_r).max() < 0.2
    assert interior.descriptors.ball_width_mm == pytest.approx(100.0, abs=0.3)
    points = np.array([[150.0, 0.0, 10.0], [150.0, 40.0, 30.0], [150.0, 0.0, 65.0], [310.0, 0.0, 30.0]])
    clearance = placed_clearance_mm(points, interior.sections, interior.length_mm, IDENTITY_POSE)
    assert clearance == pytest.approx([10.0, 10.0, -5.0, -10.0], abs=0.2)
    assert sections_from_blob(sections_to_blob(interior.sections)).tobytes() == interior.sections.tobytes()



def _ball_measured_on_the_mesh(shoe: Mesh, length_mm: float) -> tuple[float, float, np.ndarray]:
    """(ball girth, ball width, (medial, lateral) ball points) of a cavity measured on its mesh as a foot is
    measured, independently of the sections: the wall's extremes across the axis in BALL_ZONE (its vertices: a
    polyhedron's extremes), x of each point the centre of the surface within EXTREME_BAND_MM of it (4 samples per
    mm2, weighted by nearness), the girth the convex perimeter of the mesh's cut by the vertical plane through
    both points (the simulator's tape, simulator.subjects.ball_girth_mm)."""
    front, back = BALL_ZONE[0] * length_mm, BALL_ZONE[1] * length_mm
    surface, vertices = sample_surface(shoe, per_mm2=4.0)[0], shoe.vertices_mm
    surface = surface[(surface[:, 0] >= front) & (surface[:, 0] <= back)]
    vertices = vertices[(vertices[:, 0] >= front) & (vertices[:, 0] <= back)]
    points = []
    for outward in (-1.0, 1.0):
        extreme = (vertices[:, 1] * outward).max()
        weight = np.clip(surface[:, 1] * outward - (extreme - EXTREME_BAND_MM), 0.0, None)
        centre = weight @ surface / weight.sum()
        points.append(np.array([centre[0], outward * extreme, centre[2]]))
    medial, lateral = points
    return ball_girth_mm(shoe, lateral, medial), float(lateral[1] - medial[1]), np.stack(points)


@pytest.mark.parametrize("family", LAST_FAMILIES)
def test_descriptors_of_every_last_family_are_its_design_measured_as_a_foot_is(family):
    """The ball's descriptors (on the sections) against the same measures taken on the cavity's mesh directly, and
    those against the last's design (round the nominal foot's ball line: foot + 3.0 mm of girth, + 1.4 mm of
    width)."""
    spec = replace(SPEC, family=family)
    interior, shoe = interior_from_scan(last_interior(spec), spec.foot_length_mm)
    d, length = interior.descriptors, interior.length_mm
    assert d.inner_length_mm == pytest.approx(spec.inner_length_mm, abs=0.01)
    girth_mm, width_mm, (medial, lateral) = _ball_measured_on_the_mesh(shoe, length)
    # The sections find the mesh's own ball points (measured within 1.3 mm along the shoe; the straight last's lateral
    # side keeps its breadth within 1 mm from 59% to 78% of the length, so where along it the bulge's centre falls is
    # loosely defined there: 8.7 mm apart).
    found = ball_points(interior.sections, length)
    assert found.medial_mm[0] == pytest.approx(medial[0], abs=2.0)
    assert found.lateral_mm[0] == pytest.approx(lateral[0], abs=12.0 if family == "straight" else 2.0)
    # The sections read the ball as the mesh does, less what their 36 rays cut off the wall's curves and corners
    # (measured, sections minus mesh, girth / width: superellipse -3.3 / -0.7, straight +0.3 / -0.9 (its ball line
    # further back, where the forefoot is higher), foot -3.5 / -1.0, the six population donors -2.3 to -3.9 / -0.5 to
    # -1.5; with 72 angles the superellipse and the foot lose 0.9-1.3 mm of girth)
    assert -5.0 < d.ball_girth_mm - girth_mm < 1.0
    assert -1.8 < d.ball_width_mm - width_mm < 0.0
    # The design: a `foot` last is its donor's foot scaled, widest where the foot is (its lateral ball point 1.7 mm
    # from the nominal foot's fifth metatarsal head), so round its own ball points it reads the nominal foot + the
    # ease (measured +1.2 mm of girth, +1.1 of width; the population donors -2.8 to +0.2 of girth). The parametric
    # families are widest further forward on the lateral side (superellipse 24 mm, straight 18 mm ahead of the
    # foot's fifth metatarsal head), where the forefoot is lower: round their own widest points the tape is 14.0 and
    # 12.6 mm shorter than round the foot's ball line (docs/catalog.md, descriptors).
    nominal_lateral_x = spec.ball_line_mm[0, 0]
    if family == "foot":
        assert lateral[0] == pytest.approx(nominal_lateral_x, abs=3.0)
        assert girth_mm - spec.ball_girth_mm == pytest.approx(1.2, abs=1.0)
        assert width_mm - spec.ball_width_mm == pytest.approx(1.1, abs=0.5)
    else:
        assert lateral[0] - nominal_lateral_x > 15.0
        assert -15.0 < girth_mm - spec.ball_girth_mm < -11.5
        assert 0.5 < width_mm - spec.ball_width_mm < 2.5
    # the heel's breadth as the mesh's rear 20% (measured +0.5, -1.0, +0.6) and the volume (-0.9 to -1.1%)
    rear = shoe.vertices_mm[shoe.vertices_mm[:, 0] <= HEEL_ZONE_FRACTION * length]
    assert d.heel_width_mm == pytest.approx(np.ptp(rear[:, 1]), abs=1.5)
    v, t = shoe.vertices_mm, shoe.triangles
    mesh_volume_ml = np.einsum("ij,ij->i", v[t[:, 0]], np.cross(v[t[:, 1]], v[t[:, 2]])).sum() / 6000.0
    assert d.volume_ml == pytest.approx(mesh_volume_ml, rel=0.02)


def test_import_moves_a_scan_into_the_shoe_frame():
    mesh = last_interior(SPEC)
    moved = Mesh(mesh.vertices_mm + [-120.0, 33.0, 7.5], mesh.triangles)
    a, _ = interior_from_scan(mesh, SPEC.foot_length_mm)
    b, _ = interior_from_scan(moved, SPEC.foot_length_mm)
    assert np.abs(a.sections - b.sections).max() < 1e-3
    assert a.descriptors == b.descriptors


@pytest.mark.parametrize("defect, words", [
    ("open", "not closed"), ("metres", "metres"), ("mirrored", "mirrored"), ("short", "shorter than"),
])
def test_unusable_scans_are_refused_with_the_fix(defect, words):
    mesh = last_interior(SPEC)
    foot_mm = SPEC.foot_length_mm
    if defect in DEFECTS:
        mesh = spoiled(mesh, defect)
    else:
        foot_mm = SPEC.inner_length_mm + 3.0
    with pytest.raises(CatalogError, match=words):
        interior_from_scan(mesh, foot_mm)


def test_grading_length_and_girth_per_size_and_width_fitting():
    scanned, _ = interior_from_scan(last_interior(SPEC), SPEC.foot_length_mm)
    two_up = graded(scanned, 2 * 20.0 / 3.0, 0, 6.5)
    assert two_up.length_mm == pytest.approx(scanned.length_mm + 13.33, abs=0.01)
    girth_gain = two_up.descriptors.ball_girth_mm - scanned.descriptors.ball_girth_mm
    assert girth_gain == pytest.approx(GIRTH_PER_LENGTH * 13.333, abs=0.1)  # 5 mm per EU size
    wide = graded(scanned, 0.0, 1, 6.5)
    assert wide.length_mm == scanned.length_mm
    assert wide.descriptors.ball_girth_mm - scanned.descriptors.ball_girth_mm == pytest.approx(6.5, abs=0.1)
    assert wide.descriptors.ball_width_mm > scanned.descriptors.ball_width_mm
    insole = wide.sections[:, 1] - wide.sections[:, 2 + 3 * ANGLES // 4]  # the lowest wall point of each section
    assert np.abs(insole).max() < 0.05  # still on z = 0


UK = SIZE_SYSTEMS["UK"]


def _brand_sizes(family: str, girth_per_size_mm: float, labels,
                 fitting_girth_mm: float = 0.0) -> dict[float, tuple[float, Interior, Mesh]]:
    """UK sizes of a model whose brand grades `girth_per_size_mm` of ball girth per size from its size-8 master
    (simulator.lasts.Grade), `fitting_girth_mm` wider than the master's fitting: label -> (nominal foot length, the
    interior as scanned, its mesh in the shoe frame)."""
    master = LastSpec(foot_length_mm=UK.foot_length_mm(8), allowance_mm=12.0, length_bias_mm=0.0, girth_bias_mm=0.0,
                      collar_height_mm=85.0, toe_box_height_mm=33.0, toe_shape="round", toe_offset_mm=6.0,
                      family=family, donor=Donor(1, "male"))
    out = {}
    for label in labels:
        foot = UK.foot_length_mm(label)
        change = girth_per_size_mm * (foot - master.foot_length_mm) / UK_US_STEP_MM + fitting_girth_mm
        spec = master if change == 0.0 else replace(master, foot_length_mm=foot, grade=Grade(master.foot_length_mm,
                                                                                            change))
        out[label] = (foot, *interior_from_scan(last_interior(spec), foot))
    return out


def _station_girths_on_the_mesh(shoe: Mesh, length_mm: float) -> np.ndarray:
    """Each station's girth (convex perimeter) as the mesh's own cut there gives it: the sections' station measure,
    taken without the sections."""
    return np.array([ConvexHull(mesh_section(shoe, x)).area for x in station_x_mm(length_mm)])


# How far an own-graded size's ball girth is from its true interior's (measured 0.09, 0.70, 1.22 mm): the own grading
# scales each section's breadth about the section's own centre, the brand's grading machine (simulator.lasts) about
# the heel's centre line, so where the sections' centres lie off that line (the toe's medial lean, a `foot` last's
# forefoot) the graded forefoot is sheared across by up to 0.5 mm, and the oblique ball line reads it. The radii agree
# within 0.001 mm; scaling the centres' y with the breadth gives 0.00 mm (a change to the grading, not made here).
OWN_GRADED_GIRTH_MM = {"superellipse": 0.2, "straight": 0.9, "foot": 1.5}


@pytest.mark.parametrize("family", LAST_FAMILIES)
def test_two_scans_grade_a_brand_that_grades_its_own_way_better_than_the_fixed_law(family):
    """A brand grading 8.5 mm of ball girth per UK size (the fixed law: 6.35): from scans of sizes 6.5 and 10.5 the
    model's own grading finds how each station's girth grows (as the true lasts' meshes measure it), and grades sizes
    5.5 to 12 within 0.05 mm of mean radius of their true interiors; the fixed law from the nearest scan is off by up
    to 3 mm of girth over 1.5 sizes (extrapolated to size 12, ~3 mm)."""
    sizes = _brand_sizes(family, 8.5, (5.5, 6.5, 7.5, 9, 10.5, 12))
    scans = [sizes[6.5][:2], sizes[10.5][:2]]
    grading = model_grading(scans)
    assert grading is not None
    # the slopes estimated from two scans' sections against the least-squares slopes of all six true lasts' station
    # girths measured on their meshes (measured within 1.2%, 2.4% and 5.1%: the straight last's worst at its toe
    # box, whose corners the sections' 36 rays cut)
    feet = np.array([foot for foot, _, _ in sizes.values()])
    girths = np.array([_station_girths_on_the_mesh(shoe, interior.length_mm) for _, interior, shoe in sizes.values()])
    centred = feet - feet.mean()
    assert grading.girth_per_mm == pytest.approx(centred @ (girths - girths.mean(axis=0)) / (centred @ centred),
                                                 rel=0.06)
    for label in (5.5, 7.5, 9, 12):
        foot, truth, _ = sizes[label]
        source_foot, source = min(scans, key=lambda s: abs(s[0] - foot))
        own = graded(source, foot - source_foot, 0, 6.5, grading)
        fixed = graded(source, foot - source_foot, 0, 6.5)
        own_girth = abs(own.descriptors.ball_girth_mm - truth.descriptors.ball_girth_mm)
        fixed_girth = abs(fixed.descriptors.ball_girth_mm - truth.descriptors.ball_girth_mm)
        own_radius = np.abs(own.sections[:, 2:] - truth.sections[:, 2:]).mean()
        fixed_radius = np.abs(fixed.sections[:, 2:] - truth.sections[:, 2:]).mean()
        assert own.length_mm == pytest.approx(truth.length_mm, abs=0.02)
        assert own_girth < OWN_GRADED_GIRTH_MM[family] and own_radius < 0.05, (label, own_girth, own_radius)
        assert fixed_girth > 0.4 * abs(foot - source_foot) / UK_US_STEP_MM * (8.5 - 6.35), (label, fixed_girth)
        assert fixed_radius > 4 * own_radius
    # a width fitting scales the sections by 6.5 mm over the ball girth, as the brand's grading machine scales its
    # last for a fitting 6.5 mm wider: the two read alike (measured +0.42, -0.38, +0.05 mm: the superellipse's ball
    # reads 17 mm under its design, so its scale is larger; the foot's centre line again). Round the oblique ball line
    # either grows by 5.7-6.5 mm, not 6.5: the scale is across the shoe, and the line's run along it does not grow.
    wider = _brand_sizes(family, 8.5, (6.5,), fitting_girth_mm=6.5)[6.5][1]
    wide = graded(sizes[6.5][1], 0.0, 1, 6.5, grading)
    assert wide.descriptors.ball_girth_mm == pytest.approx(wider.descriptors.ball_girth_mm, abs=0.6)


def test_a_models_own_grading_needs_two_scans_apart_and_stays_within_reason():
    scanned = _brand_sizes("superellipse", 6.35, (7, 7.5, 9))
    sizes = {label: size[:2] for label, size in scanned.items()}
    assert model_grading([sizes[7]]) is None
    assert model_grading([sizes[7], (sizes[7][0] + 2.0, sizes[7][1])]) is None  # lengths 2 mm apart say nothing
    fixed_like = model_grading([sizes[7], sizes[9]])
    foot, truth = sizes[7.5]
    assert graded(sizes[7][1], foot - sizes[7][0], 0, 6.5, fixed_like).descriptors.ball_girth_mm == pytest.approx(
        truth.descriptors.ball_girth_mm, abs=0.2)
    # a size-9 scan that is really a size-7 shoe: its girth does not grow, and the grading keeps the lower bound,
    # OWN_GRADING_RANGE[0] times the fixed law's slope at that station: 0.75 mm of ball girth per mm of length, shared
    # out in proportion to the station's girth. Both girths measured independently on the size-7 last's mesh (its
    # own cut at the station; the tape round its widest points): measured 1.1% from the grading's bound.
    stuck = model_grading([sizes[7], (sizes[9][0], sizes[7][1])])
    station = int(np.argmax(fixed_like.girth_per_mm))
    _, interior, shoe = scanned[7]
    station_girth = _station_girths_on_the_mesh(shoe, interior.length_mm)[station]
    ball_girth = _ball_measured_on_the_mesh(shoe, interior.length_mm)[0]
    fixed_law_mm_per_mm = GIRTH_PER_LENGTH * station_girth / ball_girth
    assert stuck.girth_per_mm[station] == pytest.approx(OWN_GRADING_RANGE[0] * fixed_law_mm_per_mm, rel=0.03)
