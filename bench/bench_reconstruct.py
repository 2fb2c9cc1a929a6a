"""Speed of reconstruction, measurement and the whole passport of one store-profile scan.

    .venv/bin/python bench/bench_reconstruct.py [--scan DIR] [--repeats N] [--seed N]

Input: a scan folder with raw/ and truth.json (`footfit scan --simulator --out DIR` writes both); by default
a store-profile scan generated once with the simulator through the real drivers and kept under the temporary
folder for the next run. The rig is calibrated from the hidden truth
(a benchmark may; the product never does), so the figures are of the reconstruction alone.

Prints three tables, times after one warm-up run (numba compilation), best of --repeats:
1. wall time per foot: reconstruction, measurement, their sum against the 1.0 s target; and the whole passport
   (both feet + plate) against 2.5 s;
2. the share of each reconstruction stage;
3. each numba kernel beside the plain numpy version of the same step, same input, with the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from core.rawscan import RawScan
from core.vocabulary import SIDES
from device.profile import get_profile
from fitcore.scan.calibration import RigCalibration
from fitcore.scan.laser_peaks import laser_peaks, laser_peaks_numpy
from fitcore.scan.measure import measure_points
from fitcore.scan.normals import nearest_neighbours, plane_fits, plane_fits_numpy
from fitcore.scan.pipeline import passport_from_scan
from fitcore.scan.reconstruct import reconstruct_foot
from fitcore.scan.triangulate import peaks_to_plate, peaks_to_plate_numpy

TARGET_FOOT_S = 1.0
TARGET_PASSPORT_S = 2.5


def generated_scan(seed: int) -> Path:
    """A store-profile scan from the simulator through the real drivers (pseudo-terminals, HTTP camera), made
    once per seed and kept in the temporary folder."""
    from core.settings import DeviceSettings
    from device.rig import open_scanner
    from device.session import ScanSession
    from simulator.scanner import SimulatedScanner, SimulatorConfig

    profile = get_profile("store")
    out = Path(tempfile.gettempdir()) / f"footfit-bench-store-{seed}-{profile.frames_per_foot}"  # kept per profile
    if (out / "raw" / "scan.json").exists() and (out / "truth.json").exists():
        return out
    print(f"generating a store-profile scan (seed {seed}) into {out} ...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="footfit-bench-ports-") as ports:
        with SimulatedScanner(SimulatorConfig(seed=seed, port_dir=Path(ports))) as sim:
            devices = DeviceSettings(board_url=sim.endpoints.board_url, plate_url=sim.endpoints.plate_url,
                                     camera_url=sim.endpoints.camera_url)
            with open_scanner(devices, profile) as scanner:
                raw = ScanSession(scanner.board, scanner.plate, scanner.camera, profile).run()
            print(f"scan session {time.perf_counter() - started:.1f} s ({profile.describe()})", flush=True)
            raw.save(out)
            sim.write_truth(out / "truth.json")
    return out


def truth_calibration(scan_dir: Path) -> RigCalibration:
    """The exact calibration of the scan's rig, from the hidden truth saved with the scan (benchmarks only; the
    saved geometry, not today's simulator, so that a kept scan stays consistent)."""
    from simulator.rig import LaserGeometry, RigGeometry
    from testing.sim_truth import calibration_from_truth

    rig = json.loads((scan_dir / "truth.json").read_text())["rig"]
    array = np.asarray
    return calibration_from_truth(RigGeometry(
        serial=rig["serial"], camera_matrix=array(rig["camera_matrix"]), dist_coeffs=array(rig["dist_coeffs"]),
        arm_from_camera=array(rig["arm_from_camera"]),
        lasers=tuple(LaserGeometry(array(l["origin_mm"]), array(l["normal"]), l["offset_mm"]) for l in rig["lasers"]),
        axis_point_mm=array(rig["axis_point_mm"]), axis_direction=array(rig["axis_direction"]),
        home_offset_deg=rig["home_offset_deg"], encoder_amplitude_deg=rig["encoder_amplitude_deg"],
        encoder_phase_deg=rig["encoder_phase_deg"], encoder_scale=rig["encoder_scale"],
        width_px=rig["sensor_px"][0], height_px=rig["sensor_px"][1]))


def best_of(repeats: int, run, warm_up: bool = True) -> tuple[float, object]:
    """(shortest wall time in s, last result) of `repeats` calls, after one warm-up call (numba compiles or
    loads its cache on the first)."""
    result = run() if warm_up else None
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=Path, help="scan folder with raw/ and truth.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="subject of a generated scan")
    args = parser.parse_args()
    scan_dir = args.scan or generated_scan(args.seed)
    raw = RawScan.load(scan_dir)
    cal = truth_calibration(scan_dir)
    n, h, w = raw.feet["left"].images.shape
    print(f"scan {scan_dir}: profile {raw.profile}, {n} frames of {w}x{h} per foot, rig {raw.rig_serial}")
    stages = print_wall_times(raw, cal, args.repeats)
    print_stage_shares(stages)
    print_kernels(raw.feet["left"], cal, args.repeats)


def print_wall_times(raw: RawScan, cal: RigCalibration, repeats: int) -> dict[str, float]:
    """Table 1; returns the seconds per reconstruction stage, summed over both feet (last run of each)."""
    stages: dict[str, float] = {}
    recon, measure, points = {}, {}, {}
    for side in SIDES:
        recon[side], cloud = best_of(repeats, lambda: reconstruct_foot(raw.feet[side], cal))
        measure[side], _ = best_of(repeats, lambda: measure_points(cloud.points_mm, side))
        points[side] = len(cloud.points_mm)
        for stage, seconds in cloud.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    both = {side: recon[side] + measure[side] for side in SIDES}
    passport_s, _ = best_of(repeats, lambda: passport_from_scan(raw, cal))
    print(f"\n{f'wall time (best of {repeats})':30} {'left':>8} {'right':>8} {'target':>8}")
    print(f"{'reconstruction s':30} {recon['left']:8.3f} {recon['right']:8.3f}")
    print(f"{'measurement s':30} {measure['left']:8.3f} {measure['right']:8.3f}")
    print(f"{'reconstruction + measurement s':30} {both['left']:8.3f} {both['right']:8.3f} {TARGET_FOOT_S:8.1f}  "
          f"{'ok' if max(both.values()) <= TARGET_FOOT_S else 'OVER'}")
    print(f"{'points kept':30} {points['left']:8d} {points['right']:8d}")
    print(f"{'whole passport (2 feet + plate) s':34} {passport_s:13.3f} {TARGET_PASSPORT_S:8.1f}  "
          f"{'ok' if passport_s <= TARGET_PASSPORT_S else 'OVER'}")
    return stages


def print_stage_shares(stages: dict[str, float]) -> None:
    total = sum(stages.values())
    print(f"\n{'reconstruction stage':30} {'s / foot':>8} {'share':>8}")
    for stage, seconds in stages.items():
        print(f"{stage:30} {seconds / len(SIDES):8.3f} {seconds / total:8.0%}")


def print_kernels(foot, cal: RigCalibration, repeats: int) -> None:
    print(f"\n{'kernel (one foot, same input)':32} {'numba s':>8} {'numpy s':>8} {'ratio':>6}  same result")
    for name, fast, slow, same in kernel_pairs(foot, cal):
        fast_s, fast_out = best_of(repeats, fast)
        slow_s, slow_out = best_of(1, slow, warm_up=False)
        print(f"{name:32} {fast_s:8.3f} {slow_s:8.3f} {slow_s / fast_s:6.1f}  {same(fast_out, slow_out)}")


def kernel_pairs(foot, cal: RigCalibration):
    """(step, numba call, numpy call, agreement check) for each kernel, on this foot's own data."""
    peaks = laser_peaks(foot.images, foot.lasers, closed=True)
    width_px = foot.images.shape[2]
    points, _, _ = peaks_to_plate(peaks, foot.lasers, foot.angles_deg, cal, width_px)
    points = points[(points[:, 2] > 1.0) & (points[:, 2] < 120.0)]
    cloud = points[np.unique(np.floor(points).astype(np.int64), axis=0, return_index=True)[1]]  # ~1 mm cells
    _, index = nearest_neighbours(cloud, 16)
    usable = np.ones(len(cloud), bool)
    view = cloud + [0.0, 0.0, 500.0]

    def same_peaks(a, b):
        return "yes" if len(a) == len(b) and np.array_equal(a.u_px, b.u_px) else "NO"

    def same_points(a, b):
        return f"max {np.abs(a[0] - b[0]).max():.1e} mm" if np.array_equal(a[2], b[2]) else "NO (rays differ)"

    def same_fits(a, b):
        return f"normals max {np.nanmax(np.abs(a[0] - b[0])):.1e}"

    return [
        ("laser peaks", lambda: laser_peaks(foot.images, foot.lasers, closed=True),
         lambda: laser_peaks_numpy(foot.images, foot.lasers, closed=True), same_peaks),
        (f"triangulation ({len(peaks)} peaks)",
         lambda: peaks_to_plate(peaks, foot.lasers, foot.angles_deg, cal, width_px),
         lambda: peaks_to_plate_numpy(peaks, foot.lasers, foot.angles_deg, cal, width_px), same_points),
        (f"plane fits ({len(cloud)} points)", lambda: plane_fits(cloud, index, usable, view),
         lambda: plane_fits_numpy(cloud, index, usable, view), same_fits),
    ]


if __name__ == "__main__":
    main()
