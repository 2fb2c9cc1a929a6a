"""The virtual pressure plate: speaks docs/protocol-plate.md and streams the pressure under the scene's feet.

Pressure synthesis, once per placement, in a background thread started with the plate (the stream never waits
for it: until a placement's footprint is ready the plate keeps showing the previous one, as while a customer is
still stepping on): rays cast up from under the plate find each
foot's sole on a 1 mm grid. The sole then sinks into its soft tissue until the tissue carries the foot's share of
body weight * g: pressure = stiffness * compression ** 2, with a plantar stiffness profile along the foot (thick,
stiff pads under the heel and the metatarsal heads, little under the arch and the toes). So contact spreads over
the sole within a few mm (flat, loaded soles) to ~15 mm (an unloaded template foot) of its lowest point, heavier
customers leave larger prints, and standing peaks come out at ~100-200 kPa. Per frame only the cheap parts run:
postural sway (the load tilts between heel and forefoot and between the feet at 0.2-1 Hz, moving the centre of
pressure a few mm), sensor noise, ADC quantisation and saturation.

Load split: standing, each foot carries half the weight plus a subject-specific bias (SD 3 %). On the scan
station the customer leans on the foot on the side pad: the scanned foot carries SCANNED_FOOT_SHARE.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import open3d as o3d

from core.mesh import Mesh
from device import plate_protocol as proto
from device.plate import PLATE_ADC_BITS, PLATE_COLS, PLATE_MODEL, PLATE_PITCH_MM, sensel_centres_mm
from device.plate_protocol import PlateCalibration, PlateIdentity
from simulator.ports import VirtualDevice
from simulator.scene import Scene

FIRMWARE = "1.0.0"
GRAVITY_M_S2 = 9.80665
NOMINAL_GAIN_KPA_PER_COUNT = 0.25  # full scale ~1000 kPa, like commercial plates (up to ~1200 kPa)
GAIN_TOLERANCE = 0.03  # per-plate gain spread, found by the factory calibration the plate reports
NOMINAL_OFFSET_COUNTS = 120
OFFSET_SPREAD_COUNTS = 6.0  # per-sensel offset spread: what zeroing removes
NOISE_SD_COUNTS = 1.5
TISSUE_STIFFNESS_KPA_PER_MM2 = 1.0  # plantar tissue: pressure = stiffness * compression_mm ** 2
MAX_SINK_MM = 40.0  # bisection bracket for the sink depth
SUBSAMPLES = 5  # rays per sensel side (1 mm grid)
# Relative plantar stiffness along the foot outline, 0 = heel end, 1 = toe tip.
STIFFNESS_AT = (0.0, 0.25, 0.36, 0.55, 0.63, 0.8, 0.86, 1.0)
STIFFNESS = (1.6, 1.6, 0.35, 0.35, 1.3, 1.3, 0.6, 0.6)
STANCE_BIAS_SD = 0.03
STANCE_BIAS_LIMIT = 0.08
SCANNED_FOOT_SHARE = 0.4
SWAY_AP_MM = 3.0  # amplitude of the centre of pressure's heel-toe sway within each foot
SWAY_SHARE = 0.01  # amplitude of the left/right load sway (1 % of the weight ~ 2 mm of side sway in stance)
SWAY_HZ = (0.2, 1.0)
FIFO_FRAMES = 50  # samples the plate holds while the line (here: a starved thread) lags; older ones are lost
HISTORY_FRAMES = 512


@dataclass(frozen=True)
class FootLoad:
    """How one foot's force spreads over the sensels it presses."""

    sensels: np.ndarray  # flat sensel indices (row * cols + col)
    weights: np.ndarray  # share of the foot's force on each sensel, sums to 1
    along_mm: np.ndarray  # each sensel's distance along the foot axis from the foot's centre of pressure


def _foot_axis(points_mm: np.ndarray) -> np.ndarray:
    """Unit vector along the footprint's long axis, pointing toes-ward (+x: customers face +x on this plate)."""
    centred = points_mm - points_mm.mean(axis=0)
    axis = np.linalg.eigh(centred.T @ centred)[1][:, -1]
    return axis if axis[0] >= 0 else -axis


def _sink_depth_mm(gap_mm: np.ndarray, stiffness: np.ndarray, force_n: float, cell_mm2: float) -> float:
    """How far the sole sinks into its soft tissue (mm) until the compression carries `force_n` (bisection)."""
    low, high = 0.0, MAX_SINK_MM
    for _ in range(40):
        depth = (low + high) / 2
        carried_n = float(stiffness @ np.clip(depth - gap_mm, 0.0, None) ** 2) * cell_mm2 / 1000  # kPa mm2 = mN
        low, high = (depth, high) if carried_n < force_n else (low, depth)
    return high


def _seeded(text: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


class VirtualPlate(VirtualDevice):
    """A pressure plate under the scene; stream thread at `rate_hz` while started."""

    name = "plate"
    model = PLATE_MODEL

    def __init__(self, scene: Scene, serial: str, seed: int, drop_rate: float = 0.0, rows: int = 80,
                 cols: int = PLATE_COLS, rate_hz: float = 100.0):
        super().__init__()
        self.scene = scene
        self.drop_rate = drop_rate
        self.identity = PlateIdentity(self.model, serial, FIRMWARE, rows, cols, PLATE_PITCH_MM, rate_hz)
        factory = _seeded(f"plate {serial}")
        self.calibration = PlateCalibration(
            NOMINAL_GAIN_KPA_PER_COUNT * (1 + factory.normal(0, GAIN_TOLERANCE)), NOMINAL_OFFSET_COUNTS,
            (1 << PLATE_ADC_BITS) - 1,
        )
        self._offsets = (NOMINAL_OFFSET_COUNTS + factory.normal(0, OFFSET_SPREAD_COUNTS, (rows, cols))).astype(
            np.float32
        )
        self._x_mm, self._y_mm = sensel_centres_mm(rows, cols, PLATE_PITCH_MM)
        subject = np.random.default_rng(scene.seed + 104729)
        self._stance_bias = float(np.clip(subject.normal(0, STANCE_BIAS_SD), -STANCE_BIAS_LIMIT, STANCE_BIAS_LIMIT))
        self._sway_hz = subject.uniform(*SWAY_HZ, size=(2, 2))  # (heel-toe, left-right) x two components
        self._sway_phase = subject.uniform(0, 2 * np.pi, size=(2, 2))
        self._noise = np.random.default_rng(seed)
        self._drops = np.random.default_rng(seed + 1)
        self._loads: dict[str, dict[str, FootLoad]] = {"target": {}, "off": {}}  # nobody on the plate
        self._shown = "off"  # the placement whose footprint the stream shows
        self._lock = threading.Lock()
        self._parser = proto.FrameParser()
        self._stop_stream = threading.Event()
        self._stop_stream.set()
        self._seq = 0
        self._clock_zero = time.monotonic()
        self.sent: deque[tuple[int, np.ndarray]] = deque(maxlen=HISTORY_FRAMES)  # truth for tests: (seq, counts)
        self.dropped: deque[int] = deque(maxlen=16 * HISTORY_FRAMES)  # sequence numbers not sent
        self._footprints = threading.Thread(target=self._prepare_footprints, daemon=True,
                                            name=f"plate-{serial}-footprints")
        self._footprints.start()

    def close(self) -> None:
        """Stop streaming and let the footprint thread finish (a thread left inside open3d at interpreter exit
        can spoil the process's exit status)."""
        self._stop_stream.set()
        self._footprints.join(timeout=30)

    # --- the wire ---
    def receive(self, data: bytes) -> None:
        with self._lock:
            self._parser.feed(data)
            while (frame := self._parser.next_frame()) is not None:
                self._answer(frame)

    def power_cycle(self) -> None:
        """Power lost: the stream stops, the frame counter and the clock start again from zero."""
        with self._lock:
            self._stop_stream.set()
            self._seq = 0
            self._clock_zero = time.monotonic()
            self._parser.clear()
            super().power_cycle()

    def _answer(self, command: proto.Frame) -> None:
        if command.type not in proto.COMMANDS:
            self._reply(command, proto.MSG_NAK, bytes([command.type, proto.NAK_UNKNOWN_COMMAND]))
        elif command.payload:
            self._reply(command, proto.MSG_NAK, bytes([command.type, proto.NAK_BAD_PAYLOAD]))
        elif command.type == proto.CMD_IDENTITY:
            self._reply(command, proto.MSG_IDENTITY, proto.encode_identity(self.identity))
        elif command.type == proto.CMD_CALIBRATION:
            self._reply(command, proto.MSG_CALIBRATION, proto.encode_calibration(self.calibration))
        else:
            if command.type == proto.CMD_START and self._stop_stream.is_set():
                self._stop_stream = threading.Event()
                threading.Thread(target=self._stream, args=(self._stop_stream,), daemon=True,
                                 name=f"plate-{self.identity.serial}").start()
            elif command.type == proto.CMD_STOP:
                self._stop_stream.set()
            self._reply(command, proto.MSG_ACK, bytes([command.type]))

    def _reply(self, command: proto.Frame, type_: int, payload: bytes) -> None:
        self.emit(proto.encode(type_, command.seq, self._clock_us(), payload))

    def _clock_us(self) -> int:
        return int((time.monotonic() - self._clock_zero) * 1e6)

    # --- the stream ---
    def _stream(self, stop: threading.Event) -> None:
        """Sample on the plate's clock. Frames carry their sampling time, as firmware stamps them; when this thread
        is starved they go out late in a burst, and samples more than FIFO_FRAMES behind are lost (numbered)."""
        period_s = 1.0 / self.identity.rate_hz
        due = time.monotonic()
        while not stop.wait(max(0.0, due - time.monotonic())):
            overflowed = time.monotonic() - due > FIFO_FRAMES * period_s
            self._send_frame(stop, due, lost=overflowed)
            due += period_s

    def _send_frame(self, stop: threading.Event, sampled_at: float, lost: bool) -> None:
        with self._lock:
            if stop.is_set():  # stopped or power-cycled while this frame was due
                return
            seq, self._seq = self._seq, (self._seq + 1) % proto.SEQ_MODULUS
            if lost or self._drops.random() < self.drop_rate:
                self.dropped.append(seq)
                return
            time_us = int((sampled_at - self._clock_zero) * 1e6)
            counts = self.counts(time_us / 1e6)
            self.sent.append((seq, counts))
            self.emit(proto.encode(proto.MSG_MATRIX, seq, time_us, proto.encode_matrix(counts)))

    def sent_counts(self, seq: int) -> np.ndarray | None:
        """The counts most recently sent with this sequence number (simulator truth), if still remembered."""
        return next((counts for s, counts in reversed(self.sent) if s == seq), None)

    # --- pressure synthesis ---
    def counts(self, time_s: float) -> np.ndarray:
        """One matrix of ADC counts for what stands on the plate now."""
        rows, cols = self.identity.rows, self.identity.cols
        signal = self._offsets + self._noise.standard_normal((rows, cols), dtype=np.float32) * NOISE_SD_COUNTS
        placement = self.scene.snapshot().placement
        if placement in self._loads:
            self._shown = placement
        ap_sway, share_sway = self._sway(time_s)
        for side, share in self._shares(self._shown).items():
            load = self._loads[self._shown][side]
            share += share_sway if side == "left" else -share_sway
            pressure_kpa = self._pressure_kpa(load, self.scene.body_weight_kg * GRAVITY_M_S2 * share, ap_sway)
            signal.flat[load.sensels] += pressure_kpa / self.calibration.gain_kpa_per_count
        return np.clip(np.rint(signal), 0, self.calibration.adc_max_count).astype(np.uint16)

    def _sway(self, time_s: float) -> tuple[float, float]:
        """(heel-toe shift of each foot's centre of pressure in mm, load share moved onto the left foot)."""
        waves = np.sin(2 * np.pi * self._sway_hz * time_s + self._sway_phase).sum(axis=1) / 2
        return float(waves[0] * SWAY_AP_MM), float(waves[1] * SWAY_SHARE)

    def _shares(self, placement: str) -> dict[str, float]:
        if placement == "stand":
            return {"left": 0.5 + self._stance_bias, "right": 0.5 - self._stance_bias}
        if placement in ("left", "right"):
            other = "right" if placement == "left" else "left"
            return {placement: SCANNED_FOOT_SHARE, other: 1.0 - SCANNED_FOOT_SHARE}
        return {}

    def _pressure_kpa(self, load: FootLoad, force_n: float, ap_shift_mm: float) -> np.ndarray:
        """The foot's pressure on its sensels, tilted so its centre of pressure moves `ap_shift_mm` toward the toes."""
        variance = float(load.weights @ load.along_mm**2)
        tilt = np.clip(ap_shift_mm / variance * load.along_mm, -0.5, 0.5) if variance > 0 else 0.0
        weights = load.weights * (1.0 + tilt)
        sensel_area_m2 = (PLATE_PITCH_MM / 1000) ** 2
        return weights / weights.sum() * force_n / sensel_area_m2 / 1000

    def _prepare_footprints(self) -> None:
        weight_n = self.scene.body_weight_kg * GRAVITY_M_S2
        for placement in ("stand", "left", "right"):
            feet = self.scene.feet_on_plate(placement)
            shares = self._shares(placement)
            self._loads[placement] = {s: self._foot_load(feet[s], weight_n * shares[s]) for s in feet}

    def _foot_load(self, foot: Mesh, force_n: float) -> FootLoad:
        """Where and how strongly one foot (plate frame) presses: cast rays up through a 1 mm grid under it, then
        let the sole sink into its soft tissue until the compressed tissue carries `force_n`."""
        rows, cols, pitch = self.identity.rows, self.identity.cols, PLATE_PITCH_MM
        lo, hi = foot.vertices_mm[:, :2].min(axis=0), foot.vertices_mm[:, :2].max(axis=0)
        step = pitch / SUBSAMPLES
        xs = np.arange(np.floor(lo[0] / step), np.ceil(hi[0] / step)) * step + step / 2
        ys = np.arange(np.floor(lo[1] / step), np.ceil(hi[1] / step)) * step + step / 2
        row = np.floor(xs / pitch + rows / 2).astype(int)
        col = np.floor(ys / pitch + cols / 2).astype(int)
        xs, row = xs[(row >= 0) & (row < rows)], row[(row >= 0) & (row < rows)]  # beyond the plate: not measured
        ys, col = ys[(col >= 0) & (col < cols)], col[(col >= 0) & (col < cols)]
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        sole_mm = self._sole_height_mm(foot, gx.ravel(), gy.ravel())
        under = np.isfinite(sole_mm)
        points, gap_mm = np.column_stack([gx.ravel(), gy.ravel()])[under], sole_mm[under] - sole_mm[under].min()
        axis = _foot_axis(points)
        along = points @ axis
        heel_to_toe = (along - along.min()) / max(float(np.ptp(along)), 1e-9)
        stiffness = TISSUE_STIFFNESS_KPA_PER_MM2 * np.interp(heel_to_toe, STIFFNESS_AT, STIFFNESS)
        sink_mm = _sink_depth_mm(gap_mm, stiffness, force_n, step**2)
        load = stiffness * np.clip(sink_mm - gap_mm, 0.0, None) ** 2
        touching = load > 0
        flat = (row[:, None] * cols + col[None, :]).ravel()[under][touching]
        sensels, which = np.unique(flat, return_inverse=True)
        weights = np.bincount(which, weights=load[touching]) / load.sum()
        along_sensel = np.column_stack([self._x_mm[sensels // cols], self._y_mm[sensels % cols]]) @ axis
        return FootLoad(sensels, weights, along_sensel - weights @ along_sensel)

    @staticmethod
    def _sole_height_mm(foot: Mesh, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Height of the lowest surface of the foot above each point (NaN where the foot is not above it)."""
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(foot.vertices_mm.astype(np.float32)),
                            o3d.core.Tensor(foot.triangles.astype(np.uint32)))
        start_z = float(foot.vertices_mm[:, 2].min()) - 10.0
        rays = np.zeros((x_mm.size, 6), np.float32)
        rays[:, 0], rays[:, 1], rays[:, 2], rays[:, 5] = x_mm, y_mm, start_z, 1.0
        t_hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        return np.where(np.isfinite(t_hit), start_z + t_hit, np.nan)
