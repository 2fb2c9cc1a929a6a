"""The virtual camera on the network: an MJPEG stream over HTTP, as IP cameras and `mjpg-streamer` serve it.

GET /stream.mjpg[?binning=1|2] answers `multipart/x-mixed-replace; boundary=frame`; every part carries
Content-Type and Content-Length (OpenCV's FFMPEG backend needs the length). The camera has one host: a new
connection takes the stream over and sets the binning. See docs/protocol-camera.md.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from core.errors import SimulatorError
from simulator.camera import EncodedFrame, VirtualCamera

BOUNDARY = "frame"
STREAM_PATH = "/stream.mjpg"
MAX_WAITING_FRAMES = 4  # triggered frames queued before trigger() blocks (backpressure)
MAX_BLOCK_S = 2.0  # trigger() never blocks longer; the frame is then lost (buffer overrun)
FREE_RUN_WAITING = 1  # free-run frames older than the newest one are replaced, as in a camera's ring buffer


class StreamQueue:
    """Frames waiting for the connected host, in order. One host at a time: `open()` starts a new session."""

    def __init__(self) -> None:
        self._frames: deque[EncodedFrame] = deque()
        self._cond = threading.Condition()
        self._session = 0
        self._connected = False
        self.overruns = 0  # triggered frames lost because the host did not keep up for MAX_BLOCK_S

    def open(self) -> int:
        with self._cond:
            self._session += 1
            self._connected = True
            self._frames.clear()
            self._cond.notify_all()
            return self._session

    def close(self, session: int | None = None) -> None:
        """End `session` (or whichever is open): frames are dropped again until the next `open()`."""
        with self._cond:
            if session is None or session == self._session:
                self._connected = False
                self._session += 1
                self._frames.clear()
                self._cond.notify_all()

    def has_host(self) -> bool:
        return self._connected

    def deliver(self, frame: EncodedFrame, triggered: bool) -> None:
        with self._cond:
            if not self._connected:
                return
            if triggered:
                session = self._session
                deadline = time.monotonic() + MAX_BLOCK_S
                while len(self._frames) >= MAX_WAITING_FRAMES and self._session == session:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.overruns += 1
                        return
                    self._cond.wait(left)
                if self._session != session:
                    return
            else:
                while len(self._frames) >= FREE_RUN_WAITING and not self._frames[0].stamp.triggered:
                    self._frames.popleft()
            self._frames.append(frame)
            self._cond.notify_all()

    def next(self, session: int, timeout_s: float) -> EncodedFrame | None:
        """The oldest waiting frame; None after `timeout_s` or when `session` is over."""
        with self._cond:
            deadline = time.monotonic() + timeout_s
            while not self._frames and self._session == session:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if self._session != session:
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

    def is_current(self, session: int) -> bool:
        return self._session == session


class CameraServer:
    """Serves `camera` at `url`; `disconnect()` makes it vanish (streams cut, connections refused) for a while."""

    def __init__(self, camera: VirtualCamera, host: str = "127.0.0.1", port: int = 0):
        self.camera = camera
        self.host = host
        self.port = port
        self.queue = StreamQueue()
        self.connections = 0  # stream connections accepted so far
        self._http: ThreadingHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._streams: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._online = False

    @property
    def url(self) -> str:
        if not self.port:
            raise SimulatorError("the camera server has no port yet: call start() first")
        return f"http://{self.host}:{self.port}{STREAM_PATH}"

    def start(self) -> None:
        self.camera.connect(self.queue)
        self.camera.start()
        self._listen()

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        self._go_offline()
        self.camera.stop()
        self.camera.connect(None)

    def disconnect(self, seconds: float | None) -> None:
        """The camera vanishes now and comes back after `seconds` (None: for good)."""
        self._go_offline()
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._listen)
            self._timer.daemon = True
            self._timer.start()

    # --- listening ---
    def _listen(self) -> None:
        server = self

        class Handler(_StreamHandler):
            camera_server = server

        http = ThreadingHTTPServer((self.host, self.port), Handler)
        http.daemon_threads = True
        self.port = http.server_address[1]
        with self._lock:
            self._http, self._online = http, True
        self._serve_thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                              name="camera-server", daemon=True)
        self._serve_thread.start()

    def _go_offline(self) -> None:
        with self._lock:
            http, self._http, self._online = self._http, None, False
            streams = list(self._streams)
        if http is not None:
            http.shutdown()
            http.server_close()
        for sock in streams:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.queue.close()

    def _register(self, sock: socket.socket) -> bool:
        with self._lock:
            if not self._online:
                return False
            self._streams.add(sock)
            self.connections += 1
            return True

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._streams.discard(sock)


class _StreamHandler(BaseHTTPRequestHandler):
    camera_server: CameraServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != STREAM_PATH:
            self.send_error(404, f"no such resource: the camera streams at {STREAM_PATH}")
            return
        binning_text = parse_qs(url.query).get("binning", ["1"])[0]
        if binning_text not in ("1", "2"):
            self.send_error(400, f"binning={binning_text}: use binning=1 (1280x960) or binning=2 (640x480)")
            return
        server = self.camera_server
        if not server._register(self.connection):
            return
        try:
            self._stream(server, int(binning_text))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the host went away or the camera was unplugged
        finally:
            server._unregister(self.connection)

    def _stream(self, server: CameraServer, binning: int) -> None:
        server.camera.binning = binning
        session = server.queue.open()
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            while server.queue.is_current(session):
                frame = server.queue.next(session, timeout_s=0.5)
                if frame is None or frame.binning != binning:
                    continue
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n")
                self.wfile.write(head.encode("ascii") + frame.jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            server.queue.close(session)
