"""The `footfit` command line: one entry point for staff, developers and the simulator."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from fitcore.errors import FootfitError, ScanCancelled
from fitcore.match_commands import add_match_commands
from fitcore.settings import DeviceSettings, get_settings
from api.commands import add_service_commands
from api.demo import add_demo_command


def _add_simulator_options(p: argparse.ArgumentParser) -> None:
    from simulator.rig import DEMO_RIG_SERIAL

    p.add_argument("--rig", default=DEMO_RIG_SERIAL, metavar="SERIAL",
                   help=f"simulated rig; its hidden tolerances derive from the serial (default {DEMO_RIG_SERIAL})")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="drives the subject, its placement, the noise")
    p.add_argument("--subject-mesh", type=Path, metavar="PATH",
                   help="a foot mesh (PLY/OBJ/STL, mm, +z up, sole on z=0, toes +x) as the subject")
    p.add_argument("--subject-side", choices=("left", "right"), default="left",
                   help="which foot the subject mesh is; the other foot is its mirror image")
    p.add_argument("--faults", default="", metavar="SPEC",
                   help="fault injection, e.g. 'corrupt=0.001,drop=0.02,camera-drop=0.01,stall=board@0.5,"
                        "disconnect=plate@0.3:2' (FRACTION of the two-foot scan; no :SECONDS = for good)")


def _simulator_config(args: argparse.Namespace, port_dir: Path | None = None):
    from simulator.faults import parse_faults
    from simulator.scanner import SimulatorConfig

    return SimulatorConfig(rig_serial=args.rig, seed=args.seed, subject_mesh=args.subject_mesh,
                           subject_side=args.subject_side, faults=parse_faults(args.faults), port_dir=port_dir)


def _simulator_process(args: argparse.Namespace, truth_path: Path | None = None):
    from simulator.process import SimulatorProcess, simulator_argv

    return SimulatorProcess(simulator_argv(args.rig, args.seed, args.subject_side, args.subject_mesh, args.faults),
                            truth_path)


# --- footfit simulator serve ---
def cmd_simulator_serve(args: argparse.Namespace) -> int:
    from simulator.scanner import SimulatedScanner

    scanner = SimulatedScanner(_simulator_config(args, args.port_dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with scanner:
        endpoints = scanner.endpoints
        if args.truth_out:
            scanner.write_truth(args.truth_out)
        print(endpoints.to_json(), flush=True)
        if not args.quiet:
            print(f"simulated rig {args.rig} (seed {args.seed}) ready:\n"
                  f"  board  {endpoints.board_url}\n  plate  {endpoints.plate_url}\n"
                  f"  camera {endpoints.camera_url}\n"
                  f"point the drivers at it, e.g. FOOTFIT_DEVICE__BOARD_URL={endpoints.board_url}; Ctrl-C stops",
                  file=sys.stderr, flush=True)
        stop.wait()
        if args.truth_out:
            scanner.write_truth(args.truth_out)  # again, with the faults that fired
    return 0


# --- footfit scan ---
def _print_progress(progress) -> None:
    angle = "" if progress.arm_angle_deg is None else f" arm {progress.arm_angle_deg:6.1f} deg"
    print(f"\r[{progress.fraction * 100:5.1f}%] {progress.phase:7s}{angle}  ETA {progress.eta_s:4.1f} s  "
          f"{progress.message:40s}", end="", file=sys.stderr, flush=True)


def cmd_scan(args: argparse.Namespace) -> int:
    from device.profile import get_profile
    from fitcore.pipeline import passport_from_scan

    settings = get_settings()
    profile = get_profile(args.profile or settings.scan_profile)
    if args.simulator:
        _simulator_config(args)  # a bad fault spec or subject is refused before anything starts
    out = Path(args.out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    sim = None
    try:
        devices = settings.device
        if args.simulator:
            sim = _simulator_process(args, staging / "truth.json")
            devices = devices.model_copy(update={
                "board_url": sim.endpoints["board_url"], "plate_url": sim.endpoints["plate_url"],
                "camera_url": sim.endpoints["camera_url"]})
        raw, calibration = _run_scan(devices, profile, settings.data_dir, quiet=args.quiet)
        if sim:
            sim.stop()  # it writes its final truth.json (with the faults that fired) as it exits
        result = passport_from_scan(raw, calibration)
        raw.save(staging)
        result.write(staging)
        _publish(staging, out)
    finally:
        if sim:
            sim.stop()
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
    from device.scanner import open_scanner
    from device.session import ScanSession
    from fitcore.calibration import load_calibration

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


# --- footfit calibrate ---
def cmd_calibrate(args: argparse.Namespace) -> int:
    from fitcore.calibrate import DEFAULT_VIEWS, QUICK_VIEWS, run_calibration

    settings = get_settings()
    sim = None
    try:
        if args.simulator:
            sim = _simulator_process(args)
            settings = settings.model_copy(update={"device": settings.device.model_copy(update={
                "board_url": sim.endpoints["board_url"], "camera_url": sim.endpoints["camera_url"]})})

        def confirm(instruction: str) -> None:  # staff act on the rig display, then press Enter
            input(f"rig display: {instruction}. Press Enter when done. ")

        def progress(p) -> None:
            print(f"\r[{p.fraction * 100:5.1f}%] {p.phase:7s} {p.message:50s}", end="", file=sys.stderr, flush=True)

        calibration, path = run_calibration(
            settings, QUICK_VIEWS if args.quick else DEFAULT_VIEWS, on_progress=None if args.quiet else progress,
            confirm=None if args.simulator or not sys.stdin.isatty() else confirm)
    finally:
        if not args.quiet:
            print(file=sys.stderr)
        if sim:
            sim.stop()
    q = calibration.quality
    print(f"calibration {calibration.calibration_id} of rig {calibration.rig_serial} saved to {path}: target "
          f"reprojection RMS {q.reprojection_rms_px:.3f} px, laser plane residuals {q.laser_plane_rms_mm[0]:.3f} / "
          f"{q.laser_plane_rms_mm[1]:.3f} mm, arm axis residual {q.axis_fit_rms_mm:.3f} mm, {q.views} views")
    return 0


# --- footfit measure ---
MEASURES = ("length_mm", "ball_width_mm", "ball_girth_mm", "instep_girth_mm", "heel_width_mm", "instep_height_mm")


def cmd_measure(args: argparse.Namespace) -> int:
    from fitcore.measure import measure_file
    from fitcore.sizes import sizes_for

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footfit", description="Foot scanner fit matching.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = sub.add_parser("scan", help="scan both feet and write the raw scan",
                          description="Scan both feet through the real drivers (hardware from the settings, or "
                                      "the simulator with --simulator) and write the raw scan under --out.")
    scan.add_argument("--simulator", action="store_true", help="start a simulated rig and scan it")
    scan.add_argument("--profile", choices=("store", "light"), help="scan profile (default: settings, 'store')")
    scan.add_argument("--out", required=True, metavar="DIR", help="output folder")
    scan.add_argument("--quiet", action="store_true", help="no progress line")
    _add_simulator_options(scan)
    scan.set_defaults(func=cmd_scan)

    calibrate = sub.add_parser("calibrate", help="calibrate the rig from images",
                               description="Calibrate the rig (camera intrinsics and distortion, laser planes, arm "
                                           "axis) from images of the calibration target and the plate marks; stores "
                                           "it per rig serial under the data folder, refusing one out of "
                                           "tolerance (docs/calibration.md).")
    calibrate.add_argument("--simulator", action="store_true", help="calibrate a simulated rig")
    calibrate.add_argument("--quick", action="store_true", help="fewer views (about a quarter of the time)")
    calibrate.add_argument("--quiet", action="store_true", help="no progress line")
    _add_simulator_options(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)

    measure = sub.add_parser("measure", help="measure a foot mesh or point cloud",
                             description="Measure a foot mesh (PLY/OBJ/STL) or PLY point cloud in mm, standing on "
                                         "z = 0, with the same code as a scan (docs/measurements.md).")
    measure.add_argument("file", type=Path, metavar="FILE")
    measure.add_argument("--side", choices=("left", "right"), required=True)
    measure.add_argument("--json", action="store_true", help="machine-readable output")
    measure.set_defaults(func=cmd_measure)

    sim = sub.add_parser("simulator", help="the virtual scanner", description="The virtual scanner.")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    serve = sim_sub.add_parser("serve", help="run a simulated rig and print its ports",
                               description="Run a simulated rig: board and plate on pseudo-terminals, camera as "
                                           "MJPEG over HTTP. Prints the endpoints as one JSON line on stdout.")
    _add_simulator_options(serve)
    serve.add_argument("--port-dir", type=Path, help="folder for the port links (default: a temporary folder)")
    serve.add_argument("--truth-out", type=Path, help="write truth.json (and truth/*.ply) here")
    serve.add_argument("--quiet", action="store_true", help="only the JSON line")
    serve.set_defaults(func=cmd_simulator_serve)
    add_catalog_commands(sub)
    add_match_commands(sub)
    add_service_commands(sub)
    add_demo_command(sub)
    return parser


def add_catalog_commands(sub) -> None:
    """`footfit catalog import|list|show|stock|generate`; the handlers live in shoe_db.commands and simulator."""
    from shoe_db import commands
    from shoe_db.models import CATEGORIES

    catalog = sub.add_parser("catalog", help="the shoe catalogue", description="The shoe catalogue in the database "
                             "of the settings (FOOTFIT_DATABASE_URL, default a SQLite file under the data folder).")
    cat_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    imp = cat_sub.add_parser("import", help="import retailer product data and interior scans",
                             description="Import a product file (one row per size variant, docs/catalog.md) and "
                                         "the interior scans named by SKU or brand+model+size. Upserts by SKU.")
    imp.add_argument("products", type=Path, metavar="PRODUCTS", help="products .csv or .jsonl")
    imp.add_argument("--interiors", type=Path, metavar="DIR", help="folder of interior scans (PLY/STL/OBJ, mm)")
    imp.add_argument("--skip-invalid", action="store_true",
                     help="import the valid rows even when others are rejected (default: all or nothing)")
    imp.set_defaults(func=lambda a: commands.import_command(a.products, a.interiors, a.skip_invalid))
    lst = cat_sub.add_parser("list", help="one line per model")
    lst.add_argument("--category", choices=CATEGORIES)
    lst.set_defaults(func=lambda a: commands.list_command(a.category))
    show = cat_sub.add_parser("show", help="a model with every size's interior and stock")
    show.add_argument("key", metavar="MODEL_CODE|SKU")
    show.set_defaults(func=lambda a: commands.show_command(a.key))
    stock = cat_sub.add_parser("stock", help="stock on hand per store and size")
    stock.add_argument("key", nargs="?", metavar="MODEL_CODE|SKU")
    stock.add_argument("--store", metavar="CODE")
    stock.set_defaults(func=lambda a: commands.stock_command(a.store, a.key))
    gen = cat_sub.add_parser("generate", help="a synthetic catalogue (simulator)",
                             description="Generate a synthetic catalogue: parametric-last interiors, brands that "
                                         "run small or large, stock. Imports it into the database, or with --out "
                                         "writes it in the import format.")
    gen.add_argument("--models", type=int, default=50, metavar="N")
    gen.add_argument("--seed", type=int, default=0, metavar="S")
    gen.add_argument("--stores", type=int, default=5, metavar="N")
    gen.add_argument("--out", type=Path, metavar="DIR", help="write products + interiors/ + truth.json here")
    gen.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    gen.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from simulator.catalog import generate_command

    return generate_command(args.models, args.seed, args.stores, args.out, args.format)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScanCancelled as exc:
        print(f"footfit: {exc}", file=sys.stderr)
        return 130
    except FootfitError as exc:
        print(f"footfit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("footfit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `footfit catalog list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
