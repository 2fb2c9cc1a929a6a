"""Wall time of a full simulated two-foot scan through the real drivers, per scan profile.

    .venv/bin/python bench/bench_scan.py [--profiles store,light] [--seed N]

Each run is `footfit scan --simulator` as a user runs it: the simulator in a child process (pseudo-terminals and
an HTTP camera), the drivers, the session and the reconstruction in another. The rig is calibrated first with
`footfit calibrate --simulator` (timed too). Prints a table: rig time (what the hardware would take) against the
session's wall time and the whole command's wall time (incl. start-up, reconstruction and writing), and the
frames captured per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from device.profile import get_profile


def footfit(args: list[str], data_dir: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cli.main", *args, "--quiet"], capture_output=True, text=True,
                            env={**os.environ, "FOOTFIT_DATA_DIR": str(data_dir)})
    if result.returncode != 0:
        raise SystemExit(f"footfit {' '.join(args)} failed: {result.stderr.strip()}")
    return result, time.perf_counter() - started


def run_profile(name: str, seed: int, data_dir: Path) -> dict:
    profile = get_profile(name)
    with tempfile.TemporaryDirectory(prefix="footfit-bench-") as tmp:
        out = Path(tmp) / "scan"
        _, command_s = footfit(["scan", "--simulator", "--profile", name, "--seed", str(seed), "--out", str(out)],
                               data_dir)
        meta = json.loads((out / "raw" / "scan.json").read_text())
    frames = sum(len(f["angles_deg"]) for f in meta["feet"].values())
    session_s = meta["stats"]["wall_seconds"]
    return {
        "profile": name,
        "resolution": f"{profile.width_px}x{profile.height_px}",
        "frames": frames,
        "rig_s": 2 * profile.rig_seconds_per_foot + profile.plate_seconds,
        "session_s": session_s,
        "command_s": command_s,
        "fps": frames / session_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default="store,light")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="footfit-bench-data-") as data:
        _, calibrate_s = footfit(["calibrate", "--simulator"], Path(data))
        rows = [run_profile(name, args.seed, Path(data)) for name in args.profiles.split(",")]
    print(f"footfit calibrate --simulator (default views): {calibrate_s:.1f} s")
    print(f"{'profile':8} {'resolution':>10} {'frames':>6} {'rig s':>6} {'session s':>9} {'command s':>9} "
          f"{'session/rig':>11} {'frames/s':>8}")
    for r in rows:
        print(f"{r['profile']:8} {r['resolution']:>10} {r['frames']:>6} {r['rig_s']:6.1f} {r['session_s']:9.1f} "
              f"{r['command_s']:9.1f} {r['session_s'] / r['rig_s']:11.2f} {r['fps']:8.1f}")


if __name__ == "__main__":
    main()
