"""Calibrate a rig from its own images: intrinsics and lens distortion, the arm axis, each laser's plane.

The procedure (docs/calibration.md):
1. capture: the empty plate and the chessboard target in its poses (staff follow the rig's display), each at
   several arm angles, with the lasers off and with each laser on;
2. intrinsics and distortion from the chessboard corners (OpenCV), refined in step 3;
3. one joint least-squares fit of every view: intrinsics, the camera on the arm, the arm axis in the plate frame
   and the pose of each target placement, so that the corners and the plate's printed marks reproject;
4. each laser's plane: its line on the target (a plane known from step 3) and on the empty plate (z = 0) gives
   3D points in the camera frame; a plane is fitted to them.
Only images and the board's reported angles are used; nothing here knows the simulator.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import cv2
import numpy as np
from scipy.optimize import least_squares

from core.errors import CalibrationError
from core.frame_stamp import STAMP_HEIGHT_PX, STAMP_WIDTH_PX
from core.plate_marks import (
    CROSS_ARM_MM,
    PLATE_MARKS_MM,
    TargetSpec,
    mark_area_samples_mm,
    mark_points_mm,
)
from device.capture import Still
from fitcore.scan.calibration import (
    CalibrationQuality,
    LaserPlane,
    RigCalibration,
    new_calibration_id,
)
from fitcore.scan.laser_peaks import image_peaks

TARGET = TargetSpec()
CORNER_WINDOW_PX = 11  # cornerSubPix half window at most (23 x 23 px)
MIN_MARKS = 4  # plate marks needed in a view to place the camera (PnP on a plane)
MARK_MATCH_PX = 3.0  # reprojection error above which a labelling of the plate marks is wrong
MAX_AZIMUTH_ERROR_DEG = 45.0  # the camera is on the plate's +x side at reported angle 0, within this
LASER_EDGE_MARGIN_MM = 1.5  # laser points this close to a printed edge are biased by the albedo step
LASER_OUTLIER_MM = 0.5
PLATE_CONTACT_MM = 2.0  # laser points on the target this close above the plate may lie on either
MIN_LASER_POINTS = 200


# --- detection --------------------------------------------------------------------------------------------------


def _gray(image_bgr: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    gray[:STAMP_HEIGHT_PX, :STAMP_WIDTH_PX] = np.median(gray)  # the frame stamp is not scene content
    return gray


def find_target_corners(image_bgr: np.ndarray) -> np.ndarray | None:
    """(cols * rows, 2) sub-pixel inner corners in TargetSpec order, or None when the board is not fully seen.

    The grid is found at half size (fast), then each corner is refined at full size on a lightly blurred image
    with a window as large as the squares allow (more edge pixels, less noise)."""
    gray = _gray(image_bgr)
    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    found, corners = cv2.findChessboardCornersSB(small, TARGET.inner_corners)
    if not found:
        return None
    corners = (corners.reshape(-1, 2).astype(np.float64) + 0.5) * 2 - 0.5  # half-size pixel centres -> full size
    cols, rows = TARGET.inner_corners
    grid = corners.reshape(rows, cols, 2)
    spacing_px = min(np.linalg.norm(np.diff(grid, axis=0), axis=2).min(), np.linalg.norm(np.diff(grid, axis=1),
                                                                                        axis=2).min())
    half_window = int(np.clip(spacing_px / 2 - 2, 3, CORNER_WINDOW_PX))
    refined = cv2.cornerSubPix(cv2.GaussianBlur(gray, (0, 0), 1.0), corners.astype(np.float32).reshape(-1, 1, 2),
                               (half_window, half_window), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-4))
    corners = refined.reshape(-1, 2).astype(np.float64)
    # The board's 180 deg turn gives the same grid; the square between corners 0, 1, cols, cols + 1 is black.
    quad = corners[[0, 1, cols + 1, cols]]
    mask = np.zeros_like(gray)
    cv2.fillConvexPoly(mask, np.round((quad - quad.mean(0)) * 0.5 + quad.mean(0)).astype(np.int32), 1)
    if gray[mask > 0].mean() > np.median(gray[_board_mask(gray.shape, corners) > 0]):
        corners = corners[::-1].copy()
    return corners


def _board_mask(shape, corners: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(corners).astype(np.int32)), 1)
    return mask


@dataclass(frozen=True)
class MarkObservation:
    """Plate marks found in one image: centroids of their image area and which mark each is."""

    points_px: np.ndarray  # (k, 2)
    marks: np.ndarray  # (k,) index into plate_marks.mark_points_mm()


def _blobs(gray: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(centroid (2,), solidity) of each printed mark in view, from its coverage-weighted area.

    Coverage = (pixel - plate level) / (local print level - plate level), so the lamp's falloff across a mark
    does not pull its centroid toward the brighter side."""
    background = float(np.median(gray))
    level = float(np.percentile(gray, 99.9))
    if level - background < 20:
        return []
    _, binary = cv2.threshold(gray, (background + level) / 2, 255, cv2.THRESH_BINARY)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = gray.shape
    blobs = []
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        if area < 12 or x <= 2 or y <= 2 or x + bw >= w - 2 or y + bh >= h - 2:
            continue  # noise, or cut by the image border (its centroid would be biased)
        pad = 4
        x0, y0, x1, y1 = max(x - pad, 0), max(y - pad, 0), min(x + bw + pad, w), min(y + bh + pad, h)
        patch = gray[y0:y1, x0:x1].astype(np.float64)
        mask = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
        window = cv2.dilate(mask, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) > 0
        ring = window & ~(cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0)
        base = float(np.median(patch[ring])) if ring.any() else background
        local_print = cv2.dilate(patch, np.ones((7, 7), np.uint8))
        coverage = np.clip((patch - base) / np.maximum(local_print - base, 1.0), None, 1.0) * window
        total = coverage.sum()
        if total <= 0:
            continue
        rows, cols = np.mgrid[y0:y1, x0:x1]
        centroid = np.array([(coverage * cols).sum() / total, (coverage * rows).sum() / total])
        hull = cv2.convexHull(cv2.findNonZero(mask))
        solidity = float(mask.sum()) / max(cv2.contourArea(hull), 1.0)
        blobs.append((centroid, solidity))
    return blobs


def find_plate_marks(image_bgr: np.ndarray, angle_deg: float, camera_matrix: np.ndarray,
                     dist_coeffs: np.ndarray) -> MarkObservation | None:
    """The plate marks in an image of the empty plate, labelled: the cross is the one non-convex mark; the dots
    are matched by trying every labelling and keeping those that reproject (PnP) with the camera on the side of
    the plate the reported arm angle puts it (the four inner dots alone are symmetric)."""
    blobs = _blobs(_gray(image_bgr))
    crosses = [c for c, solidity in blobs if solidity < 0.6]
    dots = [c for c, solidity in blobs if solidity >= 0.85]
    if len(crosses) != 1 or len(dots) < MIN_MARKS - 1:
        return None
    pixels = np.array([crosses[0], *dots])
    model = mark_points_mm()
    best = None
    for labels in itertools.permutations(range(1, len(model)), len(dots)):
        marks = np.array([0, *labels])
        ok, rvec, tvec = cv2.solvePnP(model[marks], pixels, camera_matrix, dist_coeffs, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            continue
        projected, _ = cv2.projectPoints(model[marks], rvec, tvec, camera_matrix, dist_coeffs)
        error = float(np.abs(projected.reshape(-1, 2) - pixels).max())
        rotation = cv2.Rodrigues(rvec)[0]
        centre = -rotation.T @ tvec.ravel()
        azimuth = np.degrees(np.arctan2(centre[1], centre[0]))
        off_side = abs((azimuth - angle_deg + 180) % 360 - 180)
        if error < MARK_MATCH_PX and off_side < MAX_AZIMUTH_ERROR_DEG and centre[2] > 0:
            if best is None or error < best[0]:
                best = (error, marks)
    if best is None:
        return None
    return MarkObservation(pixels, best[1])


# --- geometry ---------------------------------------------------------------------------------------------------


def _homogeneous(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rotation, translation
    return t


def _pose(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    return _homogeneous(cv2.Rodrigues(np.asarray(rvec, np.float64))[0], np.asarray(tvec, np.float64).ravel())


def _spin(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    t = np.eye(4)
    t[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return t


def _transform(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


@dataclass
class RigModel:
    """The parameters of the joint fit (see the module docstring, step 3)."""

    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray  # k1, k2, p1, p2, k3 (k3 held at 0)
    axis_from_camera: np.ndarray
    plate_from_axis: np.ndarray  # rotation: the smallest tilt of z onto the axis; origin on the plate (z = 0)
    plate_from_target: dict[int, np.ndarray]  # per target pose

    def plate_from_camera(self, angle_deg: float) -> np.ndarray:
        return self.plate_from_axis @ _spin(angle_deg) @ self.axis_from_camera

    def camera_from_plate(self, angle_deg: float) -> np.ndarray:
        return np.linalg.inv(self.plate_from_camera(angle_deg))

    def project(self, camera_from_points: np.ndarray, points: np.ndarray) -> np.ndarray:
        pixels, _ = cv2.projectPoints(_transform(camera_from_points, points).reshape(-1, 1, 3), np.zeros(3),
                                      np.zeros(3), self.camera_matrix, self.dist_coeffs)
        return pixels.reshape(-1, 2)

    # parameter vector: fx fy cx cy k1 k2 p1 p2 | axis_from_camera r t | tilt rx ry, origin x y | targets r t
    def pack(self, targets: Sequence[int]) -> np.ndarray:
        k, d = self.camera_matrix, self.dist_coeffs
        parts = [[k[0, 0], k[1, 1], k[0, 2], k[1, 2], *d[:4]], _vector(self.axis_from_camera),
                 cv2.Rodrigues(self.plate_from_axis[:3, :3])[0].ravel()[:2], self.plate_from_axis[:2, 3]]
        parts += [_vector(self.plate_from_target[t]) for t in targets]
        return np.concatenate([np.ravel(p) for p in parts])

    @staticmethod
    def unpack(x: np.ndarray, targets: Sequence[int]) -> "RigModel":
        k = np.array([[x[0], 0, x[2]], [0, x[1], x[3]], [0, 0, 1]])
        dist = np.array([*x[4:8], 0.0])
        axis_from_camera = _pose(x[8:11], x[11:14])
        plate_from_axis = _pose([x[14], x[15], 0.0], [x[16], x[17], 0.0])
        poses = {t: _pose(x[18 + 6 * i:21 + 6 * i], x[21 + 6 * i:24 + 6 * i]) for i, t in enumerate(targets)}
        return RigModel(k, dist, axis_from_camera, plate_from_axis, poses)


def _vector(pose: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(pose[:3, :3])[0].ravel(), pose[:3, 3]])


@dataclass(frozen=True)
class _CornerView:
    still: Still
    corners_px: np.ndarray


@dataclass(frozen=True)
class _MarkView:
    still: Still
    marks: MarkObservation
    bias_px: np.ndarray  # (k, 2) image-area centroid minus projected mark centre (perspective, distortion)


def calibrate_intrinsics(views: list[_CornerView], image_size: tuple[int, int]):
    """OpenCV's calibration of the chessboard views: (camera matrix, distortion, per-view camera_from_target)."""
    objects = [TARGET.corners_mm().astype(np.float32)] * len(views)
    images = [v.corners_px.astype(np.float32).reshape(-1, 1, 2) for v in views]
    rms, k, dist, rvecs, tvecs = cv2.calibrateCamera(objects, images, image_size, None, None,
                                                     flags=cv2.CALIB_FIX_K3)
    return k, dist.ravel()[:5], [_pose(r, t) for r, t in zip(rvecs, tvecs)]


def _initial_axis(mark_views: list[_MarkView], k: np.ndarray, dist: np.ndarray):
    """Camera poses from the plate marks -> a level axis through the centre of the camera centres' circle."""
    model = mark_points_mm()
    poses = {}
    for v in mark_views:
        ok, rvec, tvec = cv2.solvePnP(model[v.marks.marks], v.marks.points_px, k, dist, flags=cv2.SOLVEPNP_IPPE)
        poses[v.still.angle_deg] = np.linalg.inv(_pose(rvec, tvec))  # plate_from_camera
    centres = np.array([p[:3, 3] for p in poses.values()])
    # Circle through the camera centres (least squares): x^2 + y^2 = 2 a x + 2 b y + c.
    a_mat = np.column_stack([2 * centres[:, 0], 2 * centres[:, 1], np.ones(len(centres))])
    (cx, cy, _), *_ = np.linalg.lstsq(a_mat, (centres[:, :2] ** 2).sum(axis=1), rcond=None)
    plate_from_axis = _homogeneous(np.eye(3), np.array([cx, cy, 0.0]))
    angle, plate_from_camera = next(iter(poses.items()))
    axis_from_camera = _spin(-angle) @ np.linalg.inv(plate_from_axis) @ plate_from_camera
    return plate_from_axis, axis_from_camera


def _mark_bias(model: RigModel, angle_deg: float, marks: np.ndarray) -> np.ndarray:
    """Where each mark's image-area centroid falls relative to its projected centre (a circle's image centroid
    is not the image of its centre), predicted by projecting samples of the mark's area."""
    camera_from_plate = model.camera_from_plate(angle_deg)
    centres = model.project(camera_from_plate, mark_points_mm()[marks])
    bias = np.zeros((len(marks), 2))
    step = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.05, 0.0]])
    for i, mark in enumerate(marks):
        samples = mark_area_samples_mm(int(mark))
        projected = model.project(camera_from_plate, (samples[:, None, :] + step).reshape(-1, 3)).reshape(-1, 3, 2)
        du, dv = projected[:, 1] - projected[:, 0], projected[:, 2] - projected[:, 0]
        area = np.abs(du[:, 0] * dv[:, 1] - du[:, 1] * dv[:, 0])
        bias[i] = (projected[:, 0] * area[:, None]).sum(0) / area.sum() - centres[i]
    return bias


def _residuals(x, targets, corner_views, mark_views) -> np.ndarray:
    model = RigModel.unpack(x, targets)
    out = []
    corners = TARGET.corners_mm()
    for v in corner_views:
        camera_from_target = model.camera_from_plate(v.still.angle_deg) @ model.plate_from_target[v.still.target_index]
        out.append(model.project(camera_from_target, corners) - v.corners_px)
    points = mark_points_mm()
    for v in mark_views:
        projected = model.project(model.camera_from_plate(v.still.angle_deg), points[v.marks.marks])
        out.append(projected + v.bias_px - v.marks.points_px)
    return np.concatenate(out).ravel()


def fit_rig(corner_views: list[_CornerView], mark_views: list[_MarkView], image_size: tuple[int, int]
            ) -> tuple[RigModel, float]:
    """The joint fit of step 3: (model, RMS reprojection error of the target corners in px)."""
    k, dist, camera_from_target = calibrate_intrinsics(corner_views, image_size)
    plate_from_axis, axis_from_camera = _initial_axis(mark_views, k, dist)
    model = RigModel(k, dist, axis_from_camera, plate_from_axis, {})
    for view, pose in zip(corner_views, camera_from_target):  # the first view of each target pose places it
        model.plate_from_target.setdefault(view.still.target_index,
                                           model.plate_from_camera(view.still.angle_deg) @ pose)
    targets = sorted(model.plate_from_target)
    for _ in range(2):  # the mark centroid bias depends on the pose: predict it, fit, predict again
        mark_views = [_MarkView(v.still, v.marks, _mark_bias(model, v.still.angle_deg, v.marks.marks))
                      for v in mark_views]
        result = least_squares(_residuals, model.pack(targets), args=(targets, corner_views, mark_views),
                               x_scale="jac", method="lm")
        model = RigModel.unpack(result.x, targets)
    corner_count = sum(len(v.corners_px) for v in corner_views)
    corner_residuals = result.fun[:2 * corner_count].reshape(-1, 2)
    return model, float(np.sqrt((corner_residuals ** 2).sum(axis=1).mean()))


def axis_fit_rms_mm(model: RigModel, corner_views: list[_CornerView]) -> float:
    """RMS distance between each view's camera centre found on its own (PnP on the target, placed by the fit)
    and where the arm model puts the camera at that angle: arm wobble and encoder error show up here."""
    distances = []
    for v in corner_views:
        ok, rvec, tvec = cv2.solvePnP(TARGET.corners_mm(), v.corners_px, model.camera_matrix, model.dist_coeffs)
        alone = model.plate_from_target[v.still.target_index] @ np.linalg.inv(_pose(rvec, tvec))
        distances.append(np.linalg.norm(alone[:3, 3] - model.plate_from_camera(v.still.angle_deg)[:3, 3]))
    return float(np.sqrt(np.mean(np.square(distances))))


# --- laser planes -----------------------------------------------------------------------------------------------


def _rays(model: RigModel, u_px: np.ndarray, v_px: np.ndarray) -> np.ndarray:
    pixels = np.stack([u_px, v_px], axis=1).astype(np.float64).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)
    normalised = cv2.undistortPoints(pixels, model.camera_matrix, model.dist_coeffs, criteria=criteria)
    return np.hstack([normalised.reshape(-1, 2), np.ones((len(pixels), 1))])


def _on_plane(rays: np.ndarray, camera_from_surface: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points in the camera frame, the same in the surface frame) where rays meet the surface's z = 0."""
    normal = camera_from_surface[:3, 2]
    origin = camera_from_surface[:3, 3]
    t = (normal @ origin) / (rays @ normal)
    points = rays * t[:, None]
    local = _transform(np.linalg.inv(camera_from_surface), points)
    return points, local


def _clear_of_print_edges(local_mm: np.ndarray, target: bool) -> np.ndarray:
    """Laser points whose line profile lies on one uniform albedo: white target squares and border, or plain
    plate away from the printed marks."""
    x, y = local_mm[:, 0], local_mm[:, 1]
    m = LASER_EDGE_MARGIN_MM
    if target:
        x0, x1, y0, y1 = TARGET.extent_mm()
        s = TARGET.square_mm
        cols, rows = TARGET.inner_corners
        inside = (x > x0 + m) & (x < x1 - m) & (y > y0 + m) & (y < y1 - m)
        in_checker = (x > -s - m) & (x < cols * s + m) & (y > -s - m) & (y < rows * s + m)
        near_line = (np.abs(x / s - np.round(x / s)) * s < m) | (np.abs(y / s - np.round(y / s)) * s < m)
        black = (np.floor(x / s) + np.floor(y / s)) % 2 == 0
        return inside & (~in_checker | (~near_line & ~black))
    clear = ~((np.abs(x) < CROSS_ARM_MM + m) & (np.abs(y) < CROSS_ARM_MM + m))
    for cx, cy, r in PLATE_MARKS_MM:
        clear &= np.hypot(x - cx, y - cy) > r + m
    return clear


def laser_points(model: RigModel, still: Still, laser: int) -> np.ndarray:
    """(N, 3) camera-frame points of one laser's line in one still, on the target or on the empty plate."""
    peaks = image_peaks(still.laser_red[laser], still.dark_red)
    if not len(peaks):
        return np.zeros((0, 3))
    rays = _rays(model, peaks.u_px, peaks.v_px)
    camera_from_plate = model.camera_from_plate(still.angle_deg)
    if still.target_index is None:
        points, local = _on_plane(rays, camera_from_plate)
        return points[_clear_of_print_edges(local, target=False) & (points[:, 2] > 0)]
    points, local = _on_plane(rays, camera_from_plate @ model.plate_from_target[still.target_index])
    on_plate, _ = _on_plane(rays, camera_from_plate)
    # Where the plate is nearer along the ray, the board is below it (the wedge's foot): the line is on the plate.
    above_plate = on_plate[:, 2] > points[:, 2] - PLATE_CONTACT_MM
    return points[_clear_of_print_edges(local, target=True) & above_plate & (points[:, 2] > 0)]


def fit_plane(points: np.ndarray) -> tuple[LaserPlane, float]:
    """Least-squares plane with outliers beyond LASER_OUTLIER_MM dropped: (plane, RMS residual mm). The normal
    points to the camera's side (offset > 0)."""
    keep = np.ones(len(points), bool)
    for _ in range(3):
        centre = points[keep].mean(axis=0)
        normal = np.linalg.eigh(np.cov((points[keep] - centre).T))[1][:, 0]
        distance = (points - centre) @ normal
        keep = np.abs(distance) < max(LASER_OUTLIER_MM, 3 * distance[keep].std())
    offset = -float(normal @ centre)
    if offset < 0:
        normal, offset = -normal, -offset
    residual = points[keep] @ normal + offset
    return LaserPlane(normal, offset), float(np.sqrt(np.mean(residual ** 2)))


# --- the procedure ----------------------------------------------------------------------------------------------


def calibration_from_stills(stills: list[Still], rig_serial: str) -> RigCalibration:
    """Steps 2-4 on captured stills (no devices needed)."""
    height, width = stills[0].dark_bgr.shape[:2]
    corner_views = []
    for still in stills:
        if still.target_index is not None and (corners := find_target_corners(still.dark_bgr)) is not None:
            corner_views.append(_CornerView(still, corners))
    if len(corner_views) < 6 or len({v.still.target_index for v in corner_views}) < 3:
        raise CalibrationError(f"the target was found in only {len(corner_views)} views: check that it lies where "
                               "the display asks, is fully in view, flat, clean and well lit")
    k, dist, _ = calibrate_intrinsics(corner_views, (width, height))
    mark_views = []
    for still in stills:
        if still.target_index is None and (marks := find_plate_marks(still.dark_bgr, still.angle_deg, k, dist)):
            mark_views.append(_MarkView(still, marks, np.zeros((len(marks.marks), 2))))
    if len(mark_views) < 3:
        raise CalibrationError(f"the plate's printed marks were found in only {len(mark_views)} views of the empty "
                               "plate (3 needed): clear the plate, clean it and check the lamp")
    model, reprojection_rms = fit_rig(corner_views, mark_views, (width, height))
    # The line on the target is used where the board was found (its face is toward the camera), on the plate
    # where it is empty.
    laser_stills = [s for s in stills if s.target_index is None] + [v.still for v in corner_views]
    planes, plane_rms = [], []
    for laser, side in enumerate(("left", "right")):
        points = np.concatenate([laser_points(model, s, laser) for s in laser_stills])
        if len(points) < MIN_LASER_POINTS:
            raise CalibrationError(f"the {side} laser line was found at only {len(points)} points: check that the "
                                   "laser is on, aimed at the arm axis and its lens is clean")
        plane, rms = fit_plane(points)
        planes.append(plane)
        plane_rms.append(rms)
    quality = CalibrationQuality(reprojection_rms, (plane_rms[0], plane_rms[1]),
                                 axis_fit_rms_mm(model, corner_views), len(corner_views) + len(mark_views))
    return RigCalibration(
        rig_serial=rig_serial, calibration_id=new_calibration_id(rig_serial),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), width_px=width, height_px=height,
        camera_matrix=model.camera_matrix, dist_coeffs=model.dist_coeffs, lasers=(planes[0], planes[1]),
        plate_from_axis=model.plate_from_axis, axis_from_camera=model.axis_from_camera, quality=quality)
