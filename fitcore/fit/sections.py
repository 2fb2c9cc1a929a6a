"""The matcher's representation of a shoe interior: cross-sections along the shoe's length as polar radii.

Shoe frame (see docs/catalog.md): mm, the LEFT shoe, the rearmost point of the heel counter at x = 0, +x toward
the toe, the insole at z = 0, +z up, +y toward the shoe's left (lateral); the heel's centre on y = 0.

Per size, STATIONS cross-sections perpendicular to x at x_k = L * (k + 0.5) / STATIONS (L = inner length).
Each section is star-shaped around its centre (cy_k, cz_k) (the middle of its bounding box) and stored as
ANGLES radii r_kj, the distance from the centre to the cavity wall along the direction at angle
theta_j = 2 pi j / ANGLES, measured from +y toward +z. One size is a float32 array (STATIONS, 2 + ANGLES):
row k = cy_k, cz_k, r_k0 .. r_k(ANGLES-1); stored as that little-endian blob, 48 x 38 x 4 = 7,296 bytes.
The whole catalogue loads into one (n_sizes, STATIONS, 2 + ANGLES) array.

The signed clearance of a point (x, y, z) is the interpolated wall radius along its direction minus its
distance from the interpolated centre (positive: inside, room left; negative: the foot presses out), and
-x behind the heel or x - L beyond the toe when those are worse: fitcore.fit.clearance computes it.
"""

from __future__ import annotations

import numpy as np

from core.errors import CatalogError
from core.jit import numba

STATIONS = 48
ANGLES = 36
ROW = 2 + ANGLES
SECTIONS_BYTES = STATIONS * ROW * 4
ANGLES_RAD = 2.0 * np.pi * np.arange(ANGLES) / ANGLES


def station_x_mm(length_mm: float) -> np.ndarray:
    """Where the sections of an interior of this inner length lie along x."""
    return length_mm * (np.arange(STATIONS) + 0.5) / STATIONS


def sections_from_mesh(vertices_mm: np.ndarray, triangles: np.ndarray, length_mm: float) -> np.ndarray:
    """The (STATIONS, ROW) float32 sections of a closed cavity mesh already in the shoe frame.

    Raises CatalogError when a section is not star-shaped around its centre (no wall found along a direction).
    """
    out = np.zeros((STATIONS, ROW), dtype=np.float32)
    bad_station = _cut_sections(np.ascontiguousarray(vertices_mm, dtype=np.float64),
                                np.ascontiguousarray(triangles, dtype=np.int64), float(length_mm), ANGLES_RAD, out)
    if bad_station >= 0:
        x = station_x_mm(length_mm)[bad_station]
        raise CatalogError(f"the cross-section at x = {x:.0f} mm is not one cavity seen from its centre: "
                           f"the mesh is not a shoe interior in the shoe frame (heel at x = 0, toe toward +x)")
    return out


@numba.njit(cache=True)
def _cut_sections(vertices, triangles, length, angles, out):
    """Fill `out` with each station's centre and radii; return -1, or the first station that failed."""
    n_tri = triangles.shape[0]
    seg = np.empty((n_tri, 4))
    for k in range(out.shape[0]):
        x = length * (k + 0.5) / out.shape[0]
        count = 0
        for t in range(n_tri):
            pts = np.empty((2, 2))
            found = 0
            for e in range(3):
                a = vertices[triangles[t, e]]
                b = vertices[triangles[t, (e + 1) % 3]]
                if (a[0] < x) != (b[0] < x):
                    s = (x - a[0]) / (b[0] - a[0])
                    if found < 2:
                        pts[found, 0] = a[1] + s * (b[1] - a[1])
                        pts[found, 1] = a[2] + s * (b[2] - a[2])
                    found += 1
            if found == 2:
                seg[count, 0] = pts[0, 0]
                seg[count, 1] = pts[0, 1]
                seg[count, 2] = pts[1, 0]
                seg[count, 3] = pts[1, 1]
                count += 1
        if count == 0:
            return k
        y_lo = min(seg[:count, 0].min(), seg[:count, 2].min())
        y_hi = max(seg[:count, 0].max(), seg[:count, 2].max())
        z_lo = min(seg[:count, 1].min(), seg[:count, 3].min())
        z_hi = max(seg[:count, 1].max(), seg[:count, 3].max())
        cy = 0.5 * (y_lo + y_hi)
        cz = 0.5 * (z_lo + z_hi)
        out[k, 0] = cy
        out[k, 1] = cz
        for j in range(angles.shape[0]):
            dy = np.cos(angles[j])
            dz = np.sin(angles[j])
            nearest = np.inf
            for i in range(count):
                # ray c + r d against segment p + u (q - p), 0 <= u <= 1
                py = seg[i, 0] - cy
                pz = seg[i, 1] - cz
                ey = seg[i, 2] - seg[i, 0]
                ez = seg[i, 3] - seg[i, 1]
                det = ey * dz - ez * dy
                if det == 0.0:
                    continue
                r = (ey * pz - ez * py) / det
                u = (dy * pz - dz * py) / det
                if r > 0.0 and -1e-9 <= u <= 1.0 + 1e-9 and r < nearest:
                    nearest = r
            if nearest == np.inf:
                return k
            out[k, 2 + j] = nearest
    return -1


def section_outlines_mm(sections: np.ndarray, length_mm: float, x_mm: np.ndarray) -> np.ndarray:
    """The (len(x), ANGLES, 2) outlines (y, z) of the cavity at each x, interpolated between stations."""
    u = np.clip(np.asarray(x_mm, dtype=np.float64) / length_mm * STATIONS - 0.5, 0.0, STATIONS - 1.0)
    k = np.minimum(u.astype(int), STATIONS - 2)
    t = (u - k)[:, None]
    rows = (1.0 - t) * sections[k].astype(np.float64) + t * sections[k + 1].astype(np.float64)
    directions = np.stack([np.cos(ANGLES_RAD), np.sin(ANGLES_RAD)], axis=1)
    return rows[:, None, :2] + rows[:, 2:, None] * directions


def sections_to_blob(sections: np.ndarray) -> bytes:
    return np.ascontiguousarray(sections, dtype="<f4").tobytes()


def sections_from_blob(blob: bytes) -> np.ndarray:
    if len(blob) != SECTIONS_BYTES:
        raise CatalogError(f"stored interior sections have {len(blob)} bytes, expected {SECTIONS_BYTES} "
                           f"({STATIONS} stations x {ANGLES} angles): re-import the catalogue")
    return np.frombuffer(blob, dtype="<f4").reshape(STATIONS, ROW)
