"""`footfit scan`, `footfit calibrate` and `footfit measure`: the scanner from the command line.

A scan or a calibration runs on a rig from a rig provider (device.rig): the hardware of the `device` settings, or
with `--simulator` a simulated rig in a child process on real ports. The functions below are what other commands
(`footfit demo`) and tests call; the `cmd_*` handlers print and return exit codes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from core.errors import ScanCancelled
from core.settings import DeviceSettings, Settings, get_settings
from core.sizes import sizes_for
from device.board import MotorBoard
from device.camera import Camera
from device.capture import DEFAULT_VIEWS, QUICK_VIEWS, CalibrationProgress, ViewPlan, capture_calibration_stills
from device.profile import get_profile
from device.rig import HardwareRigProvider, RigProvider, open_scanner
from device.session import ScanSession
from fitcore.scan.calibrate import calibration_from_stills
from fitcore.scan.calibration import RigCalibration, Tolerances, load_calibration, save_calibration
from fitcore.scan.measure import measure_file
from fitcore.scan.pipeline import passport_from_scan
from simulator.process import SimulatedRigProvider
from simulator.serve import add_simulator_options, simulator_config

MEASURES = ("length_mm", "ball_width_mm", "ball_girth_mm", "instep_girth_mm", "heel_width_mm", "instep_height_mm")


def rig_provider(args: argparse.Namespace, settings: Settings, truth_path: Path | None = None) -> RigProvider:
    """The hardware of the settings, or with --simulator a simulated rig as the options describe."""
    if not args.simulator:
        return HardwareRigProvider(settings.device)
    simulator_config(args)  # a bad fault spec or subject is refused before anything starts
    return SimulatedRigProvider(settings.device, args.seed, args.subject_side, args.subject_mesh, args.faults,
                                truth_path)


# --- calibrate ---
def calibrate(settings: Settings, provider: RigProvider, rig_serial: str, views: ViewPlan = DEFAULT_VIEWS,
              on_progress: Callable[[CalibrationProgress], None] | None = None,
              confirm: Callable[[str], None] | None = None,
              tolerances: Tolerances = Tolerances()) -> tuple[RigCalibration, Path]:
    """Capture the calibration stills on the provider's rig, solve the rig from them and store the result
    (refused when out of tolerance)."""
    rig = provider.connect(rig_serial)
    try:
        devices = rig.devices
        with MotorBoard.from_settings(devices) as board:
            camera = Camera(devices.camera_url, read_timeout_s=devices.camera_read_timeout_s, binning=1)
            try:
                stills = capture_calibration_stills(board, camera, views, on_progress, confirm)
            finally:
                camera.close()
            serial = board.identity.serial
    finally:
        rig.close()
    if on_progress is not None:
        on_progress(CalibrationProgress("fit", 0.9, f"fitting {len(stills)} stills"))
    calibration = calibration_from_stills(stills, serial)
    if on_progress is not None:
        on_progress(CalibrationProgress("done", 1.0, f"calibration {calibration.calibration_id}"))
    return calibration, save_calibration(settings.data_dir, calibration, tolerances)


def cmd_calibrate(args: argparse.Namespace) -> int:
    settings = get_settings()

    def confirm(instruction: str) -> None:  # staff act on the rig display, then press Enter
        input(f"rig display: {instruction}. Press Enter when done. ")

    def progress(p: CalibrationProgress) -> None:
        print(f"\r[{p.fraction * 100:5.1f}%] {p.phase:7s} {p.message:50s}", end="", file=sys.stderr, flush=True)

    try:
        calibration, path = calibrate(
            settings, rig_provider(args, settings), args.rig, QUICK_VIEWS if args.quick else DEFAULT_VIEWS,
            on_progress=None if args.quiet else progress,
            confirm=None if args.simulator or not sys.stdin.isatty() else confirm)
    finally:
        if not args.quiet:
            print(file=sys.stderr)
    q = calibration.quality
    print(f"calibration {calibration.calibration_id} of rig {calibration.rig_serial} saved to {path}: target "
          f"reprojection RMS {q.reprojection_rms_px:.3f} px, laser plane residuals {q.laser_plane_rms_mm[0]:.3f} / "
          f"{q.laser_plane_rms_mm[1]:.3f} mm, arm axis residual {q.axis_fit_rms_mm:.3f} mm, {q.views} views")
    return 0


# --- scan ---
def _print_progress(progress) -> None:
    angle = "" if progress.arm_angle_deg is None else f" arm {progress.arm_angle_deg:6.1f} deg"
    print(f"\r[{progress.fraction * 100:5.1f}%] {progress.phase:7s}{angle}  ETA {progress.eta_s:4.1f} s  "
          f"{progress.message:40s}", end="", file=sys.stderr, flush=True)


def cmd_scan(args: argparse.Namespace) -> int:
    settings = get_settings()
    profile = get_profile(args.profile or settings.scan_profile)
    out = Path(args.out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    provider = rig_provider(args, settings, staging / "truth.json")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rig = None
    try:
        rig = provider.connect(args.rig)
        raw, calibration = _run_scan(rig.devices, profile, settings.data_dir, quiet=args.quiet)
        rig.close()  # a simulated rig writes its final truth.json (with the faults that fired) as it exits
        result = passport_from_scan(raw, calibration)
        raw.save(staging)
        result.write(staging)
        _publish(staging, out)
    finally:
        if rig is not None:
            rig.close()
        shutil.rmtree(staging, ignore_errors=True)
    s = raw.stats
    feet = result.passport.feet
    print(f"scan written to {out}: passport.json, left.ply, right.ply, raw/; wall {s.wall_seconds:.1f} s scan + "
          f"{sum(result.stage_seconds.values()):.1f} s reconstruction; repaired: board retries {s.board_retries}, "
          f"plate CRC errors {s.plate_crc_errors}, plate drops {s.plate_dropped_frames}, camera frames missing "
          f"{s.camera_missing_frames}, reconnects {s.reconnects}, resumed sweeps {s.resumed_sweeps}")
    for side in ("left", "right"):
        foot = getattr(feet, side)
        m = foot.measurements
        print(f"  {side:5}: length {m.length_mm:.1f} mm, ball width {m.ball_width_mm:.1f}, ball girth "
              f"{m.ball_girth_mm:.1f}, instep girth {m.instep_girth_mm:.1f}, heel width {m.heel_width_mm:.1f}, "
              f"instep height {m.instep_height_mm:.1f}; {foot.toe_shape} toes; EU {foot.sizes.eu:g}")
    return 0


def _run_scan(devices: DeviceSettings, profile, data_dir: Path, quiet: bool):
    """Scan through the drivers; the rig must have a valid calibration (checked before the customer waits)."""
    calibration = {}

    def check_rig(identity) -> None:
        calibration["rig"] = load_calibration(data_dir, identity.serial)

    with open_scanner(devices, profile) as scanner:
        session = ScanSession(scanner.board, scanner.plate, scanner.camera, profile,
                              on_progress=None if quiet else _print_progress,
                              reconnect_window_s=devices.reconnect_window_s, check_rig=check_rig)
        try:
            raw = session.run()
        except KeyboardInterrupt:
            session.cancel()
            raise ScanCancelled("scan cancelled (Ctrl-C); nothing was kept") from None
        finally:
            if not quiet:
                print(file=sys.stderr)
    return raw, calibration["rig"]


def _publish(staging: Path, out: Path) -> None:
    """Move the finished scan into place entry by entry; the staging folder held everything until now."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in staging.iterdir():
        target = out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)


# --- measure ---
def cmd_measure(args: argparse.Namespace) -> int:
    m = measure_file(args.file, args.side)
    sizes = sizes_for(m.length_mm)
    if args.json:
        print(json.dumps({"side": m.side, "measurements": {k: round(getattr(m, k), 2) for k in MEASURES},
                          "toe_shape": m.toe_shape, "sizes": sizes.__dict__,
                          "rig_to_foot": m.foot_from_plate.tolist(), "points": m.points}, indent=1))
    else:
        for k in MEASURES:
            print(f"{k:18} {getattr(m, k):8.1f}")
        print(f"{'toe_shape':18} {m.toe_shape:>8}")
        print("sizes              " + ", ".join(f"{k} {v:g}" for k, v in sizes.__dict__.items()))
    return 0


def add_scan_commands(sub) -> None:
    scan = sub.add_parser("scan", help="scan both feet and write the raw scan",
                          description="Scan both feet through the real drivers (hardware from the settings, or "
                                      "the simulator with --simulator) and write the raw scan under --out.")
    scan.add_argument("--simulator", action="store_true", help="start a simulated rig and scan it")
    scan.add_argument("--profile", choices=("store", "light"), help="scan profile (default: settings, 'store')")
    scan.add_argument("--out", required=True, metavar="DIR", help="output folder")
    scan.add_argument("--quiet", action="store_true", help="no progress line")
    add_simulator_options(scan)
    scan.set_defaults(func=cmd_scan)

    cal = sub.add_parser("calibrate", help="calibrate the rig from images",
                         description="Calibrate the rig (camera intrinsics and distortion, laser planes, arm axis) "
                                     "from images of the calibration target and the plate marks; stores it per rig "
                                     "serial under the data folder, refusing one out of tolerance "
                                     "(docs/calibration.md).")
    cal.add_argument("--simulator", action="store_true", help="calibrate a simulated rig")
    cal.add_argument("--quick", action="store_true", help="fewer views (about a quarter of the time)")
    cal.add_argument("--quiet", action="store_true", help="no progress line")
    add_simulator_options(cal)
    cal.set_defaults(func=cmd_calibrate)

    measure = sub.add_parser("measure", help="measure a foot mesh or point cloud",
                             description="Measure a foot mesh (PLY/OBJ/STL) or PLY point cloud in mm, standing on "
                                         "z = 0, with the same code as a scan (docs/measurements.md).")
    measure.add_argument("file", type=Path, metavar="FILE")
    measure.add_argument("--side", choices=("left", "right"), required=True)
    measure.add_argument("--json", action="store_true", help="machine-readable output")
    measure.set_defaults(func=cmd_measure)
