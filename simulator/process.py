"""`footfit simulator serve` in a child process: the drivers and the simulator then share nothing but the ports,
exactly as with hardware. Used by `footfit scan --simulator` and by the service's simulated rigs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from fitcore.errors import SimulatorError


def simulator_argv(rig_serial: str, seed: int, subject_side: str = "left", subject_mesh: Path | None = None,
                   faults: str = "") -> list[str]:
    """The `footfit simulator serve` options for one simulated rig and subject."""
    argv = ["--rig", rig_serial, "--seed", str(seed), "--subject-side", subject_side]
    if subject_mesh:
        argv += ["--subject-mesh", str(Path(subject_mesh).resolve())]
    if faults:
        argv += ["--faults", faults]
    return argv


class SimulatorProcess:
    """A running simulated rig; `endpoints` holds its board and plate ports and camera URL."""

    def __init__(self, argv: list[str], truth_path: Path | None = None):
        truth = ["--truth-out", str(truth_path)] if truth_path else []
        cmd = [sys.executable, "-m", "api.cli", "simulator", "serve", "--quiet", *truth, *argv]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().strip().splitlines()
            raise SimulatorError(f"the simulator did not start: {err[-1] if err else 'no output'}")
        self.endpoints: dict[str, str] = json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
