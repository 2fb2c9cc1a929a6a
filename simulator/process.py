"""A simulated rig in a child process (`python -m simulator serve`): the drivers and the simulator then share
nothing but the ports, exactly as with hardware. `SimulatedRigProvider` is the product's rig provider for it,
used by `footfit scan --simulator`, `footfit calibrate --simulator` and the service's simulated rigs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zlib
from pathlib import Path

from core.errors import SimulatorError
from core.settings import DeviceSettings
from device.rig import RigConnection, RigProvider

SIMULATED_SUBJECTS = 10_000  # population seeds a simulated rig picks its subject from


def subject_seed(customer: str) -> int:
    """The simulated subject of a customer: the same feet on every scan of the same loyalty id."""
    return zlib.crc32(customer.encode()) % SIMULATED_SUBJECTS


class SimulatorProcess:
    """A running simulated rig; `endpoints` holds its board and plate ports and camera URL."""

    def __init__(self, rig_serial: str, seed: int, subject_side: str = "left", subject_mesh: Path | None = None,
                 faults: str = "", truth_path: Path | None = None):
        cmd = [sys.executable, "-m", "simulator", "serve", "--quiet", "--exit-with-parent", "--rig", rig_serial,
               "--seed", str(seed), "--subject-side", subject_side]
        if subject_mesh:
            cmd += ["--subject-mesh", str(Path(subject_mesh).resolve())]
        if faults:
            cmd += ["--faults", faults]
        if truth_path:
            cmd += ["--truth-out", str(truth_path)]
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


class SimulatedRigConnection(RigConnection):
    def __init__(self, devices: DeviceSettings, process: SimulatorProcess):
        endpoints = process.endpoints
        super().__init__(devices.model_copy(update={"board_url": endpoints["board_url"],
                                                    "plate_url": endpoints["plate_url"],
                                                    "camera_url": endpoints["camera_url"]}))
        self.process = process

    def close(self) -> None:
        self.process.stop()


class SimulatedRigProvider(RigProvider):
    """Each connection is a fresh simulated rig of the requested serial. The subject is the customer's (from
    their id) when one is named, else the one of `seed` (or `subject_mesh`); `faults` as `footfit scan
    --faults`; `truth_path` receives the simulator's truth.json (for tests and benchmarks only)."""

    def __init__(self, devices: DeviceSettings, seed: int = 0, subject_side: str = "left",
                 subject_mesh: Path | None = None, faults: str = "", truth_path: Path | None = None):
        self.devices, self.seed, self.subject_side = devices, seed, subject_side
        self.subject_mesh, self.faults, self.truth_path = subject_mesh, faults, truth_path

    def connect(self, rig_serial: str, customer: str | None = None) -> SimulatedRigConnection:
        seed = subject_seed(customer) if customer is not None else self.seed
        process = SimulatorProcess(rig_serial, seed, self.subject_side, self.subject_mesh, self.faults,
                                   self.truth_path)
        return SimulatedRigConnection(self.devices, process)
