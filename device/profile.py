"""Scan profiles: how fast the arm turns, how often the camera is triggered, at which resolution.

The store profile keeps one revolution under 5 s of rig time per foot; the light profile is for tests and
development, where the simulator renders every frame.

Why the store profile triggers every 0.75 deg (480 frames per foot, 107 fps; the arm's speed and so the rig time
are those of the former 1.5 deg profile): the two lasers alternate, so their profiles cross the toes' front ~1.6 mm
apart at 120 mm from the axis (3.1 mm at 1.5 deg). A toe's tip, a cap a few mm round, falls between two profiles
and is read short by up to ~1 mm at 1.5 deg: rescans of one foot varied by SD 0.12-0.25 mm in length (the EU size
and the instep section, at 50% of the length, with it) and 0.52 mm in heel width, against 0.04-0.05 and 0.04-0.11
mm at 0.75 deg. Binning 2x2 at 0.75 deg put the instep girth's SD at 0.6 mm. Figures: docs/reconstruction.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError
from device.camera import Binned


@dataclass(frozen=True)
class ScanProfile(Binned):
    name: str
    binning: int  # 1: 1280x960, 2: 640x480 (same field of view)
    step_deg: float  # arm angle between camera triggers
    speed_dps: float  # arm speed during the sweep, degrees per second
    accel_dps2: float
    laser_pattern: str  # laser per trigger, cycled: L left, R right, B both, O off
    plate_seconds: float  # pressure recording while the customer stands on both feet
    sweep_deg: float = 360.0

    @property
    def frames_per_foot(self) -> int:
        return int(round(self.sweep_deg / self.step_deg))

    @property
    def frame_rate_hz(self) -> float:
        return self.speed_dps / self.step_deg

    @property
    def rig_seconds_per_foot(self) -> float:
        """One revolution at constant speed plus the acceleration and braking ramps."""
        return self.sweep_deg / self.speed_dps + self.speed_dps / self.accel_dps2

    def describe(self) -> str:
        return (
            f"{self.name}: {self.frames_per_foot} frames/foot at {self.width_px}x{self.height_px}, "
            f"{self.step_deg:g} deg apart, lasers {self.laser_pattern}, {self.frame_rate_hz:.1f} fps, "
            f"{self.rig_seconds_per_foot:.2f} s rig time per foot, plate {self.plate_seconds:g} s"
        )


PROFILES = {
    "store": ScanProfile("store", binning=1, step_deg=0.75, speed_dps=80.0, accel_dps2=800.0,
                         laser_pattern="LR", plate_seconds=2.0),
    "light": ScanProfile("light", binning=2, step_deg=3.0, speed_dps=120.0, accel_dps2=1200.0,
                         laser_pattern="LR", plate_seconds=1.0),
}


def get_profile(name: str) -> ScanProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown scan profile '{name}': choose one of {', '.join(PROFILES)}") from None
