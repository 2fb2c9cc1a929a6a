"""Size systems, the sections representation, interior checks, descriptors and grading (no database)."""

from dataclasses import replace

import numpy as np
import pytest

from core.errors import CatalogError
from core.mesh import Mesh
from core.sizes import SIZE_SYSTEMS, UK_US_STEP_MM, parse_size_label, size_system
from fitcore.fit.clearance import IDENTITY_POSE, placed_clearance_mm
from fitcore.fit.sections import ANGLES, STATIONS, sections_from_blob, sections_to_blob
from shoe_db.interior import GIRTH_PER_LENGTH, OWN_GRADING_RANGE, graded, interior_from_scan, model_grading
from simulator.lasts import LAST_FAMILIES, Donor, Grade, LastSpec, last_interior, tube_triangles
from testing.interiors import DEFECTS, spoiled

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


def test_descriptors_of_a_parametric_last_match_its_design():
    mesh = last_interior(SPEC)
    interior, shoe = interior_from_scan(mesh, SPEC.foot_length_mm)
    d = interior.descriptors
    assert d.inner_length_mm == pytest.approx(SPEC.inner_length_mm, abs=0.01)
    assert d.ball_width_mm == pytest.approx(SPEC.ball_width_mm, abs=1.0)
    assert d.ball_girth_mm == pytest.approx(SPEC.ball_girth_mm, rel=0.03)
    assert d.heel_width_mm == pytest.approx(0.25 * SPEC.foot_length_mm, abs=1.5)
    v, t = shoe.vertices_mm, shoe.triangles
    mesh_volume_ml = np.einsum("ij,ij->i", v[t[:, 0]], np.cross(v[t[:, 1]], v[t[:, 2]])).sum() / 6000.0
    assert d.volume_ml == pytest.approx(mesh_volume_ml, rel=0.02)
    wall = placed_clearance_mm(shoe.vertices_mm[(v[:, 0] > 20) & (v[:, 0] < 250)], interior.sections,
                               interior.length_mm, IDENTITY_POSE)
    # the cavity's own wall has no clearance, up to the sampling of 48 stations x 36 angles
    assert np.percentile(np.abs(wall), 95) < 0.8 and np.abs(wall).max() < 1.5


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


def _brand_sizes(family: str, girth_per_size_mm: float, labels) -> dict[float, tuple[float, object]]:
    """UK sizes of a model whose brand grades `girth_per_size_mm` of ball girth per size from its size-8 master
    (simulator.lasts.Grade): label -> (nominal foot length, the interior as scanned)."""
    master = LastSpec(foot_length_mm=UK.foot_length_mm(8), allowance_mm=12.0, length_bias_mm=0.0, girth_bias_mm=0.0,
                      collar_height_mm=85.0, toe_box_height_mm=33.0, toe_shape="round", toe_offset_mm=6.0,
                      family=family, donor=Donor(1, "male"))
    out = {}
    for label in labels:
        foot = UK.foot_length_mm(label)
        change = girth_per_size_mm * (foot - master.foot_length_mm) / UK_US_STEP_MM
        spec = master if label == 8 else replace(master, foot_length_mm=foot, grade=Grade(master.foot_length_mm,
                                                                                          change))
        out[label] = foot, interior_from_scan(last_interior(spec), foot)[0]
    return out


@pytest.mark.parametrize("family", LAST_FAMILIES)
def test_two_scans_grade_a_brand_that_grades_its_own_way_better_than_the_fixed_law(family):
    """A brand grading 8.5 mm of ball girth per UK size (the fixed law: 6.35): from scans of sizes 6.5 and 10.5,
    sizes 5.5 to 12 are graded within 0.2 mm of ball girth and 0.05 mm of mean radius of their true interiors; the
    fixed law from the nearest scan is off by up to 3 mm of girth over 1.5 sizes (extrapolated to size 12, ~3 mm)."""
    sizes = _brand_sizes(family, 8.5, (5.5, 6.5, 7.5, 9, 10.5, 12))
    scans = [sizes[6.5], sizes[10.5]]
    grading = model_grading(scans)
    assert grading is not None
    for label in (5.5, 7.5, 9, 12):
        foot, truth = sizes[label]
        source_foot, source = min(scans, key=lambda s: abs(s[0] - foot))
        own = graded(source, foot - source_foot, 0, 6.5, grading)
        fixed = graded(source, foot - source_foot, 0, 6.5)
        own_girth = abs(own.descriptors.ball_girth_mm - truth.descriptors.ball_girth_mm)
        fixed_girth = abs(fixed.descriptors.ball_girth_mm - truth.descriptors.ball_girth_mm)
        own_radius = np.abs(own.sections[:, 2:] - truth.sections[:, 2:]).mean()
        fixed_radius = np.abs(fixed.sections[:, 2:] - truth.sections[:, 2:]).mean()
        assert own.length_mm == pytest.approx(truth.length_mm, abs=0.02)
        assert own_girth < 0.2 and own_radius < 0.05, (label, own_girth, own_radius)
        assert fixed_girth > 0.4 * abs(foot - source_foot) / UK_US_STEP_MM * (8.5 - 6.35), (label, fixed_girth)
        assert fixed_radius > 4 * own_radius
    wide = graded(scans[0][1], 0.0, 1, 6.5, grading)  # a width fitting adds the fixed 6.5 mm of ball girth
    assert wide.descriptors.ball_girth_mm - scans[0][1].descriptors.ball_girth_mm == pytest.approx(6.5, abs=0.3)


def test_a_models_own_grading_needs_two_scans_apart_and_stays_within_reason():
    sizes = _brand_sizes("superellipse", 6.35, (7, 7.5, 9))
    assert model_grading([sizes[7]]) is None
    assert model_grading([sizes[7], (sizes[7][0] + 2.0, sizes[7][1])]) is None  # lengths 2 mm apart say nothing
    fixed_like = model_grading([sizes[7], sizes[9]])
    foot, truth = sizes[7.5]
    assert graded(sizes[7][1], foot - sizes[7][0], 0, 6.5, fixed_like).descriptors.ball_girth_mm == pytest.approx(
        truth.descriptors.ball_girth_mm, abs=0.2)
    # a size-9 scan that is really a size-7 shoe: its girth does not grow, and the grading keeps the lower bound
    stuck = model_grading([sizes[7], (sizes[9][0], sizes[7][1])])
    ball = int(np.argmax(fixed_like.girth_per_mm))
    assert stuck.girth_per_mm[ball] == pytest.approx(OWN_GRADING_RANGE[0] * fixed_like.girth_per_mm[ball], rel=0.05)
