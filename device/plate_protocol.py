"""The pressure plate's binary wire protocol (version 1): framing, message types and payloads.

Shared by the driver (device/plate.py) and the virtual plate (simulator/plate.py) so that both speak exactly what
docs/protocol-plate.md describes. Every message in both directions is one frame (all integers little-endian):

    sync  A5 5A | type u8 | seq u16 | time_us u64 | length u16 | payload (length bytes) | crc u16

The CRC is CRC-16-CCITT (`binascii.crc_hqx`, initial value 0xFFFF) over type .. payload, everything after the sync
word. A matrix payload is rows u16, cols u16 and rows*cols 12-bit ADC counts as uint16; every other byte of it is
therefore <= 0x0F, so the sync word (both bytes > 0x0F) never appears inside matrix data.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

import numpy as np

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
_HEADER = struct.Struct("<BHQH")  # type, seq, time_us, payload length
HEADER_BYTES = len(SYNC) + _HEADER.size
CRC_BYTES = 2
MAX_PAYLOAD_BYTES = 0xFFFF
SEQ_MODULUS = 1 << 16

# Host -> plate commands.
CMD_START = 0x01
CMD_STOP = 0x02
CMD_IDENTITY = 0x03
CMD_CALIBRATION = 0x04
COMMANDS = (CMD_START, CMD_STOP, CMD_IDENTITY, CMD_CALIBRATION)

# Plate -> host messages.
MSG_ACK = 0x81  # payload: the command type acknowledged (u8)
MSG_NAK = 0x82  # payload: the command type refused (u8), reason (u8)
MSG_IDENTITY = 0x83
MSG_CALIBRATION = 0x84
MSG_MATRIX = 0x90
MESSAGES = (MSG_ACK, MSG_NAK, MSG_IDENTITY, MSG_CALIBRATION, MSG_MATRIX)

# The plate's reply to each command.
REPLY_TO = {CMD_START: MSG_ACK, CMD_STOP: MSG_ACK, CMD_IDENTITY: MSG_IDENTITY, CMD_CALIBRATION: MSG_CALIBRATION}
COMMAND_NAMES = {CMD_START: "START", CMD_STOP: "STOP", CMD_IDENTITY: "IDENTITY", CMD_CALIBRATION: "CALIBRATION"}

NAK_UNKNOWN_COMMAND = 1
NAK_BAD_PAYLOAD = 2
NAK_REASONS = {NAK_UNKNOWN_COMMAND: "unknown command", NAK_BAD_PAYLOAD: "unexpected payload"}

_IDENTITY = struct.Struct("<16s16s12sHHff")  # model, serial, firmware, rows, cols, pitch_mm, rate_hz
_CALIBRATION = struct.Struct("<fHH")  # gain kPa/count, nominal offset counts, ADC full-scale count
_MATRIX_SHAPE = struct.Struct("<HH")  # rows, cols; the counts follow


@dataclass(frozen=True)
class Frame:
    """One checked frame off the wire."""

    type: int
    seq: int
    time_us: int
    payload: bytes


@dataclass(frozen=True)
class PlateIdentity:
    model: str
    serial: str
    firmware: str
    rows: int
    cols: int
    pitch_mm: float
    rate_hz: float


@dataclass(frozen=True)
class PlateCalibration:
    """ADC counts -> kPa: pressure_kpa = (counts - offset_counts) * gain_kpa_per_count."""

    gain_kpa_per_count: float
    offset_counts: int  # nominal reading of an unloaded sensel
    adc_max_count: int  # full scale: a sensel at this count is saturated


def encode(type_: int, seq: int, time_us: int = 0, payload: bytes = b"") -> bytes:
    """One complete frame, sync word to CRC."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the protocol's {MAX_PAYLOAD_BYTES}")
    body = _HEADER.pack(type_, seq % SEQ_MODULUS, time_us, len(payload)) + payload
    return SYNC + body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


def sequence_gap(previous: int, current: int) -> int:
    """Frames missing between two consecutive received sequence numbers, across the u16 wrap-around."""
    return (current - previous - 1) % SEQ_MODULUS


class FrameParser:
    """Cuts checked frames out of a byte stream that may be split anywhere, corrupted or cut short.

    A frame counts only when its CRC checks out. After a bad frame the parser steps one byte past its sync word and
    hunts for the next one, so one corrupted length field costs at most the bytes it claimed, never the stream.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.crc_errors = 0
        self.resyncs = 0  # times the parser lost the frame boundary and hunted for the next sync word
        self.bytes_skipped = 0
        self._hunting = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        """Forget buffered bytes (the port was reopened); the counters keep running."""
        self._buffer.clear()
        self._hunting = False

    def next_frame(self) -> Frame | None:
        """The next checked frame from the buffered bytes, or None until more bytes arrive."""
        buf = self._buffer
        while True:
            start = buf.find(SYNC)
            if start < 0:
                keep = 1 if buf[-1:] == SYNC[:1] else 0  # a sync word may be split across reads
                self._skip(len(buf) - keep)
                return None
            self._skip(start)
            if len(buf) < HEADER_BYTES:
                return None
            type_, seq, time_us, length = _HEADER.unpack_from(buf, len(SYNC))
            if type_ not in MESSAGES and type_ not in COMMANDS:
                self._skip(1)
                continue
            end = HEADER_BYTES + length
            if len(buf) < end + CRC_BYTES:
                return None
            (crc,) = struct.unpack_from("<H", buf, end)
            with memoryview(buf) as view:
                intact = binascii.crc_hqx(view[len(SYNC):end], 0xFFFF) == crc
            if not intact:
                self.crc_errors += 1
                self._skip(1)
                continue
            payload = bytes(buf[HEADER_BYTES:end])
            del buf[: end + CRC_BYTES]
            self._hunting = False
            return Frame(type_, seq, time_us, payload)

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        del self._buffer[:n]
        self.bytes_skipped += n
        if not self._hunting:
            self._hunting = True
            self.resyncs += 1


def encode_identity(identity: PlateIdentity) -> bytes:
    return _IDENTITY.pack(
        identity.model.encode("ascii"), identity.serial.encode("ascii"), identity.firmware.encode("ascii"),
        identity.rows, identity.cols, identity.pitch_mm, identity.rate_hz,
    )


def decode_identity(payload: bytes) -> PlateIdentity:
    model, serial, firmware, rows, cols, pitch_mm, rate_hz = _IDENTITY.unpack(_exact(payload, _IDENTITY, "identity"))
    return PlateIdentity(_text(model), _text(serial), _text(firmware), rows, cols, round(pitch_mm, 4), rate_hz)


def encode_calibration(calibration: PlateCalibration) -> bytes:
    return _CALIBRATION.pack(calibration.gain_kpa_per_count, calibration.offset_counts, calibration.adc_max_count)


def decode_calibration(payload: bytes) -> PlateCalibration:
    gain, offset, full_scale = _CALIBRATION.unpack(_exact(payload, _CALIBRATION, "calibration"))
    return PlateCalibration(gain, offset, full_scale)


def encode_matrix(counts: np.ndarray) -> bytes:
    """Payload of a matrix frame from a (rows, cols) array of ADC counts."""
    rows, cols = counts.shape
    return _MATRIX_SHAPE.pack(rows, cols) + counts.astype("<u2", copy=False).tobytes()


def decode_matrix(payload: bytes) -> np.ndarray:
    """(rows, cols) uint16 ADC counts of a matrix payload (a read-only view of the payload)."""
    if len(payload) < _MATRIX_SHAPE.size:
        raise ValueError(f"matrix payload of {len(payload)} bytes is shorter than its shape header")
    rows, cols = _MATRIX_SHAPE.unpack_from(payload)
    if len(payload) != _MATRIX_SHAPE.size + 2 * rows * cols:
        raise ValueError(f"matrix payload of {len(payload)} bytes does not hold {rows} x {cols} counts")
    return np.frombuffer(payload, dtype="<u2", offset=_MATRIX_SHAPE.size).reshape(rows, cols)


def _exact(payload: bytes, layout: struct.Struct, what: str) -> bytes:
    if len(payload) != layout.size:
        raise ValueError(f"{what} payload of {len(payload)} bytes, expected {layout.size}")
    return payload


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", errors="replace")
