"""The motor board's wire protocol (version 1): line framing, checksums and the typed messages both ends parse.

Shared by the driver (device/board.py) and the virtual board (simulator/board.py) so that both speak exactly
what docs/protocol-board.md describes. Every line is ASCII, ends in LF and carries a CRC-16-CCITT of its body:

    host  -> board:  N<seq> <command>*<CRC>      e.g. N12 G1 X90.000*3F0A
    board -> host:   <message>*<CRC>             e.g. ok N12 pos=90.000*91C2
"""

from __future__ import annotations

import binascii
import math
from dataclasses import dataclass

FIRMWARE_NAME = "footfit-arm"
PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOLS = (1,)
NOMINAL_BAUD = 115200
MAX_LINE_CHARS = 128  # longer lines are noise (a lost LF merged two lines): the board asks for a resend
SYNC_SEQ = 0  # `N0 M110` resets the board's sequence memory; commands are numbered from 1
MAX_SEQ = 65535
BUSY_INTERVAL_S = 0.2  # while a command runs the board says `busy N<seq>` this often (wall time)
MIN_ANGLE_DEG = -360.0
MAX_ANGLE_DEG = 360.0
MIN_SWEEP_STEP_DEG = 0.05
MAX_DISPLAY_CHARS = 40

# G-code words of protocol version 1 (see docs/protocol-board.md).
SYNC = "M110"
IDENTIFY = "M115"
HOME = "G28"
MOVE = "G1"
SET_MOTION = "M203"
LASER_ON = "M71"
LASER_OFF = "M70"
STATUS = "M114"
EMERGENCY_STOP = "M112"
DISPLAY = "M117"
SWEEP = "M800"

# What each sweep pattern letter switches on for one trigger: (left, right).
PATTERN_LASERS: dict[str, tuple[bool, bool]] = {
    "L": (True, False),
    "R": (False, True),
    "B": (True, True),
    "O": (False, False),
}


def checksum(body: str) -> str:
    """CRC-16-CCITT (poly 0x1021, init 0xFFFF) of the body, as 4 upper-case hex digits."""
    return f"{binascii.crc_hqx(body.encode('ascii'), 0xFFFF):04X}"


def frame(body: str) -> bytes:
    """One wire line: body, '*', checksum, LF."""
    return f"{body}*{checksum(body)}\n".encode("ascii")


def unframe(line: bytes) -> str | None:
    """The body of a received line (without its LF), or None when it is not intact (bad checksum, noise)."""
    try:
        text = line.decode("ascii").rstrip("\r")
    except UnicodeDecodeError:
        return None
    body, star, crc = text.rpartition("*")
    if not star or len(text) > MAX_LINE_CHARS or not body.isprintable() or crc != checksum(body):
        return None
    return body


class LineSplitter:
    """Cuts lines out of a byte stream that arrives in chunks split anywhere. A run of more than MAX_LINE_CHARS
    without an LF (a lost LF merged two lines) comes out as one line, which then fails its checksum."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The non-blank lines these bytes complete, without their LF."""
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        lines = [line for line in lines if line.strip()]
        if len(self._buffer) > MAX_LINE_CHARS:
            lines.append(self._buffer)
            self._buffer = b""
        return lines

    def clear(self) -> None:
        self._buffer = b""


# --- host -> board ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One host command: its sequence number, G-code word and arguments (letter -> text; M117 keeps `text`)."""

    seq: int
    word: str
    args: dict[str, str]
    text: str = ""  # the free text of M117

    def line(self) -> bytes:
        return host_line(self.seq, command_text(self.word, self.args, self.text))


def host_line(seq: int, command: str) -> bytes:
    """The wire line of command text (e.g. `G1 X90.000`) under sequence number `seq`."""
    return frame(f"N{seq} {command}")


def command_text(word: str, args: dict[str, str] | None = None, text: str = "") -> str:
    """The command part of a host line, e.g. `G1 X90.000`."""
    if word == DISPLAY:
        return f"{word} {text}" if text else word
    return " ".join([word, *(f"{letter}{value}" for letter, value in (args or {}).items())])


def parse_command(body: str) -> Command:
    """Parse an intact host line body; ValueError says what is malformed."""
    head, _, rest = body.partition(" ")
    if not head.startswith("N") or not head[1:].isdigit():
        raise ValueError(f"line must start with N<seq>, got {head!r}")
    seq = int(head[1:])
    word, _, tail = rest.partition(" ")
    if not word:
        raise ValueError("no command after the sequence number")
    if word == DISPLAY:
        return Command(seq, word, {}, tail)
    args = {}
    for token in tail.split():
        if len(token) < 2 or not token[0].isalpha():
            raise ValueError(f"argument {token!r} must be a letter and a value")
        args[token[0].upper()] = token[1:]
    return Command(seq, word.upper(), args)


# --- board -> host ---------------------------------------------------------------------------------------


def format_fields(fields: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in fields.items())


def parse_fields(text: str) -> dict[str, str]:
    fields = {}
    for token in text.split():
        key, eq, value = token.partition("=")
        if not eq or not key:
            raise ValueError(f"field {token!r} must be key=value")
        fields[key] = value
    return fields


@dataclass(frozen=True)
class Reply:
    """The answer to command `seq`: `ok N<seq> key=value...` or `er N<seq> <code> <message>`."""

    seq: int
    ok: bool
    fields: dict[str, str]
    code: str = ""  # er only: a machine-readable reason (busy, not-homed, bad-argument, unknown, aborted)
    message: str = ""  # er only: for people

    def body(self) -> str:
        if self.ok:
            return " ".join(filter(None, [f"ok N{self.seq}", format_fields(self.fields)]))
        return f"er N{self.seq} {self.code} {self.message}".rstrip()


@dataclass(frozen=True)
class Busy:
    """Command `seq` is still running (sent every BUSY_INTERVAL_S, and in answer to a retransmission)."""

    seq: int

    def body(self) -> str:
        return f"busy N{self.seq}"


@dataclass(frozen=True)
class ResendRequest:
    """The last host line arrived damaged: send it again."""

    def body(self) -> str:
        return "rs"


@dataclass(frozen=True)
class TriggerRecord:
    """One camera trigger of a sweep, sent as it fires."""

    count: int  # monotonic since the board's power-on
    angle_deg: float  # encoder reading at the trigger
    lasers: tuple[bool, bool]  # (left, right) during the exposure
    rig_ms: int  # the board's clock since power-on

    def body(self) -> str:
        return "tr " + format_fields(
            {"count": self.count, "pos": f"{self.angle_deg:.3f}", "lasers": laser_mask(self.lasers), "ms": self.rig_ms}
        )


BoardMessage = Reply | Busy | ResendRequest | TriggerRecord


def _seq(token: str) -> int:
    if not token.startswith("N") or not token[1:].isdigit():
        raise ValueError(f"expected N<seq>, got {token!r}")
    return int(token[1:])


def parse_board_message(body: str) -> BoardMessage:
    """Parse an intact board line body; ValueError when it is not a message of this protocol."""
    kind, _, rest = body.partition(" ")
    if kind == "ok":
        seq_token, _, fields = rest.partition(" ")
        return Reply(_seq(seq_token), True, parse_fields(fields))
    if kind == "er":
        seq_token, code, message = (rest.split(" ", 2) + ["", ""])[:3]
        if not code:
            raise ValueError("error reply without a code")
        return Reply(_seq(seq_token), False, {}, code, message)
    if kind == "busy":
        return Busy(_seq(rest))
    if kind == "rs" and not rest:
        return ResendRequest()
    if kind == "tr":
        f = parse_fields(rest)
        try:
            return TriggerRecord(int(f["count"]), float(f["pos"]), mask_lasers(int(f["lasers"])), int(f["ms"]))
        except KeyError as missing:
            raise ValueError(f"trigger record without {missing}") from None
    raise ValueError(f"unknown board message {kind!r}")


# --- payloads of the ok replies --------------------------------------------------------------------------


def laser_mask(lasers: tuple[bool, bool]) -> int:
    """Bit 0 = left laser, bit 1 = right laser."""
    return int(lasers[0]) | int(lasers[1]) << 1


def mask_lasers(mask: int) -> tuple[bool, bool]:
    if not 0 <= mask <= 3:
        raise ValueError(f"laser mask {mask} is not 0-3")
    return bool(mask & 1), bool(mask & 2)


@dataclass(frozen=True)
class BoardIdentity:
    """Answer to M115."""

    firmware: str
    version: str
    protocol: int
    serial: str

    def fields(self) -> dict[str, object]:
        return {"firmware": self.firmware, "version": self.version, "protocol": self.protocol, "serial": self.serial}

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> "BoardIdentity":
        return cls(f["firmware"], f["version"], int(f["protocol"]), f["serial"])


@dataclass(frozen=True)
class BoardStatus:
    """Answer to M114."""

    angle_deg: float  # encoder reading; meaningful as an absolute angle only when homed
    homed: bool
    lasers: tuple[bool, bool]  # (left, right)
    moving: bool
    trigger_count: int  # triggers fired since power-on

    def fields(self) -> dict[str, object]:
        return {
            "pos": f"{self.angle_deg:.3f}",
            "homed": int(self.homed),
            "lasers": laser_mask(self.lasers),
            "moving": int(self.moving),
            "triggers": self.trigger_count,
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> "BoardStatus":
        return cls(
            float(f["pos"]), f["homed"] == "1", mask_lasers(int(f["lasers"])), f["moving"] == "1", int(f["triggers"])
        )


@dataclass(frozen=True)
class SweepSummary:
    """Final answer to M800: enough to recompute every trigger's angle and lasers without the records."""

    start_deg: float  # encoder reading where the sweep began (trigger 0 fires here)
    end_deg: float  # encoder reading where the arm settled
    first_count: int  # trigger count of trigger 0
    triggers: int  # how many triggers fired

    def fields(self) -> dict[str, object]:
        return {
            "start": f"{self.start_deg:.3f}",
            "pos": f"{self.end_deg:.3f}",
            "first": self.first_count,
            "triggers": self.triggers,
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> "SweepSummary":
        return cls(float(f["start"]), float(f["pos"]), int(f["first"]), int(f["triggers"]))


def sweep_trigger_total(start_deg: float, end_deg: float, step_deg: float) -> int:
    """Triggers of a sweep: one at the start, then one every `step_deg` up to and including `end_deg`."""
    return math.floor(abs(end_deg - start_deg) / step_deg + 1e-6) + 1


def sweep_trigger_angle_deg(start_deg: float, end_deg: float, step_deg: float, index: int) -> float:
    """Nominal arm angle of trigger `index` of a sweep."""
    return start_deg + math.copysign(step_deg, end_deg - start_deg) * index


def pattern_lasers(pattern: str, index: int) -> tuple[bool, bool]:
    """Lasers of trigger `index` under a sweep pattern such as 'LR' (left on even triggers, right on odd)."""
    return PATTERN_LASERS[pattern[index % len(pattern)]]


def validate_pattern(pattern: str) -> str | None:
    """What is wrong with a sweep pattern, or None."""
    if not 1 <= len(pattern) <= 8 or any(c not in PATTERN_LASERS for c in pattern):
        return f"pattern {pattern!r} must be 1-8 letters of L (left), R (right), B (both), O (off)"
    return None
