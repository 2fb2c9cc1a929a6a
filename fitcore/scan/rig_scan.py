"""One customer's scan on one rig, as the rig agent in the store runs it (cli/agent.py): attempts on the rig's
drivers, the rig's stored calibration checked right after the board's handshake (an uncalibrated rig is refused
before the customer waits), then reconstruction and measurement (fitcore.scan.pipeline), the code path of
`footfit scan`.

An attempt that fails on a device keeps what was complete (the plate recording, each finished foot: KeptScan) and
the rig's connection, so a retry scans only the rest on the same rig (for a simulated rig: the same simulator, the
customer still standing on it). Cancelling stops the arm. Frames of the customer's feet stay in this process; what
leaves it is the progress, a small grey preview of the camera (`preview_jpeg`) and the finished passport.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from core.errors import ScanCancelled, WrongDevice
from core.settings import Settings
from device.profile import get_profile
from device.rig import RigConnection, RigProvider, open_scanner
from device.session import KeptScan, Progress, ScanSession
from fitcore.scan.calibration import load_calibration
from fitcore.scan.pipeline import ScanResult, passport_from_scan

PREVIEW_WIDTH_PX = 320  # the camera preview's width (grey JPEG)
PREVIEW_JPEG_QUALITY = 70


def preview_jpeg(image: np.ndarray) -> bytes:
    """A camera frame (BGR or grey) as a small grey JPEG."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height = max(1, round(grey.shape[0] * PREVIEW_WIDTH_PX / grey.shape[1]))
    small = cv2.resize(grey, (PREVIEW_WIDTH_PX, height), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])[1].tobytes()


class _WatchedCamera:
    """The rig's camera as the scan session uses it, showing every frame it reads to `on_frame`."""

    def __init__(self, camera, on_frame: Callable[[np.ndarray], None]):
        self._camera, self._on_frame = camera, on_frame

    def read(self):
        frame = self._camera.read()
        self._on_frame(frame.image)
        return frame

    def __getattr__(self, name: str):
        return getattr(self._camera, name)


class RigScan:
    """A scan of one customer on one rig, attempt after attempt, until `close` releases the rig."""

    def __init__(self, rigs: RigProvider, rig_serial: str, customer: str, settings: Settings,
                 on_progress: Callable[[Progress], None], on_frame: Callable[[np.ndarray], None]):
        self.rigs, self.rig_serial, self.customer, self.settings = rigs, rig_serial, customer, settings
        self.on_progress, self.on_frame = on_progress, on_frame
        self.profile = get_profile(settings.scan_profile)
        self.kept = KeptScan()
        self._rig: RigConnection | None = None
        self._session: ScanSession | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def attempt(self) -> ScanResult:
        """Scan what is not kept yet and measure both feet. Raises ScanCancelled, ScanFailed or DeviceError (what
        was complete stays kept for the next attempt) or another FootfitError (nothing worth keeping)."""
        raw, calibration = self._scan()
        if self._cancelled.is_set():
            raise ScanCancelled("scan cancelled by the operator; nothing was kept")
        return passport_from_scan(raw, calibration)

    def forget_kept(self) -> None:
        """Nothing of this scan is worth a retry (a failure that is not a device's)."""
        self.kept = KeptScan()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled.set()
            session = self._session
        if session is not None:
            session.cancel()

    def close(self) -> None:
        """Release the rig and drop what was kept (frames of the customer's feet)."""
        self.kept = KeptScan()
        with self._lock:
            rig, self._rig = self._rig, None
        if rig is not None:
            rig.close()

    def _scan(self):
        if self._rig is None:
            self._rig = self.rigs.connect(self.rig_serial, customer=self.customer)
        devices = self._rig.devices
        calibration = {}

        def check_rig(identity) -> None:
            if identity.serial != self.rig_serial:
                raise WrongDevice("board", f"the board at {devices.board_url} is rig {identity.serial}, not "
                                           f"{self.rig_serial}: check the agent's device settings")
            calibration["rig"] = load_calibration(self.settings.data_dir, identity.serial)

        with open_scanner(devices, self.profile) as scanner:
            session = ScanSession(scanner.board, scanner.plate, _WatchedCamera(scanner.camera, self.on_frame),
                                  self.profile, on_progress=self.on_progress,
                                  reconnect_window_s=devices.reconnect_window_s, check_rig=check_rig, kept=self.kept)
            with self._lock:
                self._session = session
                if self._cancelled.is_set():
                    session.cancel()
            try:
                raw = session.run()
            finally:
                with self._lock:
                    self._session = None
        return raw, calibration["rig"]
