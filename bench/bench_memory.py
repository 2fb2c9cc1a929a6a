"""The service's memory over kiosk scans and recommendations: does it stay flat (issue 15)?

    .venv/bin/python bench/bench_memory.py [--scans 100] [--recommendations 10000] [--models 500]
                                           [--passports-in-memory N]

1. The cached catalogue of bench_api.py (`--models` generated models sold by the bench tenant) is copied into a
   temporary folder as the service's SQLite database, the embedded default; a simulated rig is registered as a
   kiosk of the bench tenant's store. The rig is calibrated once with the product's own calibration
   (`footfit calibrate --simulator --quick`, cached in var/bench/memory-rig/).
2. `footfit serve` (one worker) and `footfit agent` for the rig (light scan profile) start as their own
   processes, as a store and the cloud run them.
3. `--scans` kiosk scans, one customer each, are asked for over HTTP with the store's kiosk key and followed
   to their passport, as the kiosk page does (the progress stream is read for every scan).
4. `--recommendations` requests over the scanned passports from 8 clients (the store's advice, its kiosk key):
   half the top three, half a question never asked before (a new price limit each time), so a cache that keeps
   every answer would show.
The service keeps the feet and searches of its `service.passports_in_memory` most recently used passports (256 by
default): below that many passports its memory grows with each new one by design; `--passports-in-memory 20` shows
the plateau within the run. Prints the resident memory (VmRSS; the service's process tree, and the agent's) at
start, after the first scan, every tenth of the scans and every fifth of the recommendations, and the peaks (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_api import BENCH_STORE, BENCH_TENANT, NEW_QUESTION_PRICE, ROOT, _catalogue, _resident_mb, _serve, _stop
from sqlmodel import Session

from api import auth, tenancy
from api.db import open_service_db
from core.errors import CalibrationError
from fitcore.scan.calibration import calibration_path, load_calibration
from testing.net import free_port

RIG = "FF-BENCH-0001"
KIOSK_SCOPES = frozenset({"scans:write", "scans:read", "customers:write", "passports:read", "recommendations:read"})
CALIBRATED = ROOT / "var" / "bench" / "memory-rig"
SCAN_TIMEOUT_S = 600
CLIENTS = 8


@dataclass(frozen=True)
class Sample:
    after: str
    service_mb: float
    agent_mb: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--recommendations", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--passports-in-memory", type=int, default=None,
                        help="the service's setting service.passports_in_memory (default: its own default)")
    args = parser.parse_args()
    _calibrate()
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="footfit-bench-memory-") as name:
        folder = Path(name)
        database = folder / "footfit.sqlite"
        shutil.copy(_catalogue(args.models), database)
        url = f"sqlite:///{database}"
        kiosk = _kiosk_key(url)
        port = free_port()
        kept = {} if args.passports_in_memory is None else {
            "service__passports_in_memory": str(args.passports_in_memory)}
        server = _serve(url, folder, port, **kept)
        agent = _agent(f"http://127.0.0.1:{port}", kiosk, folder)
        store = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {kiosk}"},
                             timeout=SCAN_TIMEOUT_S)

        def sample(after: str) -> None:
            samples.append(Sample(after, _resident_mb(server.pid), _resident_mb(agent.pid)))
            print(f"{after}: service {samples[-1].service_mb:.0f} MB, agent {samples[-1].agent_mb:.0f} MB",
                  file=sys.stderr, flush=True)

        try:
            sample("start")
            passports = []
            for i in range(args.scans):
                passports.append(_kiosk_scan(store, f"M{i:05d}"))
                if i == 0 or (i + 1) % max(1, args.scans // 10) == 0:
                    sample(f"scan {i + 1}")
            peak_scans = _peak_mb(server.pid)
            step = max(1, args.recommendations // 5)
            for done in range(0, args.recommendations, step):
                _recommend(store, passports, done, min(step, args.recommendations - done))
                sample(f"{min(done + step, args.recommendations)} recommendations")
            peaks = (peak_scans, _peak_mb(server.pid), _peak_mb(agent.pid))
        finally:
            store.close()
            _stop(agent)
            _stop(server)
    _report(samples, peaks, args)
    return 0


def _calibrate() -> None:
    """The rig's calibration by the product's own procedure, once (about a minute)."""
    try:
        load_calibration(CALIBRATED, RIG)
        return
    except CalibrationError:
        print(f"calibrating the simulated rig {RIG} (footfit calibrate --simulator --quick)...", file=sys.stderr)
    env = dict(os.environ, FOOTFIT_DATA_DIR=str(CALIBRATED))
    subprocess.run([sys.executable, "-m", "cli.main", "calibrate", "--simulator", "--quick", "--quiet", "--rig", RIG],
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def _kiosk_key(url: str) -> str:
    engine = open_service_db(url)
    with Session(engine) as session:
        tenancy.add_kiosk(session, BENCH_TENANT, BENCH_STORE, RIG, name="memory bench")
        _, token = auth.create_key(session, BENCH_TENANT, KIOSK_SCOPES, expires_days=1, store=BENCH_STORE,
                                   label="bench kiosk")
    engine.dispose()
    return token


def _agent(service: str, kiosk_key: str, folder: Path) -> subprocess.Popen:
    """`footfit agent` for the rig, with its calibration, its outbox in `folder`, its log beside the service's."""
    data_dir = folder / "agent"
    target = calibration_path(data_dir, RIG)
    target.parent.mkdir(parents=True)
    shutil.copy(calibration_path(CALIBRATED, RIG), target)
    env = dict(os.environ, FOOTFIT_DATA_DIR=str(data_dir), FOOTFIT_SCAN_PROFILE="light")
    with (folder / "agent.log").open("w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "agent", "--service", service, "--key", kiosk_key,
                                 "--rig", RIG, "--exit-with-parent"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=stderr)


def _kiosk_scan(store: httpx.Client, loyalty_id: str) -> str:
    """Register a customer at the kiosk (scan-storage consent), scan them at the kiosk, follow the progress stream to
    the end; their passport's id."""
    store.post("/v1/customers", json={"loyalty_id": loyalty_id}).raise_for_status()
    store.post(f"/v1/customers/{loyalty_id}/consents",
               json={"purpose": "scan_storage", "granted": True}).raise_for_status()
    started = store.post(f"/v1/rigs/{RIG}/scans", json={"loyalty_id": loyalty_id})
    started.raise_for_status()
    scan_id = started.json()["id"]
    with store.stream("GET", f"/v1/scans/{scan_id}/events") as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                json.loads(line[6:])
    scan = store.get(f"/v1/scans/{scan_id}").json()
    if scan["state"] != "done":
        raise SystemExit(f"kiosk scan {scan_id} ended {scan['state']}: {scan['message']}")
    return scan["passport_id"]


def _recommend(store: httpx.Client, passports: list[str], first: int, count: int) -> None:
    """`count` recommendation requests from CLIENTS threads: even ones the top three, odd ones a new question."""
    def ask(n: int) -> None:
        path = f"/v1/passports/{passports[n % len(passports)]}/recommendations"
        params = {"price_max": f"{NEW_QUESTION_PRICE}.{n}"} if n % 2 else None
        store.get(path, params=params, timeout=120).raise_for_status()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(ask, range(first, first + count)))


def _peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB (its own, without children)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _report(samples: list[Sample], peaks: tuple[float, float, float], args: argparse.Namespace) -> None:
    print(f"\nresident memory over {args.scans} kiosk scans (agent: light profile) and {args.recommendations} "
          f"recommendations ({CLIENTS} clients, half new questions), {args.models} models, SQLite, one worker, "
          f"passports in memory: {args.passports_in_memory or 'the default'}\n")
    print(f"{'after':24s} {'service MB':>10s} {'agent MB':>9s}")
    for s in samples:
        print(f"{s.after:24s} {s.service_mb:10.0f} {s.agent_mb:9.0f}")
    first_scan = next(s for s in samples if s.after == "scan 1")
    last_scan = [s for s in samples if s.after.startswith("scan ")][-1]
    first_answers = samples[samples.index(last_scan) + 1]  # the first requests build the matcher and searches
    print(f"\nservice growth from the first scan to the last: {last_scan.service_mb - first_scan.service_mb:+.0f} MB; "
          f"from the first fifth of the recommendations to the last: "
          f"{samples[-1].service_mb - first_answers.service_mb:+.0f} MB (the first fifth built the matcher: "
          f"{first_answers.service_mb - last_scan.service_mb:+.0f} MB)")
    print(f"peak (VmHWM): service {peaks[0]:.0f} MB after the scans, {peaks[1]:.0f} MB at the end; agent "
          f"{peaks[2]:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
