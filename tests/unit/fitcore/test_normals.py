"""Local plane fits: outliers, normals turned toward the viewer, the noise figure, untrustworthy normals along a
single profile; the numba kernel equals the numpy reference."""

import numpy as np

from fitcore.scan.normals import nearest_neighbours, plane_fits, plane_fits_numpy, statistical_inliers
from fitcore.scan.reconstruct import MIN_NORMAL_BREADTH_MM

RADIUS_MM = 40.0


def sphere(count: int, noise_mm: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(points on a sphere about the origin with radial noise, their outward unit directions)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * (RADIUS_MM + rng.normal(0, noise_mm, (count, 1))), direction


def test_normals_point_out_toward_the_viewer_and_spread_is_the_noise():
    points, outward = sphere(20000, noise_mm=0.1)
    distance, index = nearest_neighbours(points, 16)
    assert np.array_equal(index[:, 0], np.arange(len(points))), "each point is its own nearest"
    normals, spread, breadth = plane_fits(points, index, np.ones(len(points), bool), points * 3.0)
    assert np.percentile(np.einsum("ij,ij->i", normals, outward), 5) > 0.9
    assert 0.05 < np.median(spread) < 0.12  # the radial noise, seen over patches of 16 neighbours
    assert np.mean(breadth > MIN_NORMAL_BREADTH_MM) > 0.95, "patches of neighbours: their normals are trusted"


def test_far_points_are_outliers():
    points, _ = sphere(5000)
    stray = np.array([[0.0, 0.0, 60.0], [70.0, 0.0, 0.0], [0.0, -55.0, 10.0]])
    distance, _ = nearest_neighbours(np.concatenate([points, stray]), 16)
    inlier = statistical_inliers(distance, 2.5)
    assert not inlier[-3:].any() and inlier[:-3].mean() > 0.98


def test_points_along_one_line_give_no_breadth_and_few_neighbours_no_normal():
    line = np.stack([np.linspace(0, 30, 31), np.zeros(31), 0.01 * np.linspace(0, 30, 31) ** 2], axis=1)
    _, index = nearest_neighbours(line, 16)
    usable = np.ones(len(line), bool)
    usable[:29] = False  # only the last two points usable
    _, spread, breadth = plane_fits(line, index, np.ones(len(line), bool), line + [0, 0, 50])
    assert np.all(breadth < MIN_NORMAL_BREADTH_MM), "a single curved profile spans no patch: normal not trusted"
    normals, spread, breadth = plane_fits(line, index, usable, line + [0, 0, 50])
    assert np.isnan(normals).all() and np.isnan(spread).all()


def test_numba_kernel_equals_numpy_reference():
    points, _ = sphere(8000, noise_mm=0.2, seed=4)
    _, index = nearest_neighbours(points, 16)
    usable = np.random.default_rng(1).random(len(points)) > 0.1
    viewpoints = points * 2.0
    fast, slow = plane_fits(points, index, usable, viewpoints), plane_fits_numpy(points, index, usable, viewpoints)
    for a, b in zip(fast, slow):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a - b)) < 1e-5
