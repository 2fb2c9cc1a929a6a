"""Plate metrics: on synthetic footprints with known answers, and on a real recording of the virtual plate read
through the plate driver (in-process serial port)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.errors import MeasurementError
from device.plate import PLATE_COLS, PLATE_PITCH_MM, PLATE_ROWS, PressurePlate
from fitcore.scan.pressure import CONTACT_KPA, COP_PATH_MAX_POINTS, arch_index, arch_type, plate_metrics, pressure_map
from simulator.plate import GRAVITY_M_S2, VirtualPlate
from simulator.ports import InProcessLink
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import population_subject
from testing.footprints import X_MM, Y_MM, footprint

SENSEL_CM2 = (PLATE_PITCH_MM / 10) ** 2
def test_arch_index_of_schematic_prints_follows_cavanagh_and_rodgers():
    indices = []
    for midfoot_mm in (0.0, 25.0, 45.0, 60.0):
        p = footprint(0.0, midfoot_mm)
        r, c = np.nonzero(p)
        points = np.column_stack([X_MM[r], Y_MM[c]])
        index = arch_index(points, np.array([1.0, 0.0]), PLATE_PITCH_MM)
        # toes cut at the sulcus (x = 95 mm); thirds of the rest along x; count the middle third by hand
        sole = points[points[:, 0] < 95]
        start = sole[:, 0].min() - PLATE_PITCH_MM / 2
        third = (sole[:, 0].max() + PLATE_PITCH_MM / 2 - start) / 3
        middle = ((sole[:, 0] >= start + third) & (sole[:, 0] < start + 2 * third)).sum()
        assert index == pytest.approx(middle / len(sole), abs=0.02)
        indices.append(index)
    assert indices[0] < 0.05 and np.all(np.diff(indices) > 0)
    assert [arch_type(i) for i in indices] == ["high", "high", "normal", "flat"]


def test_arch_types_at_the_class_boundaries():
    assert [arch_type(i) for i in (0.0, 0.21, 0.2101, 0.2599, 0.26, 0.4)] == [
        "high", "high", "normal", "normal", "flat", "flat"]


def test_two_schematic_feet_give_areas_loads_and_peaks():
    left, right = footprint(110.0, 25.0, kpa=60.0), footprint(-110.0, 25.0, kpa=40.0)
    frames = np.stack([left + right] * 5).astype(np.float32)
    m = plate_metrics(frames, PLATE_PITCH_MM)
    assert m.left.contact_area_cm2 == pytest.approx((left > 0).sum() * SENSEL_CM2)
    assert m.right.contact_area_cm2 == pytest.approx((right > 0).sum() * SENSEL_CM2)
    assert m.load_left_percent == pytest.approx(60.0)
    assert (m.left.peak_kpa, m.right.peak_kpa) == (60.0, 40.0)
    assert m.cop_sway_mm == pytest.approx(0.0, abs=1e-9) and m.frames == 5
    assert m.left.arch_index == pytest.approx(m.right.arch_index)
    assert abs(m.left.axis_deg) < 2 and abs(m.right.axis_deg) < 2


def test_bad_recordings_are_refused_with_the_reason():
    one_foot = np.stack([footprint(110.0, 25.0)] * 3)
    with pytest.raises(MeasurementError, match="both feet"):
        plate_metrics(one_foot, PLATE_PITCH_MM)
    with pytest.raises(MeasurementError, match="nobody stands"):
        plate_metrics(np.zeros((3, PLATE_ROWS, PLATE_COLS)), PLATE_PITCH_MM)
    with pytest.raises(MeasurementError, match="NaN"):
        plate_metrics(np.full((3, PLATE_ROWS, PLATE_COLS), np.nan), PLATE_PITCH_MM)
    with pytest.raises(MeasurementError, match="shape"):
        plate_metrics(np.zeros((PLATE_ROWS, PLATE_COLS)), PLATE_PITCH_MM)


def test_the_pressure_map_keeps_the_mean_picture_cop_paths_and_outlines_in_the_plate_frame():
    left, right = footprint(110.0, 25.0, kpa=60.0), footprint(-110.0, 25.0, kpa=40.0)
    # 700 frames: the weight shifts from the left foot to the right one and back, so the body's COP moves in y
    shift = np.sin(np.linspace(0, 2 * np.pi, 700))[:, None, None]
    frames = (left * (1 + 0.5 * shift) + right * (1 - 0.5 * shift)).astype(np.float32)
    m = pressure_map(frames, PLATE_PITCH_MM, plate_metrics(frames, PLATE_PITCH_MM))

    grid = np.array(m.mean_kpa)
    mean = frames.mean(axis=0)
    r0, c0 = np.flatnonzero(np.isclose(X_MM, m.x0_mm))[0], np.flatnonzero(np.isclose(Y_MM, m.y0_mm))[0]
    assert np.allclose(grid, np.round(mean[r0:r0 + grid.shape[0], c0:c0 + grid.shape[1]], 1))
    assert grid.sum() == pytest.approx(mean.sum(), rel=1e-3), "the window holds every loaded sensel"
    assert grid.shape[0] < PLATE_ROWS and grid.shape[1] < PLATE_COLS, "cropped to the feet"
    noisy = frames.copy()
    noisy[:, 0, 0] = CONTACT_KPA / 2  # a noisy sensel in the plate's corner, below contact
    assert np.array(pressure_map(noisy, PLATE_PITCH_MM, plate_metrics(noisy, PLATE_PITCH_MM)).mean_kpa).shape == \
        grid.shape, "stray noise does not widen the window"
    assert m.max_kpa == pytest.approx(mean.max(), abs=0.05) and m.frames == 700

    body = np.array(m.cop_path_mm)
    assert len(body) == COP_PATH_MAX_POINTS
    assert body[:, 1].max() > 20 and body[:, 1].min() < -20, "the body's COP follows the weight from side to side"
    for side, centre_y in (("left", 110.0), ("right", -110.0)):
        foot = getattr(m, side)
        path = np.array(foot.cop_path_mm)
        assert len(path) <= COP_PATH_MAX_POINTS and np.abs(path[:, 1] - path[0, 1]).max() < 1e-6, "one print's COP"
        print_x = X_MM[np.nonzero((left if side == "left" else right).any(axis=1))[0]]
        main = np.array(foot.outlines_mm[0])  # heel, midfoot and ball; the toes are apart
        assert main[:, 0].min() == pytest.approx(print_x.min()) and main[:, 0].max() < 95
        assert main[:, 1].mean() == pytest.approx(centre_y, abs=15)
        every = np.vstack([np.array(o) for o in foot.outlines_mm])
        assert every[:, 0].max() == pytest.approx(print_x.max()), "the toes have outlines of their own"
        assert foot.arch_type == arch_type(foot.arch_index)


def test_a_pressure_map_of_a_bad_recording_is_refused_like_the_metrics():
    one_foot = np.stack([footprint(110.0, 25.0)] * 3)
    metrics = plate_metrics(np.stack([footprint(110.0, 25.0) + footprint(-110.0, 25.0)] * 3), PLATE_PITCH_MM)
    with pytest.raises(MeasurementError, match="both feet"):
        pressure_map(one_foot, PLATE_PITCH_MM, metrics)


@pytest.fixture(scope="module")
def recording():
    """Two seconds of the virtual plate with a population subject standing, read through the real driver."""
    subject = population_subject(3)
    scene = Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=3)
    scene.place("off")
    plate = VirtualPlate(scene, "PP-TEST-0003", seed=11)
    link = InProcessLink(plate, "pressuretest", 0.0, seed=5)
    driver = PressurePlate(link.url, command_timeout_s=1.0)
    try:
        driver.connect()
        driver.zero(n_frames=20, timeout_s=3.0)
        scene.place("stand")
        driver.start()
        deadline = time.monotonic() + 15.0
        weight_n = subject.body_weight_kg * GRAVITY_M_S2
        while driver.read_frame(3.0).pressures_kpa.sum() * SENSEL_CM2 / 10 < 0.9 * weight_n:
            assert time.monotonic() < deadline, "the feet never loaded the plate"
        frames = [driver.read_frame(3.0).pressures_kpa for _ in range(200)]
    finally:
        driver.close()
        plate.power_cycle()
        link.close()
    return scene, plate, subject, np.stack(frames)


def test_a_recording_of_the_virtual_plate(recording):
    scene, plate, subject, frames = recording
    m = plate_metrics(frames, PLATE_PITCH_MM)
    share = plate._shares("stand")["left"]  # the plate's hidden stance bias
    assert m.load_left_percent == pytest.approx(100 * share, abs=2.0)
    weight_n = subject.body_weight_kg * GRAVITY_M_S2
    assert m.left.mean_force_n + m.right.mean_force_n == pytest.approx(weight_n, rel=0.1)
    for side in ("left", "right"):
        foot = getattr(m, side)
        assert 40 < foot.contact_area_cm2 < 200 and 30 < foot.peak_kpa < 500
        assert 0 <= foot.arch_index < 1 and foot.arch_type == arch_type(foot.arch_index)
        assert 0 < foot.cop_sway_mm < 10  # the plate sways a few mm
        pose = scene.stance_pose[side]
        yaw_deg = np.degrees(np.arctan2(pose[1, 0], pose[0, 0]))
        assert foot.axis_deg == pytest.approx(yaw_deg, abs=6.0)  # principal axis vs the mesh's x axis
    assert 0 < m.cop_sway_mm < 10


def test_the_pressure_map_of_a_virtual_plate_recording(recording):
    _, _, _, frames = recording
    metrics = plate_metrics(frames, PLATE_PITCH_MM)
    m = pressure_map(frames, PLATE_PITCH_MM, metrics)
    assert (m.left.arch_type, m.right.arch_type) == (metrics.left.arch_type, metrics.right.arch_type)
    for side, sign in (("left", 1), ("right", -1)):  # +y is the customer's left
        foot = getattr(m, side)
        outline, path = np.vstack([np.array(o) for o in foot.outlines_mm]), np.array(foot.cop_path_mm)
        assert sign * outline[:, 1].mean() > 50 and len(path) == len(frames)
        lo, hi = outline.min(axis=0), outline.max(axis=0)
        assert ((path >= lo) & (path <= hi)).all(), "the foot's COP lies on its print"
        assert 150 < hi[0] - lo[0] < 330, "a foot's length of print"
