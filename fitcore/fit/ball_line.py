"""The cavity's girth round a foot's ball line: a table per size, its numba kernel and the plain reference.

A foot's ball girth is a tape round the oblique line through its two ball points (fitcore.scan.measure.ball_points:
the first metatarsal head's side ahead of the fifth's), and so is a last's as shoemakers measure it. A section of
the cavity square to the shoe's axis is shorter than the oblique one through the same ball, and lasts taper toward
the toes: comparing the foot's tape girth with square sections read the ball a width fitting too tight at the
sizes customers keep (docs/fit-quality.md, "The geometry matcher in this world"). So the matcher reads the cavity
in the foot's own plane.

Shoe frame (fitcore.fit.sections: the left shoe, +y lateral). A ball line at angle a runs from the lateral side
back to the medial side forward: direction (sin a, -cos a) in (x, y), a = 0 square to the axis. Per size the table
holds, at every station k and each angle of BALL_LINE_ANGLES_DEG, the perimeter of the cavity's section in the
vertical plane through the station's centre (x_k, cy_k) along that direction: RAYS rays in the plane from
(x_k, cy_k, cz_k), each ray's wall where the clearance of the section representation (fitcore.fit.clearance:
positive inside) falls to zero, and the perimeter of the polygon through the walls. Along a ray the clearance
falls about as fast as the ray goes out (the wall is near the section's own, the distance grows with r), so
r <- r + clearance(r) finds the wall in a few steps (WALL_STEPS) where bisection took eleven. Stations outside
BALL_LINE_SPAN (fractions of the inner length) take the nearest computed station's values: a ball lies inside it.

The catalogue computes each size's table once, when its interior is imported, and stores it with the interior
(`table_to_blob`, shoe_db.models.Interior.ball_girths), so a service process loading a 6,000-model matcher reads
the tables instead of computing them; a catalogue not from the database computes them when its matcher is built.
Changing how the table is computed (the constants below) therefore needs a migration that computes the stored
tables again (api/migrations/versions/0012_ball_line_tables.py shows how).
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import CatalogError
from core.jit import numba
from fitcore.fit.clearance import IDENTITY_POSE, clearance_at, clearance_reference_mm

BALL_LINE_ANGLES_DEG = (5.0, 20.0)  # feet's ball lines lie ~8-20 deg off square: linear between, the nearest beyond
BALL_LINE_SPAN = (0.55, 0.82)  # of the inner length: where a ball sits (0.6-0.8 of a foot 5-25 mm shorter)
RAYS = 72
WALL_STEPS = 4  # r <- r + clearance(r) from START_RADIUS_MM: girths within 0.1 mm of bisection's (tests)
START_RADIUS_MM = 35.0
_ANGLES_RAD = np.radians(BALL_LINE_ANGLES_DEG)


def span_stations(stations: int) -> tuple[int, int]:
    """The first and last station whose centre lies within BALL_LINE_SPAN."""
    u = (np.arange(stations) + 0.5) / stations
    inside = np.flatnonzero((u >= BALL_LINE_SPAN[0]) & (u <= BALL_LINE_SPAN[1]))
    return int(inside[0]), int(inside[-1])


@numba.njit(cache=True)
def _girth_one(sec, length, k, angle, rays, steps, start):
    k_count = sec.shape[0]
    x0 = length * (k + 0.5) / k_count
    y0, z0 = sec[k, 0], sec[k, 1]
    ux, uy = math.sin(angle), -math.cos(angle)
    first_s = first_z = prev_s = prev_z = 0.0
    total = 0.0
    for j in range(rays):
        theta = 2.0 * math.pi * j / rays
        cs, sn = math.cos(theta), math.sin(theta)
        r = start
        for _ in range(steps):
            s = r * cs
            r = max(r + clearance_at(x0 + s * ux, y0 + s * uy, z0 + r * sn, sec, k_count, length), 0.0)
        s, z = r * cs, r * sn
        if j == 0:
            first_s, first_z = s, z
        else:
            total += math.sqrt((s - prev_s) ** 2 + (z - prev_z) ** 2)
        prev_s, prev_z = s, z
    return total + math.sqrt((first_s - prev_s) ** 2 + (first_z - prev_z) ** 2)


@numba.njit(cache=True, parallel=True)
def _table(sections, lengths, angles, k_first, k_last, rays, steps, start):
    n, k_count = sections.shape[0], sections.shape[1]
    out = np.empty((n, k_count, angles.shape[0]))
    for i in numba.prange(n):
        sec = sections[i].astype(np.float64)
        for k in range(k_first, k_last + 1):
            for a in range(angles.shape[0]):
                out[i, k, a] = _girth_one(sec, lengths[i], k, angles[a], rays, steps, start)
        for k in range(k_first):
            out[i, k] = out[i, k_first]
        for k in range(k_last + 1, k_count):
            out[i, k] = out[i, k_last]
    return out


def ball_girth_table(sections: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """(n, STATIONS, len(BALL_LINE_ANGLES_DEG)) mm: the cavity's girth in the plane of a ball line through each
    station's centre at each angle (module docstring), for every size."""
    sections = np.ascontiguousarray(sections, dtype=np.float32)
    k_first, k_last = span_stations(sections.shape[1])
    return _table(sections, np.asarray(lengths_mm, dtype=np.float64), _ANGLES_RAD, k_first, k_last, RAYS, WALL_STEPS,
                  START_RADIUS_MM)


def table_to_blob(table: np.ndarray) -> bytes:
    """One size's table (STATIONS, angles), as stored with its interior: float64, little-endian, exactly as
    computed."""
    return np.ascontiguousarray(table, dtype="<f8").tobytes()


def table_from_blob(blob: bytes, stations: int) -> np.ndarray:
    expected = stations * len(BALL_LINE_ANGLES_DEG) * 8
    if len(blob) != expected:
        raise CatalogError(f"a stored ball-line girth table has {len(blob)} bytes, expected {expected} ({stations} "
                           f"stations x {len(BALL_LINE_ANGLES_DEG)} angles): the database is older than this footfit; "
                           f"any footfit command that opens it migrates it (e.g. `footfit serve`)")
    return np.frombuffer(blob, dtype="<f8").reshape(stations, len(BALL_LINE_ANGLES_DEG))


def ball_girth_table_reference(sections: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """`ball_girth_table` in plain numpy (all rays of a section stepped at once), for the tests."""
    sections = np.asarray(sections, dtype=np.float64)
    n, k_count = sections.shape[:2]
    k_first, k_last = span_stations(k_count)
    theta = 2.0 * np.pi * np.arange(RAYS) / RAYS
    out = np.empty((n, k_count, len(_ANGLES_RAD)))
    for i in range(n):
        length = float(lengths_mm[i])
        for k in range(k_first, k_last + 1):
            centre = np.array([length * (k + 0.5) / k_count, sections[i, k, 0], sections[i, k, 1]])
            for a, angle in enumerate(_ANGLES_RAD):
                along = np.array([np.sin(angle), -np.cos(angle), 0.0])
                r = np.full(RAYS, START_RADIUS_MM)
                for _ in range(WALL_STEPS):
                    points = centre + np.outer(r * np.cos(theta), along) + np.outer(r * np.sin(theta), [0, 0, 1.0])
                    r = np.maximum(r + clearance_reference_mm(points, sections[i], length, IDENTITY_POSE), 0.0)
                s, z = r * np.cos(theta), r * np.sin(theta)
                out[i, k, a] = np.hypot(np.diff(np.r_[s, s[0]]), np.diff(np.r_[z, z[0]])).sum()
        out[i, :k_first] = out[i, k_first]
        out[i, k_last + 1:] = out[i, k_last]
    return out


@numba.njit(cache=True, inline="always")
def girth_at(table, size, x_mm, length_mm, angle_rad):
    """table[size] (STATIONS, ANGLES) interpolated at x along the size's length and at the ball line's angle
    (clamped to the table's angles): bilinear."""
    k_count, a_count = table.shape[1], table.shape[2]
    u = min(max(x_mm / length_mm * k_count - 0.5, 0.0), k_count - 1.0)
    k = min(int(u), k_count - 2)
    t = u - k
    step = math.radians(BALL_LINE_ANGLES_DEG[1] - BALL_LINE_ANGLES_DEG[0])
    v = min(max((angle_rad - math.radians(BALL_LINE_ANGLES_DEG[0])) / step, 0.0), a_count - 1.0)
    a = min(int(v), a_count - 2)
    w = v - a
    return ((1.0 - t) * ((1.0 - w) * table[size, k, a] + w * table[size, k, a + 1])
            + t * ((1.0 - w) * table[size, k + 1, a] + w * table[size, k + 1, a + 1]))


def girth_at_reference(table: np.ndarray, sizes: np.ndarray, x_mm: np.ndarray, lengths_mm: np.ndarray,
                       angle_rad: np.ndarray) -> np.ndarray:
    """`girth_at` for many (size, x, angle) at once in plain numpy."""
    k_count, a_count = table.shape[1], table.shape[2]
    u = np.clip(np.asarray(x_mm) / np.asarray(lengths_mm) * k_count - 0.5, 0.0, k_count - 1.0)
    k = np.minimum(u.astype(np.int64), k_count - 2)
    t = u - k
    step = np.radians(BALL_LINE_ANGLES_DEG[1] - BALL_LINE_ANGLES_DEG[0])
    v = np.clip((np.asarray(angle_rad) - np.radians(BALL_LINE_ANGLES_DEG[0])) / step, 0.0, a_count - 1.0)
    a = np.minimum(v.astype(np.int64), a_count - 2)
    w = v - a
    return ((1 - t) * ((1 - w) * table[sizes, k, a] + w * table[sizes, k, a + 1])
            + t * ((1 - w) * table[sizes, k + 1, a] + w * table[sizes, k + 1, a + 1]))
