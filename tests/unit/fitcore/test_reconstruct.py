"""Reconstruction: accuracy against the true posed mesh, the quality checks and bad input.

Sweeps are rendered in-process by the simulator's real camera (JPEG-encoded and decoded like the stream,
red channel as the scan session keeps it) with the exact calibration from the hidden truth (tests only), so
the reconstruction is tested alone. The accuracy test uses full-resolution frames at 6 deg steps: the error per
point does not depend on how many frames there are, and a quarter of the frames keep the test quick.
"""

from dataclasses import replace

import cv2
import numpy as np
import open3d as o3d
import pytest

from core.errors import FootfitError, ScanQualityError
from core.frame_stamp import FrameStamp
from core.mesh import Mesh
from core.rawscan import FootFrames
from fitcore.scan.normals import nearest_neighbours, statistical_inliers
from fitcore.scan.reconstruct import (
    HEEL_NOT_VISIBLE,
    LEG_CUT_MM,
    MAX_LASER_MISMATCH_MM,
    MAX_SWEEP_CLOSURE_MM,
    NEIGHBOURS,
    OUTLIER_STD_RATIO,
    PLATE_CUT_MM,
    TOES_NOT_VISIBLE,
    horus_baseline,
    reconstruct_foot,
    surface_inliers,
)
from fitcore.scan.triangulate import ImageSizeError
from simulator.camera import VirtualCamera
from simulator.rig import rig_geometry
from simulator.scene import Scene
from simulator.subjects import population_subject
from testing.sim_truth import calibration_from_truth

pytestmark = pytest.mark.slow


def make_scene(rig_serial: str, seed: int, left: Mesh | None = None) -> Scene:
    subject = population_subject(seed)
    return Scene(rig_geometry(rig_serial), left or subject.left, subject.right, subject.body_weight_kg, seed)


def moved(scene: Scene, dx_mm: float = 0.0, dy_mm: float = 0.0) -> Scene:
    """The same scene with the scanned (left) foot moved on the plate by (dx, dy)."""
    other = make_scene(scene.rig.serial, scene.seed)
    shift = np.eye(4)
    shift[:2, 3] = dx_mm, dy_mm
    other.scan_pose = {**scene.scan_pose, "left": shift @ scene.scan_pose["left"]}
    return other


def render_sweep(scene: Scene, binning: int, step_deg: float, side: str = "left",
                 switch_to: Scene | None = None) -> FootFrames:
    """One sweep of `side` with lasers alternating L, R; with `switch_to`, the second half is rendered from
    that scene instead (the foot moved half-way)."""
    n = int(round(360 / step_deg))
    cameras = [VirtualCamera(s, seed=11) for s in (scene, switch_to or scene)]
    images, lasers = [], []
    for s, camera in zip((scene, switch_to or scene), cameras):
        s.place(side)
        camera.binning = binning
    for i in range(n):
        camera, s = (cameras[0], scene) if i < n // 2 else (cameras[1], switch_to or scene)
        state = replace(s.snapshot(), arm_angle_deg=i * step_deg, lasers=(i % 2 == 0, i % 2 == 1))
        jpeg = camera.capture(state, FrameStamp(True, i)).jpeg
        images.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[:, :, 2])
        lasers.append(state.lasers)
    return FootFrames(side, np.arange(n) * step_deg, np.array(lasers, bool), np.stack(images))


def surface_distances(points_mm: np.ndarray, scene: Scene, side: str = "left") -> np.ndarray:
    true_mesh = scene.feet_on_plate(side)[side]
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(o3d.core.Tensor(true_mesh.vertices_mm.astype(np.float32)),
                            o3d.core.Tensor(true_mesh.triangles.astype(np.uint32)))
    return raycaster.compute_distance(o3d.core.Tensor(points_mm.astype(np.float32))).numpy()


@pytest.fixture(scope="module")
def light():
    """A light-profile sweep (640x480, 3 deg) and its rig's calibration."""
    scene = make_scene("FF-TEST-0101", seed=21)
    return render_sweep(scene, binning=2, step_deg=3.0), calibration_from_truth(scene.rig), scene


@pytest.mark.parametrize("rig_serial, seed", [("FF-TEST-0001", 4)])
def test_full_resolution_points_lie_on_the_true_surface(rig_serial, seed):
    scene = make_scene(rig_serial, seed)
    foot = render_sweep(scene, binning=1, step_deg=6.0)
    cal = calibration_from_truth(scene.rig)
    cloud = reconstruct_foot(foot, cal)
    distance = surface_distances(cloud.points_mm, scene)
    rms, p95 = np.sqrt(np.mean(distance ** 2)), np.percentile(distance, 95)
    print(f"{rig_serial}: {len(distance)} points, RMS {rms:.3f} mm, P95 {p95:.3f} mm")
    assert rms <= 0.5 and p95 <= 1.0
    baseline = surface_distances(horus_baseline(foot, cal).points_mm, scene)
    assert np.sqrt(np.mean(baseline ** 2)) > 1.5 * rms, "sub-pixel peaks and undistortion must pay off"
    # the cloud covers the foot from toe to heel, between the plate and the leg cut
    true_mesh = scene.feet_on_plate("left")["left"]
    true_x = true_mesh.vertices_mm[:, 0]
    assert cloud.points_mm[:, 0].min() < true_x.min() + 3 and cloud.points_mm[:, 0].max() > true_x.max() - 3
    assert cloud.points_mm[:, 2].min() >= PLATE_CUT_MM and cloud.points_mm[:, 2].max() <= LEG_CUT_MM


def test_light_profile_accuracy_normals_and_quality(light):
    foot, cal, scene = light
    cloud = reconstruct_foot(foot, cal)
    distance = surface_distances(cloud.points_mm, scene)
    assert np.sqrt(np.mean(distance ** 2)) <= 0.5 and np.percentile(distance, 95) <= 1.0
    # normals point out of the foot: a step along them moves away from the true surface's inside
    outside = surface_distances(cloud.points_mm + 2.0 * cloud.normals, scene)
    assert np.mean(outside > distance + 1.0) > 0.95
    q = cloud.quality
    assert q.ok and q.frames_with_line == q.frames == len(foot.angles_deg)
    assert q.noise_mm < 0.3 and q.laser_mismatch_mm < 0.3 and q.azimuth_gap_deg < 20 and q.edge_share < 0.01


def test_a_lone_laser_profile_is_kept_and_stray_points_are_dropped():
    """As on the heel's sides: dense skin where profiles lie 2 mm apart, one profile alone 20 mm beyond it, a clump
    of three points; then stray single points."""
    rng = np.random.default_rng(3)
    along, across = np.meshgrid(np.arange(0.0, 60.0, 1.0), np.arange(0.0, 60.0, 2.0))
    skin = np.column_stack([along.ravel(), across.ravel(), np.zeros(along.size)])
    arc = np.radians(np.arange(0.0, 80.0, 2.0))  # 40 cells ~1 mm apart on a 30 mm radius
    profile = np.column_stack([30.0 * np.cos(arc), np.full(len(arc), 80.0), 30.0 * np.sin(arc)])
    clump = np.array([[30.0, -15.0, 5.0], [30.5, -15.0, 5.0], [30.0, -15.5, 5.5]])
    points = np.concatenate([skin, profile, clump]) + rng.normal(0.0, 0.05, (len(skin) + len(profile) + 3, 3))
    distance, _ = nearest_neighbours(points, NEIGHBOURS)
    bright = np.full(len(points), 150.0)
    kept = surface_inliers(distance, bright)
    n = len(skin)
    assert kept[:n].all() and kept[n + 2:n + len(profile) - 2].all()  # (its last 2 cells have too few neighbours)
    assert not kept[n + len(profile):].any()  # the clump
    # what the profile rule adds: the statistical bound, set by the dense skin, drops the lone profile
    assert not statistical_inliers(distance, OUTLIER_STD_RATIO)[n:n + len(profile)].any()
    dim = np.where(np.arange(len(points)) < n, 150.0, 45.0)  # as ambient left over where the scene moved
    assert not surface_inliers(distance, dim)[n:].any()
    stray = rng.uniform([0, 150, 0], [60, 210, 40], (20, 3))
    with_stray = np.concatenate([points, stray])
    assert not surface_inliers(nearest_neighbours(with_stray, NEIGHBOURS)[0], np.full(len(with_stray), 150.0))[
        len(points):].any()


def test_frames_out_of_order_or_missing_are_refused(light):
    foot, cal, _ = light
    swapped = np.arange(len(foot.angles_deg))
    swapped[[5, 6]] = swapped[[6, 5]]
    with pytest.raises(FootfitError, match="out of order"):
        reconstruct_foot(FootFrames("left", foot.angles_deg[swapped], foot.lasers[swapped], foot.images[swapped]),
                         cal)
    keep = np.r_[0:40, 46:len(foot.angles_deg)]
    with pytest.raises(FootfitError, match="frames missing between 117 and 138 deg"):
        reconstruct_foot(FootFrames("left", foot.angles_deg[keep], foot.lasers[keep], foot.images[keep]), cal)
    with pytest.raises(FootfitError, match="covers 270 of 360 deg"):
        reconstruct_foot(FootFrames("left", foot.angles_deg[:91], foot.lasers[:91], foot.images[:91]), cal)
    with pytest.raises(FootfitError, match="not all finite"):
        reconstruct_foot(FootFrames("left", np.where(foot.angles_deg == 30, np.nan, foot.angles_deg), foot.lasers,
                                    foot.images), cal)


def test_no_laser_and_wrong_image_size_are_refused(light):
    foot, cal, _ = light
    dark = np.repeat(foot.images[:1], len(foot.angles_deg), axis=0)  # one still: no line moves, no difference
    with pytest.raises(ScanQualityError, match="no laser line visible in 120 of 120 frames"):
        reconstruct_foot(FootFrames("left", foot.angles_deg, foot.lasers, dark), cal)
    cropped = np.ascontiguousarray(foot.images[:, :, :600])
    with pytest.raises(ImageSizeError, match="600x480 px but rig FF-TEST-0101 was calibrated at 1280x960"):
        reconstruct_foot(FootFrames("left", foot.angles_deg, foot.lasers, cropped), cal)


def test_a_damaged_calibration_gives_no_nan_points(light):
    foot, cal, _ = light
    broken = replace(cal, axis_from_camera=np.full((4, 4), np.nan))
    with pytest.raises(FootfitError, match="non-finite points"):
        reconstruct_foot(foot, broken)


def test_two_feet_on_the_station_are_refused():
    subject = population_subject(5)
    other = subject.right.vertices_mm + [0.0, -115.0, 0.0]
    both = Mesh(np.concatenate([subject.left.vertices_mm, other]),
                np.concatenate([subject.left.triangles, subject.right.triangles + len(subject.left.vertices_mm)]))
    scene = make_scene("FF-TEST-0103", seed=5, left=both)
    with pytest.raises(ScanQualityError, match="two feet or another object in view"):
        reconstruct_foot(render_sweep(scene, binning=2, step_deg=6.0), calibration_from_truth(scene.rig))


@pytest.mark.parametrize("dx_mm, dy_mm", [(2.0, 0.0), (0.0, 2.0)])
def test_a_foot_that_moves_during_the_sweep_is_rejected(light, dx_mm, dy_mm):
    _, cal, scene = light
    foot = render_sweep(scene, binning=2, step_deg=3.0, switch_to=moved(scene, dx_mm, dy_mm))  # half-way
    q = reconstruct_foot(foot, cal, check=False).quality
    assert any("moved during the sweep" in reason for reason in q.reasons)
    assert q.laser_mismatch_mm > MAX_LASER_MISMATCH_MM or q.sweep_closure_mm > MAX_SWEEP_CLOSURE_MM


def test_a_still_foot_shows_no_motion(light):
    foot, cal, _ = light
    q = reconstruct_foot(foot, cal).quality
    assert q.laser_mismatch_mm < MAX_LASER_MISMATCH_MM / 2 and q.sweep_closure_mm < MAX_SWEEP_CLOSURE_MM / 2


@pytest.mark.parametrize("dx_mm, reason", [(100.0, TOES_NOT_VISIBLE), (-100.0, HEEL_NOT_VISIBLE)])
def test_a_foot_beyond_the_view_is_rejected_naming_the_end(light, dx_mm, reason):
    _, cal, scene = light
    foot = render_sweep(moved(scene, dx_mm), binning=2, step_deg=6.0)
    with pytest.raises(ScanQualityError) as rejected:
        reconstruct_foot(foot, cal)
    assert reason in str(rejected.value)
    other = HEEL_NOT_VISIBLE if reason == TOES_NOT_VISIBLE else TOES_NOT_VISIBLE
    assert other not in str(rejected.value)
