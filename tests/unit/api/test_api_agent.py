"""The rig agent in the store (cli/agent.py) and the service's side of it (api/scans.py): a scan survives the
store's line going down for 60 s mid-scan and after it, and the service process it talked to being killed mid-scan
or mid-upload; its passport arrives once. The agents run in threads here, over real HTTP through a relay the test
cuts (testing/proxy.py)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from testing.api_world import scan_files
from testing.kiosk_world import RIG, kiosk_world, running_agents, start, wait_for
from testing.proxy import TcpRelay
from testing.service_process import ServiceProcess
from tests.unit.api.test_api_kiosk import schematic_map

OUTAGE_S = 60.0  # the store's line is down this long


def _passports(w, loyalty_id: str) -> list[dict]:
    return w.call("A", "kiosk", "GET", f"/v1/customers/{loyalty_id}/passports").json()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _outbox_filled(agent, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not agent.outbox.waiting():
        assert time.monotonic() < deadline, "the scan did not finish at the store"
        time.sleep(0.2)


@pytest.mark.slow
def test_the_line_down_for_60_s_mid_scan_and_after_it_the_passport_arrives_once(tmp_path):
    """The store's line goes down mid-scan for OUTAGE_S, longer than the scan's lease (30 s by default)."""
    with kiosk_world(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, agents=False) as w:
        relay = TcpRelay(_port(w.base_url))
        with running_agents(relay.url, w.tenants["A"].keys["kiosk"], (RIG,), w.app.state.settings) as (agent,):
            w.customer("A", "C1")
            scan = start(w, "C1").json()
            wait_for(w, scan["id"], lambda s: s["phase"] in ("left", "right"))
            relay.cut()  # mid-scan: the rig goes on, its reports are lost
            cut_at = time.monotonic()
            _outbox_filled(agent)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))  # and the line stays down after the scan
            silent = w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}").json()
            assert silent["state"] == "failed" and "has not reported" in silent["message"], silent
            assert _passports(w, "C1") == []

            relay.mend()
            done = wait_for(w, scan["id"], lambda s: s["state"] == "done")
            assert [p["id"] for p in _passports(w, "C1")] == [done["passport_id"]], "stored once"
            assert not agent.outbox.waiting(), "the outbox is empty once the service stored it"
        relay.close()


def test_a_passport_sent_again_is_the_first_ones_and_only_the_rigs_store_key_runs_it(tmp_path):
    """An agent whose answer was lost sends the passport again: the scan keeps the first one. Another tenant's or
    store's credentials do not reach the scan."""
    with kiosk_world(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, agents=False) as w:
        w.customer("A", "C1")
        scan = start(w, "C1").json()
        agent = {"agent": "test-agent"}
        taken = w.call("A", "kiosk", "POST", f"/v1/rigs/{RIG}/agent/take", json={**agent, "wait_s": 0})
        assert taken.json() == {"scan_id": scan["id"], "rig": RIG, "loyalty_id": "C1", "attempt": 1,
                                "report_within_s": 30.0, "keep_for_retry_s": 600.0}
        again = w.call("A", "kiosk", "POST", f"/v1/rigs/{RIG}/agent/take", json={**agent, "wait_s": 0})
        assert again.json() is None, "a scan is taken once"
        assert w.call("A", "admin", "POST", f"/v1/rigs/{RIG}/agent/take", json=agent).status_code == 403
        assert w.call("B", "kiosk", "POST", f"/v1/scans/{scan['id']}/agent/report",
                      json={**agent, "phase": "left", "fraction": 0.5}).status_code == 404

        files = {**scan_files().multipart(),
                 "pressure_map": ("pressure_map.json", schematic_map().model_dump_json().encode(), "application/json")}
        first = w.call("A", "kiosk", "POST", f"/v1/scans/{scan['id']}/agent/passport", files=files)
        second = w.call("A", "kiosk", "POST", f"/v1/scans/{scan['id']}/agent/passport", files=files)
        assert first.status_code == second.status_code == 200, second.text
        assert first.json()["passport_id"] == second.json()["passport_id"] and first.json()["state"] == "done"
        assert [p["id"] for p in _passports(w, "C1")] == [first.json()["passport_id"]]
        late = w.call("A", "kiosk", "POST", f"/v1/scans/{scan['id']}/agent/report",
                      json={**agent, "phase": "left", "fraction": 0.5})
        assert late.status_code == 409 and "stop it" in late.json()["detail"]

        w.customer("A", "C2")
        erased = start(w, "C2").json()
        w.call("A", "kiosk", "POST", f"/v1/rigs/{RIG}/agent/take", json={**agent, "wait_s": 0})
        assert w.call("A", "admin", "DELETE", "/v1/customers/C2").status_code == 200
        refused = w.call("A", "kiosk", "POST", f"/v1/scans/{erased['id']}/agent/passport", files=files)
        assert refused.status_code == 409 and "customer was erased" in refused.json()["detail"]
        shown = w.call("A", "kiosk", "GET", f"/v1/scans/{erased['id']}").json()
        assert shown["loyalty_id"] == "" and shown["passport_id"] is None


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["mid-scan", "mid-upload"])
def test_a_scan_whose_service_process_is_killed_finishes_through_another(tmp_path, moment):
    """The agent reaches the service through a load balancer (the relay): its process is killed with -9 mid-scan,
    or while the passport's upload is in flight (the process frozen as the upload starts, then killed: the agent
    sees its connection reset); the balancer sends the agent to the other process, and the passport is stored
    once."""
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with kiosk_world(database, tmp_path, agents=False) as w:
        env = {"FOOTFIT_DATABASE_URL": database, "FOOTFIT_DATA_DIR": str(tmp_path / "var")}
        dying, surviving = ServiceProcess(env), ServiceProcess(env)
        relay = TcpRelay(dying.port)

        def fail_over() -> None:
            dying.kill()
            relay.cut()
            relay.mend(surviving.port)

        try:
            with running_agents(relay.url, w.tenants["A"].keys["kiosk"], (RIG,), w.app.state.settings) as (agent,):
                uploads = []
                if moment == "mid-upload":
                    send = agent.link.passport

                    def killed_while_sending(scan_id, folder):
                        uploads.append(scan_id)
                        if len(uploads) == 1:
                            dying.signal(signal.SIGSTOP)
                            threading.Timer(1.0, fail_over).start()
                        return send(scan_id, folder)

                    agent.link.passport = killed_while_sending
                w.customer("A", "C1")
                scan = start(w, "C1").json()
                wait_for(w, scan["id"], lambda s: s["phase"] in ("left", "right"))
                if moment == "mid-scan":
                    fail_over()
                done = wait_for(w, scan["id"], lambda s: s["state"] != "running")
                assert done["state"] == "done", done
                assert [p["id"] for p in _passports(w, "C1")] == [done["passport_id"]]
                if moment == "mid-upload":
                    assert len(uploads) >= 2, "the first upload died with its process; the agent sent it again"
                    assert not agent.outbox.waiting()
        finally:
            relay.close()
            surviving.stop()
