"""Carry a virtual device's bytes over a real pseudo-terminal or an in-process pyserial port.

A `VirtualDevice` speaks a protocol (bytes in, bytes out) and knows nothing of transports. A link moves its bytes
to the host driver, flips bits at the configured error rate, and can vanish and come back (`disconnect`), as a
USB device does when its cable is pulled. The host always opens the port with `serial.serial_for_url`:
- `PtyLink`: `os.openpty()` with a stable symlink path, the most realistic without hardware;
- `InProcessLink`: the URL `sim://NAME`, for fast unit tests without threads on file descriptors.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import threading
import tty
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import serial

from core.errors import SimulatorError


class VirtualDevice(ABC):
    """Base of simulated byte-stream devices. Subclasses implement `receive` and call `emit`."""

    name = "device"

    def __init__(self) -> None:
        self._outbox: queue.Queue[bytes] = queue.Queue()

    @abstractmethod
    def receive(self, data: bytes) -> None:
        """Bytes written by the host arrive here (in arbitrary chunks)."""

    def emit(self, data: bytes) -> None:
        """Send bytes to the host."""
        self._outbox.put(bytes(data))

    def next_output(self, timeout: float) -> bytes:
        """The next chunk for the host, or b'' when nothing came within `timeout` seconds."""
        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            return b""

    def power_cycle(self) -> None:
        """The device lost power (cable pulled): forget pending output; subclasses also reset their state."""
        while not self._outbox.empty():
            self._outbox.get_nowait()


class ByteCorrupter:
    """Flips one random bit in each byte with probability `rate` and counts what it spoiled."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._rng = np.random.default_rng(seed)
        self.corrupted = 0
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> bytes:
        if self.rate <= 0 or not data:
            return data
        with self._lock:
            hits = np.flatnonzero(self._rng.random(len(data)) < self.rate)
            if hits.size == 0:
                return data
            buf = np.frombuffer(data, dtype=np.uint8).copy()
            buf[hits] ^= (1 << self._rng.integers(0, 8, hits.size)).astype(np.uint8)
            self.corrupted += int(hits.size)
            return buf.tobytes()


class Link(ABC):
    """What both transports share: the device, corruption, and the connected state."""

    def __init__(self, device: VirtualDevice, corrupt_rate: float = 0.0, seed: int = 0) -> None:
        self.device = device
        self.corrupt = ByteCorrupter(corrupt_rate, seed)
        self.connected = True
        self._timer: threading.Timer | None = None

    def disconnect(self, seconds: float | None) -> None:
        """Vanish now; come back after `seconds` (None: never)."""
        if not self.connected:
            return
        self.connected = False
        self._unplug()
        self.device.power_cycle()
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._replug)
            self._timer.daemon = True
            self._timer.start()

    def _replug(self) -> None:
        self.device.power_cycle()
        self._plug()
        self.connected = True

    @abstractmethod
    def _unplug(self) -> None:
        """Make the port vanish."""

    @abstractmethod
    def _plug(self) -> None:
        """Make the port (re)appear."""

    def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self.connected:
            self.connected = False
            self._unplug()


class PtyLink(Link):
    """The device behind a pseudo-terminal whose slave is reachable at a stable symlink `path`."""

    def __init__(self, device: VirtualDevice, path: str | Path, corrupt_rate: float = 0.0, seed: int = 0):
        super().__init__(device, corrupt_rate, seed)
        self.path = Path(path)
        self.dropped_bytes = 0  # output the host did not read in time (a full tty buffer)
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._plug()

    @property
    def url(self) -> str:
        return str(self.path)

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._slave))
        tmp.replace(self.path)
        self._stop = threading.Event()
        master, stop = self._master, self._stop
        threading.Thread(target=self._pump_in, args=(master, stop), daemon=True, name=f"{self.path.name}-in").start()
        threading.Thread(target=self._pump_out, args=(master, stop), daemon=True, name=f"{self.path.name}-out").start()

    def _unplug(self) -> None:
        self._stop.set()
        self.path.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1

    def _pump_in(self, master: int, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 65536)
            except (OSError, ValueError):
                return
            if data and not stop.is_set():
                self.device.receive(self.corrupt(data))

    def _pump_out(self, master: int, stop: threading.Event) -> None:
        while not stop.is_set():
            data = self.device.next_output(0.05)
            if not data or stop.is_set():
                continue
            data = self.corrupt(data)
            while data and not stop.is_set():
                try:
                    written = os.write(master, data)
                    data = data[written:]
                except BlockingIOError:
                    try:
                        writable = select.select([], [master], [], 0.2)[1]
                    except (OSError, ValueError):  # the port was closed meanwhile
                        return
                    if not writable:
                        self.dropped_bytes += len(data)  # nobody reads: the bytes are lost, as on USB
                        data = b""
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.EBADF):
                        return
                    raise


_IN_PROCESS: dict[str, "InProcessLink"] = {}
_HANDLER_PACKAGE = "simulator.serial_handlers"


class InProcessLink(Link):
    """The device behind the pyserial URL `sim://NAME`, inside this process."""

    def __init__(self, device: VirtualDevice, name: str, corrupt_rate: float = 0.0, seed: int = 0):
        super().__init__(device, corrupt_rate, seed)
        if not name.isidentifier():
            raise SimulatorError(f"in-process port name '{name}' must be a simple word")
        self.name = name
        if _HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(_HANDLER_PACKAGE)
        self._plug()

    @property
    def url(self) -> str:
        return f"sim://{self.name}"

    def _plug(self) -> None:
        _IN_PROCESS[self.name] = self

    def _unplug(self) -> None:
        _IN_PROCESS.pop(self.name, None)


def in_process_link(name: str) -> InProcessLink | None:
    return _IN_PROCESS.get(name)
