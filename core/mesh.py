"""Triangle meshes in millimetres, and reading/writing them (PLY, OBJ, STL) from files or from bytes.

A file and the same bytes uploaded read alike: `read_mesh(path)` is `mesh_from_bytes(contents, path)`, one parser
per format and one check of the result, so an upload is refused for exactly what a file would be, in the same
words. The parsers are our own (numpy) rather than open3d's, which reads only from paths, fills a file that is
cut short with zeros, and splits OBJ vertices that carry several texture coordinates (renumbering them, which
breaks landmark indices given in file order).

Files carry no units: the coordinates come back as stored, and callers that need millimetres check the size
(see simulator/subjects.py). Writing is binary little-endian PLY, float32 coordinates in mm.
"""

from __future__ import annotations

import io
import re
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


# --- reading ------------------------------------------------------------------------------------------------


def read_mesh(path: str | Path) -> Mesh:
    """Read a triangle mesh from a .ply, .stl or .obj file, keeping the file's vertex order (OBJ, PLY)."""
    path = Path(path)
    _suffix(str(path))
    if not path.is_file():
        raise MeshError(f"no mesh file at {path}: check the path")
    return mesh_from_bytes(path.read_bytes(), str(path))


def mesh_from_bytes(data: bytes, name: str) -> Mesh:
    """The triangle mesh in `data`, the contents of a file called `name`: its suffix gives the format, and every
    message names it."""
    read = {".ply": _read_ply, ".stl": _read_stl, ".obj": _read_obj}[_suffix(name)]
    return _checked(name, *read(data, name))


def points_from_bytes(data: bytes, name: str) -> np.ndarray:
    """The vertices (N, 3) float64 of the PLY point cloud (or mesh) in `data`, a file called `name`, as stored."""
    return _ply_vertices(_ply_elements(data, name, wanted=("vertex",)), name)


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(f"unknown mesh format {Path(name).suffix!r} for {name}: use one of {', '.join(MESH_SUFFIXES)}")
    return suffix


def _checked(name: str, vertices: np.ndarray, triangles: np.ndarray) -> Mesh:
    """The mesh if it is a usable triangle mesh, else a MeshError that says what to repair."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int32)
    if len(vertices) == 0:
        raise MeshError(f"{name} holds no vertices: it is empty or not a valid {Path(name).suffix} file; "
                        f"export it again")
    if len(triangles) == 0:
        raise MeshError(f"{name} has no triangles ({len(vertices)} vertices): export a triangle mesh, not a point "
                        f"cloud")
    bad = int((~np.isfinite(vertices)).any(axis=1).sum())
    if bad:
        raise MeshError(f"{name} has {bad} vertices with NaN or infinite coordinates: repair the mesh and export again")
    if triangles.min() < 0 or triangles.max() >= len(vertices):
        raise MeshError(f"{name} has triangles that point to missing vertices: repair the mesh and export again")
    return Mesh(vertices, triangles)


def _fan(polygons: list[list[int]] | np.ndarray) -> np.ndarray:
    """Triangles (M, 3) of polygons given as corner lists, each split into a fan around its first corner."""
    if isinstance(polygons, np.ndarray) and polygons.shape[1:] == (3,):
        return polygons.astype(np.int32)
    triangles = [(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)]
    return np.array(triangles, dtype=np.int32).reshape(-1, 3)


# OBJ: vertex lines in file order; faces `f a b c ...` or `f a/t/n ...`.


def _read_obj(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    vertices: list[list[str]] = []
    polygons: list[list[int]] = []
    for line_no, line in enumerate(io.StringIO(data.decode("latin-1"), newline=None), 1):
        if "\0" in line:
            raise MeshError(f"{name}:{line_no}: NUL bytes in a text OBJ file: the file is damaged or still being "
                            "copied; copy it again")
        if line.startswith("v "):
            vertices.append(line.split()[1:4])
        elif line.startswith("f "):
            try:
                polygons.append([_obj_index(token, len(vertices)) for token in line.split()[1:]])
            except ValueError:
                raise MeshError(f"{name}:{line_no}: cannot read face {line.strip()!r}") from None
    try:
        v = np.array(vertices, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise MeshError(f"{name}: a vertex line does not hold three numbers: repair or re-export the file") from None
    return v, _fan(polygons)


def _obj_index(token: str, n_vertices_so_far: int) -> int:
    """0-based vertex index of an OBJ face corner (1-based, or negative = relative to the end)."""
    index = int(token.split("/")[0])
    return index - 1 if index > 0 else n_vertices_so_far + index


# STL: every triangle lists its three corners; corners shared by triangles become one vertex.

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
_STL_ASCII_VERTEX = re.compile(rb"^\s*vertex\s+(\S+)\s+(\S+)\s+(\S+)", re.MULTILINE)


def _read_stl(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Binary STL when the size matches its triangle count (its 80-byte header may begin with 'solid' too), else
    ASCII."""
    if len(data) >= 84 and len(data) == 84 + _STL_RECORD.itemsize * int.from_bytes(data[80:84], "little"):
        corners = np.frombuffer(data, _STL_RECORD, offset=84)["corners"].reshape(-1, 3)
    elif data.lstrip().startswith(b"solid"):
        try:
            corners = np.array(_STL_ASCII_VERTEX.findall(data), dtype=np.float64).reshape(-1, 3)
        except ValueError:
            raise MeshError(f"{name}: a 'vertex' line does not hold three numbers: repair or re-export the "
                            f"file") from None
        if len(corners) % 3:
            raise MeshError(f"{name}: a facet does not have three vertices: export the mesh as triangles")
    else:
        raise MeshError(f"{name} is empty or not a valid .stl file (binary: 84 bytes and 50 per triangle; ASCII: "
                        f"'solid' ... 'endsolid'): export it again")
    # one vertex per distinct corner (bit for bit), numbered in the order the file first names them
    rows = np.ascontiguousarray(corners).view(np.dtype((np.void, corners.itemsize * 3))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    order = np.argsort(first)
    number = np.empty_like(order)
    number[order] = np.arange(len(order))
    return corners[first[order]].astype(np.float64), number[inverse].reshape(-1, 3)


# PLY: ASCII or binary (either byte order), any property types; `element vertex` with x, y, z and `element face`
# with a list of corners (polygons are split into fans).

_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_PLY_BYTE_ORDERS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


@dataclass(frozen=True)
class _PlyProperty:
    name: str
    type: str  # numpy type code; of the items, for a list
    count_type: str | None = None  # set for a list: the type of its length


@dataclass
class _PlyElement:
    name: str
    count: int
    properties: list[_PlyProperty]


def _read_ply(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    elements = _ply_elements(data, name, wanted=("vertex", "face"))
    faces = elements.get("face", {})
    corners = faces.get("vertex_indices", faces.get("vertex_index", np.zeros((0, 3))))  # both spellings are common
    return _ply_vertices(elements, name), _fan(corners)


def _ply_vertices(elements: dict[str, dict], name: str) -> np.ndarray:
    if "vertex" not in elements:
        raise MeshError(f"{name} declares no vertices ('element vertex N'): export the mesh or point cloud again")
    vertex = elements["vertex"]
    if not {"x", "y", "z"} <= vertex.keys():
        raise MeshError(f"{name}: its vertices have no x, y and z properties: export the positions")
    return np.stack([vertex[axis] for axis in "xyz"], axis=1).astype(np.float64)


def _ply_elements(data: bytes, name: str, wanted: tuple[str, ...]) -> dict[str, dict]:
    """The `wanted` elements, each as property name -> values: (count,) for a scalar; for a list (count, n) when
    every row's is n long, else a list of arrays. Elements before them are read only to be skipped."""
    byte_order, elements, body = _ply_header(data, name)
    found: dict[str, dict] = {}
    position = 0
    tokens = body.split() if byte_order is None else None
    for element in elements:
        if all(w in found for w in wanted):
            break
        if tokens is None:
            found[element.name], position = _ply_binary_rows(body, position, element, byte_order, name)
        else:
            found[element.name], position = _ply_ascii_rows(tokens, position, element, name)
    return {w: found[w] for w in wanted if w in found}


def _ply_header(data: bytes, name: str) -> tuple[str | None, list[_PlyElement], bytes]:
    """(byte order: '<', '>' or None for ASCII; the elements in file order; the bytes after the header)."""
    head, found, _ = data.partition(b"end_header")
    if not data.startswith(b"ply") or not found:
        raise MeshError(f"{name} is not a PLY file (it must start with 'ply' and a header ending in 'end_header'): "
                        f"save or export it as PLY")
    body = data[len(head) + len(found):]
    body = body[2:] if body.startswith(b"\r\n") else body[1:]
    byte_order, elements = "", []
    for line in head.decode("latin-1").splitlines()[1:]:
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1 and words[1] in _PLY_BYTE_ORDERS:
            byte_order = _PLY_BYTE_ORDERS[words[1]]
        elif words[:1] == ["element"] and len(words) == 3 and words[2].isdigit():
            elements.append(_PlyElement(words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements and (prop := _ply_property(words)):
            elements[-1].properties.append(prop)
        elif words[:1] not in ([], ["format"], ["comment"], ["obj_info"]):
            raise MeshError(f"{name}: cannot read the PLY header line {line.strip()!r}: export the file again")
    if byte_order == "":
        raise MeshError(f"{name}: the PLY header names no known format (ascii, binary_little_endian or "
                        f"binary_big_endian): export the file again")
    return byte_order, elements, body


def _ply_property(words: list[str]) -> _PlyProperty | None:
    """`property TYPE NAME` or `property list COUNT_TYPE TYPE NAME`; None for an unknown type."""
    if len(words) == 3 and words[1] in _PLY_TYPES:
        return _PlyProperty(words[2], _PLY_TYPES[words[1]])
    if len(words) == 5 and words[1] == "list" and words[2] in _PLY_TYPES and words[3] in _PLY_TYPES:
        return _PlyProperty(words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]])
    return None


def _cut_short(name: str, element: _PlyElement) -> MeshError:
    what = {"vertex": "vertices", "face": "faces"}.get(element.name, f"'{element.name}' elements")
    return MeshError(f"{name} is cut short: it declares {element.count} {what} but holds fewer; copy or send the "
                     f"whole file again")


def _ply_binary_rows(body: bytes, offset: int, element: _PlyElement, byte_order: str,
                     name: str) -> tuple[dict, int]:
    """One element's values and the offset after it. When every list is as long as the first row's (triangles),
    each row is one fixed-size record and all are read as one array; else row by row (polygons of mixed sizes)."""
    lengths = _first_row_list_lengths(body, offset, element, byte_order)
    record = _ply_record(element, byte_order, lengths)
    end = offset + element.count * record.itemsize
    if end > len(body) and not lengths:
        raise _cut_short(name, element)
    if end <= len(body):
        rows = np.frombuffer(body, record, element.count, offset)
        if all((rows[p]["n"] == n).all() for p, n in lengths.items()):
            return {p.name: rows[p.name] if p.count_type is None else rows[p.name]["items"]
                    for p in element.properties}, end
    values: dict[str, list] = {p.name: [] for p in element.properties}
    for _ in range(element.count):
        for p in element.properties:
            if p.count_type is None:
                item, offset = _ply_binary_values(body, offset, byte_order + p.type, 1, element, name)
                values[p.name].append(item[0])
            else:
                n, offset = _ply_binary_values(body, offset, byte_order + p.count_type, 1, element, name)
                items, offset = _ply_binary_values(body, offset, byte_order + p.type, int(n[0]), element, name)
                values[p.name].append(items)
    return {p.name: values[p.name] if p.count_type else np.array(values[p.name]) for p in element.properties}, offset


def _ply_record(element: _PlyElement, byte_order: str, lengths: dict[str, int]) -> np.dtype:
    """One row of the element as a numpy record, each list `lengths[name]` items long after its length."""
    fields = []
    for p in element.properties:
        if p.count_type is None:
            fields.append((p.name, byte_order + p.type))
        else:
            items = (lengths[p.name],)
            fields.append((p.name, [("n", byte_order + p.count_type), ("items", byte_order + p.type, items)]))
    return np.dtype(fields)


def _first_row_list_lengths(body: bytes, offset: int, element: _PlyElement, byte_order: str) -> dict[str, int]:
    """The length of each list in the element's first row (0 where there is none)."""
    lengths = {}
    for p in element.properties:
        if p.count_type is None:
            offset += np.dtype(p.type).itemsize
            continue
        n_type = np.dtype(byte_order + p.count_type)
        there = element.count and offset + n_type.itemsize <= len(body)
        lengths[p.name] = int(np.frombuffer(body, n_type, 1, offset)[0]) if there else 0
        offset += n_type.itemsize + lengths[p.name] * np.dtype(p.type).itemsize
    return lengths


def _ply_binary_values(body: bytes, offset: int, type_: str, count: int, element: _PlyElement,
                       name: str) -> tuple[np.ndarray, int]:
    end = offset + count * np.dtype(type_).itemsize
    if end > len(body):
        raise _cut_short(name, element)
    return np.frombuffer(body, type_, count, offset), end


def _ply_ascii_rows(tokens: list[bytes], position: int, element: _PlyElement, name: str) -> tuple[dict, int]:
    """One element's values and the token position after it: a row's values are the next tokens in order."""
    try:
        if all(p.count_type is None for p in element.properties):
            width = len(element.properties)
            end = position + element.count * width
            if end > len(tokens):
                raise _cut_short(name, element)
            table = np.array(tokens[position:end], dtype=np.float64).reshape(element.count, width)
            return {p.name: table[:, i] for i, p in enumerate(element.properties)}, end
        values: dict[str, list] = {p.name: [] for p in element.properties}
        for _ in range(element.count):
            for p in element.properties:
                n = 1 if p.count_type is None else int(tokens[position])
                start = position + (p.count_type is not None)
                if start + n > len(tokens):
                    raise _cut_short(name, element)
                items = np.array(tokens[start:start + n], dtype=np.float64)
                values[p.name].append(items.astype(np.int64) if p.count_type else items[0])
                position = start + n
    except IndexError:
        raise _cut_short(name, element) from None
    except ValueError:
        raise MeshError(f"{name}: a value of its {element.name} elements is not a number: repair or re-export the "
                        f"file") from None
    return {p.name: values[p.name] if p.count_type else np.array(values[p.name]) for p in element.properties}, position


# --- writing ------------------------------------------------------------------------------------------------


def write_mesh(path: str | Path, mesh: Mesh) -> None:
    """Write the mesh as binary little-endian PLY (float32 coordinates in mm, int32 triangle indices)."""
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise MeshError(f"write_mesh writes PLY only, but {path} does not end in .ply: rename it to .ply")
    if not path.parent.is_dir():
        raise MeshError(f"cannot write {path}: the folder {path.parent} does not exist")
    path.write_bytes(mesh_to_bytes(mesh, str(path)))


def mesh_to_bytes(mesh: Mesh, name: str = "the mesh") -> bytes:
    """The mesh as binary little-endian PLY bytes, as `write_mesh` writes them (`name` is for messages)."""
    mesh = _checked(name, mesh.vertices_mm, mesh.triangles)
    faces = np.zeros(len(mesh.triangles), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    faces["n"] = 3
    faces["idx"] = mesh.triangles
    return (_ply_head(len(mesh.vertices_mm), "xyz", len(mesh.triangles)) + mesh.vertices_mm.astype("<f4").tobytes()
            + faces.tobytes())


def write_points(path: str | Path, points_mm: np.ndarray, normals: np.ndarray | None = None) -> None:
    """Write a point cloud (and its unit normals) as binary little-endian PLY, float32, mm."""
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise MeshError(f"write_points writes PLY only, but {path} does not end in .ply: rename it to .ply")
    path.write_bytes(points_to_bytes(points_mm, normals, str(path)))


def points_to_bytes(points_mm: np.ndarray, normals: np.ndarray | None = None, name: str = "the points") -> bytes:
    """The point cloud as binary little-endian PLY bytes, as `write_points` writes them (`name` is for messages)."""
    points_mm = np.asarray(points_mm, dtype=float)
    if points_mm.ndim != 2 or points_mm.shape[1] != 3 or not np.isfinite(points_mm).all():
        raise MeshError(f"cannot write {name}: the points must be a finite (N, 3) array")
    columns = [points_mm] if normals is None else [points_mm, np.asarray(normals, dtype=float)]
    names = ("x", "y", "z") if normals is None else ("x", "y", "z", "nx", "ny", "nz")
    return _ply_head(len(points_mm), names) + np.hstack(columns).astype("<f4").tobytes()


def _ply_head(n_vertices: int, vertex_properties, n_faces: int | None = None) -> bytes:
    """The header of a binary little-endian PLY with float vertex properties and, if given, triangle faces."""
    lines = ["ply", "format binary_little_endian 1.0", "comment units: mm", f"element vertex {n_vertices}",
             *(f"property float {p}" for p in vertex_properties)]
    if n_faces is not None:
        lines += [f"element face {n_faces}", "property list uchar int vertex_indices"]
    return ("\n".join(lines) + "\nend_header\n").encode("ascii")
