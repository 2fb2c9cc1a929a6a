"""`footfit demo`, the README's main command, as its own process on a fresh data folder: it sets up what is
missing (the demo tenant sells the generated catalogue), prints the kiosk address and keys that work, and a second
start reuses everything but the keys."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone

import httpx
import pytest

from fitcore.scan.calibration import save_calibration
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from testing.net import free_port
from testing.sim_truth import calibration_from_truth

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 120


def start_demo(env: dict, port: int) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """The running demo, its printed kiosk address and keys."""
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--port", str(port), "--models", "8"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, keys, address = [], {}, None
    deadline = time.monotonic() + START_TIMEOUT_S
    while "tenant" not in keys:
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, f"demo stopped: {''.join(lines)} {proc.stderr.read()[-2000:]}"
        lines.append(line)
        if found := re.search(r"API at (http://\S+/v1) ", line):
            address = found.group(1)
        if found := re.match(r"(kiosk|tenant) key:\s+(ff_\S+)", line):
            keys[found.group(1)] = found.group(2)
    start_demo.output = "".join(lines)
    return proc, address, keys


def get(address: str, path: str, key: str) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return httpx.get(f"{address}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{address} did not answer"
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def _scan_taken_by_the_agent(address: str, kiosk_key: str) -> dict:
    """A scan of a new customer on the demo rig, once the demo's agent has started it."""
    headers = {"Authorization": f"Bearer {kiosk_key}"}
    assert httpx.post(f"{address}/customers", json={"loyalty_id": "DEMO-1"}, headers=headers).status_code == 201
    consent = {"purpose": "scan_storage", "granted": True, "source": "kiosk"}
    assert httpx.post(f"{address}/customers/DEMO-1/consents", json=consent, headers=headers).status_code == 201
    started = httpx.post(f"{address}/rigs/{DEMO_RIG_SERIAL}/scans", json={"loyalty_id": "DEMO-1"}, headers=headers)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while True:
        scan = httpx.get(f"{address}/scans/{started.json()['id']}", headers=headers).json()
        if scan["phase"] in ("zero", "stand", "left", "right"):
            return scan
        assert scan["state"] == "running" and time.monotonic() < deadline, scan
        time.sleep(0.2)


def _agent_processes() -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{entry}/cmdline").read().split("\0")
        except OSError:
            continue
        if "cli.main" in cmdline and "agent" in cmdline and DEMO_RIG_SERIAL in cmdline:
            found.append(int(entry))
    return found


def test_the_demo_serves_a_kiosk_with_printed_keys_and_starts_again(tmp_path):
    data_dir = tmp_path / "var"
    cal = calibration_from_truth(rig_geometry(DEMO_RIG_SERIAL))  # calibrating takes a minute: test_cli does it
    save_calibration(data_dir, replace(cal, created_at=datetime.now(timezone.utc).isoformat()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFIT_")}
    env["FOOTFIT_DATA_DIR"] = str(data_dir)
    port = free_port()

    proc, address, keys = start_demo(env, port)
    try:
        assert address == f"http://127.0.0.1:{port}/v1"
        assert f"kiosk page at http://127.0.0.1:{port}/kiosk" in start_demo.output
        assert "generating a catalogue of 8 shoe models" in start_demo.output
        me = get(address, "/me", keys["kiosk"])
        assert me.status_code == 200, me.text
        assert me.json()["tenant"] == "demo" and me.json()["store"] == "STORE-01"
        assert "scans:write" in me.json()["scopes"]
        kiosk_page = httpx.get(f"http://127.0.0.1:{port}/kiosk", timeout=10)
        assert kiosk_page.status_code == 200 and "<html" in kiosk_page.text.lower()
        stores = get(address, "/stores", keys["tenant"]).json()
        assert {"code": "STORE-01", "kiosks": [DEMO_RIG_SERIAL], "size_system": "eu"} in stores
        scan = _scan_taken_by_the_agent(address, keys["kiosk"])
        assert scan["state"] == "running" and scan["phase"] != "connect", scan
        cancelled = httpx.post(f"{address}/scans/{scan['id']}/cancel", timeout=10,
                               headers={"Authorization": f"Bearer {keys['kiosk']}"})
        assert cancelled.status_code == 200
        agents = _agent_processes()
        assert agents, "the demo runs its rig's agent"
    finally:
        stop(proc)
    deadline = time.monotonic() + 20
    while [pid for pid in agents if os.path.exists(f"/proc/{pid}")]:
        assert time.monotonic() < deadline, "the agent stops with the demo"
        time.sleep(0.2)
    with sqlite3.connect(data_dir / "footfit.sqlite") as db:  # the demo tenant sells every size, STORE-01 stocks some
        sold, sizes = db.execute("SELECT (SELECT count(*) FROM assortment_item a JOIN tenant t ON t.id = a.tenant_id "
                                 "WHERE t.name = 'demo'), (SELECT count(*) FROM size_variant)").fetchone()
        stocked = db.execute("SELECT count(*) FROM stock JOIN store ON store.id = stock.store_id "
                             "WHERE store.code = 'STORE-01' AND quantity > 0").fetchone()[0]
    assert sold == sizes > 0 and stocked > 0

    proc, address, again = start_demo(env, port)
    try:
        assert "generating" not in start_demo.output, "the catalogue is reused"
        assert get(address, "/me", keys["kiosk"]).status_code == 401, "earlier demo keys are revoked"
        assert get(address, "/me", again["kiosk"]).status_code == 200
        assert get(address, "/stores", again["tenant"]).json() == stores
    finally:
        stop(proc)
