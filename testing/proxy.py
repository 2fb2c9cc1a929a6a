"""A TCP relay between a client and a service for the tests: the store's internet line that can be cut and mended,
or a load balancer that can send the next connections to another service process."""

from __future__ import annotations

import socket
import threading

from testing.net import free_port


class TcpRelay:
    """Listens on a free loopback port and relays each connection to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def cut(self) -> None:
        """The line goes down: every connection is dropped, and new ones are closed as they come."""
        self._open.clear()
        with self._lock:
            for s in self._sockets:
                _close(s)
            self._sockets.clear()

    def mend(self, target_port: int | None = None) -> None:
        """The line is back (to another service process, if given)."""
        if target_port is not None:
            self.target_port = target_port
        self._open.set()

    def close(self) -> None:
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                _close(s)
            with self._lock:
                self._sockets -= {source, sink}


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
