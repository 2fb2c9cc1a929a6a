"""Triangulation: points on a laser plane, imaged through the distorted lens, come back where they were; the
numba kernel equals the cv2/numpy reference."""

import cv2
import numpy as np
import pytest

from fitcore.scan.laser_peaks import LaserPeaks
from fitcore.scan.triangulate import peaks_to_plate, peaks_to_plate_numpy
from simulator.rig import rig_geometry
from testing.sim_truth import calibration_from_truth

CAL = calibration_from_truth(rig_geometry("FF-TEST-0201"))
ANGLES_DEG = np.arange(8) * 45.0
LASERS = np.array([[i % 2 == 0, i % 2 == 1] for i in range(8)])


def points_on_laser_planes(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(camera-frame points on the plane of each frame's laser, frame of each): 200-450 mm in front of the
    camera, across the field of view."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, len(ANGLES_DEG), count).astype(np.int32)
    laser = np.where(LASERS[frame, 0], 0, 1)
    x, y = rng.uniform(-0.4, 0.4, count), rng.uniform(-0.3, 0.3, count)  # ray directions (x/z, y/z)
    normals = np.stack([CAL.lasers[k].normal for k in laser])
    offsets = np.array([CAL.lasers[k].offset_mm for k in laser])
    rays = np.stack([x, y, np.ones(count)], axis=1)
    t = -offsets / np.einsum("ij,ij->i", normals, rays)
    keep = (t > 200) & (t < 450)
    return rays[keep] * t[keep, None], frame[keep]


def image_of(points_camera: np.ndarray, frame: np.ndarray, width_px: int) -> LaserPeaks:
    """The points' pixels through the calibrated lens (distortion included), as peaks sorted by frame."""
    pixels, _ = cv2.projectPoints(points_camera, np.zeros(3), np.zeros(3), CAL.camera_matrix_for(width_px),
                                  CAL.dist_coeffs)
    u, v = pixels.reshape(-1, 2).T
    n = len(u)
    return LaserPeaks(frame, u, v, np.full(n, 100, np.int32), np.full(n, 3, np.int32), len(ANGLES_DEG))


@pytest.mark.parametrize("width_px", [1280, 640])
def test_imaged_points_triangulate_back_onto_themselves(width_px):
    points_camera, frame = points_on_laser_planes(5000)
    order = np.argsort(frame, kind="stable")
    points_camera, frame = points_camera[order], frame[order]
    peaks = image_of(points_camera, frame, width_px)
    plate, laser, index = peaks_to_plate(peaks, LASERS, ANGLES_DEG, CAL, width_px)
    assert len(index) == len(points_camera), "no ray lost"
    expected = np.stack([CAL.plate_from_camera(ANGLES_DEG[f]) for f in frame])
    expected = np.einsum("nij,nj->ni", expected[:, :3, :3], points_camera) + expected[:, :3, 3]
    assert np.abs(plate - expected).max() < 1e-6
    assert np.array_equal(laser, np.where(LASERS[frame, 0], 0, 1))
    # without undistortion (the Horus-style baseline) the same pixels land measurably elsewhere
    pinhole, _, _ = peaks_to_plate(peaks, LASERS, ANGLES_DEG, CAL, width_px, undistort=False)
    assert np.percentile(np.linalg.norm(pinhole - expected, axis=1), 90) > 0.3


@pytest.mark.parametrize("undistort", [True, False])
def test_numba_kernel_equals_numpy_reference(undistort):
    rng = np.random.default_rng(3)
    n = 20000
    frame = np.sort(rng.integers(0, len(ANGLES_DEG), n)).astype(np.int32)
    peaks = LaserPeaks(frame, rng.uniform(0, 1279, n), rng.integers(0, 960, n).astype(np.float64),
                       np.full(n, 100, np.int32), np.full(n, 3, np.int32), len(ANGLES_DEG))
    fast = peaks_to_plate(peaks, LASERS, ANGLES_DEG, CAL, 1280, undistort)
    slow = peaks_to_plate_numpy(peaks, LASERS, ANGLES_DEG, CAL, 1280, undistort)
    assert 0 < len(fast[2]) < n, "some rays miss their plane (behind the camera or grazing)"
    assert np.array_equal(fast[1], slow[1]) and np.array_equal(fast[2], slow[2])
    assert np.abs(fast[0] - slow[0]).max() < 1e-6
