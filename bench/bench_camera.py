"""Benchmark of the virtual camera and the camera driver: `.venv/bin/python bench/bench_camera.py`.

Prints one table, next to the figures of the previous renderer (ray cast ambient, numpy laser splats; as
reported when it was written, so under whatever load the machine had then):
- render time per frame (native and binned, split into ambient / laser / compose / encode), wall and CPU;
- triggered frames per second served over HTTP to a raw reader (splits the parts, no decoding);
- triggered frames per second decoded by the driver (cv2) while the camera renders them;
- frames per second the driver decodes on its own (pre-rendered frames, no rendering behind them);
- a two-foot store scan: 480 native frames triggered at 53 fps, read by the driver;
- the baseline of ray casting every pixel at full resolution.
As in the store, readers and the driver run in another process than the simulator. The scene is the FIND
template foot on the scan station, rendered as in a sweep (angle changes every frame, lasers alternate).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import threading
import time
from dataclasses import replace
from urllib.parse import urlparse

import numpy as np
import open3d as o3d

from core.frame_stamp import FrameStamp
from device.camera import Camera
from simulator.camera import EncodedFrame, VirtualCamera
from simulator.camera_server import CameraServer
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import template_subject

FRAMES = 40
DECODE_FRAMES = 200
STORE_SCAN_FRAMES = 480  # two feet, 240 native frames each
BOARD_TRIGGER_HZ = 53.0
STEP_DEG = 1.5
BEFORE = {  # the previous renderer, as its report gave them: (native, binned)
    "total": ("75-85", "~33"), "ambient": ("63", ""), "laser": ("16", ""), "encode": ("3", ""),
    "served": ("12-13", "12-13"), "decoded": ("4-11", ""),
}


# --- in the reader process ---


def _read_raw(url: str, binning: int, frames: int, ready, results) -> None:
    """Split `frames` parts off the stream by their Content-Length (the camera does not free-run meanwhile, so
    they are the sweep's); report when the last arrived."""
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"{parts.path}?binning={binning}")
    response = conn.getresponse()
    ready.set()
    for _ in range(frames):
        length = 0
        while (line := response.fp.readline().strip()) != b"" or not length:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        response.fp.read(length + 2)
    results.put(time.monotonic())
    conn.close()


def _read_driver(url: str, binning: int, frames: int, ready, results) -> None:
    """Read frames through the driver until `frames` triggered ones arrived; report the time and CPU used."""
    with Camera(url, read_timeout_s=10.0, binning=binning) as driver:
        ready.set()
        received, cpu_s = 0, time.process_time()
        while received < frames:
            frame = driver.read()
            received += bool(frame.stamp is not None and frame.stamp.triggered)
        results.put((time.monotonic(), (time.process_time() - cpu_s) / frames, driver.stats.lost_triggered))


# --- in the simulator process ---


def sweep_states(scene: Scene, n: int):
    base = scene.snapshot()
    return [replace(base, arm_angle_deg=STEP_DEG * k, lasers=(k % 2 == 0, k % 2 == 1)) for k in range(n)]


def render_row(camera: VirtualCamera, scene: Scene, binning: int) -> dict[str, float]:
    camera.binning = binning
    totals, cpu, parts = [], [], []
    for k, state in enumerate(sweep_states(scene, FRAMES)):
        started, started_cpu = time.perf_counter(), time.thread_time()
        camera.capture(state, FrameStamp(True, k))
        totals.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.thread_time() - started_cpu) * 1e3)
        t = camera.timing
        parts.append([t.ambient_ms, t.laser_ms, t.compose_ms, t.encode_ms])
    ambient, laser, compose, encode = np.median(parts, axis=0)
    return {"total": float(np.median(totals)), "cpu": float(np.median(cpu)), "ambient": ambient, "laser": laser,
            "compose": compose, "encode": encode}


def board_sweep(camera: VirtualCamera, n: int, rate_hz: float | None = None) -> threading.Thread:
    """Triggers as the board fires them: at `rate_hz` (or back to back), each blocking while the host lags."""

    def run():
        started = time.monotonic()
        for k in range(n):
            if rate_hz:
                time.sleep(max(0.0, started + k / rate_hz - time.monotonic()))
            camera.trigger(k, STEP_DEG / 2 * k, (k % 2 == 0, k % 2 == 1))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def in_reader_process(target, url: str, binning: int, frames: int, feed) -> tuple[float, object]:
    """Run `target` in a fresh process; once it is connected, start `feed()`; (seconds to the last frame, result)."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    reader = context.Process(target=target, args=(url, binning, frames, ready, results), daemon=True)
    reader.start()
    if not ready.wait(60):
        raise RuntimeError("the reader process did not connect to the camera within 60 s")
    time.sleep(0.3)  # the free-running camera settles the new session
    started = time.monotonic()
    thread = feed()
    result = results.get(timeout=120)
    thread.join()
    reader.join(10)
    finished = result[0] if isinstance(result, tuple) else result
    return finished - started, result


def prerendered_feed(camera: VirtualCamera, server: CameraServer, scene: Scene, binning: int, n: int):
    """Frames rendered beforehand, pushed into the stream as fast as the host takes them."""
    camera.binning = binning
    frames = [camera.capture(state, FrameStamp(True, 0)) for state in sweep_states(scene, 8)]

    def feed() -> threading.Thread:
        def run():
            for k in range(n):
                server.queue.deliver(EncodedFrame(frames[k % 8].jpeg, FrameStamp(True, k), binning), True)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    return feed


def full_raycast_ms(camera: VirtualCamera, scene: Scene) -> float:
    """Baseline: one ray per native pixel, cast against the foot and the plate together."""
    rig = scene.rig
    stage = camera._stage(scene.snapshot())
    raycaster = o3d.t.geometry.RaycastingScene()
    for surface in stage.surfaces:
        raycaster.add_triangles(o3d.core.Tensor(surface.vertices_mm.astype(np.float32)),
                                o3d.core.Tensor(surface.triangles.astype(np.uint32)))
    rays = raycaster.create_rays_pinhole(o3d.core.Tensor(rig.camera_matrix), o3d.core.Tensor(
        np.linalg.inv(rig.plate_from_camera(0.0))), rig.width_px, rig.height_px)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        raycaster.cast_rays(rays)
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    subject = template_subject()
    scene = Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=1)
    scene.place("left")
    camera = VirtualCamera(scene, seed=1)
    rows = {b: render_row(camera, scene, b) for b in (1, 2)}
    baseline = full_raycast_ms(camera, scene)
    server = CameraServer(camera)
    server.start()
    served, decoded, decode_only, driver_cpu = {}, {}, {}, {}
    try:
        for b in (1, 2):
            camera.stop()  # no free-run frames among the sweep's for the raw reader
            seconds, _ = in_reader_process(_read_raw, server.url, b, FRAMES, lambda: board_sweep(camera, FRAMES))
            served[b] = FRAMES / seconds
            camera.start()
            seconds, _ = in_reader_process(_read_driver, server.url, b, FRAMES, lambda: board_sweep(camera, FRAMES))
            decoded[b] = FRAMES / seconds
            feed = prerendered_feed(camera, server, scene, b, DECODE_FRAMES)
            seconds, result = in_reader_process(_read_driver, server.url, b, DECODE_FRAMES, feed)
            decode_only[b], driver_cpu[b] = DECODE_FRAMES / seconds, result[1] * 1e3
        camera.binning = 1
        sim_cpu_s = time.process_time()
        store_s, store = in_reader_process(_read_driver, server.url, 1, STORE_SCAN_FRAMES,
                                           lambda: board_sweep(camera, STORE_SCAN_FRAMES, BOARD_TRIGGER_HZ))
        sim_cpu_ms = (time.process_time() - sim_cpu_s) / STORE_SCAN_FRAMES * 1e3
    finally:
        server.stop()

    print(f"virtual camera, FIND template foot on the scan station, {FRAMES} sweep frames per row, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'':36}{'native 1280x960':>24}{'binned 640x480':>24}")
    print(f"{'':36}{'before':>12}{'now':>12}{'before':>12}{'now':>12}")

    def line(label: str, now: dict, key: str, digits: int = 1) -> None:
        before = BEFORE.get(key, ("", ""))
        print(f"{label:36}{before[0]:>12}{now[1]:>12.{digits}f}{before[1]:>12}{now[2]:>12.{digits}f}")

    for key, label in [("total", "render ms/frame (incl. JPEG), wall"), ("cpu", "  CPU ms/frame (render thread)"),
                       ("ambient", "  ambient ms"), ("laser", "  laser lines ms"),
                       ("compose", "  noise + compose ms"), ("encode", "  JPEG encode ms")]:
        line(label, {b: rows[b][key] for b in (1, 2)}, key)
    line("frames/s served (raw HTTP reader)", served, "served")
    line("frames/s decoded by driver (cv2)", decoded, "decoded")
    line("frames/s driver decodes on its own", decode_only, "decode_only")
    line("  driver CPU ms/frame", driver_cpu, "driver_cpu")
    print(f"{'baseline: ray cast every pixel ms':36}{'':>12}{baseline:>12.1f}")
    print(f"two-foot store scan: {STORE_SCAN_FRAMES} native frames, board at {BOARD_TRIGGER_HZ:g} fps, read by the "
          f"driver in another process: {store_s:.1f} s wall ({STORE_SCAN_FRAMES / store_s:.1f} frames/s), "
          f"{store[2]} frames lost")
    idle_s = STORE_SCAN_FRAMES * max(sim_cpu_ms, 1e3 / BOARD_TRIGGER_HZ) / 1e3
    print(f"  CPU per frame: simulator process {sim_cpu_ms:.1f} ms (all threads), driver process "
          f"{store[1] * 1e3:.1f} ms; with a core each (no other load) the scan would take ~{idle_s:.0f} s")


if __name__ == "__main__":
    main()
