"""From a raw scan to a foot passport: reconstruct each foot, measure it, read the plate.

The one path every scan takes, from the command line and (later) the service: device -> fitcore -> passport.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.mesh import write_points
from core.rawscan import RawScan
from core.vocabulary import SIDES
from fitcore.scan.calibration import RigCalibration
from fitcore.scan.measure import FootMeasurements, measure_points
from fitcore.scan.passport import Passport, QualityModel, build_passport
from fitcore.scan.pressure import PressureMap, plate_metrics, pressure_map
from fitcore.scan.reconstruct import FootCloud, reconstruct_foot


@dataclass
class ScanResult:
    passport: Passport
    clouds: dict[str, FootCloud]  # plate frame
    measurements: dict[str, FootMeasurements]
    stage_seconds: dict[str, float]
    pressure_map: PressureMap  # the plate recording's picture (plate frame), kept with the passport by the service

    def points_in_foot_frame(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """The foot's points and normals in its own foot frame (docs/frames.md)."""
        t = self.measurements[side].foot_from_plate
        cloud = self.clouds[side]
        return cloud.points_mm @ t[:3, :3].T + t[:3, 3], cloud.normals @ t[:3, :3].T

    def write(self, out_dir: Path) -> None:
        """passport.json, left.ply and right.ply (points in the foot frame, mm) under out_dir."""
        out_dir = Path(out_dir)
        for side in SIDES:
            write_points(out_dir / f"{side}.ply", *self.points_in_foot_frame(side))
        self.passport.save(out_dir / "passport.json")


def _quality(cloud: FootCloud) -> QualityModel:
    q = cloud.quality
    return QualityModel(points=q.points, accepted=not q.reasons, reasons=list(q.reasons), noise_mm=q.noise_mm,
                        laser_mismatch_mm=q.laser_mismatch_mm, sweep_closure_mm=q.sweep_closure_mm,
                        azimuth_gap_deg=q.azimuth_gap_deg,
                        plate_rms_mm=q.plate_rms_mm, frames_with_line=q.frames_with_line, frames=q.frames)


def passport_from_scan(raw: RawScan, cal: RigCalibration) -> ScanResult:
    """Reconstruct and measure both feet and the plate; raises ScanQualityError for a scan below quality."""
    seconds: dict[str, float] = {}
    clouds, measured = {}, {}
    for side in SIDES:
        started = time.perf_counter()
        clouds[side] = reconstruct_foot(raw.feet[side], cal)
        seconds[f"reconstruct {side}"] = time.perf_counter() - started
        started = time.perf_counter()
        measured[side] = measure_points(clouds[side].points_mm, side)
        seconds[f"measure {side}"] = time.perf_counter() - started
    started = time.perf_counter()
    plate = plate_metrics(raw.plate.pressures_kpa, raw.plate.pitch_mm)
    picture = pressure_map(raw.plate.pressures_kpa, raw.plate.pitch_mm, plate)
    seconds["plate"] = time.perf_counter() - started
    passport = build_passport(
        measured["left"], measured["right"], plate, rig_serial=raw.rig_serial,
        calibration_id=cal.calibration_id, scanned_at=datetime.fromisoformat(raw.started_at),
        finished_at=datetime.fromisoformat(raw.finished_at), measured_at=datetime.now(timezone.utc),
        quality={side: _quality(clouds[side]) for side in SIDES},
    )
    return ScanResult(passport, clouds, measured, seconds, picture)
