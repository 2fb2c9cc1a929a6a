"""The whole simulated scanner: a subject on the plate, the virtual board and plate on serial ports, the
virtual camera on HTTP, and the fault director that breaks things on cue.

Used by `footfit simulator serve` (standalone, for developers and the kiosk) and by `footfit scan --simulator`,
which runs it in a child process so the drivers talk to it exactly as to hardware.
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.mesh import write_mesh
from simulator.board import VirtualBoard
from simulator.camera import VirtualCamera
from simulator.camera_server import CameraServer
from simulator.faults import FaultPlan
from simulator.plate import VirtualPlate
from simulator.ports import InProcessLink, Link, PtyLink
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import Subject, mesh_subject, population_subject


@dataclass(frozen=True)
class SimulatorConfig:
    rig_serial: str = DEMO_RIG_SERIAL
    seed: int = 0
    subject_mesh: Path | None = None  # a foot mesh file; None: a subject from the population generator
    subject_side: str = "left"
    faults: FaultPlan = field(default_factory=FaultPlan)
    port_dir: Path | None = None  # where the pseudo-terminal links appear; None: a fresh temporary folder
    in_process: bool = False  # `sim://` ports instead of pseudo-terminals (fast unit tests)
    time_scale: float = 1.0  # 1: the board moves in real time; 0: instantly


@dataclass(frozen=True)
class Endpoints:
    board_url: str
    plate_url: str
    camera_url: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def make_subject(config: SimulatorConfig) -> Subject:
    if config.subject_mesh is not None:
        return mesh_subject(config.subject_mesh, config.subject_side)
    return population_subject(config.seed)


def scan_fraction(placement: str, arm_angle_deg: float) -> float:
    """How far the two-foot scan has come, as the fault spec counts it: (feet done + sweep share) / 2."""
    if placement not in ("left", "right"):
        return 0.0
    sweep = min(max(arm_angle_deg / 360.0, 0.0), 1.0)
    return (0.5 if placement == "right" else 0.0) + sweep / 2


class FaultDirector:
    """Watches the scan's progress and fires each planned fault once, when its point of the scan is reached."""

    def __init__(self, plan: FaultPlan, scene: Scene, board: VirtualBoard, links: dict[str, Link],
                 camera_server: CameraServer):
        self.plan, self.scene, self.board = plan, scene, board
        self.links, self.camera_server = links, camera_server
        self.fired: list[str] = []
        self._progress = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-director", daemon=True)

    def start(self) -> None:
        if self.plan.board_stall_at is not None or self.plan.disconnects:
            self._thread.start()

    def _run(self) -> None:
        pending = [("stall", "board", self.plan.board_stall_at, None)] if self.plan.board_stall_at is not None else []
        pending += [("disconnect", d.device, d.at_fraction, d.seconds) for d in self.plan.disconnects]
        while pending and not self._stop.wait(0.005):
            state = self.scene.snapshot()
            self._progress = max(self._progress, scan_fraction(state.placement, state.arm_angle_deg))
            for fault in [f for f in pending if f[2] <= self._progress]:
                pending.remove(fault)
                self._fire(*fault)

    def _fire(self, kind: str, device: str, at: float, seconds: float | None) -> None:
        self.fired.append(f"{kind} {device} at {self._progress:.3f}")
        if kind == "stall":
            self.board.stall()
        elif device == "camera":
            self.camera_server.disconnect(seconds)
        else:
            self.links[device].disconnect(seconds)

    def stop(self) -> None:
        self._stop.set()


class SimulatedScanner:
    """Start with `start()` (or as a context manager); point the drivers at `endpoints`."""

    def __init__(self, config: SimulatorConfig = SimulatorConfig()):
        self.config = config
        self.rig = rig_geometry(config.rig_serial)
        self.subject = make_subject(config)
        self.scene = Scene(self.rig, self.subject.left, self.subject.right, self.subject.body_weight_kg,
                           config.seed)
        plan = config.faults
        self.camera = VirtualCamera(self.scene, seed=config.seed, drop_rate=plan.camera_drop_rate)
        self.camera_server = CameraServer(self.camera)
        self.board = VirtualBoard(self.scene, serial=config.rig_serial, trigger=self.camera.trigger,
                                  time_scale=config.time_scale)
        self.plate = VirtualPlate(self.scene, serial=f"{config.rig_serial}-P", seed=config.seed,
                                  drop_rate=plan.plate_drop_rate)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.links: dict[str, Link] = {}
        self.director: FaultDirector | None = None
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        c = self.config
        board_rate, plate_rate = c.faults.corrupt_rate_for("board"), c.faults.corrupt_rate_for("plate")
        if c.in_process:
            tag = f"{c.rig_serial}_{c.seed}_{id(self)}".replace("-", "_")
            self.links = {"board": InProcessLink(self.board, f"board_{tag}", board_rate, c.seed + 1),
                          "plate": InProcessLink(self.plate, f"plate_{tag}", plate_rate, c.seed + 2)}
        else:
            port_dir = c.port_dir
            if port_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="footfit-sim-")
                port_dir = Path(self._tmp.name)
            self.links = {"board": PtyLink(self.board, Path(port_dir) / "board", board_rate, c.seed + 1),
                          "plate": PtyLink(self.plate, Path(port_dir) / "plate", plate_rate, c.seed + 2)}
        self.camera_server.start()
        self.director = FaultDirector(c.faults, self.scene, self.board, self.links, self.camera_server)
        self.director.start()
        self.endpoints = Endpoints(self.links["board"].url, self.links["plate"].url, self.camera_server.url)
        return self.endpoints

    def stop(self) -> None:
        if self.director:
            self.director.stop()
        for link in self.links.values():
            link.close()
        self.board.close()
        self.plate.close()
        self.camera_server.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> "SimulatedScanner":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def write_truth(self, path: Path) -> None:
        """truth.json and the meshes it names: for tests and benchmarks only, never for the reconstruction."""
        path = Path(path)
        mesh_dir = path.parent / "truth"
        mesh_dir.mkdir(parents=True, exist_ok=True)
        truth = self.scene.truth()
        for side in ("left", "right"):
            mesh_path = mesh_dir / f"{side}.ply"
            write_mesh(mesh_path, getattr(self.subject, side))
            truth["feet"][side]["mesh"] = str(mesh_path.relative_to(path.parent))  # relative to truth.json
            truth["feet"][side]["target_dimensions_mm"] = asdict(getattr(self.subject, f"{side}_dims"))
        truth["subject"] = {"source": self.subject.source, "sex": self.subject.sex,
                            "toe_shape": self.subject.toe_shape}
        truth["rig"] = self.rig.to_json()
        truth["seed"] = self.config.seed
        truth["faults_fired"] = list(self.director.fired) if self.director else []
        path.write_text(json.dumps(truth, indent=1))
