"""Test-only bridges to the simulator's hidden truth (never used by the product's code paths)."""

from __future__ import annotations

import numpy as np

from fitcore.scan.calibration import CalibrationQuality, LaserPlane, RigCalibration
from simulator.rig import RigGeometry


def calibration_from_truth(rig: RigGeometry) -> RigCalibration:
    """The calibration a perfect calibration procedure would find (encoder wobble and scale error aside)."""
    arm_from_camera = rig.arm_from_camera
    r_ac, t_ac = arm_from_camera[:3, :3], arm_from_camera[:3, 3]
    lasers = []
    for laser in rig.lasers:
        normal = r_ac.T @ laser.normal
        lasers.append(LaserPlane(normal, float(laser.offset_mm + laser.normal @ t_ac)))
    plate_from_arm0 = rig.plate_from_arm(0.0)  # includes the home offset
    h = np.radians(float(rig.true_angle_deg(0.0)))
    spin = np.eye(4)
    spin[:2, :2] = [[np.cos(h), -np.sin(h)], [np.sin(h), np.cos(h)]]
    plate_from_axis = plate_from_arm0 @ np.linalg.inv(spin)
    return RigCalibration(
        rig_serial=rig.serial, calibration_id=f"{rig.serial}-truth", created_at="2026-01-01T00:00:00+00:00",
        width_px=rig.width_px, height_px=rig.height_px, camera_matrix=rig.camera_matrix.copy(),
        dist_coeffs=rig.dist_coeffs.copy(), lasers=tuple(lasers), plate_from_axis=plate_from_axis,
        axis_from_camera=spin @ arm_from_camera, quality=CalibrationQuality(0.0, (0.0, 0.0), 0.0, 0),
    )
