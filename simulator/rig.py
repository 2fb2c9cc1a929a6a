"""Hidden geometry of one simulated rig: the manufacturing tolerances that calibration has to discover.

Frames (see docs/frames.md):
- plate frame P: mm, origin at the plate's centre mark, z up, plate surface z = 0, +x toward the customer's toes;
- arm frame A: turns with the arm about the arm axis; at true arm angle 0 it coincides with P (when the axis is
  perfect); the camera sits near +x of A, looking back at the axis;
- camera frame C: OpenCV convention, mm, x right, y down, z along the optical axis.
Every quantity is derived from the rig serial, so one serial is always the same rig.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from device.camera import SENSOR_HEIGHT_PX, SENSOR_WIDTH_PX

DEMO_RIG_SERIAL = "FF-DEMO-0001"

NOMINAL_FOCAL_PX = 1430.0
ARM_RADIUS_MM = 400.0  # camera and lasers: horizontal distance from the axis
CAMERA_HEIGHT_MM = 180.0
CAMERA_AIM_HEIGHT_MM = 30.0  # the camera looks at this point of the axis
LASER_AZIMUTH_DEG = 30.0  # lasers sit this far either side of the camera, seen from the axis
LASER_HEIGHT_MM = 180.0


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def _small_rotation(rng: np.random.Generator, sd_deg: float) -> np.ndarray:
    vec = rng.normal(0.0, np.radians(sd_deg), 3)
    angle = float(np.linalg.norm(vec))
    return np.eye(3) if angle == 0 else _rotation(vec, angle)


def _homogeneous(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation whose columns are the camera's x (right), y (down), z (forward) axes in the outer frame."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, 0.0, 1.0]))  # right = forward x up
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


@dataclass(frozen=True)
class LaserGeometry:
    """A line laser in the arm frame: it lights the plane n.x + d = 0 from `origin_mm`."""

    origin_mm: np.ndarray
    normal: np.ndarray
    offset_mm: float


@dataclass(frozen=True)
class RigGeometry:
    serial: str
    camera_matrix: np.ndarray  # 3x3, pixels, at the native sensor resolution
    dist_coeffs: np.ndarray  # k1, k2, p1, p2, k3 (OpenCV order)
    arm_from_camera: np.ndarray  # 4x4: camera frame -> arm frame, mm
    lasers: tuple[LaserGeometry, LaserGeometry]  # index 0 = left laser (+y side of the camera), 1 = right
    axis_point_mm: np.ndarray  # a point of the arm axis on the plate (z = 0), plate frame
    axis_direction: np.ndarray  # unit vector of the arm axis, plate frame (nearly +z)
    home_offset_deg: float  # true arm angle when the board reports 0
    encoder_amplitude_deg: float  # once-per-turn eccentricity of the encoder
    encoder_phase_deg: float
    encoder_scale: float  # gear ratio error
    width_px: int = SENSOR_WIDTH_PX
    height_px: int = SENSOR_HEIGHT_PX

    def true_angle_deg(self, reported_deg: float | np.ndarray) -> float | np.ndarray:
        """The arm's physical angle for the angle the board reports."""
        r = np.asarray(reported_deg, dtype=float)
        wobble = self.encoder_amplitude_deg * np.sin(np.radians(r + self.encoder_phase_deg))
        return self.home_offset_deg + r * self.encoder_scale + wobble

    def plate_from_arm(self, reported_deg: float) -> np.ndarray:
        """4x4 mapping arm-frame mm to plate-frame mm at a reported arm angle."""
        tilt_axis = np.cross([0.0, 0.0, 1.0], self.axis_direction)
        tilt = float(np.arcsin(np.clip(np.linalg.norm(tilt_axis), 0.0, 1.0)))
        r_tilt = np.eye(3) if tilt == 0 else _rotation(tilt_axis, tilt)
        r_spin = _rotation(np.array([0.0, 0.0, 1.0]), np.radians(float(self.true_angle_deg(reported_deg))))
        return _homogeneous(r_tilt @ r_spin, self.axis_point_mm)

    def plate_from_camera(self, reported_deg: float) -> np.ndarray:
        return self.plate_from_arm(reported_deg) @ self.arm_from_camera

    def scaled_camera_matrix(self, width_px: int) -> np.ndarray:
        """Intrinsics when the sensor is binned down to `width_px` (same field of view)."""
        k = self.camera_matrix.copy()
        k[:2] *= width_px / self.width_px
        return k

    def to_json(self) -> dict:
        return {
            "serial": self.serial,
            "sensor_px": [self.width_px, self.height_px],
            "camera_matrix": self.camera_matrix.tolist(),
            "dist_coeffs": self.dist_coeffs.tolist(),
            "arm_from_camera": self.arm_from_camera.tolist(),
            "lasers": [
                {"origin_mm": l.origin_mm.tolist(), "normal": l.normal.tolist(), "offset_mm": l.offset_mm}
                for l in self.lasers
            ],
            "axis_point_mm": self.axis_point_mm.tolist(),
            "axis_direction": self.axis_direction.tolist(),
            "home_offset_deg": self.home_offset_deg,
            "encoder_amplitude_deg": self.encoder_amplitude_deg,
            "encoder_phase_deg": self.encoder_phase_deg,
            "encoder_scale": self.encoder_scale,
        }


def _laser(rng: np.random.Generator, side: float) -> LaserGeometry:
    azimuth = np.radians(side * LASER_AZIMUTH_DEG)
    origin = np.array([ARM_RADIUS_MM * np.cos(azimuth), ARM_RADIUS_MM * np.sin(azimuth), LASER_HEIGHT_MM])
    origin = origin + rng.normal(0.0, 1.0, 3)
    # Nominally a vertical plane through the laser and the axis; mounting error tilts and shifts it.
    normal = _small_rotation(rng, 0.4) @ np.array([-np.sin(azimuth), np.cos(azimuth), 0.0])
    normal /= np.linalg.norm(normal)
    offset = float(-normal @ origin)
    return LaserGeometry(origin_mm=origin, normal=normal, offset_mm=offset)


def rig_geometry(serial: str) -> RigGeometry:
    """The hidden geometry of the rig with this serial number (deterministic)."""
    seed = int.from_bytes(hashlib.sha256(serial.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    f = NOMINAL_FOCAL_PX * (1 + rng.normal(0, 0.01))
    k = np.array(
        [
            [f * (1 + rng.normal(0, 0.001)), 0.0, SENSOR_WIDTH_PX / 2 + rng.normal(0, 5)],
            [0.0, f, SENSOR_HEIGHT_PX / 2 + rng.normal(0, 5)],
            [0.0, 0.0, 1.0],
        ]
    )
    dist = np.array(
        [rng.normal(-0.08, 0.03), rng.normal(0.10, 0.04), rng.normal(0, 3e-4), rng.normal(0, 3e-4), 0.0]
    )
    eye = np.array([ARM_RADIUS_MM, 0.0, CAMERA_HEIGHT_MM]) + rng.normal(0.0, 2.0, 3)
    r_cam = _small_rotation(rng, 0.7) @ _look_at(eye, np.array([0.0, 0.0, CAMERA_AIM_HEIGHT_MM]))
    tilt = np.radians(abs(rng.normal(0, 0.2)))
    tilt_dir = rng.uniform(0, 2 * np.pi)
    axis_dir = np.array([np.sin(tilt) * np.cos(tilt_dir), np.sin(tilt) * np.sin(tilt_dir), np.cos(tilt)])
    return RigGeometry(
        serial=serial,
        camera_matrix=k,
        dist_coeffs=dist,
        arm_from_camera=_homogeneous(r_cam, eye),
        lasers=(_laser(rng, +1.0), _laser(rng, -1.0)),
        axis_point_mm=np.array([rng.normal(0, 1.0), rng.normal(0, 1.0), 0.0]),
        axis_direction=axis_dir,
        home_offset_deg=float(rng.normal(0, 1.0)),
        encoder_amplitude_deg=float(abs(rng.normal(0, 0.02))),
        encoder_phase_deg=float(rng.uniform(0, 360)),
        encoder_scale=float(1 + rng.normal(0, 1e-4)),
    )
