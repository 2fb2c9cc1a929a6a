"""Mesh and point-cloud input/output: files and bytes read alike, every PLY/STL flavour a scanner or CAD tool
writes, damaged data refused with a message that names the file and the fix, and hostile data refused before it
costs memory or time (tests/unit/api/test_api_fuzz.py fuzzes the same readers)."""

import re
import time
import tracemalloc

import numpy as np
import open3d as o3d
import pytest

from core.errors import MeshError
from core.mesh import (
    Mesh,
    mesh_from_bytes,
    mesh_to_bytes,
    points_from_bytes,
    points_to_bytes,
    read_mesh,
    write_mesh,
    write_points,
)
from core.settings import get_settings


def _tetrahedron() -> Mesh:
    vertices = np.array([[0.0, 0.0, 0.0], [250.0, 0.0, 0.0], [0.0, 95.0, 0.0], [0.0, 0.0, 60.0]])
    return Mesh(vertices, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int32))


def _ply(body: bytes, *header: str, fmt: str = "binary_little_endian") -> bytes:
    return ("\n".join(["ply", f"format {fmt} 1.0", *header, "end_header"]) + "\n").encode() + body


XYZ = ("property float x", "property float y", "property float z")


def _stl_ascii(mesh: Mesh) -> bytes:
    facets = "".join("facet normal 0 0 0\n outer loop\n" + "".join(f"  vertex {x} {y} {z}\n" for x, y, z in
                                                                  mesh.vertices_mm[t]) + " endloop\nendfacet\n"
                     for t in mesh.triangles)
    return f"solid t\n{facets}endsolid t\n".encode()


def _obj(mesh: Mesh) -> bytes:
    return ("".join(f"v {x} {y} {z}\n" for x, y, z in mesh.vertices_mm)
            + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in mesh.triangles)).encode()


def _caps(monkeypatch, **caps) -> None:
    """The mesh readers see these caps (core.settings.MeshLimits) instead of the settings'."""
    settings = get_settings()
    changed = settings.model_copy(update={"mesh": settings.mesh.model_copy(update=caps)})
    monkeypatch.setattr("core.mesh.get_settings", lambda: changed)


def test_a_file_and_its_bytes_read_alike_and_write_round_trips(tmp_path):
    mesh = _tetrahedron()
    path = tmp_path / "t.ply"
    write_mesh(path, mesh)
    assert path.read_bytes() == mesh_to_bytes(mesh)
    for back in (read_mesh(path), mesh_from_bytes(path.read_bytes(), "upload.PLY")):
        np.testing.assert_allclose(back.vertices_mm, mesh.vertices_mm, atol=1e-4)
        np.testing.assert_array_equal(back.triangles, mesh.triangles)


def test_plys_written_by_open3d_read_as_open3d_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    vertices, triangles = rng.uniform(0, 100, (300, 3)), rng.integers(0, 300, (500, 3))
    written = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(triangles))
    written.compute_vertex_normals()  # extra vertex properties are skipped
    for ascii_ in (False, True):
        path = tmp_path / f"o3d_{ascii_}.ply"
        assert o3d.io.write_triangle_mesh(str(path), written, write_ascii=ascii_)
        mesh = read_mesh(path)
        np.testing.assert_allclose(mesh.vertices_mm, vertices, atol=1e-4)
        np.testing.assert_array_equal(mesh.triangles, triangles)


def test_big_endian_extra_properties_and_polygons_of_mixed_sizes():
    vertices = np.array([(0, 0, 0, 7), (1, 0, 0, 7), (1, 1, 0, 7), (0, 1, 0, 7)],
                        dtype=[("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("red", "u1")])
    faces = b"\x04" + np.array([0, 1, 2, 3], ">i4").tobytes() + b"\x03" + np.array([0, 2, 3], ">i4").tobytes()
    data = _ply(vertices.tobytes() + faces, "comment CAD", "element vertex 4", "property double x",
                "property double y", "property double z", "property uchar red", "element face 2",
                "property list uchar int vertex_indices", fmt="binary_big_endian")
    np.testing.assert_array_equal(mesh_from_bytes(data, "quad.ply").triangles, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    text = _ply(b"0 0 0\r\n1 0 0\r\n1 1 0\r\n0 1 0\r\n4 0 1 2 3\r\n", "element vertex 4", "property float x",
                "property float y", "property float z", "element face 1", "property list uchar uint vertex_index",
                fmt="ascii")
    np.testing.assert_array_equal(mesh_from_bytes(text, "quad.ply").triangles, [[0, 1, 2], [0, 2, 3]])


def test_stl_binary_and_ascii_share_corners_as_open3d_does(tmp_path):
    mesh = _tetrahedron()
    path = tmp_path / "t.stl"
    written = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices_mm),
                                        o3d.utility.Vector3iVector(mesh.triangles))
    written.compute_triangle_normals()
    assert o3d.io.write_triangle_mesh(str(path), written)
    expected = o3d.io.read_triangle_mesh(str(path)).remove_duplicated_vertices()
    binary = read_mesh(path)
    np.testing.assert_allclose(binary.vertices_mm, np.asarray(expected.vertices))
    np.testing.assert_array_equal(binary.triangles, np.asarray(expected.triangles))
    ascii_ = mesh_from_bytes(_stl_ascii(mesh), "t.stl")
    np.testing.assert_array_equal(ascii_.vertices_mm, binary.vertices_mm)  # numbered as the file first names them
    np.testing.assert_array_equal(ascii_.triangles, binary.triangles)


def test_points_round_trip_through_bytes_as_open3d_reads_them(tmp_path):
    points = np.random.default_rng(1).uniform(0, 250, (2000, 3))
    path = tmp_path / "left.ply"
    write_points(path, points)
    assert path.read_bytes() == points_to_bytes(points)
    np.testing.assert_allclose(points_from_bytes(path.read_bytes(), "left.ply"), points, atol=1e-4)
    write_points(path, points, points / np.linalg.norm(points, axis=1, keepdims=True))
    back = points_from_bytes(path.read_bytes(), "left.ply")
    np.testing.assert_array_equal(back, np.asarray(o3d.io.read_point_cloud(str(path)).points))


@pytest.mark.parametrize("data, name, says", [
    (b"solid foot\nendsolid", "left.ply", "left.ply is not a PLY file"),
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\n", "x.ply", "header ending in 'end_header'"),
    (_ply(bytes(12), "element vertex 3", "property float x"), "x.ply", "no x, y and z"),
    (_ply(b"", "element vertex 3", "property quad x"), "x.ply", "cannot read the PLY header line"),
    (_ply(b"", fmt="binary_middle_endian"), "x.ply", "no known format"),
    (_ply(b"", "element face 0"), "x.ply", "declares no vertices"),
    (_ply(b"1 2 3\n4 5", "element vertex 2", "property float x", "property float y", "property float z",
          fmt="ascii"), "x.ply", "cut short: it declares 2 vertices"),
    (_ply(b"1 2 three\n", "element vertex 1", "property float x", "property float y", "property float z",
          fmt="ascii"), "x.ply", "not a number"),
])
def test_damaged_plys_are_refused_saying_what_is_wrong(data, name, says):
    with pytest.raises(MeshError, match=says):
        points_from_bytes(data, name)


def test_a_file_cut_short_is_refused_not_filled_with_zeros():
    data = mesh_to_bytes(_tetrahedron())
    for cut in (len(data) - 3, len(data) - 60):
        with pytest.raises(MeshError, match="t.ply is cut short: it declares 4 (faces|vertices) but holds fewer"):
            mesh_from_bytes(data[:cut], "t.ply")
    with pytest.raises(MeshError, match="cut short"):
        points_from_bytes(points_to_bytes(np.ones((100, 3)))[:-1], "left.ply")


def test_bytes_are_checked_as_files_are():
    with pytest.raises(MeshError, match="unknown mesh format '.xyz'"):
        mesh_from_bytes(b"", "foot.xyz")
    with pytest.raises(MeshError, match="empty or not a valid .stl file"):
        mesh_from_bytes(b"", "foot.stl")
    with pytest.raises(MeshError, match="foot.obj has 1 vertices with NaN"):
        mesh_from_bytes(b"v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n", "foot.obj")
    points = points_to_bytes(np.ones((3, 3)))
    with pytest.raises(MeshError, match=r"cloud.ply has no triangles \(3 vertices\)"):
        mesh_from_bytes(points, "cloud.ply")
    with pytest.raises(MeshError, match="cannot write the points: the points must be a finite"):
        points_to_bytes(np.full((3, 3), np.nan))


@pytest.mark.parametrize("data, says", [
    (_ply(bytes(12), "element vertex 10000000000", *XYZ),
     "left.ply has 10,000,000,000 points, more than the 100,000 footfit reads (FOOTFIT_MESH__MAX_POINTS): thin the "
     "point cloud and send it again"),
    (_ply(b"0 0 0\n", "element vertex 100001", *XYZ, fmt="ascii"), "has 100,001 points"),
    (_ply(bytes(12), "element vertex 99999", *XYZ), "left.ply is cut short: it declares 99999 vertices"),
    (_ply(bytes(13), "element vertex 1", *XYZ, "element face 4000000000", "property list uchar int vertex_indices"),
     "has 4,000,000,000 faces, more than the 1,000,000 footfit reads (FOOTFIT_MESH__MAX_TRIANGLES)"),
    (_ply(bytes(12), "element edge 10000000000", "property int vertex1", "element vertex 1", *XYZ),
     "has 10,000,000,000 'edge' elements"),
    (_ply(bytes(12), "element edge 1", "property list uchar int vertex_indices"), "export only vertices and faces"),
    (_ply(bytes(12), "element vertex 1", "property float x", "property float x"), "two properties named 'x'"),
    (_ply(bytes(12), "element vertex 1", *XYZ).replace(b"vertex 1", b"vertex \xb2"),  # isdigit(), but not int()
     "cannot read the PLY header line 'element vertex \xb2'"),
    (_ply(bytes(12), "element vertex " + "1" * 5000, *XYZ), "cannot read the PLY header line 'element vertex 111"),
])
def test_a_hostile_header_is_refused_before_anything_is_allocated(data, says):
    tracemalloc.start()
    try:
        with pytest.raises(MeshError, match=re.escape(says)):
            points_from_bytes(data, "left.ply")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000


def test_point_clouds_and_meshes_are_capped_by_the_settings(monkeypatch):
    points = np.random.default_rng(3).uniform(0, 250, (100_001, 3))
    with pytest.raises(MeshError, match=r"left.ply has 100,001 points, more than the 100,000 footfit reads"):
        points_from_bytes(points_to_bytes(points), "left.ply")
    assert len(points_from_bytes(points_to_bytes(points[:100_000]), "left.ply")) == 100_000
    mesh = _tetrahedron()  # 4 vertices, 4 triangles
    records = np.zeros(4, dtype=[("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    records["corners"] = mesh.vertices_mm[mesh.triangles]
    files = {"t.ply": mesh_to_bytes(mesh), "t.obj": _obj(mesh), "t.stl": _stl_ascii(mesh),
             "binary.stl": bytes(80) + (4).to_bytes(4, "little") + records.tobytes()}
    for cap in ("vertices", "triangles"):
        _caps(monkeypatch, **{f"max_{cap}": 3})
        for name, data in files.items():
            with pytest.raises(MeshError, match=rf"{name} has .*more than the 3.* \(FOOTFIT_MESH__MAX_{cap.upper()}\)"):
                mesh_from_bytes(data, name)
    _caps(monkeypatch, max_vertices=4, max_triangles=4)
    for name, data in files.items():
        back = mesh_from_bytes(data, name)  # an STL numbers its vertices as it first names them
        np.testing.assert_allclose(back.vertices_mm[back.triangles], mesh.vertices_mm[mesh.triangles], atol=1e-4)


def test_reading_takes_time_in_proportion_to_the_bytes():
    """A pattern that may backtrack across line ends takes time in the square of the file's size: 100 kB of blank
    lines in an ASCII STL took 10 s, a 16 MB upload would have held a core for days."""
    started = time.perf_counter()
    with pytest.raises(MeshError, match="blank.stl holds no vertices"):
        mesh_from_bytes(b"solid x\n" + b"\n" * 100_000 + b"endsolid x\n", "blank.stl")
    assert time.perf_counter() - started < 1.0
