"""Calibration from images, end to end: the simulator behind real pseudo-terminals and a real HTTP camera, the real
drivers, the reduced view plan. Each rig's result is compared with its hidden truth (testing/sim_truth.py), above
all by triangulating laser points over the working volume with both calibrations."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from cli.scan import calibrate
from core.errors import CalibrationError
from core.settings import DeviceSettings, Settings
from device.board import MotorBoard
from device.camera import Camera
from device.capture import QUICK_VIEWS, capture_stills
from device.rig import HardwareRigProvider
from fitcore.scan.calibrate import calibration_from_stills
from fitcore.scan.calibration import calibration_path, load_calibration, save_calibration
from fitcore.scan.triangulate import intersect_planes, undistorted_rays
from simulator.rig import rig_geometry
from simulator.scanner import SimulatedScanner, SimulatorConfig
from testing.sim_truth import calibration_from_truth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RIGS = ("FF-DEMO-0001", "FF-TEST-0042")
BOX_MM = ((-150.0, 150.0), (-60.0, 60.0), (0.0, 120.0))  # working volume around the arm axis, plate frame


def simulator(serial: str, tmp_path) -> SimulatedScanner:
    return SimulatedScanner(SimulatorConfig(seed=5, rig_serial=serial, port_dir=tmp_path / "ports", time_scale=0.0))


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """The first rig through the procedure's pieces: (stills, calibration)."""
    tmp = tmp_path_factory.mktemp("rig1")
    with simulator(RIGS[0], tmp) as sim, MotorBoard(sim.endpoints.board_url) as board:
        camera = Camera(sim.endpoints.camera_url, read_timeout_s=30.0)
        camera.open()
        try:
            board.home()
            stills = capture_stills(board, camera, QUICK_VIEWS)
        finally:
            camera.close()
        serial = board.identity.serial
    return stills, calibration_from_stills(stills, serial)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The second rig through `cli.scan.calibrate` (what `footfit calibrate` calls): (calibration, data_dir)."""
    tmp = tmp_path_factory.mktemp("rig2")
    progress = []
    with simulator(RIGS[1], tmp) as sim:
        devices = DeviceSettings(board_url=sim.endpoints.board_url, plate_url=sim.endpoints.plate_url,
                                 camera_url=sim.endpoints.camera_url, camera_read_timeout_s=30.0)
        settings = Settings(data_dir=tmp / "data", device=devices)
        calibration, path = calibrate(settings, HardwareRigProvider(devices), RIGS[1], QUICK_VIEWS,
                                      on_progress=progress.append)
    assert path == calibration_path(tmp / "data", RIGS[1])
    phases = [p.phase for p in progress]
    assert phases[0] == "connect" and phases[-1] == "done" and {"plate", "target", "fit"} <= set(phases)
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    return calibration, tmp / "data"


@pytest.fixture(params=RIGS)
def calibrated(request, captured, stored):
    return captured[1] if request.param == RIGS[0] else stored[0]


def triangulation_errors_mm(found, true) -> np.ndarray:
    """Distance between a laser point triangulated with `found` and where it truly is, for points on the true
    laser planes inside BOX_MM, seen from arm angles all round (pixels through the true camera)."""
    rng = np.random.default_rng(1)
    errors = []
    for angle in np.arange(0.0, 360.0, 20.0):
        plate_from_camera = true.plate_from_camera(angle)
        camera_from_plate = np.linalg.inv(plate_from_camera)
        for laser, plane in enumerate(true.lasers):
            box = np.column_stack([rng.uniform(lo, hi, 3000) for lo, hi in BOX_MM])
            points = box @ camera_from_plate[:3, :3].T + camera_from_plate[:3, 3]
            points -= np.outer(points @ plane.normal + plane.offset_mm, plane.normal)  # onto the laser plane
            in_plate = points @ plate_from_camera[:3, :3].T + plate_from_camera[:3, 3]
            inside = np.all([(in_plate[:, i] >= lo) & (in_plate[:, i] <= hi) for i, (lo, hi) in enumerate(BOX_MM)],
                            axis=0)
            points = points[inside]
            pixels, _ = cv2.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), true.camera_matrix,
                                          true.dist_coeffs)
            pixels = pixels.reshape(-1, 2)
            seen = (pixels[:, 0] >= 0) & (pixels[:, 0] < 1280) & (pixels[:, 1] >= 16) & (pixels[:, 1] < 960)
            rays = undistorted_rays(pixels[seen, 0], pixels[seen, 1], found, found.width_px)
            measured, valid = intersect_planes(rays, np.full(len(rays), laser), found)
            measured = measured @ found.plate_from_camera(angle)[:3, :3].T + found.plate_from_camera(angle)[:3, 3]
            errors.append(np.linalg.norm(measured - in_plate[inside][seen], axis=1)[valid])
    return np.concatenate(errors)


def plate_planes(cal) -> list[tuple[np.ndarray, float]]:
    """Each laser plane (normal, offset mm) in the plate frame with the arm at 0 deg."""
    pose = cal.plate_from_camera(0.0)
    planes = []
    for laser in cal.lasers:
        normal = pose[:3, :3] @ laser.normal
        planes.append((normal, laser.offset_mm - float(normal @ pose[:3, 3])))
    return planes


def test_calibration_agrees_with_the_rig_truth(calibrated):
    true = calibration_from_truth(rig_geometry(calibrated.rig_serial))
    k, k_true = calibrated.camera_matrix, true.camera_matrix
    assert abs(k[0, 0] / k_true[0, 0] - 1) < 0.003 and abs(k[1, 1] / k_true[1, 1] - 1) < 0.003
    # The principal point trades off against the camera's rotation on the arm (1.5 px off with DEFAULT_VIEWS, up to
    # 6 px with the quick plan); what counts is the triangulation below.
    assert np.hypot(k[0, 2] - k_true[0, 2], k[1, 2] - k_true[1, 2]) < 8.0
    axis, axis_true = calibrated.plate_from_axis, true.plate_from_axis
    assert np.degrees(np.arccos(min(axis[:3, 2] @ axis_true[:3, 2], 1.0))) < 0.05
    assert np.linalg.norm(axis[:3, 3] - axis_true[:3, 3]) < 0.2
    # Each laser plane in the plate frame at angle 0 (each calibration with its own camera pose): their angle, and
    # their distance apart at the working distance (on the arm axis, 45 mm above the plate).
    on_axis = np.array([*true.plate_from_axis[:2, 3], 45.0])
    for plane, plane_true in zip(plate_planes(calibrated), plate_planes(true)):
        sign = np.sign(plane[0] @ plane_true[0])
        assert np.degrees(np.arccos(min(sign * plane[0] @ plane_true[0], 1.0))) < 0.1
        apart_mm = (plane[0] @ on_axis + plane[1]) - sign * (plane_true[0] @ on_axis + plane_true[1])
        assert abs(apart_mm) < 0.2, apart_mm
    errors = triangulation_errors_mm(calibrated, true)
    assert len(errors) > 10_000
    assert np.percentile(errors, 95) < 0.2 and errors.max() < 0.35, (np.percentile(errors, 95), errors.max())


def test_quality_is_measured_and_within_tolerance(calibrated):
    q = calibrated.quality
    assert 0.0 < q.reprojection_rms_px < 0.3
    assert all(0.0 < rms < 0.15 for rms in q.laser_plane_rms_mm)  # measured 0.08-0.12
    assert 0.0 < q.axis_fit_rms_mm < 0.3
    assert q.views >= QUICK_VIEWS.positions() - 2


def test_stored_calibration_loads_back(stored):
    calibration, data_dir = stored
    loaded = load_calibration(data_dir, calibration.rig_serial)
    assert loaded.calibration_id == calibration.calibration_id
    assert np.allclose(loaded.plate_from_camera(123.0), calibration.plate_from_camera(123.0))
    assert np.allclose(loaded.camera_matrix, calibration.camera_matrix)


def test_out_of_tolerance_calibration_is_refused(captured, tmp_path):
    calibration = captured[1]
    shaky = dataclasses.replace(calibration, quality=dataclasses.replace(calibration.quality, axis_fit_rms_mm=0.9))
    with pytest.raises(CalibrationError, match="arm axis fit residual 0.900 mm"):
        save_calibration(tmp_path, shaky)
    assert not calibration_path(tmp_path, calibration.rig_serial).exists()


def test_missing_stale_or_foreign_calibration_is_refused(captured, tmp_path):
    calibration = captured[1]
    with pytest.raises(CalibrationError, match="no calibration: run `footfit calibrate`"):
        load_calibration(tmp_path, calibration.rig_serial)
    old = (datetime.now(timezone.utc) - timedelta(days=45)).isoformat(timespec="seconds")
    save_calibration(tmp_path, dataclasses.replace(calibration, created_at=old))
    with pytest.raises(CalibrationError, match="45 days old .*run `footfit calibrate`"):
        load_calibration(tmp_path, calibration.rig_serial)
    calibration_path(tmp_path, calibration.rig_serial).rename(calibration_path(tmp_path, "FF-OTHER-0007"))
    with pytest.raises(CalibrationError, match="is for rig .*run `footfit calibrate`"):
        load_calibration(tmp_path, "FF-OTHER-0007")


def test_views_without_target_or_marks_are_refused_with_the_reason(captured):
    stills = captured[0]
    with pytest.raises(CalibrationError, match="target was found in only 0 views"):
        calibration_from_stills([s for s in stills if s.target_index is None], "FF-X")
    with pytest.raises(CalibrationError, match="printed marks were found in only 0 views"):
        calibration_from_stills([s for s in stills if s.target_index is not None], "FF-X")
