"""The camera driver against the virtual camera served over real HTTP and read through real cv2.VideoCapture."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from core.errors import DeviceDisconnected, DeviceNotFound, DeviceTimeout, WrongDevice
from core.frame_stamp import FrameStamp, decode, encode
from device.camera import Camera
from simulator.camera import VirtualCamera
from simulator.camera_server import CameraServer
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import template_subject

pytestmark = pytest.mark.timeout(60)

SLACK = 10  # wall-time bounds allow ten times the typical time: other test runs may share the 2 cores


@pytest.fixture(scope="module")
def subject():
    return template_subject()


@pytest.fixture
def scene(subject):
    return Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=3)


def serve(scene: Scene, drop_rate: float = 0.0) -> tuple[VirtualCamera, CameraServer]:
    camera = VirtualCamera(scene, seed=5, drop_rate=drop_rate)
    server = CameraServer(camera)
    server.start()
    return camera, server


@pytest.fixture
def served(scene):
    camera, server = serve(scene)
    yield camera, server
    server.stop()


def read_until(driver: Camera, accept, limit_frames: int = 300):
    """Frames until `accept(frame)` is true; fails after `limit_frames` frames, however fast they come."""
    for _ in range(limit_frames):
        frame = driver.read()
        if accept(frame):
            return frame
    pytest.fail(f"no accepted frame among {limit_frames}")


def run_triggers(camera: VirtualCamera, counts, angle_deg: float = 20.0, lasers=(True, False)) -> threading.Thread:
    def sweep():
        for k, count in enumerate(counts):
            camera.trigger(count, angle_deg + 0.5 * k, lasers)

    thread = threading.Thread(target=sweep, daemon=True)
    thread.start()
    return thread


# --- frame stamp ---


@pytest.mark.parametrize("quality", [80, 95])
def test_stamp_survives_jpeg_and_unstamped_frames_are_recognised(quality):
    rng = np.random.default_rng(1)
    for stamp in (FrameStamp(True, 0), FrameStamp(False, 2**31 - 1), FrameStamp(True, 123_456_789)):
        image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        encode(image, stamp)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert decode(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == stamp
    blank = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(50)]
    assert all(decode(image) is None for image in blank)


def test_rendered_frame_carries_its_stamp(scene):
    camera = VirtualCamera(scene, seed=1)
    scene.place("left")
    frame = camera.capture(scene.snapshot(), FrameStamp(True, 4242))
    image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (960, 1280, 3)
    assert decode(image) == FrameStamp(True, 4242)


# --- the stream through cv2 ---


@pytest.mark.parametrize("binning, shape", [(1, (960, 1280, 3)), (2, (480, 640, 3))])
def test_frames_arrive_at_the_binned_size(served, binning, shape):
    camera, server = served
    with Camera(server.url, read_timeout_s=3.0, binning=binning) as driver:
        frames = [driver.read() for _ in range(3)]
    assert all(f.image.shape == shape for f in frames)
    counters = [f.stamp.counter for f in frames]
    assert counters == sorted(counters) and len(set(counters)) == 3
    assert camera.binning == binning


def test_triggered_frames_arrive_in_order_with_their_counts(served):
    camera, server = served
    counts = list(range(1000, 1024))
    with Camera(server.url, read_timeout_s=3.0, binning=2) as driver:
        sweep = run_triggers(camera, counts)
        received = []
        while len(received) < len(counts):
            frame = read_until(driver, lambda f: f.stamp is not None and f.stamp.triggered)
            received.append(frame.stamp.counter)
        sweep.join(timeout=5)
    assert received == counts
    assert driver.stats.lost_triggered == 0


def test_laser_line_lies_where_the_geometry_puts_it(served, scene):
    camera, server = served
    rig = scene.rig
    scene.place("off")
    angle = 37.0
    # A point of the left laser plane on the plate: the plane cut with z = 0, near the arm axis.
    plate_from_arm = rig.plate_from_arm(angle)
    laser = rig.lasers[0]
    normal = plate_from_arm[:3, :3] @ laser.normal
    origin = plate_from_arm[:3, :3] @ laser.origin_mm + plate_from_arm[:3, 3]
    direction = np.cross(normal, [0.0, 0.0, 1.0])
    # The point of the line nearest the axis solves n.p = n.origin on z = 0; then move along the line.
    horizontal = normal[:2] / np.linalg.norm(normal[:2])
    base = np.append(horizontal * (normal @ origin) / (normal[:2] @ horizontal), 0.0)
    points = np.array([base + 40.0 * direction, base + 41.0 * direction])
    assert np.allclose(points @ normal, normal @ origin)
    camera_from_plate = np.linalg.inv(rig.plate_from_camera(angle))
    rvec, _ = cv2.Rodrigues(camera_from_plate[:3, :3])
    pixels, _ = cv2.projectPoints(points, rvec, camera_from_plate[:3, 3], rig.camera_matrix, rig.dist_coeffs)
    (u, v), (u2, v2) = pixels.reshape(-1, 2)
    row = int(round(v))
    expected_u = u + (row - v) * (u2 - u) / (v2 - v)

    with Camera(server.url, read_timeout_s=3.0, binning=1) as driver:
        camera.trigger(1, angle, (False, False))
        camera.trigger(2, angle, (True, False))
        off = read_until(driver, lambda f: f.stamp is not None and f.stamp == FrameStamp(True, 1))
        on = read_until(driver, lambda f: f.stamp is not None and f.stamp.triggered)
    assert on.stamp == FrameStamp(True, 2)
    red = on.image[row, :, 2].astype(float) - off.image[row, :, 2].astype(float)
    lo = int(expected_u) - 10
    window = red[lo:lo + 21]
    peak = int(np.argmax(window))
    assert window[peak] > 40, "no laser line near the predicted pixel"
    near = np.clip(window[max(peak - 3, 0):peak + 4], 0, None)
    centroid = lo + max(peak - 3, 0) + float(np.sum(np.arange(len(near)) * near) / np.sum(near))
    assert abs(centroid - expected_u) < 1.0
    # Mostly red light: green and blue barely change.
    green = on.image[row, lo:lo + 21, 1].astype(float) - off.image[row, lo:lo + 21, 1].astype(float)
    assert green.max() < 0.3 * window[peak]


def laser_pixels(frame) -> int:
    image = frame.image.astype(int)
    return int(np.sum(image[:, :, 2] - image[:, :, 1] > 30))


def test_free_run_shows_a_laser_change_only_after_flush(served, scene):
    camera, server = served
    scene.place("off")
    scene.set_lasers(False, False)
    with Camera(server.url, read_timeout_s=3.0, binning=2) as driver:
        driver.flush(4)
        before = driver.read()
        scene.set_lasers(True, False)
        stale = driver.read()
        driver.flush(3)
        fresh = driver.read()
    assert not before.stamp.triggered and not fresh.stamp.triggered
    assert laser_pixels(before) < 20
    assert laser_pixels(stale) < 20, "the free-running camera should show the state of two frames ago"
    assert laser_pixels(fresh) > 200


def test_dropped_frames_leave_gaps_in_the_counts(scene):
    camera, server = serve(scene, drop_rate=0.3)
    counts = list(range(60))
    try:
        with Camera(server.url, read_timeout_s=3.0, binning=2) as driver:
            sweep = run_triggers(camera, counts)
            received = []
            while True:  # triggered frames come in order; the first free-run frame after the sweep ends them
                frame = driver.read()
                if frame.stamp.triggered:
                    received.append(frame.stamp.counter)
                elif not sweep.is_alive() and received:
                    break
            sweep.join(timeout=5)
    finally:
        server.stop()
    assert received == sorted(received) and set(received) <= set(counts)
    missing = len(counts) - len(received)
    assert 6 <= missing <= 32  # 18 expected
    assert camera.frames_dropped == missing
    assert driver.stats.lost_triggered == (received[-1] - received[0] + 1) - len(received)


def test_transient_disconnect_is_reported_then_reconnect_works(served):
    camera, server = served
    driver = Camera(server.url, read_timeout_s=2.0, binning=2)
    driver.open()
    try:
        driver.read()
        server.disconnect(1.0)
        started = time.monotonic()
        with pytest.raises((DeviceDisconnected, DeviceTimeout)) as info:
            for _ in range(20):
                driver.read()
        assert time.monotonic() - started < SLACK * driver.read_timeout_s  # noticed, not hung on the stream
        assert "camera" in str(info.value)
        driver.reconnect(window_s=6.0)
        frame = driver.read()
        assert frame.stamp is not None and frame.image.shape == (480, 640, 3)
        assert driver.stats.reconnects == 1
    finally:
        driver.close()


def test_permanent_disconnect_fails_clearly_within_the_window(served):
    camera, server = served
    driver = Camera(server.url, read_timeout_s=1.0, binning=2)
    driver.open()
    server.disconnect(None)
    with pytest.raises((DeviceDisconnected, DeviceTimeout)):
        for _ in range(20):
            driver.read()
    started = time.monotonic()
    with pytest.raises(DeviceDisconnected, match="did not come back within 1.5 s"):
        driver.reconnect(window_s=1.5)
    assert time.monotonic() - started < 1.5 + SLACK * driver.read_timeout_s  # the window and one last try


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_with_nothing_behind_it_is_not_found():
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    started = time.monotonic()
    with pytest.raises(DeviceNotFound, match="check the URL"):
        Camera(url, read_timeout_s=2.0).open()
    assert time.monotonic() - started < SLACK * 2.0  # refused within the open timeout, not retried forever


class _PlainMjpeg(BaseHTTPRequestHandler):
    """An ordinary IP camera: MJPEG without the rig's frame stamp."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        jpeg = cv2.imencode(".jpg", image)[1].tobytes()
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                self.wfile.write(jpeg + b"\r\n")
                time.sleep(0.02)
        except OSError:
            pass


def test_a_camera_without_frame_stamps_is_refused():
    http = ThreadingHTTPServer(("127.0.0.1", 0), _PlainMjpeg)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        with pytest.raises(WrongDevice, match="frame stamp"):
            Camera(f"http://127.0.0.1:{http.server_address[1]}/video", read_timeout_s=2.0).open()
    finally:
        http.shutdown()
        http.server_close()
