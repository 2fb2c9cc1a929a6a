"""Check an uploaded passport (JSON) and both feet's points (PLY, foot frame, mm) before anything is stored.

Everything is parsed and validated first; only a complete, consistent upload reaches the database, so a failed
upload leaves nothing behind. Every refusal is an InvalidInput whose message names the file and the fix.

The parsing is bounded before it starts: passport.json by its size (MAX_PASSPORT_BYTES) and by a parser that
stops at 200 levels of nesting (pydantic-core's; the standard library's recurses until Python's stack gives out),
the PLYs by the header checks and caps of core/mesh.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError
from pydantic_core import from_json

from core.errors import InvalidInput, MeasurementError, MeshError
from core.mesh import points_from_bytes
from core.vocabulary import SIDES
from fitcore.scan.measure import checked_points
from fitcore.scan.passport import Passport

LENGTH_MISMATCH_MM = 5.0  # a foot's points reach x = length_mm (the toe tip) to within a scan's noise
MAX_PASSPORT_BYTES = 64 * 1024  # a scan's passport.json takes ~3 kB; its strings and lists are bounded too


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
    if len(data) > MAX_PASSPORT_BYTES:
        raise InvalidInput(f"passport.json is {len(data):,} bytes, more than a passport takes "
                           f"({MAX_PASSPORT_BYTES:,}): upload the passport.json a scan wrote")
    try:
        raw = from_json(data, allow_inf_nan=True)
    except ValueError as exc:
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
    """The foot's points (N, 3) float32 from its uploaded PLY, refused when the file or the foot is not usable."""
    name = f"{side}.ply"
    try:
        points = checked_points(points_from_bytes(data, name))
    except MeshError as exc:
        raise InvalidInput(str(exc)) from None
    except MeasurementError as exc:
        raise InvalidInput(f"{name}: {exc}") from None
    return points.astype(np.float32)


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
