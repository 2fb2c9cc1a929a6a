"""What physically stands on the simulated rig at this moment, in the plate frame (mm).

The virtual board moves the arm and switches lasers in the scene; the virtual camera renders it; the virtual
plate presses on it. The customer follows the rig's display (`M117` messages on the board, see
docs/protocol-board.md): STAND (both feet side by side), PLACE LEFT / PLACE RIGHT (that foot on the scan station
at the plate centre, the other foot on the side pad beyond the arm's reach), PLACE TARGET n (the calibration
target in pose n, no feet), STEP OFF (nothing).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from core.mesh import Mesh
from core.plate_marks import TARGET_INNER_CORNERS, TARGET_SQUARE_MM, WEDGE_DEG
from simulator.rig import RigGeometry

PLACEMENTS = ("stand", "left", "right", "target", "off")
STANCE_HALF_WIDTH_MM = 110.0  # foot centres at y = +-110 in the natural stance
SIDE_PAD_Y_MM = 450.0  # the foot not being scanned stands here, beyond the arm's 400 mm radius
STATION_JITTER_MM = 15.0  # how far from the centre mark a customer puts the scanned foot
MAX_YAW_DEG = 15.0


@dataclass(frozen=True)
class CalibrationTarget:
    """A chessboard: `inner_corners` (cols, rows) of `square_mm` squares, white border of one square.

    Target frame: origin at the first inner corner, x along the columns, y along the rows, z into the board
    (OpenCV's object-point convention), so the printed face is the target's z = 0 plane.
    """

    inner_corners: tuple[int, int] = TARGET_INNER_CORNERS
    square_mm: float = TARGET_SQUARE_MM


def _pose(yaw_deg: float, x_mm: float, y_mm: float, centre_xy: np.ndarray) -> np.ndarray:
    """Mesh frame -> plate frame: centre the mesh's footprint, turn by yaw, move to (x, y)."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    pose = np.eye(4)
    pose[:2, :2] = [[c, -s], [s, c]]
    pose[:2, 3] = np.array([x_mm, y_mm]) - pose[:2, :2] @ centre_xy
    return pose


def _footprint_centre(mesh: Mesh) -> np.ndarray:
    lo, hi = mesh.vertices_mm[:, :2].min(axis=0), mesh.vertices_mm[:, :2].max(axis=0)
    return (lo + hi) / 2


def target_poses(target: CalibrationTarget) -> list[np.ndarray]:
    """Where staff put the target for calibration: flat at the centre, then on a 30 deg wedge facing 4 ways."""
    w = (target.inner_corners[0] - 1) * target.square_mm
    h = (target.inner_corners[1] - 1) * target.square_mm
    poses = []
    for tilt_deg, facing_deg in [(0, 0), (WEDGE_DEG, 0), (WEDGE_DEG, 90), (WEDGE_DEG, 180), (WEDGE_DEG, 270)]:
        t, f = np.radians(tilt_deg), np.radians(facing_deg)
        # Target z points into the board; face up means target z = plate -z. Flip about x first.
        flip = np.diag([1.0, -1.0, -1.0])
        tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
        turn = np.array([[np.cos(f), -np.sin(f), 0], [np.sin(f), np.cos(f), 0], [0, 0, 1]])
        r = turn @ tilt @ flip
        pose = np.eye(4)
        pose[:3, :3] = r
        centre_on_board = np.array([w / 2, h / 2, 0.0])
        lift = 0.0 if tilt_deg == 0 else (h / 2 + target.square_mm) * np.sin(t)
        pose[:3, 3] = np.array([0.0, 0.0, lift]) - r @ centre_on_board
        poses.append(pose)
    return poses


@dataclass
class SceneState:
    """A consistent snapshot for one rendered frame or one plate sample."""

    placement: str
    arm_angle_deg: float  # as the board reports it; the rig geometry turns it into the true angle
    lasers: tuple[bool, bool]  # (left, right)
    target_index: int
    version: int


@dataclass
class Scene:
    rig: RigGeometry
    left: Mesh  # in the subject's mesh frame (mm, sole on z = 0, toes +x)
    right: Mesh
    body_weight_kg: float
    seed: int
    target: CalibrationTarget = field(default_factory=CalibrationTarget)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed + 7919)
        self._lock = threading.Lock()
        self._state = SceneState("stand", 0.0, (False, False), 0, 0)
        feet = {"left": self.left, "right": self.right}
        centre = {side: _footprint_centre(m) for side, m in feet.items()}
        sign = {"left": 1.0, "right": -1.0}

        def yaw() -> float:
            return float(rng.uniform(-MAX_YAW_DEG, MAX_YAW_DEG))

        def jitter() -> float:
            return float(rng.uniform(-STATION_JITTER_MM, STATION_JITTER_MM))

        self.scan_pose = {s: _pose(yaw(), jitter(), jitter(), centre[s]) for s in feet}
        self.stance_pose = {
            s: _pose(sign[s] * rng.uniform(0, 10), rng.normal(0, 5), sign[s] * STANCE_HALF_WIDTH_MM, centre[s])
            for s in feet
        }
        self.side_pose = {
            s: _pose(sign[s] * rng.uniform(0, 10), rng.normal(0, 5), sign[s] * SIDE_PAD_Y_MM, centre[s])
            for s in feet
        }
        self.target_poses = target_poses(self.target)

    # --- changes made by the virtual devices and the simulated customer ---
    def _update(self, **changes) -> None:
        with self._lock:
            s = self._state
            values = {**s.__dict__, **changes, "version": s.version + 1}
            self._state = SceneState(**values)

    def set_arm_angle(self, reported_deg: float) -> None:
        self._update(arm_angle_deg=float(reported_deg))

    def set_lasers(self, left: bool, right: bool) -> None:
        self._update(lasers=(bool(left), bool(right)))

    def place(self, placement: str, target_index: int = 0) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}")
        self._update(placement=placement, target_index=int(target_index) % len(self.target_poses))

    def snapshot(self) -> SceneState:
        with self._lock:
            return self._state

    # --- what the devices see ---
    def foot_poses(self, placement: str) -> dict[str, np.ndarray]:
        """Plate-frame pose of each foot standing on the plate for a placement."""
        if placement == "stand":
            return dict(self.stance_pose)
        if placement in ("left", "right"):
            other = "right" if placement == "left" else "left"
            return {placement: self.scan_pose[placement], other: self.side_pose[other]}
        return {}

    def feet_on_plate(self, placement: str) -> dict[str, Mesh]:
        """Each foot on the plate, in the plate frame (for the pressure plate)."""
        feet = {"left": self.left, "right": self.right}
        return {s: feet[s].transformed(p) for s, p in self.foot_poses(placement).items()}

    def camera_meshes(self, placement: str) -> list[Mesh]:
        """Foot meshes the camera can see: only the foot on the scan station (the side pad is screened off)."""
        if placement in ("left", "right"):
            return [self.feet_on_plate(placement)[placement]]
        return []

    def truth(self) -> dict:
        return {
            "body_weight_kg": self.body_weight_kg,
            "feet": {
                s: {
                    "pose": self.scan_pose[s].tolist(),
                    "stance_pose": self.stance_pose[s].tolist(),
                    "side_pose": self.side_pose[s].tolist(),
                }
                for s in ("left", "right")
            },
        }
