"""A rig as the product reaches it: where its devices are (`RigConnection`), who provides them (`RigProvider`),
and the three drivers opened from the device settings (`open_scanner`).

The service and the command line are given a provider and never ask whether it is hardware: the hardware
provider hands out the ports of the `device` settings; the simulator's provider (simulator.process) starts a
simulated rig on real pseudo-terminals and an HTTP camera and hands out those. Either way the drivers, the scan
session and everything after them run the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from core.settings import DeviceSettings
from device.board import MotorBoard
from device.camera import Camera
from device.plate import PressurePlate
from device.profile import ScanProfile


class RigConnection:
    """A rig the drivers can reach: its ports and camera URL in `devices`. `close` releases it (for a simulated
    rig: stops its process); the hardware stays where it is."""

    def __init__(self, devices: DeviceSettings):
        self.devices = devices

    def close(self) -> None:
        """Release the rig; safe to call twice."""


class RigProvider(ABC):
    """Gives the product a rig to scan on."""

    @abstractmethod
    def connect(self, rig_serial: str, customer: str | None = None) -> RigConnection:
        """The rig `rig_serial`. `customer` names who stands on it: the hardware ignores it, a simulated rig
        derives its subject from it, so a rescan of the same customer sees the same feet."""


class HardwareRigProvider(RigProvider):
    """The rig wired to this machine: the ports of the `device` settings. The board's serial is checked against
    the expected rig by the scan session's `check_rig`."""

    def __init__(self, devices: DeviceSettings):
        self.devices = devices

    def connect(self, rig_serial: str, customer: str | None = None) -> RigConnection:
        return RigConnection(self.devices)


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
