"""Triangle meshes in millimetres, and reading/writing them (PLY, OBJ, STL).

Files carry no units: `read_mesh` returns the coordinates as stored and callers that need millimetres check the
size (see simulator/subjects.py). OBJ is parsed here rather than by open3d because open3d splits vertices that
carry several texture coordinates, which renumbers them and breaks landmark indices given in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import MeshError

MESH_SUFFIXES = (".ply", ".stl", ".obj")


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in millimetres."""

    vertices_mm: np.ndarray  # (N, 3) float64
    triangles: np.ndarray  # (M, 3) int32, counter-clockwise seen from outside

    def transformed(self, pose: np.ndarray) -> "Mesh":
        """The mesh moved by a 4x4 pose (rotation + translation, mm)."""
        v = self.vertices_mm @ pose[:3, :3].T + pose[:3, 3]
        return Mesh(v, self.triangles)


def read_mesh(path: str | Path) -> Mesh:
    """Read a triangle mesh from a .ply, .stl or .obj file, keeping the file's vertex order (OBJ, PLY)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(f"unknown mesh format {path.suffix!r} for {path}: use one of {', '.join(MESH_SUFFIXES)}")
    if not path.is_file():
        raise MeshError(f"no mesh file at {path}: check the path")
    vertices, triangles = _read_obj(path) if suffix == ".obj" else _read_with_open3d(path)
    return _checked(path, vertices, triangles)


def write_mesh(path: str | Path, mesh: Mesh) -> None:
    """Write the mesh as binary little-endian PLY (float32 coordinates in mm, int32 triangle indices)."""
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise MeshError(f"write_mesh writes PLY only, but {path} does not end in .ply: rename it to .ply")
    if not path.parent.is_dir():
        raise MeshError(f"cannot write {path}: the folder {path.parent} does not exist")
    mesh = _checked(path, mesh.vertices_mm, mesh.triangles)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment units: mm\n"
        f"element vertex {len(mesh.vertices_mm)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(mesh.triangles)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    faces = np.zeros(len(mesh.triangles), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    faces["n"] = 3
    faces["idx"] = mesh.triangles
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(mesh.vertices_mm.astype("<f4").tobytes())
        f.write(faces.tobytes())


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertex lines in file order; faces `f a b c ...` or `f a/t/n ...`, polygons split into fans."""
    vertices: list[list[str]] = []
    triangles: list[tuple[int, int, int]] = []
    with path.open(encoding="latin-1") as f:
        for line_no, line in enumerate(f, 1):
            if "\0" in line:
                raise MeshError(f"{path}:{line_no}: NUL bytes in a text OBJ file: the file is damaged or still being "
                                "copied; copy it again")
            if line.startswith("v "):
                vertices.append(line.split()[1:4])
            elif line.startswith("f "):
                try:
                    corners = [_obj_index(token, len(vertices)) for token in line.split()[1:]]
                except ValueError:
                    raise MeshError(f"{path}:{line_no}: cannot read face {line.strip()!r}") from None
                triangles.extend((corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1))
    try:
        v = np.array(vertices, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise MeshError(f"{path}: a vertex line does not hold three numbers: repair or re-export the file") from None
    return v, np.array(triangles, dtype=np.int32).reshape(-1, 3)


def _obj_index(token: str, n_vertices_so_far: int) -> int:
    """0-based vertex index of an OBJ face corner (1-based, or negative = relative to the end)."""
    index = int(token.split("/")[0])
    return index - 1 if index > 0 else n_vertices_so_far + index


def _read_with_open3d(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    mesh = o3d.io.read_triangle_mesh(str(path))
    if path.suffix.lower() == ".stl":  # STL stores every triangle's corners separately
        mesh.remove_duplicated_vertices()
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int32)


def _checked(path: Path, vertices: np.ndarray, triangles: np.ndarray) -> Mesh:
    """The mesh if it is a usable triangle mesh, else a MeshError that says what to repair."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int32)
    if len(vertices) == 0:
        raise MeshError(f"{path} holds no vertices: it is empty or not a valid {path.suffix} file; export it again")
    if len(triangles) == 0:
        raise MeshError(
            f"{path} has no triangles ({len(vertices)} vertices): export a triangle mesh, not a point cloud"
        )
    bad = int((~np.isfinite(vertices)).any(axis=1).sum())
    if bad:
        raise MeshError(f"{path} has {bad} vertices with NaN or infinite coordinates: repair the mesh and export again")
    if triangles.min() < 0 or triangles.max() >= len(vertices):
        raise MeshError(f"{path} has triangles that point to missing vertices: repair the mesh and export again")
    return Mesh(vertices, triangles)


def write_points(path: str | Path, points_mm: np.ndarray, normals: np.ndarray | None = None) -> None:
    """Write a point cloud (and its unit normals) as binary little-endian PLY, float32, mm."""
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise MeshError(f"write_points writes PLY only, but {path} does not end in .ply: rename it to .ply")
    points_mm = np.asarray(points_mm, dtype=float)
    if points_mm.ndim != 2 or points_mm.shape[1] != 3 or not np.isfinite(points_mm).all():
        raise MeshError(f"cannot write {path}: the points must be a finite (N, 3) array")
    columns = [points_mm] if normals is None else [points_mm, np.asarray(normals, dtype=float)]
    names = ["x", "y", "z"] + ([] if normals is None else ["nx", "ny", "nz"])
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment units: mm\n"
        f"element vertex {len(points_mm)}\n" + "".join(f"property float {n}\n" for n in names) + "end_header\n"
    )
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.hstack(columns).astype("<f4").tobytes())
