"""The virtual motor board: the arm's stepper, the two line lasers, the camera trigger and the rig's display.

It speaks protocol version 1 of docs/protocol-board.md byte for byte, so the real driver cannot tell it from
hardware. Motion runs in simulated time (a trapezoidal speed profile) on a worker thread, moving the arm in the
`Scene` as it goes; `time_scale` maps simulated seconds to wall seconds (0: moves complete at once). The board
reports only what its encoder says; the rig's hidden geometry stays in the scene's renderer.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from device import board_protocol as bp
from simulator.ports import VirtualDevice
from simulator.scene import Scene

MICROSTEP_DEG = 0.45 / 16  # 800 full steps per turn, 16 microsteps
ENCODER_RESOLUTION_DEG = 0.01
TICK_S = 0.02  # simulated time between arm updates in the scene
HOMING_SPEED_DPS = 45.0
DEFAULT_SPEED_DPS = 90.0
DEFAULT_ACCEL_DPS2 = 360.0
MAX_SPEED_DPS = 180.0
MAX_ACCEL_DPS2 = 1440.0
HISTORY_LENGTH = 32  # replies remembered for retransmitted commands

# What the customer is told on the display, and where that puts things on the rig.
PLACEMENT_MESSAGES = {"STAND": "stand", "PLACE LEFT": "left", "PLACE RIGHT": "right", "STEP OFF": "off"}
TARGET_MESSAGE = "PLACE TARGET "

Trigger = Callable[[int, float, tuple[bool, bool]], None]


def _no_trigger(count: int, angle_deg: float, lasers: tuple[bool, bool]) -> None:
    pass


def encoder_reading_deg(motor_deg: float) -> float:
    """What the encoder reports, exactly as it goes on the wire (3 decimals)."""
    return round(round(motor_deg / ENCODER_RESOLUTION_DEG) * ENCODER_RESOLUTION_DEG, 3)


def microstep_deg(angle_deg: float) -> float:
    """The motor can only stop on a microstep."""
    return round(angle_deg / MICROSTEP_DEG) * MICROSTEP_DEG


class TrapezoidMove:
    """A point-to-point move: accelerate, cruise, decelerate (a triangle when too short to reach the speed)."""

    def __init__(self, start_deg: float, end_deg: float, speed_dps: float, accel_dps2: float) -> None:
        self.start_deg, self.end_deg = start_deg, end_deg
        self.accel = accel_dps2
        self.distance = abs(end_deg - start_deg)
        self.direction = math.copysign(1.0, end_deg - start_deg)
        self.peak_speed = min(speed_dps, math.sqrt(self.distance * accel_dps2))
        self.ramp_s = self.peak_speed / accel_dps2
        self.ramp_deg = self.peak_speed**2 / (2 * accel_dps2)
        self.cruise_s = (self.distance - 2 * self.ramp_deg) / self.peak_speed if self.peak_speed > 0 else 0.0
        self.duration_s = 2 * self.ramp_s + self.cruise_s

    def position_at(self, t_s: float) -> float:
        t = min(max(t_s, 0.0), self.duration_s)
        if t < self.ramp_s:
            travelled = self.accel * t * t / 2
        elif t < self.ramp_s + self.cruise_s:
            travelled = self.ramp_deg + self.peak_speed * (t - self.ramp_s)
        else:
            left_s = self.duration_s - t
            travelled = self.distance - self.accel * left_s * left_s / 2
        return self.start_deg + self.direction * travelled

    def time_at(self, angle_deg: float) -> float:
        """When the arm passes `angle_deg` (clamped to the move)."""
        travelled = min(max((angle_deg - self.start_deg) * self.direction, 0.0), self.distance)
        if travelled <= self.ramp_deg:
            return math.sqrt(2 * travelled / self.accel) if travelled > 0 else 0.0
        if travelled <= self.distance - self.ramp_deg:
            return self.ramp_s + (travelled - self.ramp_deg) / self.peak_speed
        return self.duration_s - math.sqrt(2 * (self.distance - travelled) / self.accel)


@dataclass
class BoardCounters:
    """What the virtual board saw, for tests and the simulator's report."""

    executed: int = 0  # commands carried out
    replayed: int = 0  # retransmitted commands answered from memory, not executed again
    resend_requests: int = 0  # damaged host lines


class _Refused(Exception):
    """A command the board answers with `er`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Job:
    """A motion command for the worker thread."""

    command: bp.Command
    generation: int  # power-on generation it belongs to; a power cycle orphans it
    abort: threading.Event = field(default_factory=threading.Event)


class VirtualBoard(VirtualDevice):
    name = "board"
    firmware_name = bp.FIRMWARE_NAME
    protocol_version = bp.PROTOCOL_VERSION

    def __init__(
        self,
        scene: Scene,
        serial: str,
        trigger: Trigger = _no_trigger,
        time_scale: float = 1.0,
        firmware_version: str = "1.4.2",
    ) -> None:
        super().__init__()
        self.scene = scene
        self.identity = bp.BoardIdentity(self.firmware_name, firmware_version, self.protocol_version, serial)
        self.trigger = trigger
        self.time_scale = time_scale
        self.counters = BoardCounters()
        self.display_text = ""
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._inbuf = b""
        self._generation = 0
        self._stalled = False
        self._motor_deg = 0.0
        self._reset_state()
        threading.Thread(target=self._work, daemon=True, name="board-worker").start()
        threading.Thread(target=self._heartbeat, daemon=True, name="board-busy").start()

    def _reset_state(self) -> None:
        """Power-on state (the arm itself stays where it is)."""
        self._homed = False
        self._lasers = (False, False)
        self._active: _Job | None = None  # the motion command being carried out
        self._trigger_count = 0
        self._speed_dps = DEFAULT_SPEED_DPS
        self._accel_dps2 = DEFAULT_ACCEL_DPS2
        self._history: OrderedDict[int, bp.Reply | None] = OrderedDict()  # None: still running
        self._clock_ms = 0.0
        self._idle_since: float | None = time.monotonic()  # None: the clock runs with the motion
        self.scene.set_lasers(False, False)

    # --- lifecycle and faults ---
    def power_cycle(self) -> None:
        with self._lock:
            self._generation += 1
            self._abort_motion()
            self._stalled = False
            self._inbuf = b""
            while not self._jobs.empty():
                self._jobs.get_nowait()
            self._reset_state()
            super().power_cycle()

    def stall(self) -> None:
        """Hang the firmware: the arm stops and nothing is answered any more (until a power cycle)."""
        with self._lock:
            self._stalled = True
            self._abort_motion()

    def close(self) -> None:
        """Stop the board's threads (end of a test or a simulator run)."""
        self._closed.set()
        with self._lock:
            self._abort_motion()
        self._jobs.put(None)

    def _abort_motion(self) -> None:
        if self._active is not None:
            self._active.abort.set()

    # --- bytes in ---
    def receive(self, data: bytes) -> None:
        with self._lock:
            if self._stalled:
                return
            self._inbuf += data
            *lines, self._inbuf = self._inbuf.split(b"\n")
            for raw in lines:
                if raw.strip():
                    self._handle_line(raw)
            if len(self._inbuf) > bp.MAX_LINE_CHARS:  # a lost LF: what piled up is noise
                self._inbuf = b""
                self._request_resend()

    def _handle_line(self, raw: bytes) -> None:
        body = bp.unframe(raw)
        if body is None:
            self._request_resend()
            return
        try:
            command = bp.parse_command(body)
        except ValueError as exc:
            self._send(bp.Reply(bp.SYNC_SEQ, False, {}, "bad-line", f"{exc}"))
            return
        if command.seq == bp.SYNC_SEQ:
            self._sync(command)
            return
        if command.seq in self._history:
            self._replay(command.seq)
            return
        self._history[command.seq] = None
        while len(self._history) > HISTORY_LENGTH:
            self._history.popitem(last=False)
        self._dispatch(command)

    def _request_resend(self) -> None:
        self.counters.resend_requests += 1
        self._send(bp.ResendRequest())

    def _sync(self, command: bp.Command) -> None:
        if command.word != bp.SYNC:
            self._send(bp.Reply(bp.SYNC_SEQ, False, {}, "bad-line", f"N0 is reserved for {bp.SYNC}"))
            return
        self._history.clear()
        self._send(bp.Reply(bp.SYNC_SEQ, True, {}))

    def _replay(self, seq: int) -> None:
        reply = self._history[seq]
        if reply is None:
            self._send(bp.Busy(seq))
        else:
            self.counters.replayed += 1
            self._send(reply)

    def _dispatch(self, command: bp.Command) -> None:
        handler = self._immediate.get(command.word)
        motion = self._motions.get(command.word)
        try:
            if handler is None and motion is None:
                raise _Refused("unknown", f"{command.word} is not a command of protocol {self.protocol_version}")
            if motion is not None or command.word in self._idle_only:
                self._require_idle(command)
            if motion is not None:
                self._start_motion(command)
                return
            fields = handler(self, command)
        except _Refused as refused:
            self._finish(command.seq, bp.Reply(command.seq, False, {}, refused.code, str(refused)))
            return
        self.counters.executed += 1
        self._finish(command.seq, bp.Reply(command.seq, True, fields))

    def _finish(self, seq: int, reply: bp.Reply) -> None:
        if seq in self._history:
            self._history[seq] = reply
        self._send(reply)

    def _send(self, message: bp.BoardMessage, generation: int | None = None) -> None:
        """Emit one line unless the firmware hangs or the message belongs to a life before a power cycle."""
        with self._lock:
            if self._stalled or (generation is not None and generation != self._generation):
                return
            self.emit(bp.frame(message.body()))

    # --- commands answered at once ---
    def _require_idle(self, command: bp.Command) -> None:
        if self._active is not None:
            raise _Refused("busy", f"{command.word} refused: the arm is moving (command N{self._active.command.seq})")

    def _identify(self, command: bp.Command) -> dict[str, object]:
        return self.identity.fields()

    def _status(self, command: bp.Command) -> dict[str, object]:
        moving = self._active is not None
        return bp.BoardStatus(
            encoder_reading_deg(self._motor_deg), self._homed, self._lasers, moving, self._trigger_count
        ).fields()

    def _emergency_stop(self, command: bp.Command) -> dict[str, object]:
        self._abort_motion()
        self._homed = False
        self._set_lasers((False, False))
        return {}

    def _display(self, command: bp.Command) -> dict[str, object]:
        text = command.text.strip()
        if len(text) > bp.MAX_DISPLAY_CHARS:
            raise _Refused("bad-argument", f"display text has {len(text)} characters, at most {bp.MAX_DISPLAY_CHARS}")
        self.display_text = text
        if text in PLACEMENT_MESSAGES:
            self.scene.place(PLACEMENT_MESSAGES[text])
        elif text.startswith(TARGET_MESSAGE) and text[len(TARGET_MESSAGE) :].isdigit():
            self.scene.place("target", int(text[len(TARGET_MESSAGE) :]))
        return {}

    def _set_motion(self, command: bp.Command) -> dict[str, object]:
        speed = _number(command, "V", 0.0, MAX_SPEED_DPS, "deg/s")
        accel = _number(command, "A", 0.0, MAX_ACCEL_DPS2, "deg/s2")
        self._speed_dps, self._accel_dps2 = speed, accel
        return {}

    def _laser(self, command: bp.Command) -> dict[str, object]:
        index = command.args.get("T")
        if index not in ("0", "1"):
            raise _Refused("bad-argument", f"{command.word} needs T0 (left laser) or T1 (right laser)")
        lasers = list(self._lasers)
        lasers[int(index)] = command.word == bp.LASER_ON
        self._set_lasers((lasers[0], lasers[1]))
        return {}

    def _set_lasers(self, lasers: tuple[bool, bool]) -> None:
        self._lasers = lasers
        self.scene.set_lasers(*lasers)

    _immediate = {
        bp.IDENTIFY: _identify,
        bp.STATUS: _status,
        bp.EMERGENCY_STOP: _emergency_stop,
        bp.DISPLAY: _display,
        bp.SET_MOTION: _set_motion,
        bp.LASER_ON: _laser,
        bp.LASER_OFF: _laser,
    }
    _idle_only = {bp.SET_MOTION, bp.LASER_ON, bp.LASER_OFF}

    # --- motion, on the worker thread ---
    def _start_motion(self, command: bp.Command) -> None:
        if command.word != bp.HOME and not self._homed:
            raise _Refused("not-homed", f"{command.word} refused: the arm is not homed (send {bp.HOME} first)")
        if command.word == bp.MOVE:
            _number(command, "X", bp.MIN_ANGLE_DEG, bp.MAX_ANGLE_DEG, "deg", inclusive=True)
        if command.word == bp.SWEEP:
            _sweep_arguments(command)
        self._active = _Job(command, self._generation)
        self._jobs.put(self._active)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                if job is not self._active:  # orphaned by a power cycle
                    continue
                self._clock_ms = self._rig_ms()
                self._idle_since = None
            try:
                fields = self._motions[job.command.word](self, job)
                reply = bp.Reply(job.command.seq, True, fields)
            except _Refused as refused:
                reply = bp.Reply(job.command.seq, False, {}, refused.code, str(refused))
            with self._lock:
                if job is not self._active:
                    continue
                self._active = None
                self._idle_since = time.monotonic()
                if reply.ok:
                    self.counters.executed += 1
                self._finish(job.command.seq, reply)

    def _heartbeat(self) -> None:
        while not self._closed.wait(bp.BUSY_INTERVAL_S):
            with self._lock:
                if self._active is not None:
                    self._send(bp.Busy(self._active.command.seq))

    def _home(self, job: _Job) -> dict[str, object]:
        self._travel(TrapezoidMove(self._motor_deg, 0.0, HOMING_SPEED_DPS, self._accel_dps2), job)
        with self._lock:
            self._homed = True
        return {"pos": f"{encoder_reading_deg(self._motor_deg):.3f}"}

    def _move(self, job: _Job) -> dict[str, object]:
        target = microstep_deg(float(job.command.args["X"]))
        self._travel(TrapezoidMove(self._motor_deg, target, self._speed_dps, self._accel_dps2), job)
        return {"pos": f"{encoder_reading_deg(self._motor_deg):.3f}"}

    def _sweep(self, job: _Job) -> dict[str, object]:
        end_deg, speed_dps, step_deg, pattern = _sweep_arguments(job.command)
        start_motor = self._motor_deg
        start_deg = encoder_reading_deg(start_motor)
        move = TrapezoidMove(start_motor, microstep_deg(end_deg), speed_dps, self._accel_dps2)
        total = bp.sweep_trigger_total(start_deg, end_deg, step_deg)
        with self._lock:
            first_count = self._trigger_count
            start_ms = self._clock_ms
        events = []
        for index in range(total):
            angle = start_motor + move.direction * step_deg * index
            events.append((move.time_at(angle), self._trigger_event(job, index, pattern, start_ms)))
        try:
            self._travel(move, job, events)
        finally:
            with self._lock:
                if job.generation == self._generation:
                    self._set_lasers((False, False))
        summary = bp.SweepSummary(start_deg, encoder_reading_deg(self._motor_deg), first_count, total)
        return summary.fields()

    def _trigger_event(self, job: _Job, index: int, pattern: str, start_ms: float) -> Callable[[float], None]:
        def fire(t_s: float) -> None:
            lasers = bp.pattern_lasers(pattern, index)
            with self._lock:
                if job.generation != self._generation:
                    return
                self._set_lasers(lasers)
                count = self._trigger_count
                self._trigger_count += 1
            angle_deg = encoder_reading_deg(self._motor_deg)
            self.trigger(count, angle_deg, lasers)  # renders a frame; may block (backpressure)
            record = bp.TriggerRecord(count, angle_deg, lasers, round(start_ms + t_s * 1000))
            self._send(record, job.generation)

        return fire

    def _travel(self, move: TrapezoidMove, job: _Job, events=()) -> None:
        """Run a move in simulated time, firing `events` (time_s, callback(time_s)) as the arm passes them."""
        ticks = [(k * TICK_S, None) for k in range(1, int(move.duration_s / TICK_S) + 1)]
        timeline = sorted([*ticks, (move.duration_s, None), *events], key=lambda event: event[0])
        now_s = 0.0
        try:
            for at_s, fire in timeline:
                waited = (at_s - now_s) * self.time_scale
                if job.abort.wait(waited) if waited > 0 else job.abort.is_set():
                    raise _Refused("aborted", "motion stopped by an emergency stop, a stall or a power loss")
                now_s = at_s
                with self._lock:
                    self._motor_deg = move.position_at(at_s)
                    self.scene.set_arm_angle(encoder_reading_deg(self._motor_deg))
                if fire is not None:
                    fire(at_s)
        finally:
            with self._lock:
                if job.generation == self._generation:
                    self._clock_ms += now_s * 1000

    def _rig_ms(self) -> float:
        """The board's clock: simulated time since power-on. Motion counts its nominal duration (a blocked
        trigger does not stretch it); idle wall time counts at the time scale."""
        if self._idle_since is None:
            return self._clock_ms
        idle_s = time.monotonic() - self._idle_since
        return self._clock_ms + (idle_s / self.time_scale * 1000 if self.time_scale > 0 else 0.0)

    _motions = {bp.HOME: _home, bp.MOVE: _move, bp.SWEEP: _sweep}


def _number(command: bp.Command, letter: str, low: float, high: float, unit: str, inclusive: bool = False) -> float:
    """Argument `letter` as a number in (low, high] (or [low, high] when inclusive), else refuse."""
    text = command.args.get(letter)
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        value = math.nan
    above_low = value >= low if inclusive else value > low
    if not (above_low and value <= high):
        bounds = f"{'[' if inclusive else '('}{low:g}, {high:g}]"
        raise _Refused("bad-argument", f"{command.word} needs {letter} in {bounds} {unit}, got {text!r}")
    return value


def _sweep_arguments(command: bp.Command) -> tuple[float, float, float, str]:
    end_deg = _number(command, "X", bp.MIN_ANGLE_DEG, bp.MAX_ANGLE_DEG, "deg", inclusive=True)
    speed_dps = _number(command, "V", 0.0, MAX_SPEED_DPS, "deg/s")
    step_deg = _number(command, "S", bp.MIN_SWEEP_STEP_DEG, 90.0, "deg", inclusive=True)
    pattern = command.args.get("P", "")
    problem = bp.validate_pattern(pattern)
    if problem:
        raise _Refused("bad-argument", f"{command.word}: {problem}")
    return end_deg, speed_dps, step_deg, pattern
