"""A rig's calibration: what the reconstruction needs to turn laser pixels into plate-frame millimetres.

Learned from images only (`fitcore/scan/calibrate.py`); stored per rig serial under data_dir/calibrations/, with its
quality. Frames (docs/frames.md): camera frame = OpenCV; axis frame = z along the arm axis (up), origin where the
axis meets the plate, x toward plate +x as far as the axis tilt allows; plate frame = the printed centre mark.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.errors import CalibrationError


@dataclass(frozen=True)
class LaserPlane:
    """The plane n.x + offset_mm = 0 lit by one line laser, in the camera frame (mm)."""

    normal: np.ndarray  # (3,) unit
    offset_mm: float


@dataclass(frozen=True)
class CalibrationQuality:
    reprojection_rms_px: float  # target corners, intrinsics fit
    laser_plane_rms_mm: tuple[float, float]  # distance of laser points to their fitted plane (left, right)
    axis_fit_rms_mm: float  # camera centres about the fitted arm axis circle
    views: int  # images used


@dataclass(frozen=True)
class Tolerances:
    """Beyond these a calibration is refused (see docs/calibration.md)."""

    reprojection_rms_px: float = 0.5
    laser_plane_rms_mm: float = 0.2  # single peaks jitter ~0.1 mm with laser speckle (docs/calibration.md)
    axis_fit_rms_mm: float = 0.3
    max_age_days: float = 30.0


@dataclass(frozen=True)
class RigCalibration:
    rig_serial: str
    calibration_id: str
    created_at: str  # ISO 8601 UTC
    width_px: int  # the sensor size the intrinsics refer to (binned images scale them)
    height_px: int
    camera_matrix: np.ndarray  # 3x3
    dist_coeffs: np.ndarray  # (5,) k1, k2, p1, p2, k3
    lasers: tuple[LaserPlane, LaserPlane]  # (left, right), camera frame
    plate_from_axis: np.ndarray  # 4x4
    axis_from_camera: np.ndarray  # 4x4: the camera in the axis frame when the board reports angle 0
    quality: CalibrationQuality

    def plate_from_camera(self, angle_deg: float) -> np.ndarray:
        """4x4 camera frame -> plate frame at a reported arm angle."""
        a = np.radians(angle_deg)
        spin = np.eye(4)
        spin[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        return self.plate_from_axis @ spin @ self.axis_from_camera

    def camera_matrix_for(self, width_px: int) -> np.ndarray:
        """Intrinsics for images binned down to `width_px` (pixel centres follow OpenCV's convention)."""
        k = self.camera_matrix.copy()
        s = width_px / self.width_px
        k[:2] *= s
        return k

    def age_days(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (now - datetime.fromisoformat(self.created_at)).total_seconds() / 86400

    def to_json(self) -> dict:
        return {
            "format_version": 1,
            "rig_serial": self.rig_serial,
            "calibration_id": self.calibration_id,
            "created_at": self.created_at,
            "sensor_px": [self.width_px, self.height_px],
            "camera_matrix": self.camera_matrix.tolist(),
            "dist_coeffs": self.dist_coeffs.tolist(),
            "lasers": [{"normal": l.normal.tolist(), "offset_mm": l.offset_mm} for l in self.lasers],
            "plate_from_axis": self.plate_from_axis.tolist(),
            "axis_from_camera": self.axis_from_camera.tolist(),
            "quality": {
                "reprojection_rms_px": self.quality.reprojection_rms_px,
                "laser_plane_rms_mm": list(self.quality.laser_plane_rms_mm),
                "axis_fit_rms_mm": self.quality.axis_fit_rms_mm,
                "views": self.quality.views,
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "RigCalibration":
        q = data["quality"]
        return cls(
            rig_serial=data["rig_serial"],
            calibration_id=data["calibration_id"],
            created_at=data["created_at"],
            width_px=data["sensor_px"][0],
            height_px=data["sensor_px"][1],
            camera_matrix=np.array(data["camera_matrix"], dtype=float),
            dist_coeffs=np.array(data["dist_coeffs"], dtype=float),
            lasers=tuple(LaserPlane(np.array(l["normal"], dtype=float), float(l["offset_mm"]))
                         for l in data["lasers"]),
            plate_from_axis=np.array(data["plate_from_axis"], dtype=float),
            axis_from_camera=np.array(data["axis_from_camera"], dtype=float),
            quality=CalibrationQuality(q["reprojection_rms_px"], tuple(q["laser_plane_rms_mm"]),
                                       q["axis_fit_rms_mm"], q["views"]),
        )


def check_quality(cal: RigCalibration, tol: Tolerances = Tolerances()) -> list[str]:
    """Reasons the calibration is out of tolerance (empty: fine)."""
    q, reasons = cal.quality, []
    if q.reprojection_rms_px > tol.reprojection_rms_px:
        reasons.append(f"target reprojection RMS {q.reprojection_rms_px:.2f} px > {tol.reprojection_rms_px} px "
                       "(is the target flat, clean and fully in view?)")
    for side, rms in zip(("left", "right"), q.laser_plane_rms_mm):
        if rms > tol.laser_plane_rms_mm:
            reasons.append(f"{side} laser plane residual {rms:.3f} mm > {tol.laser_plane_rms_mm} mm "
                           "(is the laser line sharp and the lens clean?)")
    if q.axis_fit_rms_mm > tol.axis_fit_rms_mm:
        reasons.append(f"arm axis fit residual {q.axis_fit_rms_mm:.3f} mm > {tol.axis_fit_rms_mm} mm "
                       "(does the arm wobble or slip?)")
    return reasons


def calibration_path(data_dir: Path, rig_serial: str) -> Path:
    return Path(data_dir) / "calibrations" / f"{rig_serial}.json"


def save_calibration(data_dir: Path, cal: RigCalibration, tol: Tolerances = Tolerances()) -> Path:
    """Store the calibration for its rig, refusing one that is out of tolerance."""
    reasons = check_quality(cal, tol)
    if reasons:
        raise CalibrationError(f"calibration of rig {cal.rig_serial} not saved: " + "; ".join(reasons))
    path = calibration_path(data_dir, cal.rig_serial)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=1))
    os.replace(tmp, path)
    return path


def load_calibration(data_dir: Path, rig_serial: str, tol: Tolerances = Tolerances()) -> RigCalibration:
    """The stored calibration of this rig, or CalibrationError saying to run `footfit calibrate`."""
    path = calibration_path(data_dir, rig_serial)
    if not path.exists():
        raise CalibrationError(f"rig {rig_serial} has no calibration: run `footfit calibrate` first")
    cal = RigCalibration.from_json(json.loads(path.read_text()))
    if cal.rig_serial != rig_serial:
        raise CalibrationError(f"{path} is for rig {cal.rig_serial}, not {rig_serial}: run `footfit calibrate`")
    age = cal.age_days()
    if age > tol.max_age_days:
        raise CalibrationError(f"the calibration of rig {rig_serial} is {age:.0f} days old (limit "
                               f"{tol.max_age_days:.0f}): run `footfit calibrate`")
    return cal


def new_calibration_id(rig_serial: str) -> str:
    return f"{rig_serial}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
