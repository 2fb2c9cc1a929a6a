"""Driver of the pressure plate: identity, calibration, zeroing and the 100 Hz stream of pressure matrices.

The plate speaks the binary protocol of device/plate_protocol.py (docs/protocol-plate.md) over a `SerialLink`
(device/link.py), which owns the port, the reader thread, the retransmissions and the reconnections, so a USB plate,
a pseudo-terminal and the simulator's `sim://` port are driven alike. The matrix frames the link's reader cuts out
wait in its backlog until `read_frame` takes them.

Sensel layout (plate frame, mm): row r lies at x = (r - (rows - 1) / 2) * pitch, column c at
y = (c - (cols - 1) / 2) * pitch; row 0 is the most negative x (the heel end), column 0 the most negative y (the
customer's right). For the supported model the centres are at +-2.5, +-7.5, ... mm.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from core.errors import DeviceError, DeviceTimeout, ProtocolError, WrongDevice
from core.settings import DeviceSettings
from device import plate_protocol as proto
from device.link import Advice, Answer, Foreign, Inbound, SerialLink, Unsolicited
from device.plate_protocol import Frame, PlateCalibration, PlateIdentity

DEVICE = "plate"

# The one supported plate model.
PLATE_MODEL = "FF-PP80x200"
PLATE_ROWS = 80  # along plate x, -200..+200 mm
PLATE_COLS = 200  # along plate y, -500..+500 mm
PLATE_PITCH_MM = 5.0
PLATE_RATE_HZ = 100.0
PLATE_ADC_BITS = 12

NOISE_THRESHOLD_SD = 4.0  # a sensel reads 0 kPa until it rises this many noise SDs above its zero offset
UNZEROED_NOISE_COUNTS = 4.0  # assumed noise SD before zero() measured it
ZERO_MAX_LOAD_KPA = 20.0  # more than this on any sensel while zeroing means someone stands on the plate
PENDING_FRAMES = 256  # matrix frames kept until read_frame takes them (2.5 s at 100 Hz); older ones are dropped
ADVICE = Advice(cable="check the plate's USB cable and that it is powered",
                port="check that plate_url names the pressure plate")


def sensel_centres_mm(
    rows: int = PLATE_ROWS, cols: int = PLATE_COLS, pitch_mm: float = PLATE_PITCH_MM
) -> tuple[np.ndarray, np.ndarray]:
    """Plate-frame x of each row and y of each column (mm), centred on the plate's centre mark."""
    return (np.arange(rows) - (rows - 1) / 2) * pitch_mm, (np.arange(cols) - (cols - 1) / 2) * pitch_mm


@dataclass(frozen=True)
class PlateFrame:
    """One pressure matrix, rows along plate x and columns along plate y (see the module docstring)."""

    seq: int  # the plate's frame counter, wraps at 65536
    time_s: float  # device clock: seconds since the plate powered up
    pressures_kpa: np.ndarray  # (rows, cols) float32 after zeroing; exactly 0 below the noise threshold
    raw: np.ndarray  # (rows, cols) uint16 ADC counts as sent (read-only)
    saturated: int  # sensels at full scale: their pressure is a lower bound


@dataclass(frozen=True)
class PlateStats:
    frames: int  # matrix frames returned by read_frame
    dropped_frames: int  # missing sequence numbers between returned frames
    crc_errors: int
    resyncs: int  # times the byte stream lost the frame boundary
    bytes_skipped: int  # bytes thrown away while hunting for a sync word


class FrameCodec:
    """The plate's frames as the link needs them: a command type out under its number, each checked frame in
    sorted by what it means. A frame that fails its CRC is only counted (by the parser): most are matrices, so
    it is no reason to send a command again; a lost reply is repaired by the retransmission after a timeout."""

    protocol = "footfit plate"
    last_seq = proto.SEQ_MODULUS - 1

    def __init__(self) -> None:
        self.parser = proto.FrameParser()

    def encode(self, seq: int, command: int) -> bytes:
        return proto.encode(command, seq)

    def decode(self, data: bytes) -> list[Inbound]:
        skipped_before = self.parser.bytes_skipped
        self.parser.feed(data)
        inbound: list[Inbound] = []
        while (frame := self.parser.next_frame()) is not None:
            if frame.type == proto.MSG_MATRIX:
                inbound.append(Unsolicited(frame))
            elif frame.type in proto.MESSAGES:
                inbound.append(Answer(frame.seq, frame))
            else:
                inbound.append(Foreign())  # a host command: an echo, not a plate
        if self.parser.bytes_skipped > skipped_before:
            inbound.append(Foreign())
        return inbound

    def describe(self, command: int) -> str:
        return proto.COMMAND_NAMES[command]

    def reset(self) -> None:
        self.parser.clear()


class PressurePlate:
    """The plate on one serial URL. Use as a context manager (connects on entry) or call connect()/close(). `link` is
    the SerialLink it speaks over."""

    def __init__(self, url: str, baudrate: int = 921600, command_timeout_s: float = 2.0, command_retries: int = 3):
        self.url = url
        self.identity: PlateIdentity | None = None
        self.calibration: PlateCalibration | None = None
        self._codec = FrameCodec()
        self.link = SerialLink(DEVICE, url, baudrate, self._codec, ADVICE, command_timeout_s, command_retries,
                               backlog=PENDING_FRAMES)
        self._lock = threading.RLock()  # a reading thread and a controlling thread may share the driver
        self._streaming = False  # what the host asked for; survives a lost port so reconnect() restores it
        self._last_seq: int | None = None
        self._frames = 0
        self._dropped = 0
        self._offset_counts = np.zeros(0, np.float32)
        self._threshold_counts = np.zeros(0, np.float32)

    @classmethod
    def from_settings(cls, settings: DeviceSettings) -> PressurePlate:
        return cls(settings.plate_url, settings.plate_baud, settings.command_timeout_s, settings.command_retries)

    # --- connection ---
    def connect(self) -> PlateIdentity:
        """Open the port, read identity and calibration, and refuse any plate but the supported model."""
        with self._lock:
            return self.link.connect(self._handshake)

    def reconnect(self, window_s: float) -> PlateIdentity:
        """Reconnect a plate that went away, within `window_s` (else DeviceDisconnected); it must be the same
        plate. Streams again if it did."""
        with self._lock:
            was_streaming = self._streaming
            identity = self.link.reconnect(window_s, self._handshake)
            if was_streaming:
                self.start()
            return identity

    def close(self) -> None:
        """Stop streaming if possible and release the port."""
        with self._lock:
            if self._streaming and self.link.is_open:
                try:
                    self.stop()
                except DeviceError:
                    pass  # the plate is gone anyway
            self._streaming = False
            self.link.close()

    def __enter__(self) -> PressurePlate:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _handshake(self) -> PlateIdentity:
        try:
            identity = proto.decode_identity(self._command(proto.CMD_IDENTITY, greet=True).payload)
        except ValueError as exc:
            raise ProtocolError(DEVICE, f"unreadable identity from {self.url}: {exc}") from None
        self._check_identity(identity)
        try:
            calibration = proto.decode_calibration(self._command(proto.CMD_CALIBRATION).payload)
        except ValueError as exc:
            raise ProtocolError(DEVICE, f"unreadable calibration from {self.url}: {exc}") from None
        self.stop()  # a plate left streaming by an earlier session goes quiet
        if self.identity is None or self.calibration != calibration:
            self._set_zero(np.full((identity.rows, identity.cols), calibration.offset_counts, np.float32),
                           np.full((identity.rows, identity.cols), UNZEROED_NOISE_COUNTS, np.float32))
        self.identity, self.calibration = identity, calibration
        return identity

    # --- streaming ---
    def start(self) -> None:
        """Start the matrix stream (harmless when already streaming)."""
        with self._lock:
            self._command(proto.CMD_START)
            self._streaming = True
            self._last_seq = None  # no gap is counted across a stop or a reconnect

    def stop(self) -> None:
        with self._lock:
            self._command(proto.CMD_STOP)
            self._streaming = False
            self.link.discard_unsolicited()  # the plate acknowledges after its last matrix frame

    def read_frame(self, timeout_s: float = 1.0) -> PlateFrame:
        """The next intact pressure frame. Lost frames are only counted; silence for `timeout_s` is an error."""
        with self._lock:
            if not self._streaming:
                raise DeviceError(DEVICE, "read_frame() while the plate is not streaming: call start() first")
            crc_errors_before = self._codec.parser.crc_errors
            frame = self.link.next_unsolicited(timeout_s)
            if frame is None:
                raise self._silence_error(timeout_s, self._codec.parser.crc_errors - crc_errors_before)
            return self._pressure_frame(frame)

    def zero(self, n_frames: int = 50, timeout_s: float = 1.0) -> None:
        """Measure each sensel's offset and noise on the unloaded plate; later frames are relative to it."""
        if n_frames < 2:
            raise ValueError(f"zero() needs at least 2 frames to measure the sensor noise, got {n_frames}")
        with self._lock:
            was_streaming = self._streaming
            if not was_streaming:
                self.start()
            try:
                raws = np.stack([self.read_frame(timeout_s).raw for _ in range(n_frames)]).astype(np.float32)
            finally:
                if not was_streaming:
                    self.stop()
            mean, sd = raws.mean(axis=0), raws.std(axis=0)
            load_kpa = float((mean - self.calibration.offset_counts).max() * self.calibration.gain_kpa_per_count)
            if load_kpa > ZERO_MAX_LOAD_KPA:
                raise DeviceError(
                    DEVICE,
                    f"{load_kpa:.0f} kPa on the plate while zeroing (at most {ZERO_MAX_LOAD_KPA:.0f} allowed): "
                    "ask everyone to step off the plate, then zero again",
                )
            self._set_zero(mean, sd)

    @property
    def stats(self) -> PlateStats:
        p = self._codec.parser
        return PlateStats(self._frames, self._dropped, p.crc_errors, p.resyncs, p.bytes_skipped)

    # --- internals ---
    def _command(self, command: int, greet: bool = False) -> Frame:
        """Send a command and return its reply (the link retries on silence). `greet`: the handshake's first."""
        reply = (self.link.greet if greet else self.link.request)(command)
        name = proto.COMMAND_NAMES[command]
        if reply.type == proto.MSG_NAK:
            reason = proto.NAK_REASONS.get(reply.payload[1] if len(reply.payload) > 1 else 0, "no reason")
            raise ProtocolError(DEVICE, f"refused {name} ({reason}): update the plate's firmware")
        if reply.type != proto.REPLY_TO[command]:
            raise ProtocolError(DEVICE, f"answered {name} with message type 0x{reply.type:02X}: update the plate's "
                                        "firmware")
        return reply

    def _check_identity(self, found: PlateIdentity) -> None:
        if found.model != PLATE_MODEL:
            raise WrongDevice(
                DEVICE,
                f"{self.url} is a '{found.model}' plate (serial {found.serial}), expected the '{PLATE_MODEL}': "
                "connect a supported plate",
            )
        if (found.rows, found.cols) != (PLATE_ROWS, PLATE_COLS):
            raise WrongDevice(
                DEVICE,
                f"plate {found.serial} reports a {found.rows} x {found.cols} sensel matrix, expected "
                f"{PLATE_ROWS} x {PLATE_COLS} for the {PLATE_MODEL}: check its firmware configuration",
            )
        if self.identity is not None and found.serial != self.identity.serial:
            raise WrongDevice(
                DEVICE,
                f"a different plate (serial {found.serial}) answered on {self.url}, expected {self.identity.serial}: "
                "create a new driver for it and zero it",
            )

    def _set_zero(self, offset_counts: np.ndarray, noise_sd_counts: np.ndarray) -> None:
        self._offset_counts = offset_counts.astype(np.float32)
        self._threshold_counts = np.maximum(NOISE_THRESHOLD_SD * noise_sd_counts, 1.0).astype(np.float32)

    def _silence_error(self, timeout_s: float, crc_errors: int) -> DeviceError:
        if crc_errors:
            return ProtocolError(
                DEVICE,
                f"{crc_errors} frames failed their CRC in {timeout_s:.1f} s and none arrived intact on {self.url}: "
                "the line is too noisy; check the USB cable and keep it away from the motor wires",
            )
        return DeviceTimeout(
            DEVICE,
            f"no pressure frame on {self.url} for {timeout_s:.1f} s: check that the plate is powered and its "
            "cable plugged in, then call reconnect()",
        )

    def _pressure_frame(self, frame: Frame) -> PlateFrame:
        try:
            raw = proto.decode_matrix(frame.payload)
        except ValueError as exc:
            raise ProtocolError(DEVICE, f"bad matrix frame {frame.seq}: {exc}") from None
        if raw.shape != self._offset_counts.shape:
            raise ProtocolError(
                DEVICE,
                f"matrix frame {frame.seq} is {raw.shape[0]} x {raw.shape[1]}, the plate announced "
                f"{self.identity.rows} x {self.identity.cols}: power-cycle the plate",
            )
        if self._last_seq is not None:
            self._dropped += proto.sequence_gap(self._last_seq, frame.seq)
        self._last_seq = frame.seq
        self._frames += 1
        signal = raw.astype(np.float32) - self._offset_counts
        gain = np.float32(self.calibration.gain_kpa_per_count)
        pressures = np.where(signal > self._threshold_counts, signal * gain, np.float32(0.0))
        saturated = int(np.count_nonzero(raw >= self.calibration.adc_max_count))
        return PlateFrame(frame.seq, frame.time_us / 1e6, pressures, raw, saturated)
