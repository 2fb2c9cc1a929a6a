"""A kiosk world for tests of kiosk scans: two tenants behind a running service whose tenant A store has a
calibrated simulated rig (RIG) and an uncalibrated one, and helpers to start and follow scans over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

from sqlmodel import Session

from api import tenancy
from api.app import create_app
from api.db import open_service_db
from cli.agent import Agent
from core.settings import Settings, get_settings
from fitcore.scan.calibration import save_calibration
from simulator.rig import rig_geometry
from testing.api_world import World, add_tenant, running
from testing.sim_truth import calibration_from_truth

RIG = "FF-KIOSK-0101"
UNCALIBRATED_RIG = "FF-KIOSK-0202"
SCAN_TIMEOUT_S = 120
AGENT_WAIT_S = 1.0  # an agent's ask for work waits this long (short: the agents stop quickly at the end)
AGENT_RETRY_S = 0.5  # an agent cut off from the service tries again after this, doubling
# The agent, the service and the drivers share this process's interpreter here (on a store's PC the agent has its
# own): a board command is given 2 s, not 1, so a busy test machine does not fail a scan on the board's timeout.
AGENT_COMMAND_TIMEOUT_S = 2.0


@contextmanager
def kiosk_world(database_url: str, tmp_path, faults: str = "", reconnect_window_s: float = 6.0, agents: bool = True,
                **service_changes):
    """Two tenants; tenant A's store has a calibrated rig (RIG) and an uncalibrated one, behind a running server,
    each run by its rig agent (cli/agent.py, in a thread here, over HTTP with the store's kiosk key) on simulated
    rigs with `faults`; `agents=False`: the test starts them (running_agents, with w.app.state.settings)."""
    data_dir = tmp_path / "var"
    cal = calibration_from_truth(rig_geometry(RIG))
    save_calibration(data_dir, replace(cal, created_at=datetime.now(timezone.utc).isoformat()))
    engine = open_service_db(database_url)
    with Session(engine) as session:
        tenants = {"A": add_tenant(session, "tenant-a", "STORE-A"), "B": add_tenant(session, "tenant-b", "STORE-B")}
        tenancy.add_kiosk(session, "tenant-a", "STORE-A", RIG)
        tenancy.add_kiosk(session, "tenant-a", "STORE-A", UNCALIBRATED_RIG)
    base = get_settings()
    settings = base.model_copy(update={
        "data_dir": data_dir, "scan_profile": "light",
        "device": base.device.model_copy(update={"reconnect_window_s": reconnect_window_s,
                                                 "command_timeout_s": AGENT_COMMAND_TIMEOUT_S}),
        "agent": base.agent.model_copy(update={"simulator_faults": faults, "wait_s": AGENT_WAIT_S,
                                               "upload_retry_s": AGENT_RETRY_S}),
        "service": base.service.model_copy(update=service_changes),
    })
    app = create_app(engine=engine, settings=settings)
    with running(app) as url:
        w = World(url, engine)
        w.app, w.tenants = app, tenants
        try:
            with running_agents(url, tenants["A"].keys["kiosk"], (RIG, UNCALIBRATED_RIG) if agents else (),
                                settings) as w.agents:
                yield w
        finally:
            w.http.close()
            engine.dispose()


@contextmanager
def running_agents(url: str, kiosk_key: str, rigs: tuple[str, ...], settings: Settings) -> Iterator[list[Agent]]:
    """A rig agent per rig, each in a thread, until the block ends (then stopped and its rig released)."""
    agents = [Agent(url, kiosk_key, rig, settings) for rig in rigs]
    threads = [threading.Thread(target=agent.run, name=f"agent-{agent.rig}", daemon=True) for agent in agents]
    for thread in threads:
        thread.start()
    try:
        yield agents
    finally:
        for agent in agents:
            agent.stop()
        for agent, thread in zip(agents, threads):
            thread.join(timeout=AGENT_WAIT_S + 30)
            agent.close()


def start(w: World, loyalty_id: str, rig: str = RIG, role: str = "kiosk", tenant: str = "A", **body):
    return w.call(tenant, role, "POST", f"/v1/rigs/{rig}/scans", json={"loyalty_id": loyalty_id, **body})


def events(w: World, scan_id: str, tenant: str = "A") -> list[tuple[str, dict]]:
    """The scan's server-sent events until the stream ends: (event, scan)."""
    found, event = [], None
    headers = {"Authorization": f"Bearer {w.tenants[tenant].keys['kiosk']}"}
    with w.http.stream("GET", f"/v1/scans/{scan_id}/events", headers=headers, timeout=SCAN_TIMEOUT_S) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                found.append((event, json.loads(line[6:])))
    return found


def wait_for(w: World, scan_id: str, predicate, timeout_s: float = SCAN_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        scan = w.call("A", "kiosk", "GET", f"/v1/scans/{scan_id}").json()
        if predicate(scan):
            return scan
        time.sleep(0.1)
    raise AssertionError(f"scan {scan_id} did not get there in {timeout_s} s: {scan}")
