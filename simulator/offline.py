"""The camera's frames rendered in-process, exactly as the driver decodes them (same renderer, noise, stamp and
JPEG as the simulated camera server; only the HTTP transport and the serial ports are skipped). For benchmarks
and simulated customers that need many scans: calibration stills and a foot's sweep on the angle grid of a profile."""

from __future__ import annotations

import cv2
import numpy as np

from core.frame_stamp import FrameStamp
from core.rawscan import FootFrames
from device.board_protocol import pattern_lasers
from device.capture import DEFAULT_VIEWS, Still
from device.profile import ScanProfile
from simulator.camera import VirtualCamera
from simulator.scene import Scene, SceneState


def _frame(camera: VirtualCamera, state: SceneState) -> np.ndarray:
    """What the driver gets: rendered, stamped, JPEG-encoded by the camera, decoded by OpenCV."""
    encoded = camera.capture(state, FrameStamp(True, state.version))
    return cv2.imdecode(np.frombuffer(encoded.jpeg, np.uint8), cv2.IMREAD_COLOR)


def render_stills(scene: Scene, camera: VirtualCamera) -> list[Still]:
    camera.binning = 1
    stills = []
    steps = [("off", None, DEFAULT_VIEWS.plate_angles_deg)]
    steps += [("target", k, a) for k, a in enumerate(DEFAULT_VIEWS.target_angles_deg)]
    for placement, target, angles in steps:
        for angle in angles:
            def shot(lasers):
                return _frame(camera, SceneState(placement, angle, lasers, target or 0, 0))
            red = (shot((True, False))[..., 2].copy(), shot((False, True))[..., 2].copy())
            stills.append(Still(angle, target, shot((False, False)), red))
    return stills


def render_sweep(scene: Scene, camera: VirtualCamera, profile: ScanProfile, side: str) -> FootFrames:
    camera.binning = profile.binning
    n, pattern = profile.frames_per_foot, profile.laser_pattern
    angles = np.arange(n) * profile.step_deg
    lasers = np.array([pattern_lasers(pattern, k) for k in range(n)], dtype=bool)
    images = np.stack([_frame(camera, SceneState(side, float(a), tuple(l), 0, k))[..., 2]
                       for k, (a, l) in enumerate(zip(angles, lasers))])
    return FootFrames(side, angles, lasers, images)
