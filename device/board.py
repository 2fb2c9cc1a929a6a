"""Driver of the motor board: the arm, the two line lasers, the camera trigger and the rig's display.

Speaks protocol version 1 (docs/protocol-board.md) over any pyserial URL, so a real tty, a pseudo-terminal and an
in-process simulated port behave alike. One reader thread parses the board's lines and hands each to the command
waiting for it; every command is retransmitted with escalating timeouts until the board answers, and the board
answers a retransmission from memory instead of executing it twice.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from device import board_protocol as bp
from device.board_protocol import BoardIdentity, BoardStatus, TriggerRecord
from core.errors import (
    ConfigError,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DeviceTimeout,
    ProtocolError,
    WrongDevice,
)
from core.settings import DeviceSettings

DEVICE = "board"
READ_POLL_S = 0.05
RECONNECT_POLL_S = 0.2
MAX_DAMAGED_IN_A_ROW = 20  # more damaged lines in a row than this is a broken cable, not noise
ANGLE_TOLERANCE_DEG = 0.05  # a trigger record's angle may differ this much from the sweep's nominal angle
CHECK_CABLE = "check the USB cable and that the rig is powered"

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


@dataclass
class BoardStats:
    """Link health over the driver's life, for the scan report."""

    commands: int = 0
    retries: int = 0  # retransmissions after a silent timeout
    resends: int = 0  # retransmissions the board asked for (it received a damaged line)
    checksum_errors: int = 0  # damaged lines from the board (dropped; the pending command is sent again)
    foreign_lines: int = 0  # intact-looking lines that are not this protocol
    records: int = 0  # trigger records received
    lost_records: int = 0  # sweep triggers whose record never arrived (recomputed from the sweep)


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


@dataclass
class _Pending:
    """A command waiting for its reply; the reader thread drops everything for it into `inbox`."""

    seq: int
    text: str
    wants_records: bool
    inbox: queue.Queue


class _Lost:
    """Reader-thread marker: the port failed."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Damaged:
    """Reader-thread marker: a board line arrived damaged, possibly the reply a command waits for."""


class MotorBoard:
    """The arm board behind a pyserial URL. Use as a context manager, or call connect() and close()."""

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
        if retries < 1:
            raise ConfigError(f"command_retries={retries}: at least one try is needed")
        self.url = url
        self.baud = baud
        self.command_timeout_s = command_timeout_s
        self.retries = retries
        self.stats = BoardStats()
        self.identity: BoardIdentity | None = None
        self._port: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_seq = 1
        self._failure: Exception | None = None

    @classmethod
    def from_settings(cls, settings: DeviceSettings) -> "MotorBoard":
        return cls(settings.board_url, settings.board_baud, settings.command_timeout_s, settings.command_retries)

    def __enter__(self) -> "MotorBoard":
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- connection ---
    def connect(self) -> BoardIdentity:
        """Open the port, synchronise sequence numbers and check that this is a footfit arm board we support."""
        self._close_port()
        self._open()
        try:
            self.identity = self._handshake()
        except BaseException:
            self._close_port()
            raise
        return self.identity

    def reconnect(self, window_s: float) -> BoardIdentity:
        """Reopen the same URL until the board answers or `window_s` runs out. The board lost power on the way
        (it was unplugged), so it must be homed again before moving."""
        deadline = time.monotonic() + window_s
        while True:
            try:
                return self.connect()
            except (DeviceNotFound, DeviceDisconnected, DeviceTimeout) as exc:
                last = exc
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise DeviceNotFound(
                    DEVICE, f"did not come back on {self.url} within {window_s:g} s (last: {last}); {CHECK_CABLE}"
                )
            time.sleep(min(RECONNECT_POLL_S, left_s))

    def close(self) -> None:
        self._close_port()

    def _open(self) -> None:
        try:
            self._port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=READ_POLL_S)
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise DeviceNotFound(
                DEVICE, f"cannot open {self.url} ({exc}): {CHECK_CABLE}, and that board_url names the arm board"
            ) from exc
        self._failure = None
        self._reader = threading.Thread(target=self._read_lines, args=(self._port,), daemon=True, name="board-reader")
        self._reader.start()

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
            self._reader = None

    def _handshake(self) -> BoardIdentity:
        before = self.stats.checksum_errors + self.stats.foreign_lines
        try:
            self._exchange(bp.command_text(bp.SYNC), seq=bp.SYNC_SEQ)
        except DeviceTimeout:
            if self.stats.checksum_errors + self.stats.foreign_lines > before:
                raise WrongDevice(
                    DEVICE,
                    f"{self.url} answers, but not in the {bp.FIRMWARE_NAME} protocol: check that board_url names "
                    f"the arm board (not the pressure plate or another device) and that the baud rate is {self.baud}",
                ) from None
            raise DeviceNotFound(
                DEVICE, f"no answer on {self.url} after {self.retries} tries: {CHECK_CABLE}"
            ) from None
        except (BoardRefused, ProtocolError) as exc:
            raise WrongDevice(
                DEVICE, f"{self.url} does not complete the {bp.FIRMWARE_NAME} protocol sync ({exc}): check that "
                "board_url names the arm board",
            ) from None
        self._next_seq = 1
        reply = self._exchange(bp.command_text(bp.IDENTIFY))
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
        return float(self._exchange(bp.command_text(bp.HOME)).fields["pos"])

    def move_to(self, angle_deg: float) -> float:
        """Absolute move; returns the settled angle the encoder reports (within a microstep of the target)."""
        _check_angle(angle_deg)
        reply = self._exchange(bp.command_text(bp.MOVE, {"X": f"{angle_deg:.3f}"}))
        return float(reply.fields["pos"])

    def set_motion(self, speed_dps: float, accel_dps2: float) -> None:
        """Speed and acceleration of later moves (deg/s, deg/s^2)."""
        self._exchange(bp.command_text(bp.SET_MOTION, {"V": f"{speed_dps:.3f}", "A": f"{accel_dps2:.3f}"}))

    def set_lasers(self, left: bool, right: bool) -> None:
        for index, on in enumerate((left, right)):
            self._exchange(bp.command_text(bp.LASER_ON if on else bp.LASER_OFF, {"T": str(index)}))

    def status(self) -> BoardStatus:
        return BoardStatus.from_fields(self._exchange(bp.command_text(bp.STATUS)).fields)

    def emergency_stop(self) -> None:
        """Stop the arm at once and switch the lasers off; safe to call from another thread during a move or
        sweep (which then raises BoardRefused with code 'aborted'). The arm must be homed again afterwards."""
        self._exchange(bp.command_text(bp.EMERGENCY_STOP))

    def display(self, text: str) -> None:
        """Show `text` to the customer on the rig's display (printable ASCII, at most 40 characters)."""
        if len(text) > bp.MAX_DISPLAY_CHARS or not text.isprintable() or not text.isascii():
            raise ValueError(
                f"display text {text!r} must be printable ASCII of at most {bp.MAX_DISPLAY_CHARS} characters"
            )
        self._exchange(bp.command_text(bp.DISPLAY, text=text))

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
        reply = self._exchange(bp.command_text(bp.SWEEP, args), on_record=collect)
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
                self.stats.lost_records += 1
                triggers.append(SweepTrigger(count, nominal_deg, lasers, recorded=False))
                continue
            if abs(record.angle_deg - nominal_deg) > ANGLE_TOLERANCE_DEG or record.lasers != lasers:
                raise ProtocolError(
                    DEVICE, f"trigger {count} reported {record.angle_deg} deg with lasers {record.lasers}, the "
                    f"sweep expects {nominal_deg:.3f} deg with {lasers}: check the encoder and the firmware",
                )
            triggers.append(SweepTrigger(count, record.angle_deg, lasers, recorded=True))
        return SweepResult(summary.start_deg, summary.end_deg, step_deg, pattern, tuple(triggers))

    # --- one command, with retries ---
    def _exchange(
        self, text: str, seq: int | None = None, on_record: Callable[[TriggerRecord], None] | None = None
    ) -> bp.Reply:
        """Send one command and wait for its reply. A silent board gets the same line again after 1x, 2x, 4x...
        the command timeout; `busy` and trigger records are signs of life that restart the wait. A damaged line
        either way (the board's `rs`, or a reply that fails its checksum here) sends the line again at once."""
        pending = self._register(text, seq, on_record is not None)
        try:
            self._transmit(pending)
            silent_tries = 1
            damaged_in_a_row = 0
            deadline = time.monotonic() + self.command_timeout_s
            while True:
                try:
                    message = pending.inbox.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    if silent_tries >= self.retries:
                        raise self._timeout(text) from None
                    silent_tries += 1
                    self.stats.retries += 1
                    self._transmit(pending)
                    deadline = time.monotonic() + self.command_timeout_s * 2 ** (silent_tries - 1)
                    continue
                if isinstance(message, bp.Reply):
                    if message.ok:
                        return message
                    raise BoardRefused(f"refused '{text}': {message.message} ({message.code})", message.code)
                if isinstance(message, _Lost):
                    raise self._disconnected(message.error)
                if isinstance(message, (bp.ResendRequest, _Damaged)):
                    damaged_in_a_row += 1
                    self.stats.resends += isinstance(message, bp.ResendRequest)
                    if damaged_in_a_row > MAX_DAMAGED_IN_A_ROW:
                        raise ProtocolError(
                            DEVICE, f"{damaged_in_a_row} damaged lines in a row on {self.url} during '{text}': the "
                            "line is too noisy; check the USB cable, its shielding and the ground connection",
                        )
                    self._transmit(pending)
                else:
                    damaged_in_a_row = 0
                    if on_record is not None and isinstance(message, TriggerRecord):
                        on_record(message)
                silent_tries = 1  # busy, a record, even a damaged line: the board is alive
                deadline = time.monotonic() + self.command_timeout_s
        finally:
            with self._pending_lock:
                self._pending.pop(pending.seq, None)

    def _register(self, text: str, seq: int | None, wants_records: bool) -> _Pending:
        with self._pending_lock:
            if self._failure is not None or self._port is None:
                raise self._disconnected(self._failure)
            if seq is None:
                seq = self._next_seq
                self._next_seq = self._next_seq % bp.MAX_SEQ + 1
            pending = _Pending(seq, text, wants_records, queue.Queue())
            self._pending[seq] = pending
            self.stats.commands += 1
            return pending

    def _transmit(self, pending: _Pending) -> None:
        line = bp.host_line(pending.seq, pending.text)
        port = self._port
        try:
            if port is None:
                raise serial.SerialException("port closed")
            with self._write_lock:
                port.write(line)
        except (serial.SerialException, OSError) as exc:
            raise self._disconnected(exc) from exc

    def _timeout(self, text: str) -> DeviceTimeout:
        waits = "+".join(f"{self.command_timeout_s * 2**k:g}" for k in range(self.retries))
        return DeviceTimeout(
            DEVICE,
            f"no answer to '{text}' on {self.url} after {self.retries} tries ({waits} s): {CHECK_CABLE}; a board "
            "that stopped answering needs a power cycle (unplug and replug its USB cable)",
        )

    def _disconnected(self, error: Exception | None) -> DeviceDisconnected:
        return DeviceDisconnected(
            DEVICE, f"lost the connection on {self.url} ({error or 'port closed'}): {CHECK_CABLE}, then "
            "reconnect (the arm must be homed again)",
        )

    # --- the reader thread ---
    def _read_lines(self, port: serial.SerialBase) -> None:
        buffer = b""
        while True:
            try:
                chunk = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:  # pyserial, port closed
                if self._port is port:  # not closed on purpose
                    self._fail(exc)
                return
            if self._port is not port:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                if raw.strip():
                    self._route(raw)
            if len(buffer) > bp.MAX_LINE_CHARS:  # a lost LF: what piled up is noise
                self._route(buffer)
                buffer = b""

    def _route(self, raw: bytes) -> None:
        """Hand one board line to the command it concerns."""
        body = bp.unframe(raw)
        message: bp.BoardMessage | _Damaged
        if body is None:
            self.stats.checksum_errors += 1
            message = _Damaged()
        else:
            try:
                message = bp.parse_board_message(body)
            except ValueError:
                self.stats.foreign_lines += 1
                return
        with self._pending_lock:
            if isinstance(message, (bp.Reply, bp.Busy)):
                targets = [self._pending[message.seq]] if message.seq in self._pending else []
            elif isinstance(message, TriggerRecord):
                self.stats.records += 1
                targets = [p for p in self._pending.values() if p.wants_records]
            else:
                targets = list(self._pending.values())
        for pending in targets:
            pending.inbox.put(message)

    def _fail(self, error: Exception) -> None:
        with self._pending_lock:
            self._failure = error
            targets = list(self._pending.values())
        for pending in targets:
            pending.inbox.put(_Lost(error))


def _check_angle(angle_deg: float) -> None:
    if not bp.MIN_ANGLE_DEG <= angle_deg <= bp.MAX_ANGLE_DEG:
        raise ValueError(
            f"angle {angle_deg} deg is outside the arm's range [{bp.MIN_ANGLE_DEG:g}, {bp.MAX_ANGLE_DEG:g}] deg"
        )
