"""The scan session: drives board, plate and camera together into one complete RawScan, or raises.

Sequence (rig display messages in capitals): connect and check every device -> home the arm -> STEP OFF, zero the
plate -> STAND, record the plate -> PLACE LEFT, sweep -> PLACE RIGHT, sweep -> STEP OFF. The plate streams for the
whole scan on its own thread and the camera frames are collected on another, so a device that drops out and
comes back is reconnected without stopping the others. Every frame is matched to its trigger by the stamp the
camera embeds in it, which gives its arm angle and laser state exactly. A sweep interrupted by a reconnect, or
with a gap of missing frames, is resumed from the last good angle on the same angle grid. Each part completed (the
plate recording, each foot) is kept in a `KeptScan`, so a session given the parts of an earlier failed attempt
scans only the rest.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from core.errors import DeviceDisconnected, DeviceError, DeviceTimeout, ScanCancelled, ScanFailed
from core.rawscan import FootFrames, PlateRecording, RawScan, ScanStats
from core.vocabulary import SIDES
from device.board_protocol import pattern_lasers
from device.plate_protocol import sequence_gap
from device.profile import ScanProfile

MAX_GAP_FRAMES = 2  # a longer run of missing frames is scanned again
MAX_ATTEMPTS_PER_FOOT = 5
# The plate streams at 100 Hz: silent this long, it is taken for gone. 1 s failed scans on a busy PC (the rig's
# agent reconstructing beside the drivers); a plate unplugged is seen at once as a disconnect, not by this.
PLATE_SILENCE_S = 2.0


@dataclass(frozen=True)
class Progress:
    phase: str  # connect, zero, stand, left, right, done
    fraction: float  # of the whole scan, 0-1
    eta_s: float
    arm_angle_deg: float | None
    message: str


@dataclass
class KeptScan:
    """The parts of a scan completed so far. The plate recording and each foot's sweep are independent of each
    other, so a retry after a device failure takes the kept parts instead of scanning them again."""

    plate: PlateRecording | None = None
    feet: dict[str, FootFrames] = field(default_factory=dict)

    def parts(self) -> tuple[str, ...]:
        """Names of the kept parts: plate, left, right."""
        return (("plate",) if self.plate is not None else ()) + tuple(s for s in SIDES if s in self.feet)


class _DeviceReader(ABC):
    """A thread that reads one device continuously and reconnects it when it drops out.

    A device that does not come back within the window leaves its error in `error` for the session to raise.
    """

    def __init__(self, name: str, reconnect_window_s: float):
        self.window_s = reconnect_window_s
        self.error: BaseException | None = None
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=self._join_timeout_s())

    def _reconnect(self) -> bool:
        try:
            self._reopen()
            self.reconnects += 1
            return True
        except DeviceError as exc:
            self.error = exc
            return False

    @abstractmethod
    def _run(self) -> None:
        """Read the device until stopped."""

    @abstractmethod
    def _reopen(self) -> None:
        """Reconnect the device after it dropped out (raises DeviceError if it does not come back)."""

    def _join_timeout_s(self) -> float:
        return 5.0


class _PlateRecorder(_DeviceReader):
    """Reads the plate continuously; keeps the frames of the stand phase."""

    def __init__(self, plate, reconnect_window_s: float):
        super().__init__("plate-recorder", reconnect_window_s)
        self.plate = plate
        self.recording = False
        self.frames: list = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.plate.read_frame(timeout_s=PLATE_SILENCE_S)
            except DeviceDisconnected:
                if not self._reconnect():
                    return
                continue
            except DeviceError as exc:
                self.error = exc
                return
            if self.recording:
                self.frames.append(frame)

    def _reopen(self) -> None:
        self.plate.reconnect(self.window_s)
        self.plate.start()


class _FrameCollector(_DeviceReader):
    """Reads camera frames continuously and keeps the triggered ones of the current sweep attempt by count.

    Once started it is the only user of the camera (OpenCV captures are not thread-safe).
    """

    def __init__(self, camera, reconnect_window_s: float):
        super().__init__("frame-collector", reconnect_window_s)
        self.camera = camera
        self._frames: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._last_frame_s = time.monotonic()

    def begin_attempt(self) -> None:
        with self._lock:
            self._frames = {}

    def frames(self) -> dict[int, np.ndarray]:
        with self._lock:
            return dict(self._frames)

    def wait_for(self, counts: set[int], quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
        """Wait until every count arrived, or no frame came for `quiet_s`, or `limit_s` passed."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self.error is None:
            with self._lock:
                if counts <= self._frames.keys():
                    return
            if time.monotonic() - self._last_frame_s > quiet_s:
                return
            time.sleep(0.01)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.camera.read()
            except (DeviceDisconnected, DeviceTimeout):
                if self._stop.is_set() or not self._reconnect():
                    return
                continue
            except DeviceError as exc:
                self.error = exc
                return
            self._last_frame_s = time.monotonic()
            if frame.stamp is not None and frame.stamp.triggered:
                red = np.ascontiguousarray(frame.image[:, :, 2])
                with self._lock:
                    self._frames[frame.stamp.counter] = red

    def _reopen(self) -> None:
        self.camera.reconnect(self.window_s)

    def _join_timeout_s(self) -> float:
        # The camera must not be closed while this thread still reads it: wait out a read and a reconnect.
        return self.window_s + 2 * self.camera.read_timeout_s + 5


def _missing_runs(have: np.ndarray) -> list[tuple[int, int]]:
    """Runs [first, last] of missing grid indices."""
    runs, start = [], None
    for k, ok in enumerate(have):
        if not ok and start is None:
            start = k
        if ok and start is not None:
            runs.append((start, k - 1))
            start = None
    if start is not None:
        runs.append((start, len(have) - 1))
    return runs


class ScanSession:
    """One scan of both feet. `run()` returns a complete RawScan or raises ScanFailed / ScanCancelled.

    `check_rig(identity)` runs right after the board's handshake and may raise to refuse the rig. `kept` holds the
    parts of an earlier attempt, which are not scanned again; each part this session completes is stored in it.
    """

    def __init__(self, board, plate, camera, profile: ScanProfile,
                 on_progress: Callable[[Progress], None] | None = None,
                 reconnect_window_s: float = 15.0, customer_settle_s: float = 0.3,
                 check_rig: Callable[[object], None] | None = None, kept: KeptScan | None = None):
        self.board, self.plate, self.camera = board, plate, camera
        self.check_rig = check_rig or (lambda identity: None)
        self.kept = KeptScan() if kept is None else kept
        self.profile = profile
        self.on_progress = on_progress or (lambda p: None)
        self.window_s = reconnect_window_s
        self.settle_s = customer_settle_s
        self.stats = ScanStats()
        self._board_reconnects = 0
        self._cancel = threading.Event()
        self._t0 = 0.0
        # Expected share of the scan per phase, from rig time, for progress and ETA.
        foot = profile.rig_seconds_per_foot
        self._phases = {"connect": 1.5, "zero": 0.5, "stand": profile.plate_seconds + 0.5, "left": foot,
                        "right": foot}
        self._total = sum(self._phases.values())

    def cancel(self) -> None:
        """Ask the scan to stop; `run()` then raises ScanCancelled (the arm is stopped, nothing is kept)."""
        self._cancel.set()

    # --- progress ---
    def _report(self, phase: str, within: float, message: str, angle: float | None = None) -> None:
        done = 0.0
        for name, weight in self._phases.items():
            if name == phase:
                done += weight * min(max(within, 0.0), 1.0)
                break
            done += weight
        fraction = 1.0 if phase == "done" else done / self._total
        elapsed = time.monotonic() - self._t0
        eta = 0.0 if fraction >= 1 else (elapsed / fraction * (1 - fraction) if fraction > 0.02 else self._total)
        self.on_progress(Progress(phase, fraction, eta, angle, message))

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            try:
                self.board.emergency_stop()
            except DeviceError:
                pass
            raise ScanCancelled("scan cancelled by the operator; nothing was kept")

    # --- the scan ---
    def run(self) -> RawScan:
        self._t0 = time.monotonic()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._report("connect", 0.0, "connecting to the scanner")
        identity = self.board.connect()
        self.check_rig(identity)  # e.g. refuse a rig without a valid calibration before the customer waits
        plate_identity = self.plate.connect()
        self.camera.open()
        self._report("connect", 0.5, "homing the arm")
        self.board.home()
        self.board.set_motion(self.profile.speed_dps, self.profile.accel_dps2)
        self.board.set_lasers(False, False)
        recorder = _PlateRecorder(self.plate, self.window_s)
        collector = _FrameCollector(self.camera, self.window_s)
        try:
            self._check_cancel()
            self.board.display("STEP OFF")
            self._report("zero", 0.0, "zeroing the plate: nobody on the plate")
            self.plate.zero(n_frames=20)
            self.plate.start()
            recorder.start()
            collector.start()
            if self.kept.plate is None:
                self.kept.plate = self._record_stand(recorder)
            for side in SIDES:
                if side not in self.kept.feet:
                    self.kept.feet[side] = self._scan_foot(side, collector, recorder)
            self.board.display("STEP OFF")
        except DeviceError as exc:
            raise ScanFailed(f"scan stopped before it was complete: {exc}") from exc
        finally:
            recorder.stop()
            collector.stop()
            for stop in (self.plate.stop, lambda: self.board.set_lasers(False, False)):
                try:
                    stop()
                except DeviceError:
                    pass
        self._collect_stats(recorder, collector)
        self._report("done", 1.0, "scan complete")
        return RawScan(
            rig_serial=identity.serial, board_firmware=f"{identity.firmware} {identity.version}",
            plate_serial=plate_identity.serial, camera_source=self.camera.source, profile=self.profile.name,
            width_px=self.profile.width_px, height_px=self.profile.height_px, started_at=started,
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            feet={side: self.kept.feet[side] for side in SIDES}, plate=self.kept.plate,
            stats=self.stats,
        )

    def _record_stand(self, recorder: _PlateRecorder) -> PlateRecording:
        self.board.display("STAND")
        time.sleep(self.settle_s)
        needed = int(self.profile.plate_seconds * 100)
        recorder.frames = []
        recorder.recording = True
        deadline = time.monotonic() + self.profile.plate_seconds * 3 + self.window_s
        while len(recorder.frames) < needed:
            self._check_cancel()
            if recorder.error is not None:
                raise recorder.error
            if time.monotonic() > deadline:
                raise DeviceTimeout("plate", f"only {len(recorder.frames)} of {needed} pressure frames arrived: "
                                             "check the plate's cable")
            self._report("stand", len(recorder.frames) / needed, "stand still on both feet")
            time.sleep(0.05)
        recorder.recording = False
        frames = recorder.frames[:needed]
        return PlateRecording(
            pressures_kpa=np.stack([f.pressures_kpa for f in frames]).astype(np.float32),
            times_s=np.array([f.time_s for f in frames]),
            sequence=np.array([f.seq for f in frames]),
            pitch_mm=self.plate.identity.pitch_mm,
            dropped_frames=sum(sequence_gap(a.seq, b.seq) for a, b in zip(frames, frames[1:])),
        )

    def _scan_foot(self, side: str, collector: _FrameCollector, recorder: _PlateRecorder) -> FootFrames:
        p = self.profile
        n = p.frames_per_foot
        images: list[np.ndarray | None] = [None] * n
        self.board.display(f"PLACE {side.upper()}")
        time.sleep(self.settle_s)
        first, last = 0, n - 1
        for attempt in range(MAX_ATTEMPTS_PER_FOOT):
            self._check_cancel()
            if attempt:
                self.stats.resumed_sweeps += 1
            self._sweep(side, first, last, images, collector)
            for error in (collector.error, recorder.error):
                if error is not None:
                    raise error
            have = np.array([im is not None for im in images])
            self._report(side, have.mean(), f"scanning the {side} foot", first * p.step_deg)
            long_gaps = [r for r in _missing_runs(have) if r[1] - r[0] + 1 > MAX_GAP_FRAMES]
            if not long_gaps:
                self.stats.camera_missing_frames += int((~have).sum())
                return self._foot_frames(side, images)
            first, last = long_gaps[0][0], long_gaps[-1][1]
        raise DeviceError("camera", f"frames of the {side} foot kept missing after {MAX_ATTEMPTS_PER_FOOT} "
                                    "sweeps: check the camera cable and its light")

    def _sweep(self, side: str, first: int, last: int, images: list, collector: _FrameCollector) -> None:
        """Sweep grid indices first..last; store each frame that arrives at its grid index."""
        p = self.profile
        pattern = p.laser_pattern[first % len(p.laser_pattern):] + p.laser_pattern[:first % len(p.laser_pattern)]
        records: dict[int, float] = {}

        def on_record(record) -> None:
            records[record.count] = record.angle_deg
            self._report(side, record.angle_deg / p.sweep_deg, f"scanning the {side} foot", record.angle_deg)
            if self._cancel.is_set():
                raise ScanCancelled("scan cancelled by the operator; nothing was kept")

        collector.begin_attempt()
        try:
            self.board.move_to(first * p.step_deg)
            result = self.board.sweep(last * p.step_deg, p.speed_dps, p.step_deg, pattern, on_record=on_record)
            records = {t.trigger_count: t.angle_deg for t in result.triggers}
        except ScanCancelled:
            self._check_cancel()
            raise
        except DeviceDisconnected:
            self.board.reconnect(self.window_s)
            self._board_reconnects += 1
            self.board.home()
            self.board.set_motion(p.speed_dps, p.accel_dps2)
        if not records:
            return
        collector.wait_for(set(records))
        # Counts without a record (lost record) still map onto the grid through any record of this sweep.
        anchor_count, anchor_angle = next(iter(records.items()))
        anchor_k = round(anchor_angle / p.step_deg)
        for count, image in collector.frames().items():
            k = anchor_k + (count - anchor_count) if count not in records else round(records[count] / p.step_deg)
            if first <= k <= last and images[k] is None:
                images[k] = image

    def _foot_frames(self, side: str, images: list) -> FootFrames:
        p = self.profile
        keep = [k for k, im in enumerate(images) if im is not None]
        return FootFrames(
            side=side,
            angles_deg=np.array([k * p.step_deg for k in keep]),
            lasers=np.array([pattern_lasers(p.laser_pattern, k) for k in keep], dtype=bool),
            images=np.stack([images[k] for k in keep]),
        )

    def _collect_stats(self, recorder: _PlateRecorder, collector: _FrameCollector) -> None:
        s = self.stats
        s.board_retries = self.board.stats.retries
        s.board_checksum_errors = self.board.stats.checksum_errors
        s.plate_crc_errors = self.plate.stats.crc_errors
        s.plate_dropped_frames = self.plate.stats.dropped_frames
        s.reconnects = {"board": self._board_reconnects, "plate": recorder.reconnects,
                        "camera": collector.reconnects}
        s.wall_seconds = round(time.monotonic() - self._t0, 2)
