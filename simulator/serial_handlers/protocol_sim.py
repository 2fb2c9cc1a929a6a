"""pyserial handler for `sim://NAME`: a port onto an in-process simulated device (see simulator.ports)."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, Timeout

from simulator import ports


class Serial(SerialBase):
    def open(self) -> None:
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        name = urlparse(self.portstr).netloc
        self._link = ports.in_process_link(name)
        if self._link is None:
            raise SerialException(f"could not open port {self.portstr}: no simulated device named '{name}'")
        self._pending = b""
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def _configure_port(self) -> None:  # pyserial calls this on setting changes; nothing to configure
        pass

    def _reconfigure_port(self) -> None:
        pass

    def _link_or_raise(self):
        if not self.is_open:
            raise PortNotOpenError()
        if not self._link.connected or ports.in_process_link(self._link.name) is not self._link:
            raise SerialException(f"device reports readiness to read but returned no data: {self.portstr} gone")
        return self._link

    @property
    def in_waiting(self) -> int:
        link = self._link_or_raise()
        chunk = link.device.next_output(0.0)
        if chunk:
            self._pending += link.corrupt(chunk)
        return len(self._pending)

    def read(self, size: int = 1) -> bytes:
        link = self._link_or_raise()
        timeout = Timeout(self._timeout)
        while len(self._pending) < size:
            wait = 0.05 if self._timeout is None else min(0.05, max(timeout.time_left(), 0.0))
            chunk = link.device.next_output(wait)
            if chunk:
                self._pending += link.corrupt(chunk)
            elif timeout.expired():
                break
            link = self._link_or_raise()
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def write(self, data: bytes) -> int:
        link = self._link_or_raise()
        link.device.receive(link.corrupt(bytes(data)))
        return len(data)

    def reset_input_buffer(self) -> None:
        link = self._link_or_raise()
        self._pending = b""
        while link.device.next_output(0.0):
            pass

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        time.sleep(0)
