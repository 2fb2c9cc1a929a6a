"""The virtual camera: renders what the rig's camera sees, stamps each frame and hands it to the stream.

What is drawn (plate frame, mm; see docs/protocol-camera.md for the printed marks):
- the plate: a dark grey surface at z = 0 over x -200..200, y -420..420, with a white centre cross and five
  white dots (PLATE_MARKS_MM) from which calibration can find the plate frame;
- the foot on the scan station (`scene.camera_meshes`), or the calibration chessboard for placement "target";
- dim ambient light from a lamp beside the lens (Lambertian), drawn at half resolution into a depth buffer and
  upsampled: the plate and the chessboard are planes whose print is a texture looked up through each pixel's
  ray, the feet are rasterised (simulator/raster.py; with lens distortion, as their triangles are small);
- the two red laser lines, computed geometrically: each laser plane is cut with the triangles, the cut is
  sampled about every 0.8 px, kept where the laser lights it and the camera sees it (shadows, occlusion), and
  splatted as sub-pixel Gaussian spots whose brightness falls with the incidence angle and carries speckle;
- lens distortion (rays from `cv2.undistortPoints`, laser points through `cv2.projectPoints`), sensor noise.

Frames come from two sources, as on the real camera: `trigger()` (the board, in a sweep) renders exactly the
state it is given; outside sweeps a free-run thread renders the scene at 15 fps with a pipeline latency of two
frames, so a host must flush after a laser or arm change.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import cv2
import numpy as np
import open3d as o3d

from core.errors import SimulatorError
from core.frame_stamp import FrameStamp
from core.frame_stamp import encode as stamp_frame
from core.mesh import Mesh
from core.plate_marks import CROSS_ARM_MM, CROSS_HALF_WIDTH_MM, PLATE_MARKS_MM
from simulator import raster
from simulator.scene import Scene, SceneState

PLATE_X_MM = (-200.0, 200.0)
PLATE_Y_MM = (-420.0, 420.0)
# White dots (x, y, radius) printed on the plate: four around the centre, one more toward the toes (+x) so the
# plate's orientation is unambiguous.
MARK_CELL_MM = 8.0  # plate cells used to find the points near a printed mark quickly
PLATE_TEXEL_MM = 0.5  # texture resolution of the plate's print (a half-resolution pixel covers ~0.6 mm)
TARGET_TEXEL_MM = 0.25  # and of the chessboard, whose corners calibration locates to a fraction of a pixel
MIPMAP_LEVELS = 4  # texture levels for footprints up to 8 texels (a tilted or distant print); raster.draw_plane

FREE_RUN_FPS = 15.0
FREE_RUN_LATENCY_FRAMES = 2
SWEEP_QUIET_S = 0.3  # free-running resumes this long after the last trigger
JPEG_QUALITY = 90
COUNTER_MODULUS = 2**31

# Albedo (B, G, R) and light levels, in DN for a white surface facing the lamp.
PLATE_BGR = np.array([0.16, 0.16, 0.17], np.float32)
PRINT_BGR = np.array([0.85, 0.85, 0.85], np.float32)
SKIN_BGR = np.array([0.45, 0.55, 0.70], np.float32)
TARGET_BLACK_BGR = np.array([0.05, 0.05, 0.05], np.float32)
TARGET_WHITE_BGR = np.array([0.90, 0.90, 0.90], np.float32)
AMBIENT_DN = 80.0
AMBIENT_FLOOR = 0.25  # share of the ambient light that is diffuse (independent of the surface's tilt)
BACKGROUND_DN = 4.0  # the enclosure beyond the plate
LASER_PEAK_DN = 700.0  # line peak on a white surface lit head-on (plate ~100 DN, skin saturates)
LASER_BGR = np.array([0.04, 0.10, 1.0], np.float32)  # red diode light, mostly in the red channel
LASER_SIGMA_NATIVE_PX = 1.2  # Gaussian line profile across the line, at the native resolution
LASER_SAMPLE_PX = 0.8  # spacing of laser samples along the line, in pixels
SPECKLE_SHAPE = 8.0  # gamma shape of the speckle factor (contrast 1/sqrt(8) ~ 0.35)
NOISE_DN = 2.0
VISIBILITY_TOLERANCE_MM = 0.5


@dataclass(frozen=True)
class EncodedFrame:
    """One frame as it leaves the camera: the JPEG bytes and the stamp painted into them."""

    jpeg: bytes
    stamp: FrameStamp
    binning: int


@dataclass
class RenderTiming:
    """Where the time of the last frame went, in milliseconds (for bench/bench_camera.py)."""

    ambient_ms: float = 0.0
    laser_ms: float = 0.0
    compose_ms: float = 0.0
    encode_ms: float = 0.0


class FrameSink(Protocol):
    """Where the camera puts its frames (the stream server's queue)."""

    def has_host(self) -> bool: ...

    def deliver(self, frame: EncodedFrame, triggered: bool) -> None: ...


# --- surfaces: geometry in the plate frame and their printed look -----------------------------------------------


def _coverage(inside_mm: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
    """Share of a pixel footprint inside a printed shape, from the signed distance to its edge (box filter)."""
    return np.clip(0.5 + inside_mm / footprint_mm, 0.0, 1.0)


def _plate_albedo(x: np.ndarray, y: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
    """Albedo of the plate at plate-frame (x, y); only points in grid cells near a printed mark are shaded."""
    out = np.empty((len(x), 3), np.float32)
    out[:] = PLATE_BGR
    col = np.clip(((x - PLATE_X_MM[0]) / MARK_CELL_MM).astype(np.int64), 0, _MARK_CELLS.shape[1] - 1)
    row = np.clip(((y - PLATE_Y_MM[0]) / MARK_CELL_MM).astype(np.int64), 0, _MARK_CELLS.shape[0] - 1)
    near = np.flatnonzero(_MARK_CELLS[row, col])
    if near.size:
        out[near] = _printed_albedo(x[near], y[near], footprint_mm[near])
    return out


def _printed_albedo(x: np.ndarray, y: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
    bar_x = _coverage(CROSS_HALF_WIDTH_MM - np.abs(y), footprint_mm) * _coverage(CROSS_ARM_MM - np.abs(x), footprint_mm)
    bar_y = _coverage(CROSS_HALF_WIDTH_MM - np.abs(x), footprint_mm) * _coverage(CROSS_ARM_MM - np.abs(y), footprint_mm)
    printed = np.maximum(bar_x, bar_y)
    for cx, cy, r in PLATE_MARKS_MM:
        printed = np.maximum(printed, _coverage(r - np.hypot(x - cx, y - cy), footprint_mm))
    return PLATE_BGR + printed[:, None] * (PRINT_BGR - PLATE_BGR)


def _mark_cells() -> np.ndarray:
    """Which MARK_CELL_MM cells of the plate lie within 3 mm of a printed mark (row = y, column = x)."""
    xs = np.arange(PLATE_X_MM[0], PLATE_X_MM[1], MARK_CELL_MM / 4) + MARK_CELL_MM / 8
    ys = np.arange(PLATE_Y_MM[0], PLATE_Y_MM[1], MARK_CELL_MM / 4) + MARK_CELL_MM / 8
    gx, gy = np.meshgrid(xs, ys)
    printed = _printed_albedo(gx.ravel(), gy.ravel(), np.full(gx.size, 6.0 + MARK_CELL_MM))[:, 0] > PLATE_BGR[0]
    fine = printed.reshape(len(ys) // 4, 4, len(xs) // 4, 4)
    return fine.any(axis=(1, 3))


_MARK_CELLS = _mark_cells()


def _skin_albedo(points: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
    return np.broadcast_to(SKIN_BGR, (len(points), 3))


def _smooth_sign(coord_mm: np.ndarray, square_mm: float, footprint_mm: np.ndarray) -> np.ndarray:
    """+-1 alternating every square, ramped across one footprint at each line (anti-aliased checker factor)."""
    cell = np.floor(coord_mm / square_mm)
    frac = coord_mm / square_mm - cell
    to_line_mm = square_mm * np.minimum(frac, 1.0 - frac)
    sign = 1.0 - 2.0 * (cell % 2)
    return sign * np.clip(2.0 * to_line_mm / footprint_mm, 0.0, 1.0)


@dataclass(frozen=True)
class _Print:
    """A plane's printed face as a texture. The face is the plane's z = 0; texel (row, col) is centred on plane
    point (x0 + (col + 0.5) * texel_mm, y0 + (row + 0.5) * texel_mm)."""

    levels: tuple[np.ndarray, ...]  # mipmap, finest first: (rows, cols, 4) float32 albedo B, G, R and coverage
    flat: np.ndarray  # per block of the coarsest texel: its value where it and its neighbours are uniform
    origin_mm: tuple[float, float]  # (x0, y0)
    texel_mm: float  # of the finest level
    plate_from_plane: np.ndarray  # 4x4

    @staticmethod
    def of(albedo_local, x_mm: tuple[float, float], y_mm: tuple[float, float], texel_mm: float,
           plate_from_plane: np.ndarray) -> "_Print":
        """Sample `albedo_local(x, y, footprint_mm)` (plane coordinates) at the texel centres."""
        xs = np.arange(x_mm[0], x_mm[1], texel_mm) + texel_mm / 2
        ys = np.arange(y_mm[0], y_mm[1], texel_mm) + texel_mm / 2
        gx, gy = np.meshgrid(xs, ys)
        albedo = albedo_local(gx.ravel(), gy.ravel(), np.full(gx.size, texel_mm))
        # Off the plane (padding up to a whole number of coarsest texels) coverage and albedo are 0.
        block = 2 ** (MIPMAP_LEVELS - 1)
        texels = np.zeros((-(-len(ys) // block) * block, -(-len(xs) // block) * block, 4), np.float32)
        texels[:len(ys), :len(xs), :3] = albedo.reshape(len(ys), len(xs), 3)
        texels[:len(ys), :len(xs), 3] = 1.0
        levels = [texels]
        while len(levels) < MIPMAP_LEVELS:  # each texel the mean of 2 x 2 finer ones
            rows, cols = levels[-1].shape[:2]
            levels.append(cv2.resize(levels[-1], (cols // 2, rows // 2), interpolation=cv2.INTER_AREA))
        return _Print(tuple(levels), _flat_blocks(texels, block), (x_mm[0], y_mm[0]), texel_mm, plate_from_plane)

    @property
    def draw_args(self) -> tuple:
        """The texture arguments of raster.draw_plane."""
        return (*self.levels, self.flat, self.texel_mm)

    def to_texels(self, plate_from_camera: np.ndarray) -> tuple[np.ndarray, float]:
        """(3x3 map from a camera ray (x/z, y/z, 1) to homogeneous texel coordinates, camera height above the
        plane): the ray meets the plane where the plane coordinates are (x_c + t d_x, y_c + t d_y) with
        t = -z_c / d_z, d the ray and (x_c, y_c, z_c) the camera centre, both in the plane frame."""
        plane_from_camera = np.linalg.inv(self.plate_from_plane) @ plate_from_camera
        rotation, (cx, cy, cz) = plane_from_camera[:3, :3], plane_from_camera[:3, 3]
        homogeneous_plane = np.stack([cx * rotation[2] - cz * rotation[0], cy * rotation[2] - cz * rotation[1],
                                      rotation[2]])
        s, (x0, y0) = self.texel_mm, self.origin_mm
        plane_to_texel = np.array([[1 / s, 0, -x0 / s - 0.5], [0, 1 / s, -y0 / s - 0.5], [0, 0, 1]])
        return plane_to_texel @ homogeneous_plane, float(cz)


def _flat_blocks(texels: np.ndarray, block: int) -> np.ndarray:
    """(rows / block, cols / block, 4): each block's value where it and its 8 neighbours hold one same value
    (then every mipmap level reads that value anywhere in the block), else coverage -1."""
    rows, cols = texels.shape[0] // block, texels.shape[1] // block
    blocks = texels.reshape(rows, block, cols, block, 4)
    value = blocks[:, 0, :, 0, :]
    uniform = np.all(blocks == value[:, None, :, None, :], axis=(1, 3, 4))
    padded_value = np.pad(value, ((1, 1), (1, 1), (0, 0)), constant_values=-1.0)
    padded_uniform = np.pad(uniform, 1, constant_values=False)
    flat = uniform.copy()
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            flat &= padded_uniform[dr:dr + rows, dc:dc + cols]
            flat &= np.all(padded_value[dr:dr + rows, dc:dc + cols] == value, axis=2)
    out = value.copy()
    out[~flat] = -1.0
    return out


@dataclass(frozen=True)
class _Surface:
    """A triangle set in the plate frame with its albedo function (for the laser) and its look for the ambient
    image: a printed plane (`printed`) or a uniformly coloured solid (`uniform_bgr`)."""

    vertices_mm: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray  # per triangle, unit
    albedo: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (points_mm, footprint_mm) -> (N, 3) BGR
    printed: _Print | None = None
    uniform_bgr: np.ndarray | None = None  # float64
    closed: bool = False  # closed and wound outward: faces turned away from the camera are hidden

    @staticmethod
    def of(mesh: Mesh, albedo, printed: _Print | None = None, uniform_bgr: np.ndarray | None = None) -> "_Surface":
        v = np.ascontiguousarray(mesh.vertices_mm, dtype=np.float64)
        t = np.ascontiguousarray(mesh.triangles, dtype=np.int32)
        n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        colour = None if uniform_bgr is None else np.asarray(uniform_bgr, np.float64)
        return _Surface(v, t, n, albedo, printed, colour, _closed_outward(v, t))


def _closed_outward(vertices_mm: np.ndarray, triangles: np.ndarray) -> bool:
    """Whether every edge is shared by exactly two triangles running it in opposite directions (a closed,
    consistently wound surface) and the winding points outward (positive enclosed volume)."""
    if len(triangles) < 4:
        return False
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]).astype(np.int64)
    forward = directed[:, 0] * len(vertices_mm) + directed[:, 1]
    backward = directed[:, 1] * len(vertices_mm) + directed[:, 0]
    if len(np.unique(forward)) != len(forward) or not np.array_equal(np.sort(forward), np.sort(backward)):
        return False
    a, b, c = (vertices_mm[triangles[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c))) > 0.0


def _rectangle(corners: np.ndarray) -> Mesh:
    return Mesh(corners, np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32))


@functools.cache
def _plate_print() -> _Print:
    return _Print.of(_plate_albedo, PLATE_X_MM, PLATE_Y_MM, PLATE_TEXEL_MM, np.eye(4))


def _plate_surface() -> _Surface:
    (x0, x1), (y0, y1) = PLATE_X_MM, PLATE_Y_MM
    corners = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])
    return _Surface.of(_rectangle(corners), lambda p, f: _plate_albedo(p[:, 0], p[:, 1], f), _plate_print())


def _chessboard_albedo(inner_corners: tuple[int, int], square_mm: float):
    """Albedo of the chessboard in its own frame: (x, y, footprint_mm) -> (N, 3) BGR."""
    s = square_mm
    cols, rows = inner_corners

    def albedo(x: np.ndarray, y: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
        checker = _smooth_sign(x, s, footprint_mm) * _smooth_sign(y, s, footprint_mm)
        inside = np.minimum.reduce([x + s, cols * s - x, y + s, rows * s - y])
        squares = _coverage(inside, footprint_mm)[:, None]
        mid, half = (TARGET_WHITE_BGR + TARGET_BLACK_BGR) / 2, (TARGET_WHITE_BGR - TARGET_BLACK_BGR) / 2
        pattern = mid - checker[:, None] * half  # square (0, 0) is black
        return TARGET_WHITE_BGR + squares * (pattern - TARGET_WHITE_BGR)

    return albedo


@functools.cache
def _chessboard_texels(inner_corners: tuple[int, int], square_mm: float) -> _Print:
    """The chessboard's print in its own frame (the same for every pose)."""
    cols, rows = inner_corners
    x_mm, y_mm = (-2 * square_mm, (cols + 1) * square_mm), (-2 * square_mm, (rows + 1) * square_mm)
    return _Print.of(_chessboard_albedo(inner_corners, square_mm), x_mm, y_mm, TARGET_TEXEL_MM, np.eye(4))


def _target_surface(scene: Scene, target_index: int) -> _Surface:
    target, pose = scene.target, scene.target_poses[target_index]
    local = _chessboard_texels(tuple(target.inner_corners), float(target.square_mm))
    cols, rows = target.inner_corners
    s = target.square_mm
    x0, x1, y0, y1 = -2 * s, (cols + 1) * s, -2 * s, (rows + 1) * s
    board = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])
    rotation, translation = pose[:3, :3], pose[:3, 3]
    albedo_local = _chessboard_albedo(tuple(target.inner_corners), float(target.square_mm))

    def albedo(points: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
        local_points = (points - translation) @ rotation
        return albedo_local(local_points[:, 0], local_points[:, 1], footprint_mm)

    return _Surface.of(_rectangle(board @ rotation.T + translation), albedo, replace(local, plate_from_plane=pose))


class _Stage:
    """Everything the camera can see for one placement: the plate and the objects standing on it, with one
    ray-casting scene of the objects (for the laser's visibility tests) reused for every frame."""

    def __init__(self, objects: list[_Surface]):
        self.plate = _plate_surface()
        self.objects = objects
        self.surfaces = [self.plate, *objects]  # drawn in this order; laser samples name them by index
        self.raycaster = o3d.t.geometry.RaycastingScene()
        for surface in objects:
            self.raycaster.add_triangles(o3d.core.Tensor(surface.vertices_mm.astype(np.float32)),
                                         o3d.core.Tensor(surface.triangles.astype(np.uint32)))

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Distance to the first object hit along each ray (unit directions); inf for a miss.

        Nothing lies below the plate, so the plate itself never hides anything and is not cast against."""
        if not self.objects:
            return np.full(len(origins), np.inf, np.float32)
        rays = np.empty((len(origins), 6), np.float32)
        rays[:, :3], rays[:, 3:] = origins, directions
        return self.raycaster.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()

    def albedo(self, points: np.ndarray, surface_index: np.ndarray, footprint_mm: np.ndarray) -> np.ndarray:
        out = np.zeros((len(points), 3), np.float32)
        for index, surface in enumerate(self.surfaces):
            sel = np.flatnonzero(surface_index == index)
            if sel.size:
                out[sel] = surface.albedo(points[sel], footprint_mm[sel])
        return out


# --- the optics of one binning mode -----------------------------------------------------------------------------


class _Optics:
    """Intrinsics at one binning, the half-resolution ray grid for the ambient image, and a noise tile."""

    def __init__(self, rig, binning: int, rng: np.random.Generator):
        self.binning = binning
        self.width_px, self.height_px = rig.width_px // binning, rig.height_px // binning
        self.camera_matrix = rig.scaled_camera_matrix(self.width_px)
        self.dist_coeffs = rig.dist_coeffs
        coefficients = np.ravel(rig.dist_coeffs).astype(np.float64)
        if len(coefficients) > 5 and np.any(coefficients[5:]):
            raise SimulatorError("the virtual camera models lens distortion k1, k2, p1, p2, k3 only; the rig has "
                                 f"{len(coefficients)} coefficients")
        self.lens_model = np.pad(coefficients, (0, 5))[:5]  # k1, k2, p1, p2, k3 for raster.draw_mesh
        self.focal_px = float(self.camera_matrix[0, 0])
        self.laser_sigma_px = LASER_SIGMA_NATIVE_PX / binning
        # Ambient samples: one per 2x2 pixels, at the centre of the block (what cv2.resize INTER_LINEAR assumes).
        hw, hh = self.width_px // 2, self.height_px // 2
        u, v = np.meshgrid(np.arange(hw) * 2 + 0.5, np.arange(hh) * 2 + 0.5)
        pixels = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)
        normalised = cv2.undistortPoints(pixels, self.camera_matrix, self.dist_coeffs, criteria=criteria)
        self.ambient_shape = (hh, hw)
        # Ambient sample (column, row) sits at pixel (2 column + 0.5, 2 row + 0.5).
        self.ambient_camera_matrix = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]]) @ self.camera_matrix
        rays = np.ones((hh, hw, 3), np.float32)  # (x/z, y/z, 1) in the camera frame
        rays[..., :2] = normalised.reshape(hh, hw, 2)
        self.ambient_rays = rays
        self.ambient_ray_scale = (1.0 / np.linalg.norm(rays, axis=2)).astype(np.float32)
        self.ambient_sample_rad = 2.0 / self.focal_px  # angle between neighbouring ambient samples
        # Sensor noise: a tile larger than the frame, read at a random offset per frame.
        pad = 64
        tile = np.rint(rng.normal(0.0, NOISE_DN, (self.height_px + pad, self.width_px + pad, 3)))
        self.noise_up = np.clip(tile, 0, 255).astype(np.uint8)  # split by sign for saturating uint8 adds
        self.noise_down = np.clip(-tile, 0, 255).astype(np.uint8)
        self.noise_pad = pad
        # Half-normalised field of view, to drop laser points far outside before projecting them.
        corners = np.array([[0, 0], [self.width_px, 0], [0, self.height_px], [self.width_px, self.height_px]], float)
        edge = cv2.undistortPoints(corners.reshape(-1, 1, 2), self.camera_matrix, self.dist_coeffs,
                                   criteria=criteria).reshape(-1, 2)
        self.fov_limit = np.abs(edge).max(axis=0) * 1.05


# --- the camera -------------------------------------------------------------------------------------------------


class VirtualCamera:
    """The rig's camera: `trigger()` for sweeps, a free-run thread otherwise (`start()`/`stop()`).

    Frames go to the sink set by `connect()` (the stream server); with no host connected they are not
    rendered at all, as a camera without a host drops them.
    """

    def __init__(self, scene: Scene, seed: int, drop_rate: float = 0.0):
        if not 0.0 <= drop_rate < 1.0:
            raise SimulatorError(f"camera drop rate {drop_rate} must be at least 0 and below 1")
        self.scene = scene
        self.rig = scene.rig
        self.drop_rate = drop_rate
        self.timing = RenderTiming()
        self.frames_sent = 0
        self.frames_dropped = 0  # lost on purpose (drop_rate)
        self._rng = np.random.default_rng(seed + 104729)
        self._optics = {b: _Optics(self.rig, b, self._rng) for b in (1, 2)}
        self._binning = 1
        self._stages: dict[tuple[str, int], _Stage] = {}
        self._ambient_cache: tuple[tuple, np.ndarray] | None = None
        self._render_lock = threading.Lock()
        self._sink: FrameSink | None = None
        self._free_run_count = 0
        self._last_trigger_s = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- configuration ---
    @property
    def binning(self) -> int:
        return self._binning

    @binning.setter
    def binning(self, value: int) -> None:
        if value not in self._optics:
            raise SimulatorError(f"camera binning {value} is not supported: use 1 (1280x960) or 2 (640x480)")
        self._binning = value

    def camera_matrix(self, binning: int) -> np.ndarray:
        return self._optics[binning].camera_matrix.copy()

    def connect(self, sink: FrameSink | None) -> None:
        self._sink = sink

    # --- frame sources ---
    def trigger(self, count: int, reported_angle_deg: float, lasers: tuple[bool, bool]) -> None:
        """A hardware trigger from the board: render exactly this arm angle and laser state, queue the frame.

        The sweep counts as under way from the trigger until SWEEP_QUIET_S after its frame was queued, so a slow
        host (backpressure) never lets a free-run frame slip in and hold up the next trigger."""
        self._last_trigger_s = float("inf")  # under way
        state = replace(self.scene.snapshot(), arm_angle_deg=float(reported_angle_deg),
                        lasers=(bool(lasers[0]), bool(lasers[1])))
        try:
            self._emit(state, FrameStamp(triggered=True, counter=int(count) % COUNTER_MODULUS))
        finally:
            self._last_trigger_s = time.monotonic()

    def start(self) -> None:
        """Start free-running (15 fps whenever no sweep is under way)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._free_run, name="virtual-camera", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None

    def _free_run(self) -> None:
        period_s = 1.0 / FREE_RUN_FPS
        pipeline: deque[SceneState] = deque(maxlen=FREE_RUN_LATENCY_FRAMES + 1)
        next_s = time.monotonic()
        while not self._stop.wait(max(0.0, next_s - time.monotonic())):
            next_s = max(next_s + period_s, time.monotonic())
            pipeline.append(self.scene.snapshot())
            if time.monotonic() - self._last_trigger_s < SWEEP_QUIET_S:
                continue
            stamp = FrameStamp(triggered=False, counter=self._free_run_count)
            self._free_run_count = (self._free_run_count + 1) % COUNTER_MODULUS
            self._emit(pipeline[0], stamp)

    def _emit(self, state: SceneState, stamp: FrameStamp) -> None:
        sink = self._sink
        if sink is None or not sink.has_host():
            return
        if self.drop_rate and self._rng.random() < self.drop_rate:
            self.frames_dropped += 1
            return
        sink.deliver(self.capture(state, stamp), stamp.triggered)
        self.frames_sent += 1

    # --- rendering ---
    def capture(self, state: SceneState, stamp: FrameStamp) -> EncodedFrame:
        """Render `state` at the current binning, paint the stamp and encode the JPEG."""
        with self._render_lock:
            binning = self._binning
            image = self._render_locked(state, binning)
            stamp_frame(image, stamp)
            t0 = time.perf_counter()
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            self.timing.encode_ms = (time.perf_counter() - t0) * 1e3
        if not ok:
            raise SimulatorError("the virtual camera could not encode a JPEG frame")
        return EncodedFrame(jpeg.tobytes(), stamp, binning)

    def render(self, state: SceneState, binning: int | None = None) -> np.ndarray:
        """The 8-bit BGR image the sensor records for `state` (no stamp)."""
        with self._render_lock:
            return self._render_locked(state, self._binning if binning is None else binning)

    def _render_locked(self, state: SceneState, binning: int) -> np.ndarray:
        optics = self._optics[binning]
        stage = self._stage(state)
        plate_from_camera = self.rig.plate_from_camera(state.arm_angle_deg)
        t0 = time.perf_counter()
        ambient = self._ambient(stage, optics, state, plate_from_camera)
        t1 = time.perf_counter()
        red = _RedLight(optics.width_px, optics.height_px)
        for on, laser in zip(state.lasers, self.rig.lasers):
            if on:
                self._draw_laser(red, stage, optics, state, plate_from_camera, laser)
        t2 = time.perf_counter()
        dy, dx = self._rng.integers(0, optics.noise_pad, 2)
        window = np.s_[dy:dy + optics.height_px, dx:dx + optics.width_px]
        image = cv2.add(ambient, optics.noise_up[window])  # saturating uint8 arithmetic
        cv2.subtract(image, optics.noise_down[window], dst=image)
        red.add_to(image)
        t3 = time.perf_counter()
        self.timing.ambient_ms = (t1 - t0) * 1e3
        self.timing.laser_ms = (t2 - t1) * 1e3
        self.timing.compose_ms = (t3 - t2) * 1e3
        return image

    def _stage(self, state: SceneState) -> _Stage:
        key = (state.placement, state.target_index if state.placement == "target" else 0)
        if key not in self._stages:
            objects = [_target_surface(self.scene, state.target_index)] if state.placement == "target" else []
            objects += [_Surface.of(mesh, _skin_albedo, uniform_bgr=SKIN_BGR)
                        for mesh in self.scene.camera_meshes(state.placement)]
            self._stages[key] = _Stage(objects)
        return self._stages[key]

    def _ambient(self, stage: _Stage, optics: _Optics, state: SceneState, plate_from_camera: np.ndarray) -> np.ndarray:
        """The lamp-lit scene at full size (uint8 BGR), drawn at half resolution; cached per pose."""
        key = (state.placement, state.target_index, state.arm_angle_deg, optics.binning)
        if self._ambient_cache is not None and self._ambient_cache[0] == key:
            return self._ambient_cache[1]
        colour = np.full((*optics.ambient_shape, 3), BACKGROUND_DN, np.float32)
        depth_mm = np.full(optics.ambient_shape, np.inf, np.float32)
        camera_from_plate = np.linalg.inv(plate_from_camera)
        for surface in stage.surfaces:  # the plate first: it blends its outline over the background
            if surface.printed is not None:
                to_texels, height_mm = surface.printed.to_texels(plate_from_camera)
                raster.draw_plane(colour, depth_mm, optics.ambient_rays, optics.ambient_ray_scale, to_texels,
                                  height_mm, *surface.printed.draw_args, optics.ambient_sample_rad, AMBIENT_DN,
                                  AMBIENT_FLOOR)
            else:
                raster.draw_mesh(colour, depth_mm, optics.ambient_rays, optics.ambient_ray_scale,
                                 surface.vertices_mm, surface.triangles, surface.normals, camera_from_plate,
                                 optics.ambient_camera_matrix, optics.lens_model, surface.uniform_bgr, AMBIENT_DN,
                                 AMBIENT_FLOOR, surface.closed)
        small = cv2.GaussianBlur(colour, (3, 3), 0.5)  # lens blur
        small = cv2.convertScaleAbs(small)  # rounds and saturates to uint8
        image = cv2.resize(small, (optics.width_px, optics.height_px), interpolation=cv2.INTER_LINEAR)
        self._ambient_cache = (key, image)
        return image

    def _draw_laser(self, red: "_RedLight", stage: _Stage, optics: _Optics, state: SceneState,
                    plate_from_camera: np.ndarray, laser) -> None:
        plate_from_arm = self.rig.plate_from_arm(state.arm_angle_deg)
        normal = plate_from_arm[:3, :3] @ laser.normal
        origin = plate_from_arm[:3, :3] @ laser.origin_mm + plate_from_arm[:3, 3]
        offset = -float(normal @ origin)
        camera_centre = plate_from_camera[:3, 3]
        samples = _laser_samples(stage, normal, offset, camera_centre, optics.focal_px)
        if samples is None:
            return
        points, normals, geometry_ids, spacing_mm = samples
        # Keep points in front of the camera and inside the field of view (distortion folds far-off points back).
        camera_from_plate = np.linalg.inv(plate_from_camera)
        in_camera = points @ camera_from_plate[:3, :3].T + camera_from_plate[:3, 3]
        z = in_camera[:, 2]
        keep = z > 1.0
        keep[keep] = np.all(np.abs(in_camera[keep, :2] / z[keep, None]) < optics.fov_limit, axis=1)
        points, normals, geometry_ids, spacing_mm, in_camera = (
            points[keep], normals[keep], geometry_ids[keep], spacing_mm[keep], in_camera[keep])
        if not len(points):
            return
        seen, lit, to_laser = self._visible(stage, points, camera_centre, origin)
        ok = seen & lit
        if not ok.any():
            return
        points, normals, geometry_ids, spacing_mm, in_camera, to_laser = (
            points[ok], normals[ok], geometry_ids[ok], spacing_mm[ok], in_camera[ok], to_laser[ok])
        pixels, _ = cv2.projectPoints(in_camera.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), optics.camera_matrix,
                                      optics.dist_coeffs)
        pixels = pixels.reshape(-1, 2)
        footprint = spacing_mm
        albedo_red = stage.albedo(points, geometry_ids, footprint)[:, 2]
        incidence = np.abs(np.einsum("ij,ij->i", normals, to_laser))
        speckle = self._rng.gamma(SPECKLE_SHAPE, 1.0 / SPECKLE_SHAPE, len(points))
        spacing_px = spacing_mm * optics.focal_px / in_camera[:, 2]
        sigma = optics.laser_sigma_px
        weight = LASER_PEAK_DN * albedo_red * incidence * speckle * spacing_px * np.sqrt(2 * np.pi) * sigma
        red.splat(pixels, weight, sigma)

    def _visible(self, stage: _Stage, points: np.ndarray, camera_centre: np.ndarray, laser_origin: np.ndarray):
        """(seen by the camera, lit by the laser, unit vectors toward the laser) for surface points."""
        origins = np.concatenate([np.broadcast_to(camera_centre, points.shape), np.broadcast_to(laser_origin,
                                                                                               points.shape)])
        offsets = np.concatenate([points - camera_centre, points - laser_origin])
        distance = np.linalg.norm(offsets, axis=1)
        t = stage.cast(origins, offsets / distance[:, None])
        clear = t >= distance - VISIBILITY_TOLERANCE_MM
        n = len(points)
        return clear[:n], clear[n:], -offsets[n:] / distance[n:, None]



def _laser_samples(stage: _Stage, normal: np.ndarray, offset: float, camera_centre: np.ndarray, focal_px: float):
    """Points where the plane n.x + offset = 0 cuts the stage's triangles, about LASER_SAMPLE_PX apart on screen.

    Returns (points, triangle normals, geometry ids, spacing_mm) or None when the plane misses everything.
    """
    starts, ends, normals, ids = [], [], [], []
    for gid, surface in enumerate(stage.surfaces):
        distance = surface.vertices_mm @ normal + offset
        distance[distance == 0.0] = 1e-9  # a vertex exactly on the plane counts as just in front of it
        start, end, crossing = raster.plane_cuts(distance, surface.vertices_mm, surface.triangles)
        if not len(crossing):
            continue
        starts.append(start)
        ends.append(end)
        normals.append(surface.normals[crossing])
        ids.append(np.full(len(crossing), gid))
    if not starts:
        return None
    start, end = np.concatenate(starts), np.concatenate(ends)
    seg_normals, seg_ids = np.concatenate(normals), np.concatenate(ids)
    length = np.linalg.norm(end - start, axis=1)
    depth = np.linalg.norm((start + end) / 2 - camera_centre, axis=1)
    step_mm = LASER_SAMPLE_PX * depth / focal_px
    count = np.maximum(1, np.ceil(length / step_mm)).astype(np.int64)
    segment = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    fraction = (np.arange(count.sum()) - first[segment] + 0.5) / count[segment]
    points = start[segment] + fraction[:, None] * (end - start)[segment]
    spacing = (length / count)[segment]
    return points, seg_normals[segment], seg_ids[segment], spacing


class _RedLight:
    """Laser light gathered over one frame (DN before colour), added to the image at the end."""

    def __init__(self, width_px: int, height_px: int):
        self.dn = np.zeros((height_px, width_px), np.float32)
        self.box = np.array([height_px, 0, width_px, 0], np.int64)  # y0, y1, x0, x1 of what was drawn

    def splat(self, pixels: np.ndarray, weight: np.ndarray, sigma_px: float) -> None:
        """A normalised Gaussian spot of `weight` DN*px^2 at each sub-pixel position (truncated at 2.5 sigma)."""
        raster.splat(self.dn, self.box, np.ascontiguousarray(pixels, np.float64),
                     np.ascontiguousarray(weight, np.float64), float(sigma_px))

    def add_to(self, image: np.ndarray) -> None:
        y0, y1, x0, x1 = self.box
        if y0 >= y1:
            return
        dn = self.dn[y0:y1, x0:x1]
        light = cv2.merge([cv2.convertScaleAbs(dn, alpha=float(gain)) for gain in LASER_BGR])  # saturates at 255
        region = image[y0:y1, x0:x1]
        cv2.add(region, light, dst=region)
