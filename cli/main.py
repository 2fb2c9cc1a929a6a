"""The `footfit` command line: one entry point for staff, developers and the simulator."""

from __future__ import annotations

import os

# One BLAS thread, before numpy and scipy load: the learner's L-BFGS (footfit learn, the service's learning job)
# takes twice the time with OpenBLAS's threads spinning on the other core (docs/learning.md); nothing else footfit
# runs gains from BLAS threads. threadpoolctl is not installed to set it later.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402

from cli.agent import add_agent_command  # noqa: E402
from cli.catalog import add_catalog_commands  # noqa: E402
from cli.demo import add_demo_command  # noqa: E402
from cli.fit_index import add_fit_index_commands  # noqa: E402
from cli.learn import add_learning_commands  # noqa: E402
from cli.match import add_match_commands  # noqa: E402
from cli.scan import add_scan_commands  # noqa: E402
from cli.service import add_service_commands  # noqa: E402
from core.errors import FootfitError, ScanCancelled  # noqa: E402
from simulator.serve import SERVE_DESCRIPTION, add_serve_options, serve  # noqa: E402


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
    add_agent_command(sub)
    add_learning_commands(sub)
    add_fit_index_commands(sub)
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
