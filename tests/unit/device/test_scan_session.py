"""The scan session end to end: real drivers, real pseudo-terminals, a real HTTP camera, the simulator behind
them, with and without faults. Light profile (640x480, 120 frames per foot) to keep the suite quick."""

import time

import numpy as np
import pytest

from core.errors import ScanCancelled, ScanFailed
from core.settings import DeviceSettings
from device.profile import get_profile
from device.rig import open_scanner
from device.session import KeptScan, ScanSession
from simulator.faults import parse_faults
from simulator.scanner import SimulatedScanner, SimulatorConfig

PROFILE = get_profile("light")
SLACK = 10  # wall-time bounds allow ten times the typical time: other test runs may share the 2 cores
pytestmark = pytest.mark.slow


def run_scan(tmp_path, faults="", seed=3, window_s=6.0, on_progress=None, session_hook=None, kept=None):
    config = SimulatorConfig(seed=seed, faults=parse_faults(faults), port_dir=tmp_path / "ports")
    with SimulatedScanner(config) as sim:
        devices = DeviceSettings(board_url=sim.endpoints.board_url, plate_url=sim.endpoints.plate_url,
                                 camera_url=sim.endpoints.camera_url, reconnect_window_s=window_s,
                                 command_timeout_s=1.0)
        with open_scanner(devices, PROFILE) as scanner:
            session = ScanSession(scanner.board, scanner.plate, scanner.camera, PROFILE,
                                  on_progress=on_progress, reconnect_window_s=window_s, kept=kept)
            if session_hook:
                session_hook(session)
            started = time.monotonic()
            try:
                return session.run(), sim
            finally:
                run_scan.seconds = time.monotonic() - started


def assert_complete(raw, max_missing=3):
    for side in ("left", "right"):
        foot = raw.feet[side]
        n = len(foot.angles_deg)
        assert PROFILE.frames_per_foot - max_missing <= n <= PROFILE.frames_per_foot
        assert np.all(np.diff(foot.angles_deg) > 0), "frames sorted by angle, no duplicates"
        assert foot.images.shape == (n, PROFILE.height_px, PROFILE.width_px)
        assert foot.lasers.shape == (n, 2) and np.all(foot.lasers.sum(axis=1) == 1)
        # every frame shows a laser line: its brightest pixels stand far above the dim enclosure
        assert np.all(foot.images.reshape(n, -1).max(axis=1) > 120)
    assert raw.plate.pressures_kpa.shape == (int(PROFILE.plate_seconds * 100), 80, 200)
    assert raw.plate.pressures_kpa.max() > 50


def test_clean_scan_is_complete_with_angles_and_lasers(tmp_path):
    progress = []
    raw, sim = run_scan(tmp_path, on_progress=progress.append)
    assert_complete(raw, max_missing=0)
    left = raw.feet["left"]
    assert np.allclose(left.angles_deg, np.arange(PROFILE.frames_per_foot) * PROFILE.step_deg)
    assert list(left.lasers[:2, 0]) == [True, False], "pattern LR: left laser on even triggers"
    assert raw.rig_serial == sim.config.rig_serial
    phases = [p.phase for p in progress]
    assert phases[0] == "connect" and phases[-1] == "done"
    assert {"stand", "left", "right"} <= set(phases)
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert raw.stats.resumed_sweeps == 0 and raw.stats.camera_missing_frames == 0


def test_corrupted_bytes_and_dropped_frames_are_repaired_and_counted(tmp_path):
    # Byte error rates per line: the plate's 27 KB frames would almost never arrive intact at the board's rate.
    raw, _ = run_scan(tmp_path, faults="corrupt-board=0.002,corrupt-plate=0.00002,drop=0.03,camera-drop=0.01")
    assert_complete(raw, max_missing=12)
    s = raw.stats
    assert s.plate_dropped_frames > 0
    assert s.board_checksum_errors + s.board_retries > 0
    assert s.plate_crc_errors > 0


@pytest.mark.parametrize("device", ["board", "plate", "camera"])
def test_transient_disconnect_reconnects_and_resumes(tmp_path, device):
    raw, sim = run_scan(tmp_path, faults=f"disconnect={device}@0.3:1.5")
    assert sim.director.fired, "the fault fired"
    assert_complete(raw)
    assert raw.stats.reconnects[device] >= 1
    if device in ("board", "camera"):
        assert raw.stats.resumed_sweeps >= 1


@pytest.mark.parametrize("faults, device, bound", [
    ("disconnect=board@0.3", "board", "did not come back .* within 3 s"),
    ("disconnect=plate@0.3", "plate", "did not come back .* within 3 s"),
    ("disconnect=camera@0.3", "camera", "did not come back within 3 s"),
    ("stall=board@0.3", "board", r"after 3 tries \(1\+2\+4 s\)"),
])
def test_permanent_failure_is_a_clear_error_in_bounded_time(tmp_path, faults, device, bound):
    with pytest.raises(ScanFailed, match=bound) as err:  # the reconnect window or the tries ended it
        run_scan(tmp_path, faults=faults, window_s=3.0)
    assert device in str(err.value)
    assert "check" in str(err.value)
    assert run_scan.seconds < SLACK * 20  # typically 8-20 s on a loaded host: it never hangs


def test_a_session_keeps_what_it_completed_and_a_retry_scans_only_the_rest(tmp_path):
    kept = KeptScan()
    with pytest.raises(ScanFailed):  # the board goes for good while sweeping the right foot
        run_scan(tmp_path / "first", faults="disconnect=board@0.7", window_s=3.0, kept=kept)
    assert kept.parts() == ("plate", "left")
    plate, left = kept.plate, kept.feet["left"]
    progress = []
    raw, _ = run_scan(tmp_path / "retry", on_progress=progress.append, kept=kept)
    assert_complete(raw)
    assert raw.plate is plate and raw.feet["left"] is left, "the kept parts are taken as they are"
    assert kept.parts() == ("plate", "left", "right") and raw.feet["right"] is kept.feet["right"]
    phases = {p.phase for p in progress}
    assert "right" in phases and not phases & {"stand", "left"}, "the kept parts are not scanned again"


def test_cancel_stops_the_arm_and_keeps_nothing(tmp_path):
    def hook(session):
        def cancel_when_sweeping(p):
            if p.phase == "left" and p.fraction > 0.5:
                session.cancel()
        session.on_progress = cancel_when_sweeping

    with pytest.raises(ScanCancelled):
        run_scan(tmp_path, session_hook=hook)
