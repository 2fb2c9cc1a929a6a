"""The last families (simulator/lasts.py): valid cavities with the dimensions their specs say, families that differ
in where their breadth sits, each a plausible shoe for the nominal foot of its size, and graded sizes."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from core.errors import CatalogError, SimulatorError
from core.mesh import Mesh, mesh_from_bytes, mesh_to_bytes
from fitcore.fit.clearance import IDENTITY_POSE, placed_clearance_mm
from shoe_db.interior import interior_from_scan
from simulator.lasts import LAST_FAMILIES, Donor, Grade, LastSpec, last_interior
from simulator.subjects import FootDims, deform_template, foot_length_mm
from testing.interiors import spoiled

FOOT_MM = 266.67  # EU 42
DONORS = (Donor(), Donor(0, "female"), Donor(1, "male"), Donor(2, "male"))
CASES = [("superellipse", Donor()), ("straight", Donor())] + [("foot", d) for d in DONORS]


def _spec(family: str, donor: Donor = Donor(), **changes) -> LastSpec:
    spec = LastSpec(foot_length_mm=FOOT_MM, allowance_mm=15.0, length_bias_mm=2.0, girth_bias_mm=0.0,
                    collar_height_mm=58.0, toe_box_height_mm=30.0, toe_shape="round", toe_offset_mm=6.0,
                    family=family, donor=donor)
    return replace(spec, **changes)


def _section(mesh: Mesh, x_mm: float) -> np.ndarray:
    """(y, z) where the mesh's edges cross the plane at x: a direct section of the cavity."""
    v = mesh.vertices_mm
    edges = mesh.triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    a, b = v[edges[:, 0]], v[edges[:, 1]]
    crossing = (a[:, 0] < x_mm) != (b[:, 0] < x_mm)
    a, b = a[crossing], b[crossing]
    t = (x_mm - a[:, 0]) / (b[:, 0] - a[:, 0])
    return (a + t[:, None] * (b - a))[:, 1:]


def _chord_mm(section: np.ndarray, z_mm: np.ndarray) -> np.ndarray:
    """The section's breadth at each height: the width of its convex outline there."""
    hull = section[ConvexHull(section).vertices]
    nxt = np.roll(hull, -1, axis=0)
    out = []
    for z in z_mm:
        crossing = (hull[:, 1] - z) * (nxt[:, 1] - z) < 0
        t = (z - hull[crossing, 1]) / (nxt[crossing, 1] - hull[crossing, 1])
        y = hull[crossing, 0] + t * (nxt[crossing, 0] - hull[crossing, 0])
        out.append(np.ptp(y) if len(y) >= 2 else 0.0)
    return np.array(out)


@pytest.mark.parametrize("family, donor", CASES)
@pytest.mark.parametrize("toe_shape", ["round", "pointed"])
def test_every_family_is_a_closed_cavity_with_the_dimensions_of_its_spec(family, donor, toe_shape):
    spec = _spec(family, donor, toe_shape=toe_shape)
    mesh = last_interior(spec)
    assert mesh.triangles.shape == (2816, 3) and np.isfinite(mesh.vertices_mm).all()
    read = mesh_from_bytes(mesh_to_bytes(mesh), "last.ply")  # within core/mesh.py's limits
    interior, shoe = interior_from_scan(read, spec.foot_length_mm)  # closed, a left shoe, one cavity along x
    section = _section(shoe, spec.ball_x_mm)
    assert interior.length_mm == pytest.approx(spec.inner_length_mm, abs=0.05)
    assert ConvexHull(section).area == pytest.approx(spec.ball_girth_mm, rel=0.01)  # a tape around the ball
    assert np.ptp(section[:, 0]) == pytest.approx(spec.ball_width_mm, abs=1.0)
    # the product's own reading: the breadth holds, the girth is read where it finds the breadth widest, which
    # on a foot's flat breadth plateau can be a little ahead of the ball, where the dorsum is lower
    assert interior.descriptors.ball_width_mm == pytest.approx(spec.ball_width_mm, abs=1.5)
    assert -0.045 < interior.descriptors.ball_girth_mm / spec.ball_girth_mm - 1.0 < 0.01


@pytest.mark.parametrize("family, donor", CASES)
def test_every_familys_toe_leans_medially_so_a_right_shoe_is_told_apart(family, donor):
    mesh = last_interior(_spec(family, donor, toe_offset_mm=4.0))  # the generator's least lean
    with pytest.raises(CatalogError, match="mirrored"):
        interior_from_scan(spoiled(mesh, "mirrored"), FOOT_MM)


def _breadth_profile(family: str, donor: Donor = Donor()) -> dict[str, float]:
    """Where a family's breadth sits: the height of the widest breadth of the ball section, the breadth 5 mm
    over the insole (over the widest), the forefoot's taper (breadth at 90% of the foot over the ball's) and the
    heel's breadth over the foot length."""
    spec = _spec(family, donor)
    mesh = last_interior(spec)
    heights = np.arange(0.5, 60.0, 0.5)
    ball_section = _section(mesh, spec.ball_x_mm)
    chords = _chord_mm(ball_section, heights)
    ball = np.ptp(ball_section[:, 0])
    rear = mesh.vertices_mm[mesh.vertices_mm[:, 0] < 0.2 * spec.inner_length_mm]
    return dict(widest_at_mm=float(heights[np.argmax(chords)]), at_5mm=float(chords[9] / chords.max()),
                taper=float(np.ptp(_section(mesh, 0.9 * FOOT_MM)[:, 0]) / ball),
                heel=float(np.ptp(rear[:, 1]) / FOOT_MM))


def test_families_differ_in_where_their_breadth_sits():
    superellipse, straight = _breadth_profile("superellipse"), _breadth_profile("straight")
    feet = [_breadth_profile("foot", donor) for donor in DONORS]
    # the height of the widest breadth: mid-height, the flat bottom, where the foot is (8-21 mm up)
    assert superellipse["widest_at_mm"] >= 20.0
    assert straight["widest_at_mm"] <= 4.0
    assert all(8.0 <= f["widest_at_mm"] <= 21.0 for f in feet)
    # the breadth just over the insole: a rounded bottom, the foot's tread, a board
    assert superellipse["at_5mm"] < 0.8 and straight["at_5mm"] > 0.97
    assert all(0.85 < f["at_5mm"] < 0.97 for f in feet)
    # the forefoot's taper toward the toes: the straight last keeps its breadth, the others narrow as feet do
    assert straight["taper"] > 0.95
    assert superellipse["taper"] < 0.82 and all(f["taper"] < 0.88 for f in feet)
    # the heel: the straight last's broad seat, the superellipse's narrow one, the foot's own
    assert straight["heel"] > superellipse["heel"] + 0.015
    assert max(f["heel"] for f in feet) - min(f["heel"] for f in feet) > 0.03


@pytest.fixture(scope="module")
def nominal_foot() -> tuple[np.ndarray, float]:
    """The nominal foot of the size (ANSUR II mean proportions: breadth 0.376, girth 0.929, heel 0.269 of the
    length), in the shoe frame: pternion at x = 0, heel centred on y = 0, sole on z = 0."""
    foot = deform_template(FootDims(FOOT_MM, 0.376 * FOOT_MM, 0.929 * FOOT_MM, 0.269 * FOOT_MM))
    v = foot.vertices_mm.copy()
    length = foot_length_mm(foot)
    v[:, 0] -= v[:, 0].max() - length
    heel = v[(v[:, 0] < 0.2 * length) & (v[:, 2] < 50.0)]
    v[:, 1] -= 0.5 * (heel[:, 1].min() + heel[:, 1].max())
    v[:, 2] -= v[:, 2].min()
    return v, length


@pytest.mark.parametrize("family, donor", CASES)
def test_every_family_fits_the_nominal_foot_of_its_size(family, donor, nominal_foot):
    """In every region the nominal foot has room at its median point, and its most pressed 2% of points press
    no more than the first (superellipse) family's own do (its toe box: -11 mm)."""
    points, length = nominal_foot
    spec = _spec(family, donor, length_bias_mm=0.0)
    interior, _ = interior_from_scan(last_interior(spec), spec.foot_length_mm)
    in_shoe = (points[:, 0] > 3.0) & ((points[:, 2] < 50.0) | (points[:, 0] > 0.5 * length))  # under the opening
    clearance = placed_clearance_mm(points[in_shoe], interior.sections, interior.length_mm, IDENTITY_POSE)
    u = points[in_shoe, 0] / length
    for low, high in ((0.0, 0.25), (0.25, 0.55), (0.55, 0.8), (0.8, 1.01)):
        region = clearance[(u >= low) & (u < high)]
        assert np.median(region) > -0.5, (low, np.median(region))
        assert np.percentile(region, 2) > -12.0, (low, np.percentile(region, 2))
    assert interior.length_mm - length == pytest.approx(spec.allowance_mm, abs=0.5)  # the toe room


@pytest.mark.parametrize("family, donor", CASES[:3])
def test_a_graded_size_is_its_master_stretched_and_scaled_by_the_girth_law(family, donor):
    master = _spec(family, donor)
    two_up = replace(master, foot_length_mm=FOOT_MM + 2 * 20.0 / 3.0, grade=Grade(FOOT_MM, 12.0))
    assert two_up.master == master and two_up.ball_girth_mm == pytest.approx(master.ball_girth_mm + 12.0)
    assert two_up.ball_width_mm / master.ball_width_mm == pytest.approx(two_up.ball_girth_mm / master.ball_girth_mm)
    mesh = last_interior(two_up)
    interior, shoe = interior_from_scan(mesh, two_up.foot_length_mm)
    assert interior.length_mm == pytest.approx(two_up.inner_length_mm, abs=0.05)
    section = _section(shoe, two_up.ball_x_mm)
    assert ConvexHull(section).area == pytest.approx(two_up.ball_girth_mm, rel=0.01)
    assert np.ptp(section[:, 0]) == pytest.approx(two_up.ball_width_mm, abs=1.0)
    assert np.array_equal(last_interior(two_up).vertices_mm, mesh.vertices_mm)  # deterministic


def test_a_spec_names_a_family_and_toe_shape_that_exist():
    with pytest.raises(SimulatorError, match="unknown last family 'clog': use one of superellipse, foot, straight"):
        _spec("clog")
    with pytest.raises(SimulatorError, match="unknown toe shape 'almond'"):
        _spec("foot", toe_shape="almond")
    assert set(LAST_FAMILIES) == {"superellipse", "foot", "straight"}
