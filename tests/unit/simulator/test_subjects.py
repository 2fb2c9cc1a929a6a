"""Subjects of the simulator (template deformed to ANSUR II feet, mesh files as subjects) and mesh I/O."""

import threading
from dataclasses import astuple

import numpy as np
import pytest

from core.errors import MeshError, SimulatorError
from core.mesh import Mesh, read_mesh, write_mesh
from core.settings import get_settings
from simulator.subjects import (
    TOE_SHAPE_PREVALENCE,
    TOES,
    FootDims,
    ToeShape,
    deform_template,
    measure,
    mesh_subject,
    population_draws,
    population_subject,
    population_toe_shape,
    scanned_ball_points,
    standing_template,
    template_foot,
    template_keypoints,
    template_subject,
    with_toe_shape,
)

SEEDS = (0, 1, 2, 3, 4, 5)


def _ball_points(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    kp = template_keypoints()
    return mesh.vertices_mm[kp["lateral_ball"]], mesh.vertices_mm[kp["medial_ball"]]


def _signed_volume_mm3(mesh: Mesh) -> float:
    a, b, c = (mesh.vertices_mm[mesh.triangles[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@pytest.fixture(scope="module")
def subjects():
    return {seed: population_subject(seed) for seed in SEEDS}


def test_template_is_the_find_foot_in_mm_standing_on_z0():
    foot = template_foot()
    kp = template_keypoints()
    assert foot.vertices_mm.shape == (44395, 3)
    assert foot.vertices_mm[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    length = np.ptp(foot.vertices_mm[:, 0])
    assert 240 < length < 280  # mm, not m
    heel, toe = foot.vertices_mm[kp["heel"]], foot.vertices_mm[kp["second_toe"]]
    assert toe[0] - heel[0] > 200  # toes toward +x
    assert abs(toe[1] - heel[1]) < 1e-6  # foot axis along x
    assert foot.vertices_mm[kp["lateral_ball"], 1] > 30 > -30 > foot.vertices_mm[kp["medial_ball"], 1]
    assert _signed_volume_mm3(foot) > 0  # outward winding


def test_template_keypoints_name_vertices():
    kp = template_keypoints()
    assert {"big_toe", "second_toe", "heel", "lateral_ball", "medial_ball"} <= kp.keys()
    assert all(0 <= i < 44395 for i in kp.values())


def test_subjects_measure_what_they_were_made_to(subjects):
    for s in subjects.values():
        for mesh, dims in ((s.left, s.left_dims), (s.right, s.right_dims)):
            got = measure(mesh, *_ball_points(mesh))  # mirroring keeps the vertex order
            assert got.length_mm == pytest.approx(dims.length_mm, abs=1.0)
            assert got.ball_breadth_mm == pytest.approx(dims.ball_breadth_mm, abs=1.0)
            assert got.heel_breadth_mm == pytest.approx(dims.heel_breadth_mm, abs=1.0)
            assert got.ball_girth_mm == pytest.approx(dims.ball_girth_mm, abs=2.0)
            assert mesh.vertices_mm[:, 2].min() == pytest.approx(0.0, abs=1e-6)


def test_subject_is_a_real_soldier_with_a_slightly_different_right_foot(subjects):
    for s in subjects.values():
        _, sex, subject_id = s.source.split(":")
        assert s.source.startswith("ansur:") and sex == s.sex and subject_id.isdigit()
        assert 35 < s.body_weight_kg < 160
        diffs = np.subtract(astuple(s.right_dims), astuple(s.left_dims))
        assert np.all(np.abs(diffs) < 10) and np.any(diffs != 0)


def test_right_foot_is_the_mirror_with_lateral_side_at_minus_y(subjects):
    s = subjects[0]
    kp = template_keypoints()
    right = s.right.vertices_mm
    assert right[kp["lateral_ball"], 1] < 0 < right[kp["medial_ball"], 1]
    assert s.left.vertices_mm[kp["lateral_ball"], 1] > 0
    assert _signed_volume_mm3(s.right) > 0  # winding flipped with the mirror: still outward


def test_deterministic_by_seed_and_seeds_differ(subjects):
    again = population_subject(2)
    assert again.source == subjects[2].source
    np.testing.assert_array_equal(again.left.vertices_mm, subjects[2].left.vertices_mm)
    assert len({s.source for s in subjects.values()}) == len(SEEDS)


def test_sex_is_respected():
    assert population_subject(7, sex="female").sex == "female"
    assert population_subject(7, sex="male").source.startswith("ansur:male:")
    with pytest.raises(SimulatorError, match="'male', 'female'"):
        population_subject(7, sex="m")


def test_population_reproduces_ansur_means_and_correlation():
    men = np.array([astuple(next(population_draws(seed, "male"))[0].dims) for seed in range(200)])
    women = np.array([astuple(next(population_draws(seed, "female"))[0].dims) for seed in range(200)])
    assert men[:, 0].mean() == pytest.approx(271.2, abs=3.0)  # ANSUR II men's foot length
    assert women[:, 0].mean() == pytest.approx(246.3, abs=3.0)
    assert men[:, 1].mean() == pytest.approx(101.9, abs=1.5)
    r = np.corrcoef(men[:, 0], men[:, 1])[0, 1]
    assert 0.4 < r < 0.72  # ANSUR: ~0.57
    either = [next(population_draws(seed))[0].sex for seed in range(200)]
    assert 70 < either.count("male") < 130


def test_impossible_dims_are_refused_with_a_reason():
    with pytest.raises(SimulatorError, match="ball girth of 150 mm"):
        deform_template(FootDims(270.0, 105.0, 150.0, 70.0))


def test_a_subject_reuses_the_template_and_survey_read_once(monkeypatch):
    """Subjects stay cheap (~0.1 s each, where reading and standing the template takes ~0.3 s) because those and
    the survey are done once per process: after that, a subject reads no file and stands no template."""
    from simulator import subjects

    for sex in ("male", "female"):  # the template and both sexes' survey files, once
        population_subject(11, sex)

    def again(*_args):
        raise AssertionError("the template or survey was read or stood again")

    monkeypatch.setattr(subjects, "_shared_path", again)
    monkeypatch.setattr(subjects, "_pronated", again)
    assert population_subject(12).left.vertices_mm.shape == standing_template().vertices_mm.shape


# --- standing feet and toe shapes -----------------------------------------------------------------------------


def _toe_pad_heights_mm(mesh: Mesh) -> np.ndarray:
    """Lowest z under each toe (TOES order): within 4 mm of its tip landmark across, 25 mm behind it."""
    v = mesh.vertices_mm
    heights = []
    for toe in TOES:
        tip = v[template_keypoints()[toe]]
        under = (np.abs(v[:, 1] - tip[1]) < 4.0) & (v[:, 0] > tip[0] - 25.0) & (v[:, 0] <= tip[0])
        heights.append(v[under, 2].min())
    return np.array(heights)


def _lowest_near_mm(mesh: Mesh, point_mm: np.ndarray, radius_mm: float) -> float:
    v = mesh.vertices_mm
    return float(v[np.hypot(*(v[:, :2] - point_mm[:2]).T) < radius_mm, 2].min())


def _normal_cosines(before: Mesh, after: Mesh) -> np.ndarray:
    """Cosine of the angle each triangle's normal turned by; negative = the triangle folded over."""
    def normals(v):
        t = before.triangles
        return np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    a, b = normals(before.vertices_mm), normals(after.vertices_mm)
    keep = np.linalg.norm(a, axis=1) > 1e-9
    a, b = a[keep], b[keep]
    return np.einsum("ij,ij->i", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _seeds_with_toe_shape(name: str, count: int) -> list[int]:
    return [seed for seed in range(1000) if population_toe_shape(seed).name == name][:count]


def test_standing_template_has_toe_pads_heel_and_ball_on_the_floor():
    unloaded, standing = template_foot(), standing_template()
    kp = template_keypoints()
    assert _toe_pad_heights_mm(unloaded).max() > 5.0  # the FIND foot's toes are lifted
    assert np.abs(_toe_pad_heights_mm(standing)).max() < 1.5
    assert standing.vertices_mm[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    heel = standing.vertices_mm[standing.vertices_mm[:, 0] < 60.0]
    assert heel[:, 2].min() < 0.5
    for ball in ("lateral_ball", "medial_ball"):
        assert _lowest_near_mm(standing, standing.vertices_mm[kp[ball]], 30.0) < 1.0
    # the heel and the rear foot do not move; the toes turn down without folding the surface
    rear = unloaded.vertices_mm[:, 0] < 90.0
    np.testing.assert_allclose(standing.vertices_mm[rear], unloaded.vertices_mm[rear], atol=0.1)
    assert _normal_cosines(unloaded, standing).min() > 0.5
    assert _signed_volume_mm3(standing) == pytest.approx(_signed_volume_mm3(unloaded), rel=0.05)


def test_population_feet_stand_on_their_toes_and_keep_their_length():
    for name in TOE_SHAPE_PREVALENCE:
        s = population_subject(_seeds_with_toe_shape(name, 1)[0])
        for mesh, dims in ((s.left, s.left_dims), (s.right, s.right_dims)):
            assert np.abs(_toe_pad_heights_mm(mesh)).max() < 1.5, name
            got = measure(mesh, *_ball_points(mesh))
            assert got.length_mm == pytest.approx(dims.length_mm, abs=1.0)
            assert got.ball_girth_mm == pytest.approx(dims.ball_girth_mm, abs=2.0)


def _assert_toe_shape(name: str, mesh: Mesh, context: str) -> None:
    """The toe tip landmarks' x follow docs/measurements.md's definition of the shape."""
    big, second, third, fourth, little = mesh.vertices_mm[[template_keypoints()[toe] for toe in TOES], 0]
    if name == "egyptian":
        assert big > max(second, third, fourth, little) + 1.0, context
    elif name == "greek":
        assert second > max(big, third, fourth, little) + 1.0, context
    else:
        assert name == "square", context
        assert np.ptp([big, second, third]) <= 2.0, context
        assert min(big, second, third) > max(fourth, little), context


def test_population_subjects_have_their_toe_shape_on_both_feet():
    for name in TOE_SHAPE_PREVALENCE:
        for seed in _seeds_with_toe_shape(name, 2):
            s = population_subject(seed)
            assert s.toe_shape == name
            _assert_toe_shape(name, s.left, f"seed {seed} left")
            _assert_toe_shape(name, s.right, f"seed {seed} right")
    assert template_subject().toe_shape == "egyptian"
    _assert_toe_shape("egyptian", standing_template(), "template")


def test_toe_shapes_keep_their_definition_without_folding_the_surface():
    standing = standing_template()
    kp = template_keypoints()
    for seed in range(30):
        shape = population_toe_shape(seed)
        shaped = with_toe_shape(standing, shape)
        _assert_toe_shape(shape.name, shaped, f"seed {seed}")
        assert _normal_cosines(standing, shaped).min() > 0.0, seed
        # the ball section does not move, so the toe shape leaves ball breadth and girth alone
        for ball in ("lateral_ball", "medial_ball"):
            np.testing.assert_array_equal(shaped.vertices_mm[kp[ball]], standing.vertices_mm[kp[ball]])
    with pytest.raises(SimulatorError, match="would fold the toes over"):
        with_toe_shape(standing, ToeShape("greek", (-60.0, 5.0, 0.0, 0.0, 0.0)))


def test_toe_shape_prevalence_and_determinism():
    names = [population_toe_shape(seed).name for seed in range(300)]
    for name, rate in TOE_SHAPE_PREVALENCE.items():
        assert names.count(name) / len(names) == pytest.approx(rate, abs=0.06), name
    assert population_toe_shape(17) == population_toe_shape(17)
    assert len({population_toe_shape(seed).tip_shift_mm for seed in range(20)}) == 20


# --- mesh files as subjects -----------------------------------------------------------------------------------


def test_mesh_subject_accepts_a_ply_written_by_write_mesh(tmp_path, subjects):
    foot = subjects[3].left
    lifted = Mesh(foot.vertices_mm + [5.0, -3.0, 12.0], foot.triangles)
    path = tmp_path / "foot.ply"
    write_mesh(path, lifted)
    s = mesh_subject(path, "left", body_weight_kg=68.0)
    assert s.source == str(path) and s.body_weight_kg == 68.0
    assert s.left.vertices_mm[:, 2].min() == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(s.right.vertices_mm[:, 1], -s.left.vertices_mm[:, 1])
    assert s.left_dims.length_mm == pytest.approx(subjects[3].left_dims.length_mm, abs=0.01)
    # found without landmarks, the ball is close to the one the foot was made with
    assert s.left_dims.ball_breadth_mm == pytest.approx(subjects[3].left_dims.ball_breadth_mm, abs=3.0)
    assert s.left_dims.ball_girth_mm == pytest.approx(subjects[3].left_dims.ball_girth_mm, abs=8.0)


def test_mesh_subject_right_foot_file_makes_a_mirrored_left(tmp_path, subjects):
    path = tmp_path / "right.ply"
    write_mesh(path, subjects[0].right)
    s = mesh_subject(path, "right")
    np.testing.assert_allclose(s.right.vertices_mm, subjects[0].right.vertices_mm, atol=1e-4)
    np.testing.assert_allclose(s.left.vertices_mm * [1.0, -1.0, 1.0], s.right.vertices_mm)
    assert s.left.vertices_mm[template_keypoints()["lateral_ball"], 1] > 0


def test_scanned_ball_points_bound_the_forefoot(subjects):
    foot = subjects[1].left
    lateral, medial = scanned_ball_points(foot)
    assert lateral[1] > 30 and medial[1] < -30


def _box(size_mm: tuple[float, float, float]) -> Mesh:
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float) * size_mm
    triangles = np.array(
        [[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
         [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]]
    )
    return Mesh(corners, triangles[:, ::-1])  # outward winding


def test_mesh_subject_refuses_metres(tmp_path):
    foot = template_foot()
    path = tmp_path / "metres.ply"
    write_mesh(path, Mesh(foot.vertices_mm / 1000.0, foot.triangles))
    with pytest.raises(SimulatorError, match="metres; scale it by 1000"):
        mesh_subject(path, "left")


def test_mesh_subject_refuses_a_cube(tmp_path):
    path = tmp_path / "cube.ply"
    write_mesh(path, _box((200.0, 200.0, 200.0)))
    with pytest.raises(SimulatorError, match="longer than wide"):
        mesh_subject(path, "left")


def test_mesh_subject_refuses_a_flat_or_tiny_or_wrong_side(tmp_path):
    flat, tiny = tmp_path / "flat.ply", tmp_path / "tiny.ply"
    write_mesh(flat, _box((260.0, 100.0, 5.0)))
    write_mesh(tiny, _box((60.0, 20.0, 20.0)))
    with pytest.raises(SimulatorError, match="mm high"):
        mesh_subject(flat, "left")
    with pytest.raises(SimulatorError, match="60 mm long, not a foot"):
        mesh_subject(tiny, "left")
    with pytest.raises(SimulatorError, match="'left' or 'right'"):
        mesh_subject(flat, "both")


@pytest.mark.parametrize("name, content, message", [
    ("nan.obj", "v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
    ("empty.stl", "", "empty or not a valid .stl file"),
    ("points.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles .3 vertices.: export a triangle mesh"),
    ("foot.xyz", "0 0 0\n", "unknown mesh format '.xyz'.*use one of .ply, .stl, .obj"),
    ("missing.ply", None, "no mesh file at"),
], ids=["nan", "empty", "no triangles", "unknown extension", "missing"])
def test_mesh_subject_refuses_what_is_no_usable_mesh(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(SimulatorError, match=message):
        mesh_subject(tmp_path / name, "left")


# --- mesh I/O -------------------------------------------------------------------------------------------------


def test_obj_parser_keeps_vertex_order_and_fans_polygons(tmp_path):
    path = tmp_path / "quad.obj"
    path.write_text("# a quad and a triangle\nv 0 0 0\nvt 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
                    "f 1/1/1 2/1/1 3/1/1 4/1/1\nf -4 -2 -1\n")
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices_mm[2], [1, 1, 0])
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


def test_obj_with_a_hole_of_nul_bytes_is_refused_not_misread(tmp_path):
    """A file read while it is still being copied holds NUL bytes where its blocks are not yet written."""
    path = tmp_path / "half_copied.obj"
    path.write_bytes(b"\0" * 100 + b"0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n")
    with pytest.raises(MeshError, match="NUL bytes.*still being copied"):
        read_mesh(path)


def test_shared_file_still_being_copied_is_read_once_complete(tmp_path, monkeypatch):
    from simulator import subjects

    target = tmp_path / "data" / "feet" / "find_template_keypoints.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * 64 + b"rest")
    monkeypatch.setenv("FOOTFIT_SHARED_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        complete = tmp_path / "complete.csv"
        complete.write_text("model,complete\n")
        threading.Timer(0.7, complete.replace, args=(target,)).start()  # at once: never read half-written
        path = subjects._shared_path("data/feet/find_template_keypoints.csv")
        assert path.read_text() == "model,complete\n"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_ply_and_stl_round_trip(tmp_path):
    import open3d as o3d

    box = _box((250.0, 95.0, 60.0))
    ply = tmp_path / "box.ply"
    write_mesh(ply, box)
    back = read_mesh(ply)
    np.testing.assert_allclose(back.vertices_mm, box.vertices_mm, atol=1e-4)
    np.testing.assert_array_equal(back.triangles, box.triangles)

    stl = tmp_path / "box.stl"
    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(box.vertices_mm),
                                         o3d.utility.Vector3iVector(box.triangles))
    o3d_mesh.compute_triangle_normals()
    assert o3d.io.write_triangle_mesh(str(stl), o3d_mesh)
    from_stl = read_mesh(stl)
    assert len(from_stl.vertices_mm) == 8 and len(from_stl.triangles) == 12
    assert _signed_volume_mm3(from_stl) == pytest.approx(250.0 * 95.0 * 60.0, rel=1e-4)


def test_write_mesh_refuses_other_formats_and_bad_meshes(tmp_path):
    with pytest.raises(MeshError, match="PLY only"):
        write_mesh(tmp_path / "box.stl", _box((1.0, 1.0, 1.0)))
    with pytest.raises(MeshError, match="does not exist"):
        write_mesh(tmp_path / "no" / "box.ply", _box((1.0, 1.0, 1.0)))
    with pytest.raises(MeshError, match="no triangles"):
        write_mesh(tmp_path / "points.ply", Mesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int32)))
    with pytest.raises(MeshError, match="missing vertices"):
        write_mesh(tmp_path / "broken.ply", Mesh(np.zeros((3, 3)), np.array([[0, 1, 3]], dtype=np.int32)))
