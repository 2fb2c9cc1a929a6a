"""Wall time of a full simulated two-foot scan through the real drivers, per scan profile.

    .venv/bin/python bench/bench_scan.py [--profiles store,light] [--seed N]

Each run is `footfit scan --simulator` as a user runs it: the simulator in a child process (pseudo-terminals and
an HTTP camera), the drivers and the session in this one. Prints a table: rig time (what the hardware would take)
against the session's wall time and the whole command's wall time, and the frames captured per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from device.profile import get_profile


def run_profile(name: str, seed: int) -> dict:
    profile = get_profile(name)
    with tempfile.TemporaryDirectory(prefix="footfit-bench-") as tmp:
        out = Path(tmp) / "scan"
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "api.cli", "scan", "--simulator", "--profile", name,
                                 "--seed", str(seed), "--out", str(out), "--quiet"], capture_output=True, text=True)
        command_s = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"scan with profile {name} failed: {result.stderr.strip()}")
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
    rows = [run_profile(name, args.seed) for name in args.profiles.split(",")]
    print(f"{'profile':8} {'resolution':>10} {'frames':>6} {'rig s':>6} {'session s':>9} {'command s':>9} "
          f"{'session/rig':>11} {'frames/s':>8}")
    for r in rows:
        print(f"{r['profile']:8} {r['resolution']:>10} {r['frames']:>6} {r['rig_s']:6.1f} {r['session_s']:9.1f} "
              f"{r['command_s']:9.1f} {r['session_s'] / r['rig_s']:11.2f} {r['fps']:8.1f}")


if __name__ == "__main__":
    main()
