"""`python -m simulator serve` (also `footfit simulator serve`): a standalone simulated rig on real ports.

The board and plate listen on pseudo-terminals, the camera streams MJPEG over HTTP; the endpoints are printed as
one JSON line on stdout, which is how simulator.process (and anyone scripting the simulator) finds them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from core.errors import FootfitError
from core.lifetime import when_orphaned
from simulator.faults import parse_faults
from simulator.rig import DEMO_RIG_SERIAL
from simulator.scanner import SimulatedScanner, SimulatorConfig


def add_simulator_options(p: argparse.ArgumentParser) -> None:
    """The options that choose a simulated rig, its subject and its faults (shared with `footfit scan`)."""
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


def simulator_config(args: argparse.Namespace, port_dir: Path | None = None) -> SimulatorConfig:
    """The rig the options describe; a bad fault spec or subject is refused here, before anything starts."""
    return SimulatorConfig(rig_serial=args.rig, seed=args.seed, subject_mesh=args.subject_mesh,
                           subject_side=args.subject_side, faults=parse_faults(args.faults), port_dir=port_dir)


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    add_simulator_options(serve)
    serve.add_argument("--port-dir", type=Path, help="folder for the port links (default: a temporary folder)")
    serve.add_argument("--truth-out", type=Path, help="write truth.json (and truth/*.ply) here")
    serve.add_argument("--quiet", action="store_true", help="only the JSON line")
    serve.add_argument("--exit-with-parent", action="store_true",
                       help="stop when the process that started this one ends, however it ends (kill -9 too)")


def serve(args: argparse.Namespace) -> int:
    """Run the rig until SIGINT or SIGTERM."""
    scanner = SimulatedScanner(simulator_config(args, args.port_dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:  # a rig started for a scan must not outlive its starter and keep its ports
        when_orphaned(stop.set)
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


SERVE_DESCRIPTION = ("Run a simulated rig: board and plate on pseudo-terminals, camera as MJPEG over HTTP. Prints "
                     "the endpoints as one JSON line on stdout.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="The virtual scanner.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_options(sub.add_parser("serve", help="run a simulated rig and print its ports",
                                     description=SERVE_DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except FootfitError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
