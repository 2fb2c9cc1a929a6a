"""Laser peaks -> plate-frame points: undistort, intersect each pixel's ray with its laser plane, turn by the arm.

A peak (u, v) in an image of width W is undistorted with the calibration's intrinsics scaled to W
(`RigCalibration.camera_matrix_for`), giving the ray (x, y, 1) in the camera frame; the lit point is where that
ray meets the plane n.p + offset = 0 of the laser that was on: p = t (x, y, 1), t = -offset / (n.(x, y, 1)).
The frame's arm angle then maps it to the plate frame with `cal.plate_from_camera(angle)`.

`peaks_to_plate` does all of it in one numba kernel, parallel over peaks (`_triangulate_kernel`: OpenCV's
iterative undistortion of the k1, k2, p1, p2, k3 model, the plane, the pose); `peaks_to_plate_numpy` is the
plain reference, built from `cv2.undistortPoints` and whole-array numpy steps, which the tests and the benchmark
compare it with. With `undistort=False` both give the plain pinhole rays of the Horus-style baseline.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import FootfitError
from core.jit import njit, prange
from fitcore.scan.calibration import RigCalibration
from fitcore.scan.laser_peaks import LaserPeaks

UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)  # the 5-iteration default
# leaves ~0.05 px in the image corners with this lens
MIN_RAY_PLANE_COS = 0.05  # rays nearly parallel to the laser plane (grazing) give no usable depth
UNDISTORT_STEP_TOL = 1e-13  # the kernel's undistortion stops once an iteration moves the ray less than this


class ImageSizeError(FootfitError):
    """The images do not match the calibration's sensor (another camera or binning)."""


def check_image_size(cal: RigCalibration, width_px: int, height_px: int) -> None:
    """Images must be the calibrated sensor, or it binned by a whole factor (same field of view)."""
    binning = cal.width_px / width_px
    if cal.width_px * height_px != cal.height_px * width_px or binning != round(binning) or binning < 1:
        raise ImageSizeError(
            f"images are {width_px}x{height_px} px but rig {cal.rig_serial} was calibrated at "
            f"{cal.width_px}x{cal.height_px}: use a scan profile of this camera (full size or binned 2x2), or "
            "recalibrate with `footfit calibrate`")


def undistorted_rays(u_px: np.ndarray, v_px: np.ndarray, cal: RigCalibration, width_px: int) -> np.ndarray:
    """(N, 2) normalised image coordinates (x/z, y/z) in the camera frame of pixels (u, v)."""
    pixels = np.stack([u_px, v_px], axis=1).astype(np.float64).reshape(-1, 1, 2)
    if not len(pixels):
        return np.zeros((0, 2))
    normalised = cv2.undistortPoints(pixels, cal.camera_matrix_for(width_px), cal.dist_coeffs,
                                     criteria=UNDISTORT_CRITERIA)
    return normalised.reshape(-1, 2)


def pinhole_rays(u_px: np.ndarray, v_px: np.ndarray, cal: RigCalibration, width_px: int) -> np.ndarray:
    """Normalised coordinates ignoring lens distortion (the baseline)."""
    k = cal.camera_matrix_for(width_px)
    return np.stack([(u_px - k[0, 2]) / k[0, 0], (v_px - k[1, 2]) / k[1, 1]], axis=1)


def intersect_planes(rays: np.ndarray, laser_index: np.ndarray, cal: RigCalibration) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) camera frame mm, valid (N,)): each ray (x, y, 1) met with its laser's plane.

    Rays that graze the plane or meet it behind the camera are invalid (their point is NaN)."""
    normals = np.stack([plane.normal for plane in cal.lasers])[laser_index]
    offsets = np.array([plane.offset_mm for plane in cal.lasers])[laser_index]
    directions = np.concatenate([rays, np.ones((len(rays), 1))], axis=1)
    along = np.einsum("ij,ij->i", normals, directions)
    cos = np.abs(along) / np.linalg.norm(directions, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -offsets / along
    valid = (cos > MIN_RAY_PLANE_COS) & (t > 0)
    points = np.where(valid[:, None], directions * t[:, None], np.nan)
    return points, valid


def to_plate(points_camera: np.ndarray, frame: np.ndarray, angles_deg: np.ndarray,
             cal: RigCalibration) -> np.ndarray:
    """Camera-frame points of frame `frame[k]` -> plate frame, by the arm angle of each frame."""
    poses = _poses(angles_deg, cal)
    rotation, translation = poses[frame, :3, :3], poses[frame, :3, 3]
    return np.einsum("nij,nj->ni", rotation, points_camera) + translation


def frame_laser_index(lasers: np.ndarray) -> np.ndarray:
    """Which laser lit each frame (0 left, 1 right); frames must have exactly one laser on."""
    lasers = np.asarray(lasers, dtype=bool)
    single = lasers.sum(axis=1) == 1
    if not single.all():
        bad = np.flatnonzero(~single)
        raise FootfitError(f"{len(bad)} frames (first: {bad[0]}) do not have exactly one laser on: "
                           "reconstruction needs the alternating pattern LR (one laser per frame)")
    return np.where(lasers[:, 0], 0, 1)


def peaks_to_plate(peaks: LaserPeaks, lasers: np.ndarray, angles_deg: np.ndarray, cal: RigCalibration,
                   width_px: int, undistort: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (N, 3) plate frame mm, laser index (N,), index of each point's peak): invalid rays dropped."""
    laser_of_frame = frame_laser_index(lasers)
    planes = np.array([[*plane.normal, plane.offset_mm] for plane in cal.lasers])
    dist = np.zeros(5)
    dist[:len(cal.dist_coeffs)] = cal.dist_coeffs
    iterations = UNDISTORT_CRITERIA[1] if undistort else 0
    points = np.empty((len(peaks), 3))
    valid = np.empty(len(peaks), np.bool_)
    _triangulate_kernel(peaks.u_px, peaks.v_px, peaks.frame, laser_of_frame, cal.camera_matrix_for(width_px), dist,
                        planes, _poses(angles_deg, cal), iterations, MIN_RAY_PLANE_COS, points, valid)
    keep = np.flatnonzero(valid)
    return points[keep], laser_of_frame[peaks.frame[keep]], keep


def _poses(angles_deg: np.ndarray, cal: RigCalibration) -> np.ndarray:
    """(n, 4, 4) plate_from_camera of each frame."""
    return np.stack([cal.plate_from_camera(a) for a in angles_deg])


@njit(parallel=True, cache=True, nogil=True)
def _triangulate_kernel(u_px, v_px, frame, laser_of_frame, k, dist, planes, poses, iterations, min_cos, points,
                        valid):
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    k1, k2, p1, p2, k3 = dist[0], dist[1], dist[2], dist[3], dist[4]
    for i in prange(len(u_px)):
        x0, y0 = (u_px[i] - cx) / fx, (v_px[i] - cy) / fy
        x, y = x0, y0
        for _ in range(iterations):  # as cv2.undistortPoints: x = (x0 - tangential(x)) / radial(x), repeated
            r2 = x * x + y * y
            radial = 1.0 + ((k3 * r2 + k2) * r2 + k1) * r2
            if radial <= 0.0:  # far outside the lens model: OpenCV keeps the distorted ray
                x, y = x0, y0
                break
            nx = (x0 - (2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x))) / radial
            ny = (y0 - (p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y)) / radial
            step = abs(nx - x) + abs(ny - y)
            x, y = nx, ny
            if step < UNDISTORT_STEP_TOL:
                break
        plane = planes[laser_of_frame[frame[i]]]
        along = plane[0] * x + plane[1] * y + plane[2]
        t = -plane[3] / along if along != 0.0 else -1.0
        valid[i] = abs(along) / np.sqrt(x * x + y * y + 1.0) > min_cos and t > 0.0
        pose = poses[frame[i]]
        for row in range(3):
            points[i, row] = pose[row, 0] * x * t + pose[row, 1] * y * t + pose[row, 2] * t + pose[row, 3]


# --- numpy reference -------------------------------------------------------------------------------------------


def peaks_to_plate_numpy(peaks: LaserPeaks, lasers: np.ndarray, angles_deg: np.ndarray, cal: RigCalibration,
                         width_px: int, undistort: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same as `peaks_to_plate` with cv2.undistortPoints and whole-array numpy steps (tests, benches)."""
    laser_of_peak = frame_laser_index(lasers)[peaks.frame]
    rays = (undistorted_rays if undistort else pinhole_rays)(peaks.u_px, peaks.v_px, cal, width_px)
    camera_points, valid = intersect_planes(rays, laser_of_peak, cal)
    keep = np.flatnonzero(valid)
    points = to_plate(camera_points[keep], peaks.frame[keep], angles_deg, cal)
    return points, laser_of_peak[keep], keep
