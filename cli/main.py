"""The `footfit` command line: one entry point for staff, developers and the simulator."""

from __future__ import annotations

import argparse
import os
import sys

from cli.catalog import add_catalog_commands
from cli.demo import add_demo_command
from cli.match import add_match_commands
from cli.scan import add_scan_commands
from cli.service import add_service_commands
from core.errors import FootfitError, ScanCancelled
from simulator.serve import SERVE_DESCRIPTION, add_serve_options, serve


def _add_simulator_commands(sub) -> None:
    sim = sub.add_parser("simulator", help="the virtual scanner", description="The virtual scanner.")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    serve_parser = sim_sub.add_parser("serve", help="run a simulated rig and print its ports",
                                      description=SERVE_DESCRIPTION)
    add_serve_options(serve_parser)
    serve_parser.set_defaults(func=serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footfit", description="Foot scanner fit matching.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_scan_commands(sub)
    _add_simulator_commands(sub)
    add_catalog_commands(sub)
    add_match_commands(sub)
    add_service_commands(sub)
    add_demo_command(sub)
    return parser


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
