"""Image capture for calibration: the arm at planned angles, one triggered frame per laser state.

Capture only drives the devices and hands back `Still`s; solving the rig from them is fitcore.scan.calibrate's
(`calibration_from_stills`), and `footfit calibrate` (cli) puts the two together. The simulator renders the same
`Still`s offline, so tests and benchmarks can skip the transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import CalibrationError, DeviceTimeout
from core.plate_marks import TargetSpec
from device.board import MotorBoard
from device.camera import Camera

TARGET = TargetSpec()
STILL_SWEEP_STEP_DEG = 1.0  # a still is a one-trigger sweep (start = end); the step only has to be valid
STILL_SWEEP_SPEED_DPS = 30.0


@dataclass(frozen=True)
class ViewPlan:
    """Arm angles (reported, deg) at which to look at the empty plate and at each target pose."""

    plate_angles_deg: tuple[float, ...]
    target_angles_deg: tuple[tuple[float, ...], ...]  # one tuple per target pose (TargetSpec.poses)

    def positions(self) -> int:
        return len(self.plate_angles_deg) + sum(len(a) for a in self.target_angles_deg)


def _around(centre_deg: float, count: int, spread_deg: float) -> tuple[float, ...]:
    return tuple(float(a) for a in np.linspace(centre_deg - spread_deg, centre_deg + spread_deg, count))


# A wedge pose k (1-4) faces the camera at about FACING_DEG[k]: the board's print looks that way.
FACING_DEG = (0.0, -90.0, 0.0, 90.0, 180.0)
DEFAULT_VIEWS = ViewPlan(
    plate_angles_deg=tuple(float(a) for a in range(0, 360, 30)),
    target_angles_deg=(tuple(float(a) for a in range(0, 360, 30)),
                       *(_around(f, 5, 40.0) for f in FACING_DEG[1:])),
)
QUICK_VIEWS = ViewPlan(  # for tests: 18 positions instead of 44, errors about 1.5 times larger
    plate_angles_deg=(0.0, 120.0, 240.0),
    target_angles_deg=((0.0, 120.0, 240.0), *(_around(f, 3, 30.0) for f in FACING_DEG[1:])),
)


@dataclass(frozen=True)
class CalibrationProgress:
    phase: str  # "connect", "plate", "target", "fit", "done"
    fraction: float  # 0..1 of the whole procedure
    message: str


@dataclass(frozen=True)
class Still:
    """One arm position: the lasers-off image and the red channel with each laser on."""

    angle_deg: float  # as the board reported it after the move
    target_index: int | None  # None: the empty plate
    dark_bgr: np.ndarray  # (H, W, 3) uint8, lasers off
    laser_red: tuple[np.ndarray, np.ndarray]  # (H, W) uint8, left laser on / right laser on

    @property
    def dark_red(self) -> np.ndarray:
        return self.dark_bgr[..., 2]


def triggered_frame(board: MotorBoard, camera: Camera, angle_deg: float, pattern: str) -> np.ndarray:
    """One frame exposed on a board trigger at the arm's current angle, lasers per `pattern` (one of O, L, R, B).

    A sweep that ends where it starts fires exactly one trigger; the camera stamps that frame with the trigger
    count, so the still can never be a stale frame from the stream's buffers, however busy the host is."""
    result = board.sweep(angle_deg, STILL_SWEEP_SPEED_DPS, STILL_SWEEP_STEP_DEG, pattern)
    count = result.triggers[0].trigger_count
    deadline = time.monotonic() + camera.read_timeout_s
    while time.monotonic() < deadline:
        frame = camera.read()
        if frame.stamp is not None and frame.stamp.triggered and frame.stamp.counter == count:
            return frame.image
    raise DeviceTimeout("camera", f"the frame of trigger {count} did not arrive within {camera.read_timeout_s} s: "
                                  "check the camera's trigger cable")


def capture_still(board: MotorBoard, camera: Camera, angle_deg: float, target_index: int | None) -> Still:
    reported = board.move_to(angle_deg)
    dark = triggered_frame(board, camera, reported, "O")
    red = tuple(triggered_frame(board, camera, reported, laser)[..., 2].copy() for laser in "LR")
    return Still(reported, target_index, dark, red)


def capture_stills(board: MotorBoard, camera: Camera, views: ViewPlan,
                   on_progress: Callable[[CalibrationProgress], None] | None = None,
                   confirm: Callable[[str], None] | None = None) -> list[Still]:
    """Every still of the plan. Each instruction goes to the rig's display, then to `confirm` (which returns once
    staff have done it; None: go on at once, as in the simulator, where the scene follows the display)."""
    if len(views.target_angles_deg) != TARGET.poses:
        raise CalibrationError(f"the view plan names {len(views.target_angles_deg)} target poses; the target has "
                               f"{TARGET.poses}")
    steps = [("STEP OFF", None, views.plate_angles_deg)]
    steps += [(f"PLACE TARGET {k}", k, angles) for k, angles in enumerate(views.target_angles_deg)]
    stills, total = [], views.positions()

    def report(phase: str, message: str) -> None:
        if on_progress is not None:
            on_progress(CalibrationProgress(phase, 0.9 * len(stills) / total, message))

    for instruction, target_index, angles in steps:
        board.display(instruction)
        report("plate" if target_index is None else "target", instruction)
        if confirm is not None:
            confirm(instruction)
        for angle in angles:
            stills.append(capture_still(board, camera, angle, target_index))
            report("plate" if target_index is None else "target", f"{instruction}: {angle:.0f} deg")
    board.display("STEP OFF")
    return stills


def capture_calibration_stills(board: MotorBoard, camera: Camera, views: ViewPlan = DEFAULT_VIEWS,
                               on_progress: Callable[[CalibrationProgress], None] | None = None,
                               confirm: Callable[[str], None] | None = None) -> list[Still]:
    """Every still of the plan from the rig behind `board` and `camera` (opened here if they are not; the camera
    must run at binning 1, the native sensor size the calibration describes). The lasers are off afterwards."""
    if camera.binning != 1:
        raise CalibrationError(f"calibrate at the native sensor size: the camera is set to binning {camera.binning}")
    if board.identity is None:
        board.connect()
    camera.open()
    if on_progress is not None:
        on_progress(CalibrationProgress("connect", 0.0, f"rig {board.identity.serial}"))
    board.home()
    try:
        return capture_stills(board, camera, views, on_progress, confirm)
    finally:
        board.set_lasers(False, False)
