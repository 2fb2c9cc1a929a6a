"""Fuzzing every upload parser with hypothesis: PLY headers and bodies (ASCII and binary), passport JSON, interior
meshes (PLY, STL, OBJ). Whatever the bytes, a parser returns or raises the product's own error (core/errors.py),
and it allocates in proportion to the bytes it was given, however much a header declares; well-formed files read
back as written. A few of the worst then go through the real service: 422, and nothing stored.

The suite runs each property EXAMPLES times; `FOOTFIT_FUZZ_EXAMPLES=3000` runs a campaign
(docs/security.md reports one)."""

from __future__ import annotations

import json
import os
import tracemalloc

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from api import auth
from api.models import PassportRecord
from api.passport_upload import parse_passport, parse_points
from core.errors import FootfitError
from core.mesh import Mesh, mesh_from_bytes, mesh_to_bytes, points_from_bytes
from shoe_db.models import SizeVariant
from testing.api_world import ScanFiles, catalogue_files, scan_files, world

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FOOTFIT_FUZZ_EXAMPLES", "60"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLACK_BYTES = 1_000_000  # what any parse may take beyond its input's share (numpy's and Python's bookkeeping)
PER_BYTE = 64  # bytes allocated per byte of input, at most: ASCII numbers as float64, a polygon's fan as int64


def _peak_allocated(parse, *args) -> int:
    """Bytes allocated at the peak of `parse(*args)`; the product's refusals are an answer, any other exception
    fails the test."""
    tracemalloc.start()
    try:
        parse(*args)
    except FootfitError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _mutated(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """`data` with each (position, bytes removed, bytes inserted) applied, positions wrapped into the data."""
    for position, removed, inserted in edits:
        at = position % (len(data) + 1)
        data = data[:at] + inserted + data[at + removed:]
    return data


edit = st.tuples(st.integers(0, 10**6), st.integers(0, 8), st.binary(max_size=8))
edits = st.lists(edit, max_size=4)

# --- PLY -----------------------------------------------------------------------------------------------------

TYPES = ["char", "uchar", "short", "ushort", "int", "uint", "float", "double", "int8", "uint8", "int16", "uint16",
         "int32", "uint32", "float32", "float64"]
counts = st.one_of(st.integers(0, 6), st.sampled_from(["10000000000", "4294967296", "99999", "100001", "1" * 40,
                                                       "-1", "1e3", "\xb2", "0x10", ""]))
properties = st.one_of(
    st.builds("property {} {}".format, st.sampled_from(TYPES + ["quad", "list", ""]),
              st.sampled_from(["x", "y", "z", "nx", "red", "vertex_indices", "x"])),
    st.builds("property list {} {} {}".format, st.sampled_from(TYPES), st.sampled_from(TYPES),
              st.sampled_from(["vertex_indices", "vertex_index", "texcoord"])))
elements = st.builds(lambda name, count, props: [f"element {name} {count}", *props],
                     st.sampled_from(["vertex", "face", "edge", "vertex"]), counts, st.lists(properties, max_size=5))
formats = st.sampled_from(["ascii", "binary_little_endian", "binary_big_endian", "binary_middle_endian"])
numbers = st.lists(st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=32),
                             st.sampled_from(["nan", "-", "1e999", "3.", ".5", "x", "\0"])), max_size=40)
ascii_bodies = st.builds(lambda values, newline: newline.join(map(str, values)).encode("latin-1"),
                         numbers, st.sampled_from([" ", "\n", "\r\n", "\t", " \n "]))
bodies = st.one_of(st.binary(max_size=400), ascii_bodies)


@st.composite
def plys(draw) -> bytes:
    """A PLY made of the format's words in any order and count, its header's lines sometimes junk, its body bytes or
    numbers, the whole sometimes edited at random."""
    lines = ["ply", f"format {draw(formats)} 1.0"] + [line for element in draw(st.lists(elements, max_size=3))
                                                      for line in element]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), draw(st.text(st.characters(max_codepoint=255), max_size=20)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    data = (newline.join(lines + ["end_header"]) + newline).encode("latin-1") + draw(bodies)
    return _mutated(data, draw(edits))


@fuzz
@given(data=plys())
def test_any_ply_is_read_or_refused_in_bounded_memory(data):
    for parse in (points_from_bytes, mesh_from_bytes):
        assert _peak_allocated(parse, data, "fuzz.ply") <= SLACK_BYTES + PER_BYTE * len(data)
    assert _peak_allocated(parse_points, "left", data) <= SLACK_BYTES + PER_BYTE * len(data)


@fuzz
@given(points=st.lists(st.tuples(*[st.floats(-1e6, 1e6, width=32)] * 3), min_size=1, max_size=50),
       style=st.sampled_from(["binary_little_endian", "binary_big_endian", "ascii"]),
       extra=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]))
def test_well_formed_point_clouds_read_back_as_written(points, style, extra, newline):
    """Any byte order, ASCII with any line ends, properties besides x, y, z before and after them."""
    xyz = np.array(points, dtype=np.float32)
    columns = ["red", "x", "y", "z", "nx"] if extra else ["x", "y", "z"]
    table = np.zeros(len(xyz), dtype=[(c, np.float32 if c != "red" else np.uint8) for c in columns])
    for i, axis in enumerate("xyz"):
        table[axis] = xyz[:, i]
    header = ["ply", f"format {style} 1.0", f"element vertex {len(xyz)}",
              *(f"property {'uchar' if c == 'red' else 'float'} {c}" for c in columns), "end_header", ""]
    if style == "ascii":
        body = newline.join(_numbers(row) for row in table.tolist()).encode()
    else:
        order = "<" if style == "binary_little_endian" else ">"
        body = table.astype(table.dtype.newbyteorder(order)).tobytes()
    back = points_from_bytes(newline.join(header).encode() + body, "cloud.ply")
    np.testing.assert_array_equal(back, xyz.astype(np.float64))


# --- interiors: PLY, STL, OBJ --------------------------------------------------------------------------------

corners = st.lists(st.one_of(st.integers(-4, 6), st.sampled_from(["1/2/3", "2//1", "-1", "0", "x", "9" * 30, ""])),
                   max_size=8)
obj_lines = st.one_of(
    st.builds(lambda v: "v " + " ".join(map(str, v)), st.lists(st.one_of(st.floats(width=32), st.just("nan")),
                                                                max_size=5)),
    st.builds(lambda c: "f " + " ".join(map(str, c)), corners),
    st.sampled_from(["vt 0 1", "vn 0 0 1", "# comment", "o foot", "", "usemtl x", "f", "v"]),
    st.text(st.characters(max_codepoint=255), max_size=20))
objs = st.builds(lambda lines, newline: newline.join(lines).encode("latin-1"),
                 st.lists(obj_lines, max_size=30), st.sampled_from(["\n", "\r\n", "\r"]))
stl_lines = st.one_of(
    st.builds(lambda v: "vertex " + " ".join(map(str, v)), st.lists(st.floats(width=32), max_size=4)),
    st.sampled_from(["facet normal 0 0 1", "outer loop", "endloop", "endfacet", "", "\n\n\n", "vertex"]))
ascii_stls = st.builds(lambda lines: ("solid fuzz\n" + "\n".join(lines) + "\nendsolid fuzz\n").encode(),
                       st.lists(stl_lines, max_size=40))
binary_stls = st.builds(lambda head, count, records: bytes(80 - len(head)) + head + count.to_bytes(4, "little")
                        + records, st.binary(max_size=80), st.sampled_from([0, 1, 2, 3, 2**32 - 1, 10**9]),
                        st.binary(max_size=200))
interiors = st.one_of(st.tuples(st.just("fuzz.obj"), objs), st.tuples(st.just("fuzz.stl"), ascii_stls),
                      st.tuples(st.just("fuzz.stl"), binary_stls), st.tuples(st.just("fuzz.ply"), plys()))


@fuzz
@given(interior=interiors, changes=edits)
def test_any_interior_mesh_is_read_or_refused_in_bounded_memory(interior, changes):
    name, data = interior
    data = _mutated(data, changes)
    assert _peak_allocated(mesh_from_bytes, data, name) <= SLACK_BYTES + PER_BYTE * len(data)


@fuzz
@given(vertices=st.lists(st.tuples(*[st.floats(-1e4, 1e4, width=32)] * 3), min_size=3, max_size=30, unique=True),
       data=st.data())
def test_well_formed_meshes_read_back_as_written(vertices, data):
    """PLY, OBJ (with polygons of any size) and STL (which numbers vertices as it first names them)."""
    v = np.array(vertices, dtype=np.float32).astype(np.float64)
    n = len(v)
    polygons = data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=3, max_size=6), min_size=1, max_size=20))
    triangles = np.array([(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)])
    obj = "".join(f"v {_numbers(xyz)}\n" for xyz in v) + "".join(
        "f " + " ".join(str(c + 1) for c in p) + "\n" for p in polygons)
    stl = "solid s\n" + "".join("facet normal 0 0 0\nouter loop\n" + "".join(
        f"vertex {_numbers(xyz)}\n" for xyz in v[t]) + "endloop\nendfacet\n" for t in triangles) + "endsolid s\n"
    for name, file in (("m.ply", mesh_to_bytes(Mesh(v, triangles))), ("m.obj", obj.encode()), ("m.stl", stl.encode())):
        back = mesh_from_bytes(file, name)
        np.testing.assert_array_equal(back.vertices_mm[back.triangles], v[triangles])


def _numbers(values) -> str:
    """Numbers as a text file holds them, each exactly (repr of a Python float)."""
    return " ".join(repr(float(value)) for value in values)


# --- passport.json -------------------------------------------------------------------------------------------

def _json_values(floats: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(st.none() | st.booleans() | st.integers() | floats | st.text(max_size=20),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4),
                        max_leaves=20)


json_values = _json_values(st.floats())


def _containers(value, path=()):
    """The path of every object and list in a parsed JSON value."""
    if isinstance(value, (dict, list)):
        yield path
        for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
            yield from _containers(item, (*path, key))


def _at(value, path):
    for step in path:
        value = value[step]
    return value


@st.composite
def passports(draw) -> bytes:
    """The passport a scan writes with a value set anywhere (a field's or a new one), or nesting deep, or any
    bytes; sometimes edited at random."""
    kind = draw(st.sampled_from(["set", "set", "deep", "bytes"]))
    if kind == "deep":
        depth = draw(st.integers(1, 40_000))
        return draw(st.sampled_from([b"[" * depth, b'{"a":' * depth])) + draw(st.sampled_from([b"", b"]" * depth]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    sent = json.loads(scan_files().passport)
    place = _at(sent, draw(st.sampled_from(list(_containers(sent)))))
    if isinstance(place, dict):
        place[draw(st.sampled_from(sorted(place)) | st.text(max_size=10))] = draw(json_values)
    else:
        place.append(draw(json_values))
    return _mutated(json.dumps(sent).encode(), draw(st.lists(edit, max_size=1)))


@fuzz
@given(data=passports())
def test_any_passport_json_is_read_or_refused_in_bounded_memory(data):
    assert _peak_allocated(parse_passport, data) <= SLACK_BYTES + PER_BYTE * len(data)


@fuzz
@given(data=st.data(), key=st.text(min_size=1, max_size=10),
       value=_json_values(st.floats(allow_nan=False, allow_infinity=False)))
def test_fields_a_passport_does_not_define_are_refused_wherever_they_are(data, key, value):
    sent = json.loads(scan_files().passport)
    place = _at(sent, data.draw(st.sampled_from([p for p in _containers(sent) if not p or isinstance(p[-1], str)])))
    if isinstance(place, dict) and key not in place:
        place[key] = value
        with pytest.raises(FootfitError, match="Extra inputs are not permitted"):
            parse_passport(json.dumps(sent).encode())


# --- through the service ------------------------------------------------------------------------------------

HOSTILE_PLYS = [
    b"ply\nformat binary_little_endian 1.0\nelement vertex 10000000000\nproperty float x\nproperty float y\n"
    b"property float z\nend_header\n" + bytes(12),
    b"ply\nformat ascii 1.0\nelement vertex 99999\nproperty float x\nproperty float y\nproperty float z\n"
    b"element face 4000000000\nproperty list uint int vertex_indices\nend_header\n0 0 0\n",
    b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float x\nend_header\n",
    b"ply\nformat binary_little_endian 1.0\nelement vertex \xb2\nend_header\n",
]
HOSTILE_INTERIORS = [("AL1000-S-26.ply", ply) for ply in HOSTILE_PLYS] + [
    ("AL1000-S-26.stl", b"solid x\n" + b"\n" * 100_000), ("AL1000-S-26.obj", b"v 0 0 0\nf " + b"1 " * 100_000)]


def _peak_of_request(call) -> tuple[httpx.Response, int]:
    """The response and the bytes allocated at the peak while it was served (the server runs in this process)."""
    tracemalloc.start()
    try:
        response = call()
        return response, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_hostile_uploads_through_the_service_get_422_cost_little_and_store_nothing(database_url):
    good = scan_files()
    products = catalogue_files().read_text().splitlines()
    product_file = "\n".join([products[0], next(line for line in products if line.startswith("AL1000-S-26,"))])
    with world(database_url) as w:
        w.customer("A", "C1")
        with Session(w.engine) as session:
            _, operator = auth.create_key(session, "tenant-a", frozenset(), 30, operator=True)
        stored = w.passport("A", "C1")  # the hostile rescans below must leave it as it is
        peaks = []
        for ply in HOSTILE_PLYS[:1] + HOSTILE_PLYS:
            files = ScanFiles(good.passport, ply, good.right).multipart()
            r, peak = _peak_of_request(lambda: w.call("A", "kiosk", "PUT", f"/v1/passports/{stored}", files=files))
            assert r.status_code == 422 and "left.ply" in r.json()["detail"], r.text
            peaks.append(peak)
        # request and response in all (right.ply, 145 kB, is never read); the first refusal warms up (~4 MB, once)
        assert max(peaks[1:]) < 2_000_000, peaks
        for name, data in HOSTILE_INTERIORS:
            files = [("products", ("p.csv", product_file.encode(), "text/csv")), ("interiors", (name, data, "model"))]
            r, peak = _peak_of_request(lambda: w.http.post("/v1/catalog/interiors", files=files, headers={
                "Authorization": f"Bearer {operator}"}))
            assert r.status_code == 422 and name in r.text, r.text
            assert peak < SLACK_BYTES + PER_BYTE * len(data), (name, peak)
        with Session(w.engine) as session:
            assert session.exec(select(PassportRecord.passport_json)).all() == [good.passport.decode()]
            assert session.exec(select(func.count()).select_from(SizeVariant)).one() == 0
