"""Triangle meshes in millimetres, and reading/writing them (PLY, OBJ, STL) from files or from bytes.

A file and the same bytes uploaded read alike: `read_mesh(path)` is `mesh_from_bytes(contents, path)`, one parser
per format and one check of the result, so an upload is refused for exactly what a file would be, in the same
words.

Uploads reach these readers (a passport's point clouds, the catalogue's interior scans), so they are strict about
size: a PLY header is read line by line (known types only) and its counts are checked against the settings' caps
(`mesh`, core/settings.py) and against the bytes that follow before any array is made; OBJ and STL stop at the caps
as they count. A short file that declares billions of vertices costs its header's reading. Every refusal is a
MeshError that names the file and the fix.

The parsers are our own (numpy) because no library reads uploads as bytes both strictly and fast: open3d reads
only from paths, fills a file that is cut short with zeros and splits OBJ vertices that carry several texture
coordinates (renumbering them, which breaks landmark indices given in file order); plyfile reads bytes row by row
(80 times slower: 90 ms for a foot's 27 k points, 0.4 s for a 100 k-triangle interior) after allocating what the
header declares; trimesh refuses binary PLY polygons of mixed sizes and reads an ASCII PLY that declares 10 M
vertices but holds one as a one-vertex mesh.

Files carry no units: the coordinates come back as stored, and callers that need millimetres check the size
(see simulator/subjects.py). Writing is binary little-endian PLY, float32 coordinates in mm.
"""

from __future__ import annotations

import array
import io
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import MeshError
from core.settings import get_settings

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


@dataclass(frozen=True)
class _Cap:
    """The most of something a file may hold, the setting that says so, and what to do about a file with more."""

    limit: int
    what: str
    setting: str
    fix: str


def _caps() -> dict[str, _Cap]:
    limits = get_settings().mesh
    return {"points": _Cap(limits.max_points, "points", "FOOTFIT_MESH__MAX_POINTS", "thin the point cloud"),
            "vertices": _Cap(limits.max_vertices, "vertices", "FOOTFIT_MESH__MAX_VERTICES", "simplify the mesh"),
            "triangles": _Cap(limits.max_triangles, "triangles", "FOOTFIT_MESH__MAX_TRIANGLES", "simplify the mesh")}


def _over(name: str, cap: _Cap, count: int | None = None, what: str | None = None) -> MeshError:
    """The refusal of a file over the cap; `count` when known (a header's), else the file was read up to the cap."""
    what = what or cap.what
    has = f"has {count:,} {what}, more than the {cap.limit:,}" if count else f"has more than the {cap.limit:,} {what}"
    return MeshError(f"{name} {has} footfit reads ({cap.setting}): {cap.fix} and send it again")


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
    caps = _caps()
    vertices, triangles = read(data, name, caps["vertices"], caps["triangles"])
    return _checked(name, vertices, triangles)


def points_from_bytes(data: bytes, name: str) -> np.ndarray:
    """The vertices (N, 3) float64 of the PLY point cloud (or mesh) in `data`, a file called `name`, as stored."""
    caps = _caps()
    return _ply_vertices(_ply_elements(data, name, caps["points"], caps["triangles"], wanted=("vertex",)), name)


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(f"unknown mesh format {Path(name).suffix!r} for {name}: use one of {', '.join(MESH_SUFFIXES)}")
    return suffix


def _checked(name: str, vertices: np.ndarray, triangles: np.ndarray) -> Mesh:
    """The mesh if it is a usable triangle mesh, else a MeshError that says what to repair. Corner indices may come
    as floats (ASCII PLY): they must be whole numbers that name a vertex."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles)
    if len(vertices) == 0:
        raise MeshError(f"{name} holds no vertices: it is empty or not a valid {Path(name).suffix} file; "
                        f"export it again")
    if len(triangles) == 0:
        raise MeshError(f"{name} has no triangles ({len(vertices)} vertices): export a triangle mesh, not a point "
                        f"cloud")
    bad = int((~np.isfinite(vertices)).any(axis=1).sum())
    if bad:
        raise MeshError(f"{name} has {bad} vertices with NaN or infinite coordinates: repair the mesh and export again")
    named = (triangles >= 0) & (triangles < len(vertices))
    if triangles.dtype.kind == "f":
        named &= triangles == np.floor(triangles)
    if not named.all():
        raise MeshError(f"{name} has triangles that point to missing vertices: repair the mesh and export again")
    return Mesh(vertices, triangles.astype(np.int32))


def _fan(lengths: np.ndarray, corners: np.ndarray, name: str, cap: _Cap) -> np.ndarray:
    """Triangles (M, 3) of polygons given by their corner counts and all their corners in order, each polygon split
    into a fan around its first corner (polygons of fewer than three corners make none)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths == 3).all():
        return np.asarray(corners).reshape(-1, 3)
    fans = np.maximum(lengths - 2, 0)
    count = int(fans.sum())
    if count > cap.limit:
        raise _over(name, cap, count)
    first = (np.cumsum(lengths) - lengths)[np.repeat(np.arange(len(lengths)), fans)]
    k = np.arange(count) - np.repeat(np.cumsum(fans) - fans, fans) + 1  # 1 .. n-2 within each polygon
    return np.stack([corners[first], corners[first + k], corners[first + k + 1]], axis=1)


# OBJ: vertex lines in file order; faces `f a b c ...` or `f a/t/n ...`.


def _read_obj(data: bytes, name: str, max_vertices: _Cap, max_triangles: _Cap) -> tuple[np.ndarray, np.ndarray]:
    """Read line by line into flat arrays (8 bytes a number), stopping at the caps."""
    coordinates, lengths, corners = array.array("d"), array.array("q"), array.array("q")
    triangles = 0
    for line_no, line in enumerate(io.StringIO(data.decode("latin-1"), newline=None), 1):
        if "\0" in line:
            raise MeshError(f"{name}:{line_no}: NUL bytes in a text OBJ file: the file is damaged or still being "
                            "copied; copy it again")
        if line.startswith("v "):
            try:
                x, y, z = map(float, line.split(None, 4)[1:4])  # `v x y z`, maybe followed by w or a colour
            except ValueError:
                raise MeshError(f"{name}:{line_no}: a vertex line does not hold three numbers: repair or re-export "
                                f"the file") from None
            coordinates.extend((x, y, z))
            if len(coordinates) > 3 * max_vertices.limit:
                raise _over(name, max_vertices)
        elif line.startswith("f "):
            room = max_triangles.limit - triangles + 2  # corners this face may have within the cap
            tokens = line.split(None, room + 1)[1:]  # split no further than that
            if len(tokens) > room:
                raise _over(name, max_triangles)
            try:
                face = [_obj_index(token, len(coordinates) // 3) for token in tokens]
                corners.extend(face)
            except (ValueError, OverflowError):
                raise MeshError(f"{name}:{line_no}: cannot read face {_shown(line)}") from None
            lengths.append(len(face))
            triangles += max(len(face) - 2, 0)
    vertices = np.frombuffer(coordinates, dtype=np.float64).reshape(-1, 3)
    return vertices, _fan(np.frombuffer(lengths, np.int64), np.frombuffer(corners, np.int64), name, max_triangles)


def _obj_index(token: str, n_vertices_so_far: int) -> int:
    """0-based vertex index of an OBJ face corner (1-based, or negative = relative to the end)."""
    index = int(token.split("/")[0])
    return index - 1 if index > 0 else n_vertices_so_far + index


# STL: every triangle lists its three corners; corners shared by triangles become one vertex.

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
_STL_ASCII_VERTEX = re.compile(rb"^[ \t]*vertex[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)", re.MULTILINE)


def _read_stl(data: bytes, name: str, max_vertices: _Cap, max_triangles: _Cap) -> tuple[np.ndarray, np.ndarray]:
    """Binary STL when the size matches its triangle count (its 80-byte header may begin with 'solid' too), else
    ASCII."""
    count = int.from_bytes(data[80:84], "little")
    if len(data) >= 84 and len(data) == 84 + _STL_RECORD.itemsize * count:
        if count > max_triangles.limit:
            raise _over(name, max_triangles, count)
        corners = np.frombuffer(data, _STL_RECORD, offset=84)["corners"].reshape(-1, 3)
    elif data.lstrip().startswith(b"solid"):
        if (named := data.count(b"vertex")) > 3 * max_triangles.limit:
            raise _over(name, max_triangles, named // 3)
        coordinates = array.array("d")
        try:
            for match in _STL_ASCII_VERTEX.finditer(data):
                coordinates.extend(map(float, match.groups()))
        except ValueError:
            raise MeshError(f"{name}: a 'vertex' line does not hold three numbers: repair or re-export the "
                            f"file") from None
        corners = np.frombuffer(coordinates, dtype=np.float64).reshape(-1, 3)
        if len(corners) % 3:
            raise MeshError(f"{name}: a facet does not have three vertices: export the mesh as triangles")
    else:
        raise MeshError(f"{name} is empty or not a valid .stl file (binary: 84 bytes and 50 per triangle; ASCII: "
                        f"'solid' ... 'endsolid'): export it again")
    # one vertex per distinct corner (bit for bit), numbered in the order the file first names them
    rows = np.ascontiguousarray(corners).view(np.dtype((np.void, corners.itemsize * 3))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    if len(first) > max_vertices.limit:
        raise _over(name, max_vertices, len(first))
    order = np.argsort(first)
    number = np.empty_like(order)
    number[order] = np.arange(len(order))
    return corners[first[order]].astype(np.float64), number[inverse].reshape(-1, 3)


# PLY: ASCII or binary (either byte order); `element vertex` with x, y, z and `element face` with a list of
# corners (polygons are split into fans). Other elements are skipped; only vertices and faces may hold lists.

_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_PLY_INTEGERS = {name for name, code in _PLY_TYPES.items() if code[0] in "iu"}  # the types a list's length may have
_PLY_FORMATS = {"ascii": "=", "binary_little_endian": "<", "binary_big_endian": ">"}
_PLY_MAX_HEADER = 64 * 1024  # bytes: a scanner's header takes a few hundred
_PLY_END = re.compile(rb"\nend_header(\r\n|\n|\r)?")
_PLY_COUNT = re.compile(r"[0-9]{1,15}")
_PLY_CORNERS = ("vertex_indices", "vertex_index")  # both spellings are common
_STRUCT_CODES = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "f4": "f", "f8": "d"}


@dataclass(frozen=True)
class _PlyProperty:
    name: str
    type: str  # numpy type code; of the items, for a list
    count_type: str | None = None  # set for a list: the type of its length

    def size(self, list_length: int = 0) -> int:
        """Bytes of the property in one row, a list `list_length` items long."""
        if self.count_type is None:
            return np.dtype(self.type).itemsize
        return np.dtype(self.count_type).itemsize + list_length * np.dtype(self.type).itemsize


@dataclass
class _PlyElement:
    name: str
    count: int
    properties: dict[str, _PlyProperty] = field(default_factory=dict)

    @property
    def what(self) -> str:
        return {"vertex": "vertices", "face": "faces"}.get(self.name, f"'{self.name}' elements")


def _read_ply(data: bytes, name: str, max_vertices: _Cap, max_triangles: _Cap) -> tuple[np.ndarray, np.ndarray]:
    elements = _ply_elements(data, name, max_vertices, max_triangles, wanted=("vertex", "face"))
    faces = elements.get("face", {})
    corners = next((faces[p] for p in _PLY_CORNERS if p in faces), (np.zeros(0), np.zeros(0)))
    if not isinstance(corners, tuple):
        raise MeshError(f"{name}: its faces' corners are not a list ('property list uchar int vertex_indices'): "
                        f"export the mesh again")
    return _ply_vertices(elements, name), _fan(*corners, name, max_triangles)


def _ply_vertices(elements: dict[str, dict], name: str) -> np.ndarray:
    if "vertex" not in elements:
        raise MeshError(f"{name} declares no vertices ('element vertex N'): export the mesh or point cloud again")
    vertex = elements["vertex"]
    if not {"x", "y", "z"} <= vertex.keys() or any(isinstance(vertex[axis], tuple) for axis in "xyz"):
        raise MeshError(f"{name}: its vertices have no x, y and z properties: export the positions")
    return np.stack([vertex[axis] for axis in "xyz"], axis=1).astype(np.float64)


def _ply_elements(data: bytes, name: str, max_vertices: _Cap, max_triangles: _Cap,
                  wanted: tuple[str, ...]) -> dict[str, dict]:
    """The `wanted` elements, each as property name -> values: (count,) for a scalar, (lengths, all items in
    order) for a list. Elements before them are read only to be skipped.

    Before any of it is read, the header's counts are checked against the caps (faces against `max_triangles`,
    every other element against `max_vertices`) and the body's length against the least those counts need. An
    ASCII body is first parsed into its numbers, then read as a binary body whose values are all float64."""
    byte_order, elements, body = _ply_header(data, name)
    for element in elements:
        cap = max_triangles if element.name == "face" else max_vertices
        if element.count > cap.limit:
            raise _over(name, cap, element.count, element.what if element.name != "vertex" else None)
    if byte_order == "=":
        body = memoryview(_ply_numbers(body, name)).cast("B")
    least = 0
    for element in elements:
        least += element.count * sum(p.size() for p in element.properties.values())
        if least > len(body):
            raise _cut_short(name, element)
    found: dict[str, dict] = {}
    offset = 0
    for element in elements:
        if all(w in found for w in wanted):
            break
        found[element.name], offset = _ply_rows(body, offset, element, byte_order, name)
    return {w: found[w] for w in wanted if w in found}


def _ply_header(data: bytes, name: str) -> tuple[str, list[_PlyElement], bytes]:
    """(byte order: '<', '>' or '=' for ASCII; the elements in file order; the bytes after the header). Only what
    the PLY format defines passes: a known format, elements with whole counts, properties of known types (a list
    counted by an integer type), each name once."""
    end = _PLY_END.search(data, 0, _PLY_MAX_HEADER)
    if not re.match(rb"ply\r?\n", data) or not end or (end.group(1) is None and end.end() < len(data)):
        raise MeshError(f"{name} is not a PLY file (it must start with 'ply' and a header ending in 'end_header' "
                        f"within its first {_PLY_MAX_HEADER // 1024} kB): save or export it as PLY")
    byte_order, elements = None, {}
    for line in data[:end.start()].decode("latin-1").splitlines()[1:]:
        match line.split():
            case ["format", style, "1.0"] if style in _PLY_FORMATS and byte_order is None:
                byte_order = _PLY_FORMATS[style]
            case ["format", *_]:
                raise MeshError(f"{name}: the PLY header names no known format (ascii, binary_little_endian or "
                                f"binary_big_endian, version 1.0) in {_shown(line)}: export the file again")
            case [] | ["comment", *_] | ["obj_info", *_]:
                pass
            case ["element", element, count] if _PLY_COUNT.fullmatch(count) and element not in elements:
                elements[element] = _PlyElement(element, int(count))
            case ["property", type_, prop] if elements and type_ in _PLY_TYPES:
                _add_property(elements, _PlyProperty(prop, _PLY_TYPES[type_]), name)
            case ["property", "list", count_type, type_, prop] if (elements and count_type in _PLY_INTEGERS
                                                                   and type_ in _PLY_TYPES):
                _add_property(elements, _PlyProperty(prop, _PLY_TYPES[type_], _PLY_TYPES[count_type]), name)
            case _:
                raise MeshError(f"{name}: cannot read the PLY header line {_shown(line)}: export the file again")
    if byte_order is None:
        raise MeshError(f"{name}: the PLY header names no known format (ascii, binary_little_endian or "
                        f"binary_big_endian): export the file again")
    if byte_order == "=":  # an ASCII body is read as float64 numbers
        for element in elements.values():
            element.properties = {p.name: _PlyProperty(p.name, "f8", p.count_type and "f8")
                                  for p in element.properties.values()}
    return byte_order, list(elements.values()), data[end.end():]


def _shown(line: str) -> str:
    """A header line as a message quotes it: at most 60 characters."""
    line = line.strip()
    return repr(line if len(line) <= 60 else line[:57] + "...")


def _add_property(elements: dict[str, _PlyElement], prop: _PlyProperty, name: str) -> None:
    """Add the property to the last element declared."""
    element = list(elements.values())[-1]
    if prop.name in element.properties:
        raise MeshError(f"{name}: its {element.what} have two properties named {prop.name!r}: export the file again")
    if prop.count_type is not None and element.name not in ("vertex", "face"):
        raise MeshError(f"{name}: its {element.what} hold a list ({prop.name!r}): export only vertices and faces")
    element.properties[prop.name] = prop


def _ply_numbers(body: bytes, name: str) -> np.ndarray:
    """The numbers of an ASCII PLY body in order, as float64: parsed by numpy in C, 8 bytes a number, where a list
    of Python tokens takes about 60."""
    if not body.strip():
        return np.zeros(0)  # np.fromstring reads whitespace alone as [-1.]
    try:
        return np.fromstring(body, sep=" ")
    except ValueError:
        raise MeshError(f"{name}: a value in it is not a number: repair or re-export the file") from None


def _cut_short(name: str, element: _PlyElement) -> MeshError:
    return MeshError(f"{name} is cut short: it declares {element.count} {element.what} but holds fewer; copy or "
                     f"send the whole file again")


def _is_length(n: float) -> bool:
    """Whether a list's length as read (an integer, or a float64 from an ASCII body) is one."""
    return 0 <= n <= 2**32 and n == int(n)


def _ply_rows(body: bytes, offset: int, element: _PlyElement, byte_order: str, name: str) -> tuple[dict, int]:
    """One element's values and the offset after it. When every list is as long as in the first row (triangles),
    each row is one fixed-size record and all are read as one array; else row by row (polygons of mixed sizes)."""
    properties = list(element.properties.values())
    if not properties:
        return {}, offset
    lengths = _first_row_list_lengths(body, offset, properties, byte_order)
    if lengths is not None:
        end = offset + element.count * sum(p.size(lengths.get(p.name, 0)) for p in properties)
        if end <= len(body):
            rows = np.frombuffer(body, _ply_record(properties, byte_order, lengths), element.count, offset)
            if all((rows[p]["n"] == n).all() for p, n in lengths.items()):
                return {p.name: rows[p.name] if p.count_type is None
                        else (rows[p.name]["n"], rows[p.name]["items"].reshape(-1)) for p in properties}, end
    return _ply_rows_one_by_one(body, offset, element, byte_order, name)


def _ply_record(properties: list[_PlyProperty], byte_order: str, lengths: dict[str, int]) -> np.dtype:
    """One row as a numpy record, each list `lengths[name]` items long after its length."""
    fields = []
    for p in properties:
        if p.count_type is None:
            fields.append((p.name, byte_order + p.type))
        else:
            items = (lengths[p.name],)
            fields.append((p.name, [("n", byte_order + p.count_type), ("items", byte_order + p.type, items)]))
    return np.dtype(fields)


def _first_row_list_lengths(body: bytes, offset: int, properties: list[_PlyProperty],
                            byte_order: str) -> dict[str, int] | None:
    """The length of each list in the first row (0 past the end of the body); None where one is not a length."""
    lengths = {}
    for p in properties:
        if p.count_type is not None:
            n_format = struct.Struct(byte_order + _STRUCT_CODES[p.count_type])
            n = n_format.unpack_from(body, offset)[0] if offset + n_format.size <= len(body) else 0
            if not _is_length(n):
                return None
            lengths[p.name] = int(n)
        offset += p.size(lengths.get(p.name, 0))
    return lengths


def _ply_rows_one_by_one(body: bytes, offset: int, element: _PlyElement, byte_order: str,
                         name: str) -> tuple[dict, int]:
    """The element read value by value into flat arrays (8 bytes a number), for lists of varying lengths."""
    scalars = {p: array.array("d") for p, prop in element.properties.items() if prop.count_type is None}
    lists = {p: (array.array("q"), array.array("d")) for p, prop in element.properties.items() if prop.count_type}
    for _ in range(element.count):
        for p in element.properties.values():
            value_format = struct.Struct(byte_order + _STRUCT_CODES[p.count_type or p.type])
            if offset + value_format.size > len(body):
                raise _cut_short(name, element)
            (value,) = value_format.unpack_from(body, offset)
            offset += value_format.size
            if p.count_type is None:
                scalars[p.name].append(value)
                continue
            if not _is_length(value):
                raise MeshError(f"{name}: a list of its {element.what} is {value} long, not a whole number: repair "
                                f"or re-export the file")
            end = offset + int(value) * np.dtype(p.type).itemsize
            if end > len(body):
                raise _cut_short(name, element)
            lengths, items = lists[p.name]
            lengths.append(int(value))
            items.frombytes(np.frombuffer(body, byte_order + p.type, int(value), offset).astype(np.float64).tobytes())
            offset = end
    values = {p: np.frombuffer(v, dtype=np.float64) for p, v in scalars.items()}
    values |= {p: (np.frombuffer(n, dtype=np.int64), np.frombuffer(v, dtype=np.float64)) for p, (n, v) in lists.items()}
    return values, offset


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
