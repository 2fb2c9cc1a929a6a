"""The `footfit` command line as a user runs it: real processes, real ports."""

import json
import os
import signal
import subprocess
import sys

import pytest

from cli.main import build_parser
from device.board import MotorBoard

FOOTFIT = [sys.executable, "-m", "cli.main"]


def run(args, env_extra=None, timeout=180):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(FOOTFIT + args, capture_output=True, text=True, timeout=timeout, env=env)


def all_commands(parser=None, prefix=()):
    parser = parser or build_parser()
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from all_commands(sub, prefix + (name,))


@pytest.mark.parametrize("command", [()] + list(all_commands()), ids=lambda c: " ".join(c) or "footfit")
def test_every_command_has_help(command):
    result = run([*command, "--help"], timeout=60)
    assert result.returncode == 0
    assert "usage: footfit" in result.stdout


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A data folder holding a calibration of the demo rig, made by `footfit calibrate --simulator --quick`."""
    data = tmp_path_factory.mktemp("data")
    result = run(["calibrate", "--simulator", "--quick", "--quiet"], env_extra={"FOOTFIT_DATA_DIR": str(data)},
                 timeout=300)
    assert result.returncode == 0, result.stderr
    assert "saved to" in result.stdout and (data / "calibrations" / "FF-DEMO-0001.json").exists()
    return {"FOOTFIT_DATA_DIR": str(data)}


def test_scan_refuses_an_uncalibrated_rig(tmp_path):
    out = tmp_path / "scan"
    result = run(["scan", "--simulator", "--profile", "light", "--out", str(out), "--quiet"],
                 env_extra={"FOOTFIT_DATA_DIR": str(tmp_path / "empty")})
    assert result.returncode == 1
    assert "has no calibration: run `footfit calibrate`" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_simulated_scan_writes_passport_raw_scan_and_truth(tmp_path, calibrated):
    out = tmp_path / "scan"
    result = run(["scan", "--simulator", "--profile", "light", "--seed", "5", "--out", str(out), "--quiet"],
                 env_extra=calibrated)
    assert result.returncode == 0, result.stderr
    passport = json.loads((out / "passport.json").read_text())
    assert passport["rig_serial"] == "FF-DEMO-0001"
    assert passport["calibration_id"].startswith("FF-DEMO-0001-")
    for side in ("left", "right"):
        assert 200 < passport["feet"][side]["measurements"]["length_mm"] < 330
        assert (out / f"{side}.ply").stat().st_size > 100_000
    meta = json.loads((out / "raw" / "scan.json").read_text())
    assert meta["profile"] == "light" and len(meta["feet"]["left"]["angles_deg"]) == 120
    truth = json.loads((out / "truth.json").read_text())
    for side in ("left", "right"):
        assert (out / truth["feet"][side]["mesh"]).exists()
        assert len(truth["feet"][side]["pose"]) == 4
    assert truth["rig"]["serial"] == meta["rig_serial"]
    assert not list(tmp_path.glob(".scan.partial-*")), "no staging folder left behind"


@pytest.mark.slow
def test_failed_scan_exits_nonzero_with_one_line_and_leaves_nothing(tmp_path, calibrated):
    out = tmp_path / "scan"
    result = run(["scan", "--simulator", "--profile", "light", "--faults", "disconnect=board@0.2", "--out", str(out),
                  "--quiet"], env_extra={**calibrated, "FOOTFIT_DEVICE__RECONNECT_WINDOW_S": "2"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("footfit: ") and "board" in last and "check" in last
    assert not out.exists()
    assert not list(tmp_path.glob(".scan.partial-*"))


def test_bad_fault_spec_is_refused_before_anything_runs(tmp_path):
    result = run(["scan", "--simulator", "--faults", "explode=1", "--out", str(tmp_path / "x"), "--quiet"])
    assert result.returncode == 1
    assert "unknown fault 'explode'" in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("serve", [FOOTFIT + ["simulator", "serve"], [sys.executable, "-m", "simulator", "serve"]],
                         ids=["footfit simulator serve", "python -m simulator serve"])
def test_simulator_serve_prints_ports_that_drivers_can_open(tmp_path, serve):
    proc = subprocess.Popen(serve + ["--rig", "FF-TEST-0042", "--port-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoints = json.loads(proc.stdout.readline())
        assert endpoints["board_url"] == str(tmp_path / "board")
        assert endpoints["camera_url"].startswith("http://127.0.0.1:")
        with MotorBoard(endpoints["board_url"]) as board:
            assert board.identity.serial == "FF-TEST-0042"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    assert not (tmp_path / "board").exists(), "port links removed on exit"


def test_measure_a_mesh_file_as_json_and_refuse_metres(tmp_path):
    from core.mesh import Mesh, write_mesh
    from simulator.subjects import population_subject

    foot = population_subject(11).left
    write_mesh(tmp_path / "foot.ply", foot)
    result = run(["measure", str(tmp_path / "foot.ply"), "--side", "left", "--json"], timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert 200 < report["measurements"]["length_mm"] < 320
    assert report["sizes"]["eu"] > 30
    write_mesh(tmp_path / "metres.ply", Mesh(foot.vertices_mm / 1000, foot.triangles))
    result = run(["measure", str(tmp_path / "metres.ply"), "--side", "left"], timeout=60)
    assert result.returncode == 1 and "metres" in result.stderr
