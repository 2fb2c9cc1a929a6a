"""One foot's sweep -> a plate-frame point cloud of the foot with normals, and the scan's quality.

    cloud = reconstruct_foot(raw.feet["left"], calibration)     # raises ScanQualityError below quality
    cloud.points_mm, cloud.normals                              # the seen surface, plate frame, z up

Stages (docs/reconstruction.md): check the sweep (order, gaps, image size), laser peaks (numba), undistortion and
ray-plane triangulation, the arm angle to the plate frame (fitcore/scan/triangulate.py), the station crop, plate
removal at PLATE_CUT_MM, the leg cut at LEG_CUT_MM, averaging per 1 mm cell, one neighbour search that serves the
outlier test (statistical, but keeping lone laser profiles: surface_inliers), the normals (oriented toward the
camera that saw each point) and the noise figure (fitcore/scan/normals.py, numba), and the quality checks (coverage,
noise, motion, a second body in view).

Why LEG_CUT_MM = 120: the measurements need the whole cross-section at 50% of foot length (instep girth and
height). On the simulator's ANSUR-sized feet that section tops out at 83-87 mm (272 mm feet) and stays under
~100 mm for the longest feet; 120 mm keeps 20 mm of margin, is above the malleoli (~65-75 mm) so the ankle's
shape is kept for the heel, and is below the top of the subject meshes (162 mm) and of most trouser hems.

What the rig cannot see: the sole, and the sides below the foot's widest line where they turn under (at the
ball the lowest seen side points are ~15-20 mm above the plate). A section's convex hull through the seen
points alone therefore closes too high: see docs/reconstruction.md for the figures and the plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from core.errors import FootfitError, ScanQualityError
from core.rawscan import FootFrames
from fitcore.scan.calibration import RigCalibration
from fitcore.scan.laser_peaks import LaserPeakError, LaserPeaks, laser_peaks
from fitcore.scan.normals import nearest_neighbours, plane_fits, statistical_inliers
from fitcore.scan.triangulate import check_image_size, frame_laser_index, peaks_to_plate

MIN_PEAK_DN = 40  # weaker peaks are mostly ambient left over where the scene moved between frames; the line
# itself is dimmer only where it grazes the skin at under ~10 deg
PLATE_CUT_MM = 1.0  # points below this height are the plate (plate points scatter ~0.3 mm RMS)
LEG_CUT_MM = 120.0  # see the module docstring
STATION_RADIUS_MM = 190.0  # from the arm axis: the scan station; the side pad (y = +-450) is far beyond
STATION_EDGE_MM = 175.0  # a centred 310 mm foot (ANSUR's longest) reaches ~160 mm from the axis
MOTION_BIN_DEG = 30.0
MOTION_PAIR_MM = 3.0  # motion checks compare points at most this far apart along the skin (_surface_offsets)
MIN_MOTION_PAIRS = 50
MIN_NORMAL_BREADTH_MM = 0.5  # motion checks trust a normal whose neighbours span this much across (normals.py)
CLOSURE_DEG = 20.0  # the arm travel at each end of the sweep compared by the sweep-closure motion check
MAX_GAP_STEPS = 3.5  # the session accepts up to 2 missing frames in a row (a gap of 3 steps)
VOXEL_MM = 1.0  # points of one laser are averaged per cube of this size (see _merge_voxels)
NEIGHBOURS = 16  # each point's neighbourhood for the outlier test, its normal and the noise figure
OUTLIER_STD_RATIO = 2.5
PROFILE_NEIGHBOURS = 4  # a point with this many others within PROFILE_GAP_MM lies on a laser profile
PROFILE_GAP_MM = 3.0  # along a profile the 1 mm cells lie 1-1.5 mm apart: the 4th other is ~2 mm away
PROFILE_MIN_DN = 60  # lone heel profiles' peaks: 5th percentile 70-100 DN; ambient left-overs stay under ~46 DN
EDGE_PX = 3  # peaks this close to the image's side or bottom edge: the foot may run out of view

# Quality limits (ScanQuality.reasons): beyond these a scan is not measured.
MIN_LINE_FRAMES_SHARE = 0.9  # frames that must show a laser line
MIN_POINTS_PER_FRAME = 20  # foot points (1 mm cells) per frame on average (a foot gives ~80-120)
MAX_NOISE_MM = 0.35  # median distance of points to their local plane
MAX_LASER_MISMATCH_MM = 0.35  # worst 30-deg bin of the distance between the two lasers' surfaces (moved)
MAX_SWEEP_CLOSURE_MM = 0.3  # distance between the surfaces seen at the sweep's start and end (moved)
MAX_AZIMUTH_GAP_DEG = 40.0  # around the foot's centre, seen from above
MAX_EDGE_SHARE = 0.01  # foot points whose peak lies on the image's edge
MAX_BEYOND_SHARE = 0.02  # points past the station's edge, relative to the foot's
MAX_SECOND_BODY_SHARE = 0.1  # a second cluster this big next to the foot: two feet or an object in view
MAX_FOOT_WIDTH_MM = 150.0  # ANSUR II's widest feet are ~125 mm
CLUSTER_GRID_MM = 4.0
END_SLAB_MM = 4.0  # the last few mm of the foot's ends (_end_radius)

TOES_NOT_VISIBLE = "toes not visible: foot too far forward on the station, move it back and rescan"
HEEL_NOT_VISIBLE = "heel not visible: foot too far back on the station, move it forward and rescan"


@dataclass(frozen=True)
class ScanQuality:
    """Figures of one foot's scan and, in `reasons`, why it is not good enough (empty: fine)."""

    frames: int
    frames_with_line: int
    points: int  # foot points kept
    noise_mm: float  # median RMS distance of each point's neighbours to their plane (normals.plane_fits)
    plate_rms_mm: float  # RMS height of the plate's points (0 on a perfect rig): calibration health
    laser_mismatch_mm: float  # right-laser points to the left laser's surface: median, worst 30-deg bin
    sweep_closure_mm: float  # median distance between the surfaces seen at the sweep's start and at its end
    azimuth_gap_deg: float  # largest angle around the foot's centre without points (low band)
    edge_share: float  # share of foot points seen at the image's side or bottom edge
    toe_end_radius_mm: float  # how far the foot's front end (toes) lies from the arm axis
    heel_end_radius_mm: float  # the same for its back end (heel)
    second_body_share: float  # size of the second-largest cluster relative to the largest
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class FootCloud:
    """The reconstructed foot in the plate frame (mm, z up, plate at z = 0, docs/frames.md).

    `points_mm` are seen surface points from PLATE_CUT_MM to LEG_CUT_MM above the plate, with outward unit
    `normals`, the laser (0 left, 1 right) and arm angle of each. The sole and the undercut sides are not seen
    (module docstring).
    """

    side: str
    points_mm: np.ndarray  # (N, 3)
    normals: np.ndarray  # (N, 3)
    laser: np.ndarray  # (N,) int8
    angle_deg: np.ndarray  # (N,)
    quality: ScanQuality
    leg_cut_mm: float = LEG_CUT_MM
    stage_seconds: dict[str, float] = field(default_factory=dict, compare=False)

# --- the pipeline ----------------------------------------------------------------------------------------------


def reconstruct_foot(foot: FootFrames, cal: RigCalibration, check: bool = True) -> FootCloud:
    """The foot's point cloud; with `check`, a scan below quality raises ScanQualityError naming the reasons."""
    cloud = _reconstruct(foot, cal, undistort=True, integer_peaks=False)
    if check and cloud.quality.reasons:
        raise ScanQualityError(f"{foot.side} foot scan rejected: " + "; ".join(cloud.quality.reasons))
    return cloud


def horus_baseline(foot: FootFrames, cal: RigCalibration) -> FootCloud:
    """The plain Horus-style pipeline for the accuracy benchmark: integer-pixel peaks, no lens undistortion
    (everything after triangulation as in `reconstruct_foot`); never rejects."""
    return _reconstruct(foot, cal, undistort=False, integer_peaks=True)


class _Clock:
    """Wall time per stage, for the benchmark's breakdown."""

    def __init__(self):
        self._last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def _reconstruct(foot: FootFrames, cal: RigCalibration, undistort: bool, integer_peaks: bool) -> FootCloud:
    clock = _Clock()
    images = check_sweep(foot, cal)
    clock.lap("check")
    try:
        peaks = laser_peaks(images, foot.lasers, closed=True)  # check_sweep: the frames go once round
    except LaserPeakError as e:
        raise FootfitError(f"{foot.side} foot: {e}") from None
    if integer_peaks:
        peaks = LaserPeaks(peaks.frame, np.rint(peaks.u_px), peaks.v_px, peaks.strength_dn, peaks.width_px,
                           peaks.frames)
    frames_with_line = int(np.count_nonzero(peaks.counts_per_frame()))
    if frames_with_line < MIN_LINE_FRAMES_SHARE * len(images):
        raise ScanQualityError(
            f"{foot.side} foot: no laser line visible in {len(images) - frames_with_line} of {len(images)} frames: "
            "check that both lasers light up and nothing blocks them, then rescan")
    peaks = peaks.select(peaks.strength_dn >= MIN_PEAK_DN)
    clock.lap("peaks")
    width_px = images.shape[2]
    points, laser, peak_index = peaks_to_plate(peaks, foot.lasers, foot.angles_deg, cal, width_px, undistort)
    frame = peaks.frame[peak_index]
    clock.lap("triangulate")
    if not np.isfinite(points).all():
        raise FootfitError(f"{foot.side} foot: triangulation gave non-finite points: the calibration is damaged, "
                           "run `footfit calibrate`")
    axis_xy = cal.plate_from_axis[:2, 3]
    radius = np.hypot(*(points[:, :2] - axis_xy).T)
    on_station = radius < STATION_RADIUS_MM
    plate = on_station & (np.abs(points[:, 2]) < PLATE_CUT_MM)
    plate_rms = float(np.sqrt(np.mean(points[plate, 2] ** 2))) if plate.any() else float("nan")
    above = (points[:, 2] >= PLATE_CUT_MM) & (points[:, 2] <= LEG_CUT_MM)
    body = np.flatnonzero(on_station & above)
    beyond = points[above & (radius >= STATION_EDGE_MM)]  # the foot reaches past the station's edge
    if len(body) < 100:
        raise ScanQualityError(f"{foot.side} foot: no foot on the scan station ({len(body)} points above the "
                               "plate): place the foot on the station mark and rescan")
    u, v = peaks.u_px[peak_index[body]], peaks.v_px[peak_index[body]]
    edge = (u < EDGE_PX) | (u > width_px - 1 - EDGE_PX) | (v > images.shape[1] - 1 - EDGE_PX)
    clock.lap("crop")
    merged, merged_laser, merged_angle, merged_edge, merged_dn = _merge_voxels(
        points[body], laser[body], foot.angles_deg[frame[body]], edge, peaks.strength_dn[peak_index[body]])
    clock.lap("voxels")
    distance, neighbours = nearest_neighbours(merged, NEIGHBOURS)
    inlier = surface_inliers(distance, merged_dn)
    clock.lap("neighbours")
    normals, spread, breadth = plane_fits(merged, neighbours, inlier, _camera_centres(cal, merged_angle))
    keep = inlier & np.isfinite(spread)  # a normal needs 3 inlier neighbours
    kept, kept_laser, kept_angle, normals = merged[keep], merged_laser[keep], merged_angle[keep], normals[keep]
    trusted = breadth[keep] >= MIN_NORMAL_BREADTH_MM
    noise = float(np.median(spread[keep]))
    clock.lap("normals")
    quality = _quality(foot, cal, kept, normals, trusted, kept_laser, kept_angle, merged_edge[keep], beyond,
                       frames_with_line, noise, plate_rms)
    clock.lap("quality")
    return FootCloud(foot.side, kept, normals, kept_laser, kept_angle, quality, stage_seconds=clock.seconds)


def surface_inliers(distance: np.ndarray, strength_dn: np.ndarray) -> np.ndarray:
    """The points that pass the outlier test, from their (N, k) neighbour distances (the point itself first) and
    the mean strength of their peaks: within the statistical bound (normals.statistical_inliers), or on a clear
    laser profile (PROFILE_NEIGHBOURS others within PROFILE_GAP_MM, peaks of PROFILE_MIN_DN or more).

    Why the second rule: the laser planes pass through the arm axis, so on the heel's and toes' sides (~100-150 mm
    from the axis, almost parallel to the planes) one arm step moves the line ~15 mm over the skin and a profile
    lies alone there. Its points' neighbours string along it (mean distance ~4 mm), the statistical bound (~3 mm)
    alone drops them, and the heel came out up to 4.3 mm too narrow. Isolated peaks still fail both rules; ambient
    left over where the scene moved can string into profiles too, but it is weak: under ~35 DN at 1.5 deg steps,
    40-46 DN (over 12-30 px wide runs) at 6 deg steps, under PROFILE_MIN_DN."""
    on_profile = distance[:, min(PROFILE_NEIGHBOURS, distance.shape[1] - 1)] <= PROFILE_GAP_MM
    return statistical_inliers(distance, OUTLIER_STD_RATIO) | (on_profile & (strength_dn >= PROFILE_MIN_DN))


def _camera_centres(cal: RigCalibration, angles_deg: np.ndarray) -> np.ndarray:
    """(N, 3) plate-frame position of the camera at each arm angle (cal.plate_from_camera, vectorised)."""
    x, y, z = cal.axis_from_camera[:3, 3]
    a = np.radians(angles_deg)
    in_axis = np.stack([np.cos(a) * x - np.sin(a) * y, np.sin(a) * x + np.cos(a) * y, np.full_like(a, z)], axis=1)
    return in_axis @ cal.plate_from_axis[:3, :3].T + cal.plate_from_axis[:3, 3]


def _merge_voxels(points, laser, angle_deg, edge, strength_dn):
    """Points averaged per VOXEL_MM cube and laser: (points, laser int8, mean arm angle, any on the image edge,
    mean peak strength).

    Along a profile the peaks of neighbouring rows lie ~0.2 mm apart, far denser than the ~1-4 mm between
    profiles; averaging them cuts the noise and the work of every later stage. Lasers are kept apart so that
    the motion check can compare their surfaces."""
    cell = np.floor(points / VOXEL_MM).astype(np.int64)
    cell -= cell.min(axis=0)
    span = cell.max(axis=0) + 1
    key = ((cell[:, 0] * span[1] + cell[:, 1]) * span[2] + cell[:, 2]) * 2 + laser
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    merged = np.stack([np.bincount(inverse, points[:, k]) for k in range(3)], axis=1) / counts[:, None]
    angle = np.bincount(inverse, angle_deg) / counts
    on_edge = np.bincount(inverse, edge) > 0
    return merged, laser[first].astype(np.int8), angle, on_edge, np.bincount(inverse, strength_dn) / counts


def check_sweep(foot: FootFrames, cal: RigCalibration) -> np.ndarray:
    """The sweep's images, after checking what reconstruction relies on; clear errors otherwise."""
    images = np.asarray(foot.images)
    angles = np.asarray(foot.angles_deg, dtype=float)
    name = f"{foot.side} foot"
    if images.ndim != 3 or images.dtype != np.uint8:
        raise FootfitError(f"{name}: frames must be a (frames, height, width) uint8 stack, got {images.dtype} "
                           f"{images.shape}")
    if not (len(images) == len(angles) == len(foot.lasers)):
        raise FootfitError(f"{name}: {len(images)} images, {len(angles)} angles and {len(foot.lasers)} laser "
                           "states: the raw scan is damaged, rescan")
    if len(images) < 8:
        raise FootfitError(f"{name}: only {len(images)} frames: a sweep needs one frame every few degrees, rescan")
    check_image_size(cal, images.shape[2], images.shape[1])
    if not np.isfinite(angles).all():
        raise FootfitError(f"{name}: arm angles are not all finite numbers: the raw scan is damaged, rescan")
    steps = np.diff(angles)
    if (steps <= 0).any():
        k = int(np.argmax(steps <= 0)) + 1
        raise FootfitError(f"{name}: frames out of order: frame {k} at {angles[k]:g} deg follows "
                           f"{angles[k - 1]:g} deg; frames must be sorted by increasing arm angle")
    step = float(np.median(steps))
    gaps = np.flatnonzero(steps > MAX_GAP_STEPS * step)
    if gaps.size:
        k = int(gaps[np.argmax(steps[gaps])])
        raise FootfitError(f"{name}: frames missing between {angles[k]:g} and {angles[k + 1]:g} deg (the "
                           f"sweep's step is {step:g} deg): rescan")
    closing_gap = 360.0 - (angles[-1] - angles[0])
    if closing_gap > MAX_GAP_STEPS * step:
        raise FootfitError(f"{name}: the sweep covers {angles[-1] - angles[0]:g} of 360 deg: frames missing at "
                           "its start or end, rescan")
    frame_laser_index(foot.lasers)
    return images


# --- quality ---------------------------------------------------------------------------------------------------


def _quality(foot, cal, points, normals, trusted, laser, angle_deg, edge, beyond, frames_with_line, noise_mm,
             plate_rms) -> ScanQuality:
    reasons = []
    n_frames = len(foot.angles_deg)
    mismatch = _laser_mismatch(points, normals, trusted, laser, angle_deg)
    closure = _sweep_closure(points, normals, trusted, laser, angle_deg)
    gap_deg, gap_at_deg = _azimuth_gap(points)
    edge_share = float(edge.mean())
    step_deg = float(np.median(np.diff(foot.angles_deg)))
    second = _second_body_share(points, step_deg)
    along, across = _plan_axes(points)
    width_mm = float(np.percentile(across, 99.5) - np.percentile(across, 0.5))
    axis_xy = cal.plate_from_axis[:2, 3]
    toe_end, heel_end = _end_radius(points, along, axis_xy, +1), _end_radius(points, along, axis_xy, -1)
    if len(points) < MIN_POINTS_PER_FRAME * n_frames:
        reasons.append(f"too few foot points ({len(points)} from {n_frames} frames): is the foot on the station "
                       "and the lens clean?")
    if second > MAX_SECOND_BODY_SHARE or width_mm > MAX_FOOT_WIDTH_MM:
        reasons.append("two feet or another object in view: only the foot being scanned may stand on the station")
    if toe_end > STATION_EDGE_MM:
        reasons.append(TOES_NOT_VISIBLE)
    if heel_end > STATION_EDGE_MM:
        reasons.append(HEEL_NOT_VISIBLE)
    if edge_share > MAX_EDGE_SHARE or len(beyond) > MAX_BEYOND_SHARE * len(points):
        reasons.append(_out_of_view(points, np.concatenate([points[edge], beyond])))
    if gap_deg > MAX_AZIMUTH_GAP_DEG:
        reasons.append(f"coverage hole: no surface seen over {gap_deg:.0f} deg around the {_part_at(gap_at_deg)} "
                       "(foot off centre or something blocking the view)")
    if noise_mm > MAX_NOISE_MM:
        reasons.append(f"noisy surface ({noise_mm:.2f} mm > {MAX_NOISE_MM} mm): check the lens and that no bright "
                       "light shines on the station")
    if mismatch > MAX_LASER_MISMATCH_MM or closure > MAX_SWEEP_CLOSURE_MM:
        reasons.append(f"the foot moved during the sweep (the two lasers' surfaces differ by {mismatch:.2f} mm, the "
                       f"sweep's start and end by {closure:.2f} mm): ask the customer to stand still and rescan")
    return ScanQuality(n_frames, frames_with_line, len(points), noise_mm, plate_rms, mismatch, closure, gap_deg,
                       edge_share, toe_end, heel_end, second, tuple(dict.fromkeys(reasons)))


def _laser_mismatch(points, normals, trusted, laser, angle_deg) -> float:
    """How far apart the two lasers' surfaces lie: the distance from right-laser points to the left laser's
    surface (`_surface_offsets`), median per MOTION_BIN_DEG of arm angle, worst bin. The lasers see each spot
    about 60 deg of arm travel apart, so a foot that moves shows up in the bins after the moment it moved."""
    offset, right = _surface_offsets(points, normals, np.flatnonzero((laser == 0) & trusted),
                                     np.flatnonzero(laser == 1))
    if len(offset) < MIN_MOTION_PAIRS:
        return float("nan")
    bins = (angle_deg[right] // MOTION_BIN_DEG).astype(np.int64)
    medians = [np.median(offset[bins == b]) for b in np.unique(bins) if np.count_nonzero(bins == b) >= MIN_MOTION_PAIRS]
    return float(max(medians)) if medians else float(np.median(offset))


def _sweep_closure(points, normals, trusted, laser, angle_deg) -> float:
    """How far the foot moved between the sweep's start and its end: the sweep is a full turn, so its first and
    last CLOSURE_DEG of arm travel see the same skin from the same side. Median distance from the late points
    to the surface of the early points of the same laser (`_surface_offsets`)."""
    early = angle_deg < angle_deg.min() + CLOSURE_DEG
    late = angle_deg > angle_deg.max() - CLOSURE_DEG
    offsets = [_surface_offsets(points, normals, np.flatnonzero(early & (laser == which) & trusted),
                                np.flatnonzero(late & (laser == which)))[0] for which in (0, 1)]
    offsets = np.concatenate(offsets)
    return float(np.median(offsets)) if len(offsets) >= MIN_MOTION_PAIRS else float("nan")


def _surface_offsets(points, normals, reference, query) -> tuple[np.ndarray, np.ndarray]:
    """(distance of query points to the tangent plane of their nearest reference point, those query points),
    for the pairs less than MOTION_PAIR_MM apart along that plane: farther apart, the skin's curvature between
    them (a 3 mm step on a 30 mm radius: 0.15 mm) would read as motion. References should be points whose
    normal is trusted (normals.plane_fits: breadth)."""
    if len(reference) < 3 or len(query) < 3:
        return np.zeros(0), np.zeros(0, np.int64)
    _, nearest = cKDTree(points[reference]).query(points[query], workers=-1)
    near = reference[nearest]
    gap = points[query] - points[near]
    offset = np.einsum("ij,ij->i", gap, normals[near])
    along = np.sqrt(np.clip(np.einsum("ij,ij->i", gap, gap) - offset ** 2, 0, None))
    close = along < MOTION_PAIR_MM
    return np.abs(offset[close]), query[close]


def _azimuth_gap(points) -> tuple[float, float]:
    """(largest gap in degrees, its middle) of the azimuths of the low points (5-40 mm up) about their centre."""
    low = points[(points[:, 2] > 5.0) & (points[:, 2] < 40.0)]
    if len(low) < 10:
        return 360.0, 0.0
    centre = low[:, :2].mean(axis=0)
    azimuth = np.sort(np.degrees(np.arctan2(low[:, 1] - centre[1], low[:, 0] - centre[0])))
    gaps = np.diff(np.concatenate([azimuth, azimuth[:1] + 360.0]))
    k = int(np.argmax(gaps))
    return float(gaps[k]), float((azimuth[k] + gaps[k] / 2 + 180.0) % 360.0 - 180.0)


def _part_at(azimuth_deg: float) -> str:
    """The part of a foot standing toward +x (plate frame) that lies toward this azimuth."""
    a = (azimuth_deg + 360.0) % 360.0
    if a < 45 or a >= 315:
        return "toes"
    if a >= 135 and a < 225:
        return "heel"
    return "left side" if a < 180 else "right side"


def _out_of_view(points, outside) -> str:
    """Which end of the foot runs out of the camera's view, from where the points at the edge lie."""
    centre = points[:, :2].mean(axis=0)
    toward = outside[:, :2].mean(axis=0) - centre
    part = _part_at(float(np.degrees(np.arctan2(toward[1], toward[0]))))
    if part == "toes":
        return TOES_NOT_VISIBLE
    if part == "heel":
        return HEEL_NOT_VISIBLE
    return f"the foot's {part} runs out of view: centre the foot on the station and rescan"


def _second_body_share(points, step_deg: float) -> float:
    """Points of the second-largest cluster over those of the largest, seen from above: a second foot or an
    object on the station. Clusters are joined across CLUSTER_GRID_MM cells and gaps up to twice the spacing of
    the profiles at the station's edge (the sweep's step at STATION_EDGE_MM from the axis), which the foot's own
    surface never has. From above, because a foot's surface may have holes (the back of a heel placed far back)
    that part it in 3D but not in plan."""
    plan = np.column_stack([points[:, :2], np.zeros(len(points))])
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(plan)).voxel_down_sample(CLUSTER_GRID_MM)
    eps_mm = CLUSTER_GRID_MM + 2.0 * np.radians(step_deg) * STATION_EDGE_MM
    labels = np.asarray(cloud.cluster_dbscan(eps=eps_mm, min_points=3))
    sizes = np.sort(np.bincount(labels[labels >= 0]))[::-1] if (labels >= 0).any() else np.zeros(1)
    return float(sizes[1] / sizes[0]) if len(sizes) > 1 else 0.0


def _plan_axes(points) -> tuple[np.ndarray, np.ndarray]:
    """(along, across) mm: the points seen from above in the cloud's own long and short axes, `along` growing
    toward +x of the plate (the customer's toes)."""
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    _, _, axes = np.linalg.svd(xy[:: max(1, len(xy) // 5000)], full_matrices=False)
    long_axis = axes[0] if axes[0, 0] >= 0 else -axes[0]
    return xy @ long_axis, xy @ np.array([-long_axis[1], long_axis[0]])


def _end_radius(points, along, axis_xy, end: int) -> float:
    """Distance from the arm axis of the foot's end (+1 toes, -1 heel): the mean of its last END_SLAB_MM in
    plan. The rig sees the floor only up to about the station's edge; an end that reaches it is (or is about to
    be) cut off there, leaving a hole at that end of the foot."""
    tip = along.max() if end > 0 else along.min()
    slab = points[np.abs(along - tip) <= END_SLAB_MM, :2]
    return float(np.hypot(*(slab.mean(axis=0) - axis_xy)))
