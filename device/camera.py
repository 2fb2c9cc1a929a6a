"""The camera driver: frames from the rig's camera through OpenCV, each with its embedded frame stamp.

The source is a device index ("0"), a V4L2 path ("/dev/video0") or an http(s) MJPEG URL (the simulator, IP
cameras). The rig's camera stamps every frame (core/frame_stamp.py); a source whose frames carry no stamp is
not the rig's camera and is refused. See docs/protocol-camera.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import cv2
import numpy as np

from core.errors import DeviceDisconnected, DeviceNotFound, DeviceTimeout, WrongDevice
from core.frame_stamp import FrameStamp, decode

DEVICE = "camera"
SENSOR_WIDTH_PX = 1280
SENSOR_HEIGHT_PX = 960


def binned_size(binning: int) -> tuple[int, int]:
    """Image (width, height) in pixels when the sensor bins `binning` x `binning` pixels into one."""
    return SENSOR_WIDTH_PX // binning, SENSOR_HEIGHT_PX // binning


class Binned:
    """Image size in pixels of whatever reads the sensor at `binning` (the camera driver, a scan profile)."""

    binning: int

    @property
    def width_px(self) -> int:
        return binned_size(self.binning)[0]

    @property
    def height_px(self) -> int:
        return binned_size(self.binning)[1]
STAMP_CHECK_FRAMES = 3  # frames looked at on open before a source without stamps is refused
RECONNECT_POLL_S = 0.2


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, uint8
    stamp: FrameStamp | None  # None when the stamp could not be read (a damaged frame)
    received_s: float  # host time.monotonic() when the frame was read


@dataclass
class CameraStats:
    frames: int = 0
    missing_stamps: int = 0
    reconnects: int = 0
    lost_triggered: int = 0  # gaps in the trigger counter between consecutive triggered frames


def _with_binning(url: str, binning: int) -> str:
    parts = urlparse(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "binning"] + [("binning", str(binning))]
    return urlunparse(parts._replace(query=urlencode(query)))


class Camera(Binned):
    """`open()` (or use as a context manager), then `read()` frames; `flush()` after laser or arm changes."""

    def __init__(self, source: str, read_timeout_s: float = 5.0, binning: int = 1, exposure: float | None = None):
        if binning not in (1, 2):
            raise ValueError(f"camera binning {binning}: use 1 (1280x960) or 2 (640x480)")
        self.source = str(source)
        self.read_timeout_s = read_timeout_s
        self.binning = binning
        self.exposure = exposure  # V4L2 exposure value (backend units); None leaves the camera's own setting
        self.stats = CameraStats()
        self._capture: cv2.VideoCapture | None = None
        self._pending: list[Frame] = []  # frames read while checking the stamp, handed out first
        self._last_trigger_count: int | None = None

    # --- opening ---
    def _where(self) -> str:
        if self.source.isdigit():
            return f"camera index {self.source}: check the USB cable and that the rig is powered"
        if self.source.startswith(("http://", "https://")):
            return f"{self.source}: check the URL and that the camera (or simulator) is running"
        return f"{self.source}: check the USB cable and that the rig is powered"

    def _open_capture(self, timeout_s: float) -> cv2.VideoCapture:
        timeout_ms = int(max(timeout_s, 0.1) * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                  int(self.read_timeout_s * 1000)]
        if self.source.startswith(("http://", "https://")):
            # One decoding thread: frame threading would hold each frame back until the next one arrives.
            params += [cv2.CAP_PROP_N_THREADS, 1]
            capture = cv2.VideoCapture(_with_binning(self.source, self.binning), cv2.CAP_FFMPEG, params)
        else:
            index_or_path = int(self.source) if self.source.isdigit() else self.source
            capture = cv2.VideoCapture(index_or_path, cv2.CAP_V4L2, params)
            if capture.isOpened():
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width_px)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height_px)
                if self.exposure is not None:
                    capture.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual
                    capture.set(cv2.CAP_PROP_EXPOSURE, self.exposure)
        if not capture.isOpened():
            capture.release()
            raise DeviceNotFound(DEVICE, f"nothing answers at {self._where()}")
        return capture

    def open(self, timeout_s: float | None = None) -> None:
        """Connect and check that the frames carry the rig camera's stamp."""
        self.close()
        self._capture = self._open_capture(self.read_timeout_s if timeout_s is None else timeout_s)
        for _ in range(STAMP_CHECK_FRAMES):
            frame = self._grab_frame()
            self._pending.append(frame)
            if frame.stamp is not None:
                return
        self.close()
        raise WrongDevice(DEVICE, f"{self.source} sends frames without the rig camera's frame stamp: it is not the "
                                  "scanner's camera; check camera_url in the settings")

    def reconnect(self, window_s: float) -> None:
        """Reopen the camera, trying until it answers or `window_s` seconds have passed."""
        self.close()
        deadline = time.monotonic() + window_s
        while True:
            left = deadline - time.monotonic()
            try:
                self.open(timeout_s=min(max(left, 0.1), self.read_timeout_s))
                self.stats.reconnects += 1
                return
            except (DeviceNotFound, DeviceDisconnected, DeviceTimeout) as exc:
                if time.monotonic() + RECONNECT_POLL_S >= deadline:
                    raise DeviceDisconnected(DEVICE, f"did not come back within {window_s:g} s ({exc}); "
                                                     f"check {self._where().split(': ', 1)[1]}") from None
            time.sleep(RECONNECT_POLL_S)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._pending.clear()

    def __enter__(self) -> "Camera":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- frames ---
    def _require_open(self) -> cv2.VideoCapture:
        if self._capture is None:
            raise DeviceDisconnected(DEVICE, f"not connected to {self.source}: call open() or reconnect()")
        return self._capture

    def _fail(self, started_s: float) -> None:
        """A read failed: a timeout if it waited the full timeout, else the stream broke off."""
        waited_s = time.monotonic() - started_s
        self.close()
        if waited_s >= self.read_timeout_s * 0.9:
            raise DeviceTimeout(DEVICE, f"no frame from {self.source} for {waited_s:.1f} s: check the cable and "
                                        "that the camera is powered")
        raise DeviceDisconnected(DEVICE, f"the stream from {self.source} broke off: check the cable (or that the "
                                         "simulator still runs), then reconnect")

    def _grab_frame(self) -> Frame:
        capture = self._require_open()
        started_s = time.monotonic()
        ok, image = capture.read()
        if not ok or image is None:
            self._fail(started_s)
        return Frame(image, decode(image), time.monotonic())

    def read(self) -> Frame:
        """The next frame, in the order the camera sent them."""
        frame = self._pending.pop(0) if self._pending else self._grab_frame()
        self._count(frame)
        return frame

    def _count(self, frame: Frame) -> None:
        self.stats.frames += 1
        if frame.stamp is None:
            self.stats.missing_stamps += 1
        elif frame.stamp.triggered:
            if self._last_trigger_count is not None and frame.stamp.counter > self._last_trigger_count:
                self.stats.lost_triggered += frame.stamp.counter - self._last_trigger_count - 1
            self._last_trigger_count = frame.stamp.counter

    def flush(self, n: int = 3) -> None:
        """Discard `n` frames: those exposed before a laser or arm change (the camera's pipeline latency)."""
        self._pending.clear()
        capture = self._require_open()
        for _ in range(n):
            started_s = time.monotonic()
            if not capture.grab():
                self._fail(started_s)
