"""One serial link to a device that answers numbered commands: the motor board and the pressure plate both use it.

The link opens the port by pyserial URL (a tty, a pseudo-terminal, `sim://NAME` for an in-process simulated device),
reads it on its own thread and lets the driver's `Codec` cut the bytes into messages and say what each one means
(`Inbound`). A reply goes to the command waiting for its sequence number; an unsolicited message (a trigger record,
a pressure matrix) goes to the command that asked for them, else to a backlog the driver reads.

Each command waits for its reply: silence for the command timeout T sends it again (same sequence number) and waits
2T, then 4T..., `retries` tries in all. Any sign of life for that command (still working, an unsolicited message it
asked for, a damaged line) restarts the wait at T; a damaged line sends every waiting command again at once.

Every failure is one exception of core/errors.py, whichever device it is:
- DeviceNotFound: the port cannot be opened, or nothing answers the handshake's first command (`greet`);
- WrongDevice: something answers the handshake, but not in this protocol;
- DeviceTimeout: a command stayed unanswered through all its tries;
- ProtocolError: more than MAX_DAMAGED_IN_A_ROW damaged lines in a row: a broken cable, not noise;
- DeviceDisconnected: the port failed while open (unplugged), or `reconnect` did not bring the device back within
  its window.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import serial

from core.errors import ConfigError, DeviceDisconnected, DeviceNotFound, DeviceTimeout, ProtocolError, WrongDevice

READ_POLL_S = 0.05  # the port's read timeout: how often the reader thread notices a closed port
RECONNECT_POLL_S = 0.2
MAX_DAMAGED_IN_A_ROW = 20  # more damaged lines in a row than this is a broken cable, not noise

Identity = TypeVar("Identity")  # what a driver's handshake returns


# --- what a codec makes of the bytes ---


@dataclass(frozen=True)
class Answer:
    """The reply that ends command `seq`."""

    seq: int
    message: Any


@dataclass(frozen=True)
class Working:
    """Command `seq` is still being carried out (the board's `busy`): its waiter keeps waiting."""

    seq: int


@dataclass(frozen=True)
class Damaged:
    """A line was damaged on the way, either way: the device asks for one again, or one of its own failed its check
    and may have been a reply. Every waiting command is sent again at once."""


@dataclass(frozen=True)
class Unsolicited:
    """A message that answers no command: a sweep's trigger record, a pressure matrix."""

    message: Any


@dataclass(frozen=True)
class Foreign:
    """Input that is no message of this protocol. Ignored, but when the handshake goes unanswered it tells
    another device (WrongDevice) from none (DeviceNotFound)."""


Inbound = Answer | Working | Damaged | Unsolicited | Foreign


class Codec(Protocol):
    """A driver's protocol as the link needs it. Pure (no I/O): the framing itself lives in the protocol module."""

    protocol: str  # its name in error messages, e.g. "footfit-arm"
    last_seq: int  # commands are numbered 1..last_seq, then 1 again

    def encode(self, seq: int, command: Any) -> bytes:
        """The wire bytes of `command` under sequence number `seq`."""

    def decode(self, data: bytes) -> list[Inbound]:
        """What the messages these bytes complete mean (the port splits messages anywhere)."""

    def describe(self, command: Any) -> str:
        """The command as error messages name it."""

    def reset(self) -> None:
        """Forget a partly received message: the port was reopened."""


@dataclass(frozen=True)
class Advice:
    """What the person at the kiosk is told to check when the link fails, as whole instructions."""

    cable: str  # the device does not answer or went away, e.g. "check the USB cable and that the rig is powered"
    port: str  # the port may be another device, e.g. "check that board_url names the arm board"


@dataclass
class LinkStats:
    """Link health over the driver's life (across reconnections), for the scan report."""

    commands: int = 0
    retries: int = 0  # commands sent again after a silent timeout
    resends: int = 0  # commands sent again at once after a damaged line
    damaged: int = 0  # damaged lines, either way
    foreign: int = 0  # inputs that are no message of this protocol


@dataclass
class _Waiter:
    """A command waiting for its reply; the reader thread puts everything that concerns it into `inbox`."""

    seq: int
    command: Any
    wants_unsolicited: bool
    inbox: queue.Queue


@dataclass(frozen=True)
class _Lost:
    """Reader-thread marker: the port failed."""

    error: Exception


class SerialLink:
    """One device behind a pyserial URL. `connect(handshake)` opens it, `request(command)` is one command and its
    reply, `next_unsolicited()` reads the backlog of unsolicited messages, `reconnect(...)` brings it back."""

    def __init__(self, device: str, url: str, baud: int, codec: Codec, advice: Advice, command_timeout_s: float,
                 retries: int, backlog: int = 0) -> None:
        """`backlog`: unsolicited messages kept for `next_unsolicited` while no command asked for them (the oldest
        are dropped beyond it; 0 drops them all)."""
        if retries < 1:
            raise ConfigError(f"command_retries={retries}: at least one try is needed")
        self.device = device
        self.url = url
        self.baud = baud
        self.codec = codec
        self.advice = advice
        self.command_timeout_s = command_timeout_s
        self.retries = retries
        self.stats = LinkStats()
        self._port: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the waiters, the backlog, the failure and the sequence numbers
        self._arrived = threading.Condition(self._lock)  # the backlog grew or the port failed
        self._waiters: dict[int, _Waiter] = {}
        self._backlog: deque = deque(maxlen=backlog)
        self._next_seq = 1
        self._failure: Exception | None = None

    # --- connection ---
    @property
    def is_open(self) -> bool:
        return self._port is not None and self._failure is None

    def connect(self, handshake: Callable[[], Identity]) -> Identity:
        """Open the port and run the driver's `handshake` on it; the port is closed again if the handshake fails."""
        self._open()
        try:
            return handshake()
        except BaseException:
            self.close()
            raise

    def reconnect(self, window_s: float, handshake: Callable[[], Identity]) -> Identity:
        """Connect again and again until the handshake succeeds or `window_s` runs out (then DeviceDisconnected).
        A device that answers but is the wrong one fails at once."""
        deadline = time.monotonic() + window_s
        while True:
            try:
                return self.connect(handshake)
            except (DeviceNotFound, DeviceDisconnected, DeviceTimeout) as exc:
                last = exc
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise DeviceDisconnected(
                    self.device, f"did not come back on {self.url} within {window_s:g} s (last: {last}): "
                    f"{self.advice.cable}",
                )
            time.sleep(min(RECONNECT_POLL_S, left_s))

    def close(self) -> None:
        """Release the port; its reader thread ends with it. Safe to call twice."""
        with self._lock:
            port, self._port = self._port, None
            self._arrived.notify_all()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass
        if self._reader is not None:
            self._reader.join(timeout=1.0)
            self._reader = None

    def _open(self) -> None:
        self.close()
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=READ_POLL_S)
            port.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceNotFound(
                self.device, f"cannot open {self.url} ({exc}): {self.advice.port}; {self.advice.cable}"
            ) from None
        self.codec.reset()
        with self._lock:
            self._backlog.clear()
            self._failure = None
            self._next_seq = 1
            self._port = port
        self._reader = threading.Thread(target=self._read, args=(port,), daemon=True, name=f"{self.device}-reader")
        self._reader.start()

    # --- commands ---
    def greet(self, command: Any, seq: int | None = None) -> Any:
        """The handshake's first command: silence means nothing is there (DeviceNotFound), and unreadable
        answers, or too many damaged ones, mean another device (WrongDevice)."""
        unreadable_before = self.stats.damaged + self.stats.foreign
        try:
            return self.request(command, seq)
        except DeviceTimeout:
            if self.stats.damaged + self.stats.foreign == unreadable_before:
                raise DeviceNotFound(
                    self.device, f"no answer on {self.url} after {self.retries} tries: {self.advice.cable}; "
                    f"{self.advice.port}",
                ) from None
            raise self._wrong_protocol() from None
        except ProtocolError:
            raise self._wrong_protocol() from None

    def request(self, command: Any, seq: int | None = None,
                on_unsolicited: Callable[[Any], None] | None = None) -> Any:
        """Send `command` (numbered by the link unless `seq` is given) and return the message of its Answer.
        `on_unsolicited`, when given, receives the unsolicited messages that arrive meanwhile, on this thread."""
        waiter = self._register(command, seq, on_unsolicited is not None)
        try:
            self._send(waiter)
            tries = 1
            damaged_in_a_row = 0
            deadline = time.monotonic() + self.command_timeout_s
            while True:
                try:
                    inbound = waiter.inbox.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    if tries >= self.retries:
                        raise self._timeout(command) from None
                    tries += 1
                    self.stats.retries += 1
                    self._send(waiter)
                    deadline = time.monotonic() + self.command_timeout_s * 2 ** (tries - 1)
                    continue
                if isinstance(inbound, Answer):
                    return inbound.message
                if isinstance(inbound, _Lost):
                    raise self._lost(inbound.error)
                if isinstance(inbound, Damaged):
                    damaged_in_a_row += 1
                    if damaged_in_a_row > MAX_DAMAGED_IN_A_ROW:
                        raise ProtocolError(
                            self.device, f"{damaged_in_a_row} damaged lines in a row on {self.url} during "
                            f"{self.codec.describe(command)}: the line is too noisy; check the USB cable, its "
                            "shielding and the ground connection",
                        )
                    self.stats.resends += 1
                    self._send(waiter)
                else:
                    damaged_in_a_row = 0
                    if isinstance(inbound, Unsolicited):
                        on_unsolicited(inbound.message)
                tries = 1  # working, a message it asked for, even a damaged line: the device is alive
                deadline = time.monotonic() + self.command_timeout_s
        finally:
            with self._lock:
                self._waiters.pop(waiter.seq, None)

    def _register(self, command: Any, seq: int | None, wants_unsolicited: bool) -> _Waiter:
        with self._lock:
            if self._port is None or self._failure is not None:
                raise self._lost(self._failure)
            if seq is None:
                seq = self._next_seq
                self._next_seq = self._next_seq % self.codec.last_seq + 1
            waiter = _Waiter(seq, command, wants_unsolicited, queue.Queue())
            self._waiters[seq] = waiter
            self.stats.commands += 1
            return waiter

    def _send(self, waiter: _Waiter) -> None:
        data = self.codec.encode(waiter.seq, waiter.command)
        port = self._port
        try:
            if port is None:
                raise serial.SerialException("port closed")
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from None

    # --- unsolicited messages nobody asked for ---
    def next_unsolicited(self, timeout_s: float) -> Any | None:
        """The oldest message of the backlog, waiting up to `timeout_s` for one; None when none came. Once the port
        failed, DeviceDisconnected as soon as the backlog is empty."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not self._backlog:
                if self._port is None or self._failure is not None:
                    raise self._lost(self._failure)
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return None
                self._arrived.wait(left_s)
            return self._backlog.popleft()

    def discard_unsolicited(self) -> None:
        """Forget the backlog (e.g. the frames before a stop)."""
        with self._lock:
            self._backlog.clear()

    # --- the reader thread ---
    def _read(self, port: serial.SerialBase) -> None:
        while True:
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:  # pyserial, port closed
                if self._port is port:  # not closed on purpose
                    self._fail(exc)
                return
            if self._port is not port:
                return
            for inbound in self.codec.decode(data):
                self._route(inbound)

    def _route(self, inbound: Inbound) -> None:
        """Hand one message to the waiters it concerns."""
        with self._lock:
            if isinstance(inbound, (Answer, Working)):
                waiters = [self._waiters[inbound.seq]] if inbound.seq in self._waiters else []
            elif isinstance(inbound, Unsolicited):
                waiters = [w for w in self._waiters.values() if w.wants_unsolicited]
                if not waiters:
                    self._backlog.append(inbound.message)
                    self._arrived.notify_all()
            elif isinstance(inbound, Damaged):
                self.stats.damaged += 1
                waiters = list(self._waiters.values())
            else:
                self.stats.foreign += 1
                waiters = []
        for waiter in waiters:
            waiter.inbox.put(inbound)

    def _fail(self, error: Exception) -> None:
        with self._lock:
            self._failure = error
            waiters = list(self._waiters.values())
            self._arrived.notify_all()
        for waiter in waiters:
            waiter.inbox.put(_Lost(error))

    # --- errors ---
    def _lost(self, error: Exception | None) -> DeviceDisconnected:
        if error is None:
            return DeviceDisconnected(self.device, f"{self.url} is not open: call connect() or reconnect() first")
        return DeviceDisconnected(
            self.device, f"lost the connection on {self.url} ({error}): {self.advice.cable}, then reconnect"
        )

    def _timeout(self, command: Any) -> DeviceTimeout:
        waits = "+".join(f"{self.command_timeout_s * 2**k:g}" for k in range(self.retries))
        return DeviceTimeout(
            self.device, f"no answer to {self.codec.describe(command)} on {self.url} after {self.retries} tries "
            f"({waits} s): {self.advice.cable}; a {self.device} that stopped answering needs a power cycle (unplug "
            "and replug its USB cable)",
        )

    def _wrong_protocol(self) -> WrongDevice:
        return WrongDevice(
            self.device, f"{self.url} answers, but not in the {self.codec.protocol} protocol: {self.advice.port} "
            f"(not another device), and that the baud rate is {self.baud}",
        )
