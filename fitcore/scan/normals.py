"""Local plane fits of a point cloud: each point's nearest neighbours, statistical outliers, normals, flatness.

    distance, index = nearest_neighbours(points, k)        # (N, k), the point itself first
    inlier = statistical_inliers(distance, std_ratio)       # (N,) bool
    normals, spread, breadth = plane_fits(points, index, inlier, viewpoints)

One neighbour search serves all three: the outlier test (a point whose mean distance to its neighbours lies more
than `std_ratio` standard deviations above the cloud's mean is an outlier, the rule of open3d's statistical
outlier removal), and the plane fit of each point's usable neighbours, whose normal is the covariance's
smallest principal axis (as open3d's normal estimation) and whose `spread` (RMS distance of the neighbours to
their plane, mm) measures the surface's noise. `breadth` (the RMS extent of the neighbours along the plane's
short in-plane axis, mm) says whether the normal can be trusted: neighbours strung along one laser profile, as
where profiles lie far apart, span a line, and any direction across it fits as the normal.

`plane_fits` is a numba kernel, parallel over points, with a closed-form 3x3 eigen solution (no LAPACK call per
point); `plane_fits_numpy` is the plain reference with batched `np.linalg.eigh` that the tests compare it with.
Normals are turned toward each point's viewpoint (the camera that saw it), i.e. out of the surface.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from core.jit import njit, prange


def nearest_neighbours(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distance (N, k) mm, index (N, k)) of each point's k nearest points, itself included."""
    k = min(k, len(points))
    distance, index = cKDTree(points).query(points, k, workers=-1)
    return distance.reshape(len(points), k), index.reshape(len(points), k)


def statistical_inliers(distance: np.ndarray, std_ratio: float) -> np.ndarray:
    """Points whose mean distance to their neighbours is at most the cloud's mean + std_ratio * its SD."""
    mean = distance.mean(axis=1)
    return mean <= mean.mean() + std_ratio * mean.std()


def plane_fits(points: np.ndarray, index: np.ndarray, usable: np.ndarray,
               viewpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normals (N, 3) unit, spread (N,) mm, breadth (N,) mm) of the plane through each point's usable
    neighbours (numba). A point with fewer than 3 usable neighbours gets NaN for all three."""
    normals = np.empty((len(points), 3))
    spread = np.empty(len(points))
    breadth = np.empty(len(points))
    _plane_fit_kernel(np.ascontiguousarray(points, np.float64), np.ascontiguousarray(index, np.int64),
                      np.ascontiguousarray(usable, np.bool_), np.ascontiguousarray(viewpoints, np.float64),
                      normals, spread, breadth)
    return normals, spread, breadth


@njit(parallel=True, cache=True, nogil=True)
def _plane_fit_kernel(points, index, usable, viewpoints, normals, spread, breadth):
    k = index.shape[1]
    for i in prange(len(points)):
        count = 0
        cx, cy, cz = 0.0, 0.0, 0.0
        for m in range(k):
            j = index[i, m]
            if usable[j]:
                cx, cy, cz = cx + points[j, 0], cy + points[j, 1], cz + points[j, 2]
                count += 1
        if count < 3:
            normals[i] = np.nan
            spread[i] = np.nan
            breadth[i] = np.nan
            continue
        cx, cy, cz = cx / count, cy / count, cz / count
        c = np.zeros((3, 3))
        for m in range(k):
            j = index[i, m]
            if usable[j]:
                dx, dy, dz = points[j, 0] - cx, points[j, 1] - cy, points[j, 2] - cz
                c[0, 0] += dx * dx
                c[0, 1] += dx * dy
                c[0, 2] += dx * dz
                c[1, 1] += dy * dy
                c[1, 2] += dy * dz
                c[2, 2] += dz * dz
        c[1, 0], c[2, 0], c[2, 1] = c[0, 1], c[0, 2], c[1, 2]
        c /= count
        smallest, middle, n = _smallest_eigen(c)
        toward = (n[0] * (viewpoints[i, 0] - points[i, 0]) + n[1] * (viewpoints[i, 1] - points[i, 1])
                  + n[2] * (viewpoints[i, 2] - points[i, 2]))
        sign = -1.0 if toward < 0 else 1.0
        for r in range(3):
            normals[i, r] = sign * n[r]
        spread[i] = np.sqrt(max(smallest, 0.0))
        breadth[i] = np.sqrt(max(middle, 0.0))


@njit(cache=True, nogil=True)
def _smallest_eigen(a):
    """(smallest eigenvalue, middle eigenvalue, the smallest's unit eigenvector) of a symmetric 3x3 matrix, in
    closed form: the eigenvalues
    from the trigonometric solution of the characteristic cubic, the vector as the longest cross product of two
    rows of (a - value * I)."""
    off = a[0, 1] ** 2 + a[0, 2] ** 2 + a[1, 2] ** 2
    q = (a[0, 0] + a[1, 1] + a[2, 2]) / 3.0
    p = np.sqrt(((a[0, 0] - q) ** 2 + (a[1, 1] - q) ** 2 + (a[2, 2] - q) ** 2 + 2.0 * off) / 6.0)
    if p == 0.0:  # a multiple of the identity: every direction is an eigenvector
        return q, q, np.array([0.0, 0.0, 1.0])
    b = (a - q * np.eye(3)) / p
    half_det = (b[0, 0] * (b[1, 1] * b[2, 2] - b[1, 2] * b[2, 1]) - b[0, 1] * (b[1, 0] * b[2, 2] - b[1, 2] * b[2, 0])
                + b[0, 2] * (b[1, 0] * b[2, 1] - b[1, 1] * b[2, 0])) / 2.0
    phi = np.arccos(min(1.0, max(-1.0, half_det))) / 3.0
    value = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    middle = 3.0 * q - value - (q + 2.0 * p * np.cos(phi))  # the trace is the sum of the three
    m = a - value * np.eye(3)
    best = np.zeros(3)
    best_norm = 0.0
    for r, s in ((0, 1), (0, 2), (1, 2)):
        v = np.cross(m[r], m[s])
        norm = np.sqrt(v @ v)
        if norm > best_norm:
            best, best_norm = v, norm
    if best_norm == 0.0:  # rank one: any vector across the single axis will do
        return value, middle, np.array([0.0, 0.0, 1.0])
    return value, middle, best / best_norm


# --- numpy reference -------------------------------------------------------------------------------------------


def plane_fits_numpy(points: np.ndarray, index: np.ndarray, usable: np.ndarray,
                     viewpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same as `plane_fits` with whole-array numpy steps and LAPACK's eigh (tests, benches)."""
    weight = usable[index].astype(np.float64)[:, :, None]  # (N, k, 1)
    count = weight.sum(axis=1)  # (N, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (points[index] * weight).sum(axis=1) / count
        d = (points[index] - centre[:, None, :]) * weight
        covariance = np.einsum("nki,nkj->nij", d, d) / count[:, :, None]
    few = count[:, 0] < 3
    covariance[few] = np.eye(3)
    values, vectors = np.linalg.eigh(covariance)
    normals = vectors[:, :, 0]
    flip = np.einsum("ij,ij->i", normals, viewpoints - points) < 0
    normals[flip] *= -1
    spread = np.sqrt(np.clip(values[:, 0], 0, None))
    breadth = np.sqrt(np.clip(values[:, 1], 0, None))
    normals[few], spread[few], breadth[few] = np.nan, np.nan, np.nan
    return normals, spread, breadth
