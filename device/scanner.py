"""The physical scanner as one object: the three drivers opened from the device settings."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from device.board import MotorBoard
from device.camera import Camera
from device.plate import PressurePlate
from device.profile import ScanProfile
from fitcore.settings import DeviceSettings


@dataclass
class Scanner:
    board: MotorBoard
    plate: PressurePlate
    camera: Camera

    def close(self) -> None:
        for device in (self.camera, self.plate, self.board):
            device.close()


@contextmanager
def open_scanner(settings: DeviceSettings, profile: ScanProfile) -> Iterator[Scanner]:
    """Drivers for the configured ports; nothing is opened until the session connects them."""
    scanner = Scanner(
        board=MotorBoard.from_settings(settings),
        plate=PressurePlate.from_settings(settings),
        camera=Camera(settings.camera_url, read_timeout_s=settings.camera_read_timeout_s, binning=profile.binning),
    )
    try:
        yield scanner
    finally:
        scanner.close()
