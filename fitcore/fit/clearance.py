"""Signed clearance of placed foot points inside shoe interiors: the matcher's numba kernels and their references.

Interiors are the section representation of fitcore.fit.sections (STATIONS x (cy, cz, ANGLES radii) per size, shoe
frame). A foot is placed in a size by a pose (yaw about the pternion, then a shift in x and y; fitcore.fit.fit_model),
and the clearance of a point is the one docs/catalog.md defines: the interpolated wall radius along the point's
direction from the interpolated section centre minus its distance from that centre, and at most x (behind the
heel counter) and L - x (beyond the toe). Positive is room, negative is the foot pressing the shoe out.

`summarise_pairs` is the matcher's hot loop: for many (foot, size) pairs at once it places the foot's evaluation
points and sums their clearance per fit region, in parallel over pairs. `summarise_pairs_reference` does the same
in plain numpy, one pair at a time, for the tests and the benchmark's "plain way".
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import numba
from core.vocabulary import REGIONS

N_REGIONS = len(REGIONS)
OUTSIDE = -1  # region code of a point that is in no region (e.g. the arch's side, the leg)
# Per pair and region: sum of clearance, number of points, sum of the clearance below zero (pressure).
STATS = 3
IDENTITY_POSE = np.array([1.0, 0.0, 0.0, 0.0])  # (cos, sin, dx, dy) that leaves points where they are (shoe frame)


@numba.njit(cache=True, inline="always")
def clearance_at(x, y, z, sections, k_count, length):
    """Clearance (mm) of one point in the shoe frame: the interior's wall (interpolated between the two nearest
    sections and angles) less the point's distance from the section's centre, and never more than the room to the
    heel (x) or the toe (length - x). Shared by the kernels here and the ball-line tables (fitcore/fit/ball_line.py)."""
    n_ang = sections.shape[1] - 2
    u = min(max(x / length * k_count - 0.5, 0.0), k_count - 1.0)
    k = min(int(u), k_count - 2)
    t = u - k
    cy = (1.0 - t) * sections[k, 0] + t * sections[k + 1, 0]
    cz = (1.0 - t) * sections[k, 1] + t * sections[k + 1, 1]
    dy = y - cy
    dz = z - cz
    a = math.atan2(dz, dy) * (n_ang / (2.0 * math.pi))
    if a < 0.0:
        a += n_ang
    j = int(a)
    s = a - j
    j = j % n_ang
    j1 = (j + 1) % n_ang
    wall = ((1.0 - t) * ((1.0 - s) * sections[k, 2 + j] + s * sections[k, 2 + j1])
            + t * ((1.0 - s) * sections[k + 1, 2 + j] + s * sections[k + 1, 2 + j1]))
    c = wall - math.sqrt(dy * dy + dz * dz)
    return min(c, x, length - x)


@numba.njit(cache=True)
def placed_clearance_mm(points_mm, sections, length_mm, pose):
    """Clearance (mm, float32) of every point (N, 3), shoe-side foot frame, placed by pose (cos, sin, dx, dy)."""
    out = np.empty(points_mm.shape[0], dtype=np.float32)
    c, s, dx, dy = pose[0], pose[1], pose[2], pose[3]
    k_count = sections.shape[0]
    for i in range(points_mm.shape[0]):  # serial: one size's points take ~1 ms, less than waking threads
        x = c * points_mm[i, 0] - s * points_mm[i, 1] + dx
        y = s * points_mm[i, 0] + c * points_mm[i, 1] + dy
        out[i] = clearance_at(x, y, points_mm[i, 2], sections, k_count, length_mm)
    return out


@numba.njit(cache=True, inline="always")
def _summarise_pair(p, points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections, lengths_mm,
                    out):
    f = foot_of_pair[p]
    sec = sections[size_of_pair[p]]
    length = lengths_mm[size_of_pair[p]]
    k_count = sections.shape[1]
    c, s, dx, dy = poses[p, 0], poses[p, 1], poses[p, 2], poses[p, 3]
    for i in range(point_start[f], point_start[f + 1]):
        r = regions[i]
        if r < 0:
            continue
        x = c * points_mm[i, 0] - s * points_mm[i, 1] + dx
        y = s * points_mm[i, 0] + c * points_mm[i, 1] + dy
        v = clearance_at(x, y, points_mm[i, 2], sec, k_count, length)
        out[p, r, 0] += v
        out[p, r, 1] += 1.0
        if v < 0.0:
            out[p, r, 2] += v


@numba.njit(cache=True, parallel=True)
def summarise_pairs(points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections, lengths_mm):
    """Per pair (foot f, size s): sums of clearance per region of foot f's points placed in size s.

    points_mm: all feet's evaluation points stacked (M, 3); foot f owns rows point_start[f]:point_start[f+1];
    regions: (M,) region code per point (OUTSIDE: skipped); poses: (P, 4) cos, sin, dx, dy per pair;
    sections: (n_sizes, STATIONS, ROW); returns (P, N_REGIONS, STATS): sum, count, sum of negative clearance.
    """
    out = np.zeros((foot_of_pair.shape[0], N_REGIONS, STATS), dtype=np.float64)
    for p in numba.prange(foot_of_pair.shape[0]):
        _summarise_pair(p, points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections, lengths_mm,
                        out)
    return out


@numba.njit(cache=True)
def summarise_pairs_serial(points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections, lengths_mm):
    """`summarise_pairs` on one thread, for a few pairs (a try-on): waking threads would cost more."""
    out = np.zeros((foot_of_pair.shape[0], N_REGIONS, STATS), dtype=np.float64)
    for p in range(foot_of_pair.shape[0]):
        _summarise_pair(p, points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections, lengths_mm,
                        out)
    return out


@numba.njit(cache=True, parallel=True)
def outline_measures(sections, z_mm):
    """Per size and station: the outline's perimeter (its tape girth; the sections are convex or nearly) and its
    breadth at height z_mm (0 where the section is lower): two (n, STATIONS) float64 arrays."""
    n, k_count, n_ang = sections.shape[0], sections.shape[1], sections.shape[2] - 2
    perimeter = np.zeros((n, k_count))
    breadth = np.zeros((n, k_count))
    step = 2.0 * math.pi / n_ang
    for i in numba.prange(n):
        for k in range(k_count):
            cy, cz = sections[i, k, 0], sections[i, k, 1]
            lo, hi = np.inf, -np.inf
            for j in range(n_ang):
                j1 = (j + 1) % n_ang
                r0, r1 = sections[i, k, 2 + j], sections[i, k, 2 + j1]
                y0, z0 = cy + r0 * math.cos(j * step), cz + r0 * math.sin(j * step)
                y1, z1 = cy + r1 * math.cos(j1 * step), cz + r1 * math.sin(j1 * step)
                perimeter[i, k] += math.sqrt((y1 - y0) ** 2 + (z1 - z0) ** 2)
                if (z0 - z_mm) * (z1 - z_mm) <= 0.0:
                    t = (z_mm - z0) / (z1 - z0) if z1 != z0 else 0.0
                    y = y0 + t * (y1 - y0)
                    lo, hi = min(lo, y), max(hi, y)
            if hi >= lo:
                breadth[i, k] = hi - lo
    return perimeter, breadth


# --- plain references (numpy, no numba): the tests check the kernels against these -------------------------


def outline_measures_reference(sections: np.ndarray, z_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """`outline_measures` in plain numpy."""
    radii = sections[..., 2:].astype(np.float64)
    angles = 2 * np.pi * np.arange(radii.shape[-1]) / radii.shape[-1]
    y = sections[..., 0:1] + radii * np.cos(angles)
    z = sections[..., 1:2] + radii * np.sin(angles)
    y_next, z_next = np.roll(y, -1, axis=-1), np.roll(z, -1, axis=-1)
    perimeter = np.hypot(y_next - y, z_next - z).sum(axis=-1)
    crosses = (z - z_mm) * (z_next - z_mm) <= 0  # outline edges that cross the height
    t = np.where(crosses, (z_mm - z) / np.where(z_next != z, z_next - z, 1.0), 0.0)
    at = y + t * (y_next - y)
    breadth = np.where(crosses, at, -np.inf).max(axis=-1) - np.where(crosses, at, np.inf).min(axis=-1)
    return perimeter, np.where(crosses.any(axis=-1), breadth, 0.0)


def clearance_reference_mm(points_mm: np.ndarray, sections: np.ndarray, length_mm: float,
                           pose: np.ndarray) -> np.ndarray:
    """`placed_clearance_mm` in plain numpy."""
    placed = place(points_mm, pose)
    x, y, z = placed[:, 0], placed[:, 1], placed[:, 2]
    sec = sections.astype(np.float64)
    k_count, n_ang = sec.shape[0], sec.shape[1] - 2
    u = np.clip(x / length_mm * k_count - 0.5, 0.0, k_count - 1.0)
    k = np.minimum(u.astype(np.int64), k_count - 2)
    t = u - k
    cy = (1 - t) * sec[k, 0] + t * sec[k + 1, 0]
    cz = (1 - t) * sec[k, 1] + t * sec[k + 1, 1]
    dy, dz = y - cy, z - cz
    a = np.mod(np.arctan2(dz, dy) * (n_ang / (2 * np.pi)), n_ang)
    j = a.astype(np.int64) % n_ang
    s = a - np.floor(a)
    j1 = (j + 1) % n_ang
    wall = ((1 - t) * ((1 - s) * sec[k, 2 + j] + s * sec[k, 2 + j1])
            + t * ((1 - s) * sec[k + 1, 2 + j] + s * sec[k + 1, 2 + j1]))
    return np.minimum(np.minimum(wall - np.hypot(dy, dz), x), length_mm - x).astype(np.float32)


def summarise_pairs_reference(points_mm, regions, point_start, foot_of_pair, size_of_pair, poses, sections,
                              lengths_mm) -> np.ndarray:
    """`summarise_pairs` in plain numpy, one pair at a time."""
    out = np.zeros((len(foot_of_pair), N_REGIONS, STATS))
    for p, (f, size) in enumerate(zip(foot_of_pair, size_of_pair)):
        rows = slice(point_start[f], point_start[f + 1])
        c = clearance_reference_mm(points_mm[rows], sections[size], float(lengths_mm[size]), poses[p])
        r = regions[rows]
        for region in range(N_REGIONS):
            v = c[r == region].astype(np.float64)
            out[p, region] = v.sum(), len(v), v[v < 0].sum()
    return out


def place(points_mm: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Points (N, 3) turned by the pose's yaw about the origin (the pternion), then shifted by dx, dy."""
    c, s, dx, dy = (float(v) for v in pose)
    x, y = points_mm[:, 0], points_mm[:, 1]
    return np.stack([c * x - s * y + dx, s * x + c * y + dy, points_mm[:, 2]], axis=1)
