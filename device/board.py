"""Driver of the motor board: the arm, the two line lasers, the camera trigger and the rig's display.

Speaks protocol version 1 (docs/protocol-board.md) over a `SerialLink` (device/link.py), which owns the port, the
reader thread, the retransmissions and the reconnections; this module adds what is the board's own: its line
codec, the handshake (sync, identity, firmware and protocol version) and the commands. The board answers a
retransmitted command from memory instead of executing it twice, so the link may retransmit freely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.errors import ConfigError, DeviceError, ProtocolError, WrongDevice
from core.settings import DeviceSettings
from device import board_protocol as bp
from device.board_protocol import BoardIdentity, BoardStatus, TriggerRecord
from device.link import Advice, Answer, Damaged, Foreign, Inbound, SerialLink, Unsolicited, Working

DEVICE = "board"
ANGLE_TOLERANCE_DEG = 0.05  # a trigger record's angle may differ this much from the sweep's nominal angle
ADVICE = Advice(cable="check the USB cable and that the rig is powered",
                port="check that board_url names the arm board")

__all__ = [
    "BoardIdentity",
    "BoardRefused",
    "BoardStats",
    "BoardStatus",
    "MotorBoard",
    "SweepResult",
    "SweepTrigger",
    "TriggerRecord",
]


class BoardRefused(DeviceError):
    """The board understood a command and refused it (not homed, busy, bad argument, aborted by a stop)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(DEVICE, message)
        self.code = code


@dataclass(frozen=True)
class BoardStats:
    """Link health over the driver's life, for the scan report."""

    commands: int
    retries: int  # retransmissions after a silent timeout
    resends: int  # retransmissions at once after a damaged line (the board's `rs`, or a damaged line from it)
    checksum_errors: int  # damaged lines from the board (dropped; the waiting commands are sent again)
    foreign_lines: int  # intact-looking lines that are not this protocol
    records: int  # trigger records received
    lost_records: int  # sweep triggers whose record never arrived (recomputed from the sweep)


@dataclass(frozen=True)
class SweepTrigger:
    """One camera trigger of a sweep: which frame count, at what arm angle, with which lasers on."""

    trigger_count: int
    angle_deg: float  # the board's reported angle, or the nominal angle when its record was lost
    lasers: tuple[bool, bool]  # (left, right)
    recorded: bool  # False: the record was lost and the entry was recomputed from the sweep parameters


@dataclass(frozen=True)
class SweepResult:
    start_deg: float
    end_deg: float  # where the arm settled
    step_deg: float
    pattern: str
    triggers: tuple[SweepTrigger, ...]  # one per trigger, in order, trigger counts consecutive


class LineCodec:
    """The board's lines as the link needs them: a command text out under its number, each line in sorted by what
    it means. Counts what only the board's lines can tell."""

    protocol = bp.FIRMWARE_NAME
    last_seq = bp.MAX_SEQ

    def __init__(self) -> None:
        self._lines = bp.LineSplitter()
        self.checksum_errors = 0
        self.records = 0

    def encode(self, seq: int, command: str) -> bytes:
        return bp.host_line(seq, command)

    def decode(self, data: bytes) -> list[Inbound]:
        return [self._meaning(line) for line in self._lines.feed(data)]

    def describe(self, command: str) -> str:
        return f"'{command}'"

    def reset(self) -> None:
        self._lines.clear()

    def _meaning(self, line: bytes) -> Inbound:
        body = bp.unframe(line)
        if body is None:
            self.checksum_errors += 1
            return Damaged()  # perhaps the reply a command waits for
        try:
            message = bp.parse_board_message(body)
        except ValueError:
            return Foreign()
        if isinstance(message, bp.Reply):
            return Answer(message.seq, message)
        if isinstance(message, bp.Busy):
            return Working(message.seq)
        if isinstance(message, bp.ResendRequest):
            return Damaged()
        self.records += 1
        return Unsolicited(message)


class MotorBoard:
    """The arm board behind a pyserial URL. Use as a context manager, or call connect() and close(). `link` is the
    SerialLink it speaks over."""

    def __init__(
        self,
        url: str,
        baud: int = bp.NOMINAL_BAUD,
        command_timeout_s: float = 2.0,
        retries: int = 3,
    ) -> None:
        if command_timeout_s <= 2 * bp.BUSY_INTERVAL_S:
            raise ConfigError(
                f"command_timeout_s={command_timeout_s} is too short: the board reports progress every "
                f"{bp.BUSY_INTERVAL_S} s, so use more than {2 * bp.BUSY_INTERVAL_S} s"
            )
        self.url = url
        self.identity: BoardIdentity | None = None
        self._codec = LineCodec()
        self.link = SerialLink(DEVICE, url, baud, self._codec, ADVICE, command_timeout_s, retries)
        self._lost_records = 0

    @classmethod
    def from_settings(cls, settings: DeviceSettings) -> "MotorBoard":
        return cls(settings.board_url, settings.board_baud, settings.command_timeout_s, settings.command_retries)

    def __enter__(self) -> "MotorBoard":
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def stats(self) -> BoardStats:
        link = self.link.stats
        return BoardStats(link.commands, link.retries, link.resends, self._codec.checksum_errors, link.foreign,
                          self._codec.records, self._lost_records)

    # --- connection ---
    def connect(self) -> BoardIdentity:
        """Open the port, synchronise sequence numbers and check that this is a footfit arm board we support."""
        self.identity = self.link.connect(self._handshake)
        return self.identity

    def reconnect(self, window_s: float) -> BoardIdentity:
        """Reconnect within `window_s` (else DeviceDisconnected). The board lost power on the way (it was
        unplugged), so it must be homed again before moving."""
        self.identity = self.link.reconnect(window_s, self._handshake)
        return self.identity

    def close(self) -> None:
        self.link.close()

    def _handshake(self) -> BoardIdentity:
        sync = self.link.greet(bp.command_text(bp.SYNC), seq=bp.SYNC_SEQ)
        if not sync.ok:
            raise WrongDevice(
                DEVICE, f"{self.url} does not complete the {bp.FIRMWARE_NAME} protocol sync ({sync.message}): "
                f"{ADVICE.port}",
            )
        reply = self._command(bp.command_text(bp.IDENTIFY))
        try:
            identity = BoardIdentity.from_fields(reply.fields)
        except (KeyError, ValueError):
            raise WrongDevice(DEVICE, f"{self.url} gave no usable identity ({reply.fields}): is this an arm board?")
        if identity.firmware != bp.FIRMWARE_NAME:
            raise WrongDevice(
                DEVICE,
                f"{self.url} runs firmware '{identity.firmware}', expected '{bp.FIRMWARE_NAME}': "
                "check that board_url names the arm board, or flash the footfit arm firmware",
            )
        if identity.protocol not in bp.SUPPORTED_PROTOCOLS:
            raise WrongDevice(
                DEVICE,
                f"{self.url}: firmware {identity.firmware} {identity.version} speaks protocol {identity.protocol}, "
                f"this driver supports {', '.join(map(str, bp.SUPPORTED_PROTOCOLS))}: update footfit or flash a "
                "matching firmware",
            )
        return identity

    # --- commands ---
    def home(self) -> float:
        """Drive the arm to its home switch; returns the reported angle (0)."""
        return float(self._command(bp.command_text(bp.HOME)).fields["pos"])

    def move_to(self, angle_deg: float) -> float:
        """Absolute move; returns the settled angle the encoder reports (within a microstep of the target)."""
        _check_angle(angle_deg)
        reply = self._command(bp.command_text(bp.MOVE, {"X": f"{angle_deg:.3f}"}))
        return float(reply.fields["pos"])

    def set_motion(self, speed_dps: float, accel_dps2: float) -> None:
        """Speed and acceleration of later moves (deg/s, deg/s^2)."""
        self._command(bp.command_text(bp.SET_MOTION, {"V": f"{speed_dps:.3f}", "A": f"{accel_dps2:.3f}"}))

    def set_lasers(self, left: bool, right: bool) -> None:
        for index, on in enumerate((left, right)):
            self._command(bp.command_text(bp.LASER_ON if on else bp.LASER_OFF, {"T": str(index)}))

    def status(self) -> BoardStatus:
        return BoardStatus.from_fields(self._command(bp.command_text(bp.STATUS)).fields)

    def emergency_stop(self) -> None:
        """Stop the arm at once and switch the lasers off; safe to call from another thread during a move or
        sweep (which then raises BoardRefused with code 'aborted'). The arm must be homed again afterwards."""
        self._command(bp.command_text(bp.EMERGENCY_STOP))

    def display(self, text: str) -> None:
        """Show `text` to the customer on the rig's display (printable ASCII, at most 40 characters)."""
        if len(text) > bp.MAX_DISPLAY_CHARS or not text.isprintable() or not text.isascii():
            raise ValueError(
                f"display text {text!r} must be printable ASCII of at most {bp.MAX_DISPLAY_CHARS} characters"
            )
        self._command(bp.command_text(bp.DISPLAY, text=text))

    def sweep(
        self,
        end_deg: float,
        speed_dps: float,
        step_deg: float,
        pattern: str = "LR",
        on_record: Callable[[TriggerRecord], None] | None = None,
    ) -> SweepResult:
        """Rotate from the current angle to `end_deg` at `speed_dps`, triggering the camera every `step_deg`
        with the lasers switched per trigger by `pattern`. Records arrive through `on_record` (for progress);
        the result has every trigger, recomputed from the sweep parameters where a record was lost."""
        _check_angle(end_deg)
        if step_deg < bp.MIN_SWEEP_STEP_DEG:
            raise ValueError(f"step_deg={step_deg}: the smallest sweep step is {bp.MIN_SWEEP_STEP_DEG} deg")
        if problem := bp.validate_pattern(pattern):
            raise ValueError(problem)
        records: dict[int, TriggerRecord] = {}

        def collect(record: TriggerRecord) -> None:
            records[record.count] = record
            if on_record is not None:
                on_record(record)

        args = {"X": f"{end_deg:.3f}", "V": f"{speed_dps:.3f}", "S": f"{step_deg:.3f}", "P": pattern}
        reply = self._command(bp.command_text(bp.SWEEP, args), on_record=collect)
        summary = bp.SweepSummary.from_fields(reply.fields)
        return self._sweep_result(summary, end_deg, step_deg, pattern, records)

    def _sweep_result(
        self, summary: bp.SweepSummary, end_deg: float, step_deg: float, pattern: str, records: dict
    ) -> SweepResult:
        """Every trigger of the sweep, checked against the records that arrived."""
        expected = bp.sweep_trigger_total(summary.start_deg, end_deg, step_deg)
        if summary.triggers != expected:
            raise ProtocolError(
                DEVICE, f"sweep from {summary.start_deg} to {end_deg} deg every {step_deg} deg should fire "
                f"{expected} triggers, the board reports {summary.triggers}: check the board firmware",
            )
        counts = range(summary.first_count, summary.first_count + summary.triggers)
        if stray := sorted(set(records) - set(counts)):
            raise ProtocolError(DEVICE, f"sweep records for triggers {stray[:5]} outside {counts}: check firmware")
        triggers = []
        for index, count in enumerate(counts):
            nominal_deg = bp.sweep_trigger_angle_deg(summary.start_deg, end_deg, step_deg, index)
            lasers = bp.pattern_lasers(pattern, index)
            record = records.get(count)
            if record is None:
                self._lost_records += 1
                triggers.append(SweepTrigger(count, nominal_deg, lasers, recorded=False))
                continue
            if abs(record.angle_deg - nominal_deg) > ANGLE_TOLERANCE_DEG or record.lasers != lasers:
                raise ProtocolError(
                    DEVICE, f"trigger {count} reported {record.angle_deg} deg with lasers {record.lasers}, the "
                    f"sweep expects {nominal_deg:.3f} deg with {lasers}: check the encoder and the firmware",
                )
            triggers.append(SweepTrigger(count, record.angle_deg, lasers, recorded=True))
        return SweepResult(summary.start_deg, summary.end_deg, step_deg, pattern, tuple(triggers))

    def _command(self, text: str, on_record: Callable[[TriggerRecord], None] | None = None) -> bp.Reply:
        """One command and its `ok` reply; an `er` reply raises BoardRefused."""
        reply = self.link.request(text, on_unsolicited=on_record)
        if not reply.ok:
            raise BoardRefused(f"refused '{text}': {reply.message} ({reply.code})", reply.code)
        return reply


def _check_angle(angle_deg: float) -> None:
    if not bp.MIN_ANGLE_DEG <= angle_deg <= bp.MAX_ANGLE_DEG:
        raise ValueError(
            f"angle {angle_deg} deg is outside the arm's range [{bp.MIN_ANGLE_DEG:g}, {bp.MAX_ANGLE_DEG:g}] deg"
        )
