"""Check an uploaded passport (JSON) and both feet's points (PLY, foot frame, mm) before anything is stored.

Everything is parsed and validated first; only a complete, consistent upload reaches the database, so a failed
upload leaves nothing behind. Every refusal is an InvalidInput whose message names the file and the fix.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from core.errors import InvalidInput, MeasurementError
from fitcore.scan.measure import checked_points, read_points
from fitcore.scan.passport import Passport

SIDES = ("left", "right")
LENGTH_MISMATCH_MM = 5.0  # a foot's points reach x = length_mm (the toe tip) to within a scan's noise


@dataclass(frozen=True)
class PassportUpload:
    passport: Passport
    points_mm: dict[str, np.ndarray]  # side -> (N, 3) float32, foot frame


def parse_upload(passport_json: bytes, plys: dict[str, bytes]) -> PassportUpload:
    passport = parse_passport(passport_json)
    points = {side: parse_points(side, plys[side]) for side in SIDES}
    for side in SIDES:
        length = getattr(passport.feet, side).measurements.length_mm
        reach = float(points[side][:, 0].max())
        if abs(reach - length) > LENGTH_MISMATCH_MM:
            raise InvalidInput(f"{side}.ply does not match the passport: it reaches x = {reach:.1f} mm but the "
                               f"passport's {side} foot is "
                               f"{length:.1f} mm long: upload the PLY of this foot from the same scan (foot frame, "
                               f"mm, pternion at x = 0)")
    return PassportUpload(passport, points)


def parse_passport(data: bytes) -> Passport:
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=lambda name: float(name.replace("Infinity", "inf")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"passport.json is not valid UTF-8 JSON ({exc}): upload the passport.json a scan "
                           f"wrote") from None
    bad = list(_non_finite(raw, "passport"))
    if bad:
        raise InvalidInput(f"passport.json holds NaN or infinite numbers at {', '.join(bad[:5])}: every value must "
                           f"be a finite number; measure the foot again", [(loc, "not a finite number")
                                                                          for loc in bad])
    try:
        return Passport.model_validate(raw)
    except ValidationError as exc:
        errors = [(".".join(["passport", *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
        raise InvalidInput(f"passport.json is not a valid foot passport (version 1): {errors[0][0]}: "
                           f"{errors[0][1]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                           errors) from None


def parse_points(side: str, data: bytes) -> np.ndarray:
    _check_complete(side, data)
    with tempfile.TemporaryDirectory(prefix="footfit-upload-") as folder:
        path = Path(folder) / f"{side}.ply"
        path.write_bytes(data)
        try:
            points = checked_points(read_points(path))
        except MeasurementError as exc:
            raise InvalidInput(f"{side}.ply: {exc}") from None
    return points.astype(np.float32)


def _check_complete(side: str, data: bytes) -> None:
    """The PLY has a header and as many vertices as it declares (the reader fills a short file with zeros)."""
    head, found, _ = data[:8192].partition(b"end_header\n")
    if not data.startswith(b"ply") or not found:
        raise InvalidInput(f"{side}.ply is not a PLY file (it must start with 'ply' and a header ending in "
                           f"'end_header'): upload the {side}.ply a scan wrote")
    lines = [line.split() for line in head.decode("latin-1").splitlines()]
    fmt = next((line[1] for line in lines if line[:1] == ["format"] and len(line) > 1), "")
    vertices = next((line for line in lines if line[:2] == ["element", "vertex"]), None)
    if vertices is None or len(vertices) < 3 or not vertices[2].isdigit():
        raise InvalidInput(f"{side}.ply declares no vertices ('element vertex N'): upload a point cloud")
    count = int(vertices[2])
    start = lines.index(vertices) + 1
    props = []
    for line in lines[start:]:
        if line[:1] != ["property"]:
            break
        props.append(line)
    if fmt == "ascii":
        rows = len(data[len(head) + len(found):].split(b"\n")) - 1
        complete = rows >= count
    else:
        sizes = [_PLY_TYPE_BYTES.get(p[1], 0) if len(p) == 3 else 0 for p in props]
        complete = 0 in sizes or len(data) - len(head) - len(found) >= count * sum(sizes)
    if not complete:
        raise InvalidInput(f"{side}.ply is cut short: it declares {count} vertices but holds fewer; upload the "
                           f"whole file")


_PLY_TYPE_BYTES = {**dict.fromkeys(("char", "uchar", "int8", "uint8"), 1),
                   **dict.fromkeys(("short", "ushort", "int16", "uint16"), 2),
                   **dict.fromkeys(("int", "uint", "float", "int32", "uint32", "float32"), 4),
                   **dict.fromkeys(("double", "float64"), 8)}


def _non_finite(value, location: str):
    """The locations of NaN and infinite numbers in parsed JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        yield location
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{location}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{location}.{i}")


def points_blob(points_mm: np.ndarray) -> bytes:
    return np.ascontiguousarray(points_mm, dtype="<f4").tobytes()


def points_from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").reshape(-1, 3)
