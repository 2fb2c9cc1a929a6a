"""Benchmark of the virtual camera and the camera driver: `.venv/bin/python bench/bench_camera.py`.

Prints one table: render time per frame (native and binned, split into ambient / laser / compose / encode),
triggered frames per second served over HTTP (raw reader, no decoding), frames per second decoded by the
driver through cv2 at binning 1 and 2, and the baseline of ray casting every pixel at full resolution.
The scene is the FIND template foot on the scan station, rendered as in a sweep (angle changes every frame,
lasers alternate left/right).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import replace
from urllib.parse import urlparse

import numpy as np
import open3d as o3d

from device.camera import Camera
from device.frame_stamp import FrameStamp
from simulator.camera import VirtualCamera
from simulator.camera_server import CameraServer
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import template_subject

FRAMES = 40
STEP_DEG = 1.5


def sweep_states(scene: Scene, n: int):
    base = scene.snapshot()
    return [replace(base, arm_angle_deg=STEP_DEG * k, lasers=(k % 2 == 0, k % 2 == 1)) for k in range(n)]


def render_row(camera: VirtualCamera, scene: Scene, binning: int) -> dict[str, float]:
    camera.binning = binning
    totals, parts = [], []
    for k, state in enumerate(sweep_states(scene, FRAMES)):
        started = time.perf_counter()
        camera.capture(state, FrameStamp(True, k))
        totals.append((time.perf_counter() - started) * 1e3)
        t = camera.timing
        parts.append([t.ambient_ms, t.laser_ms, t.compose_ms, t.encode_ms])
    ambient, laser, compose, encode = np.median(parts, axis=0)
    return {"total": float(np.median(totals)), "ambient": ambient, "laser": laser, "compose": compose,
            "encode": encode}


def triggered_sweep(camera: VirtualCamera, n: int) -> threading.Thread:
    def run():
        for k in range(n):
            camera.trigger(k, STEP_DEG * k, (k % 2 == 0, k % 2 == 1))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def served_fps(camera: VirtualCamera, server: CameraServer, binning: int) -> float:
    """Triggered frames per second reaching a raw HTTP reader that only splits the parts."""
    url = urlparse(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?binning={binning}")
    response = conn.getresponse()
    time.sleep(0.2)  # let the stream session open before the sweep starts
    started = time.perf_counter()
    sweep = triggered_sweep(camera, FRAMES)
    for _ in range(FRAMES):  # parts are split by their Content-Length; the JPEG is not decoded
        length = 0
        while (line := response.fp.readline().strip()) != b"" or not length:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        response.fp.read(length + 2)
    elapsed = time.perf_counter() - started
    sweep.join()
    conn.close()
    return FRAMES / elapsed


def driver_fps(camera: VirtualCamera, server: CameraServer, binning: int) -> float:
    """Triggered frames per second read and decoded by the driver (render, serve and decode overlap)."""
    with Camera(server.url, read_timeout_s=5.0, binning=binning) as driver:
        started = time.perf_counter()
        sweep = triggered_sweep(camera, FRAMES)
        received = 0
        while received < FRAMES:
            frame = driver.read()
            received += bool(frame.stamp is not None and frame.stamp.triggered)
        elapsed = time.perf_counter() - started
        sweep.join()
    return FRAMES / elapsed


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
    subject = template_subject()
    scene = Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=1)
    scene.place("left")
    camera = VirtualCamera(scene, seed=1)
    rows = {b: render_row(camera, scene, b) for b in (1, 2)}
    baseline = full_raycast_ms(camera, scene)
    server = CameraServer(camera)
    server.start()
    try:
        served = {b: served_fps(camera, server, b) for b in (1, 2)}
        decoded = {b: driver_fps(camera, server, b) for b in (1, 2)}
    finally:
        server.stop()

    print(f"virtual camera, FIND template foot on the scan station, {FRAMES} sweep frames per row")
    print(f"{'':34}{'native 1280x960':>18}{'binned 640x480':>18}")
    for key, label in [("total", "render ms/frame (incl. JPEG)"), ("ambient", "  ambient ms"),
                       ("laser", "  laser lines ms"), ("compose", "  noise + compose ms"),
                       ("encode", "  JPEG encode ms")]:
        print(f"{label:34}{rows[1][key]:>18.1f}{rows[2][key]:>18.1f}")
    print(f"{'frames/s served (raw HTTP reader)':34}{served[1]:>18.1f}{served[2]:>18.1f}")
    print(f"{'frames/s decoded by driver (cv2)':34}{decoded[1]:>18.1f}{decoded[2]:>18.1f}")
    print(f"{'baseline: ray cast every pixel ms':34}{baseline:>18.1f}{'':>18}")
    print(f"{'  (cast only) / our full render':34}{baseline / rows[1]['total']:>18.2f}{'':>18}")
    print(f"two-foot store scan, 480 native frames: ~{480 * rows[1]['total'] / 1000:.1f} s of rendering")


if __name__ == "__main__":
    main()
