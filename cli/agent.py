"""`footfit agent`: the rig agent on a store's PC. It owns the scanner (or a simulated rig), connects out to the
fit service with the store's kiosk key (the store opens no port), and runs the scans kiosks ask for on its rig.

Per scan (api/scans.py has the service's side): take it, scan (fitcore.scan.rig_scan: progress and a small camera
preview go to the service a few times a second, the frames stay here), reconstruct and measure here, then put the
passport in the outbox (a folder under the data folder) before sending it. The outbox is what makes the upload
safe: a passport leaves it only when the service has answered that it stored it (or that it never will: the scan
was cancelled or its customer erased), and the service keeps the first passport of a scan however often it is
sent, so an answer lost on the way costs a second send, not a second passport. While the service cannot be
reached the agent goes on scanning what it has and sends the outbox when it is back; progress it could not send
is simply not shown.

A failed attempt keeps what was complete (plate, finished feet) here for the service's retry window (the task says
how long); a retry of that scan scans only the rest. A simulated rig's process dies with the agent.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from core.errors import DeviceError, FootfitError, ScanCancelled, ScanFailed
from core.lifetime import when_orphaned
from core.settings import Settings, get_settings
from device.rig import HardwareRigProvider, RigProvider
from device.session import Progress
from fitcore.scan.pipeline import ScanResult
from fitcore.scan.rig_scan import RigScan, preview_jpeg
from simulator.process import SimulatedRigProvider

log = logging.getLogger(__name__)
SCAN_SHARE = 0.85  # of a scan's progress; reconstruction and the upload take the rest
MEASURE_SHARE = 0.12
OUTBOX_FILES = ("passport.json", "left.ply", "right.ply", "pressure_map.json")
REPORT_TIMEOUT_S = 5.0  # a report or frame the service does not take by then is skipped (the next one follows)
UPLOAD_TIMEOUT_S = 60.0
MAX_UPLOAD_WAIT_S = 60.0


class Gone(Exception):
    """The service says the scan is no longer this agent's (cancelled, failed, erased): stop it, keep nothing."""


@dataclass
class _Held:
    """A scan this agent runs or keeps for a retry."""

    scan: RigScan
    drop_at: float | None = None  # a failed scan's kept parts go then, unless it is retried (monotonic s)


def rig_provider(settings: Settings) -> RigProvider:
    """The agent's rig, by the setting `agent.rigs`: simulated (the embedded default) or the `device` hardware."""
    if settings.agent.rigs == "hardware":
        return HardwareRigProvider(settings.device)
    return SimulatedRigProvider(settings.device, faults=settings.agent.simulator_faults)


class ServiceLink:
    """The agent's calls to the service (the routes under "the rig agent's routes" in api/routes/scans.py)."""

    def __init__(self, service_url: str, kiosk_key: str, agent: str):
        self.agent = agent
        self.http = httpx.Client(base_url=service_url.rstrip("/") + "/v1",
                                 headers={"Authorization": f"Bearer {kiosk_key}"})

    def take(self, rig: str, wait_s: float) -> dict | None:
        r = self.http.post(f"/rigs/{rig}/agent/take", json={"agent": self.agent, "wait_s": wait_s},
                           timeout=wait_s + 30)
        _raise_for(r)
        return r.json()

    def report(self, scan_id: str, phase: str, fraction: float, eta_s: float | None, arm_angle_deg: float | None,
               message: str) -> bool:
        """Send progress; True if staff cancelled."""
        r = self.http.post(f"/scans/{scan_id}/agent/report", timeout=REPORT_TIMEOUT_S,
                           json={"agent": self.agent, "phase": phase, "fraction": fraction, "eta_s": eta_s,
                                 "arm_angle_deg": arm_angle_deg, "message": message[:300]})
        _raise_for(r)
        return r.json()["cancel"]

    def frame(self, scan_id: str, jpeg: bytes) -> None:
        r = self.http.put(f"/scans/{scan_id}/agent/frame", params={"agent": self.agent}, content=jpeg,
                          headers={"Content-Type": "image/jpeg"}, timeout=REPORT_TIMEOUT_S)
        _raise_for(r)

    def end(self, scan_id: str, state: str, message: str, failed_device: str | None = None,
            kept: tuple[str, ...] = ()) -> None:
        r = self.http.post(f"/scans/{scan_id}/agent/end", timeout=REPORT_TIMEOUT_S * 2,
                           json={"agent": self.agent, "state": state, "message": message[:480],
                                 "failed_device": failed_device, "kept": list(kept)})
        _raise_for(r)

    def passport(self, scan_id: str, folder: Path) -> str:
        """Send a finished scan's files; the passport id the service keeps for the scan."""
        files = {name.split(".")[0]: (name, (folder / name).read_bytes()) for name in OUTBOX_FILES}
        r = self.http.post(f"/scans/{scan_id}/agent/passport", files=files, timeout=UPLOAD_TIMEOUT_S)
        _raise_for(r)
        return r.json()["passport_id"]

    def close(self) -> None:
        self.http.close()


def _raise_for(response: httpx.Response) -> None:
    if response.status_code == 409:
        raise Gone(response.json().get("detail", "the scan is no longer this agent's"))
    response.raise_for_status()


class Outbox:
    """Finished scans waiting to be stored by the service: one folder per scan, complete before it is listed."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, scan_id: str, result: ScanResult) -> Path:
        staging = self.folder / f".{scan_id}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        result.write(staging)
        (staging / "pressure_map.json").write_text(result.pressure_map.model_dump_json())
        final = self.folder / scan_id
        os.replace(staging, final)  # whole or not at all: a folder without the dot is complete
        return final

    def waiting(self) -> list[Path]:
        return sorted((p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime)

    @staticmethod
    def remove(folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)


class Agent:
    """Runs the scans of one rig for the service, until `stop`."""

    def __init__(self, service_url: str, kiosk_key: str, rig_serial: str, settings: Settings,
                 rigs: RigProvider | None = None, name: str | None = None):
        self.rig, self.settings, self.options = rig_serial, settings, settings.agent
        self.rigs = rigs or rig_provider(settings)
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.link = ServiceLink(service_url, kiosk_key, self.name)
        self.outbox = Outbox(settings.data_dir / "agent" / rig_serial / "outbox")
        self._held: dict[str, _Held] = {}  # scan id -> its rig scan (running, or failed and kept for a retry)
        self._stop = threading.Event()

    def run(self) -> None:
        """Send the outbox, take a scan, run it; again, until stopped. Losing the service only delays."""
        backoff = self.options.upload_retry_s
        while not self._stop.is_set():
            try:
                self._send_outbox()
                self._drop_expired()
                task = self.link.take(self.rig, self.options.wait_s)
                backoff = self.options.upload_retry_s
            except (httpx.HTTPError, OSError) as exc:
                log.warning("agent %s: the service did not answer (%s); trying again in %.0f s", self.name, exc,
                            backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_UPLOAD_WAIT_S)
                continue
            if task is not None:
                self._run_scan(task)

    def stop(self) -> None:
        """Take no more scans (a scan running now finishes)."""
        self._stop.set()

    def held_scans(self) -> list[str]:
        """The scans whose rig this agent holds: running, or failed and kept for a retry."""
        return list(self._held)

    def close(self) -> None:
        """Release the rig (the agent is stopping); kept parts are dropped, the outbox stays for the next start."""
        for held in list(self._held.values()):
            held.scan.close()
        self._held.clear()
        self.link.close()

    # --- one scan ---

    def _run_scan(self, task: dict) -> None:
        """Run the service's scan (a ScanTask, api/routes/scans.py) to a passport in the outbox, or its end."""
        scan_id, loyalty_id = task["scan_id"], task["loyalty_id"]
        for other in [s for s in self._held if s != scan_id]:  # a new scan on the rig gives up the kept ones
            self._held.pop(other).scan.close()
        reporter = _Reporter(self.link, scan_id, self.options.report_every_s)
        held = self._held.get(scan_id)
        if held is None:
            held = self._held[scan_id] = _Held(RigScan(self.rigs, self.rig, loyalty_id, self.settings,
                                                       reporter.progress, reporter.frame))
        else:
            held.scan.on_progress, held.scan.on_frame, held.drop_at = reporter.progress, reporter.frame, None
        reporter.on_cancel = held.scan.cancel
        try:
            with reporter.sending(keepalive_s=task["report_within_s"] / 3):
                result = held.scan.attempt()
            reporter.stage("store", SCAN_SHARE + MEASURE_SHARE, "storing the passport")
        except ScanCancelled as exc:
            self._end(scan_id, "cancelled", str(exc))
        except (ScanFailed, DeviceError) as exc:
            cause = exc.__cause__ if isinstance(exc, ScanFailed) and exc.__cause__ is not None else exc
            kept = held.scan.kept.parts()
            held.drop_at = time.monotonic() + task["keep_for_retry_s"]
            self._end(scan_id, "failed", f"device failure: {cause}. POST /v1/scans/{scan_id}/retry scans "
                      + (f"the rest ({', '.join(kept)} kept)" if kept else "again"),
                      getattr(cause, "device", None), kept)
        except FootfitError as exc:  # calibration, scan quality: nothing worth keeping
            self._end(scan_id, "failed", f"{exc}. POST /v1/scans/{scan_id}/retry scans again once that is fixed")
        except Exception:
            log.exception("scan %s failed", scan_id)
            self._end(scan_id, "failed", f"internal error while scanning (logged by the rig's agent); POST "
                                         f"/v1/scans/{scan_id}/retry scans again")
        else:
            self._held.pop(scan_id).scan.close()
            self.outbox.put(scan_id, result)
            self._send_outbox()

    def _end(self, scan_id: str, state: str, message: str, failed_device: str | None = None,
             kept: tuple[str, ...] = ()) -> None:
        if not kept and scan_id in self._held:
            self._held.pop(scan_id).scan.close()
        try:
            self.link.end(scan_id, state, message, failed_device, kept)
        except Gone:  # cancelled or erased meanwhile: nothing to keep for a retry
            held = self._held.pop(scan_id, None)
            if held is not None:
                held.scan.close()
        except (httpx.HTTPError, OSError) as exc:  # the service fails the scan by its lease
            log.warning("scan %s: could not tell the service it %s (%s)", scan_id, state, exc)

    def _send_outbox(self) -> None:
        """Send every finished scan; stop at the first the service cannot take now (it stays for later)."""
        for folder in self.outbox.waiting():
            try:
                passport_id = self.link.passport(folder.name, folder)
                log.info("scan %s: passport %s stored", folder.name, passport_id)
            except Gone as exc:
                log.warning("scan %s: the service will not store its passport (%s); dropped", folder.name, exc)
            except (httpx.HTTPError, OSError) as exc:
                log.warning("scan %s: passport not sent (%s); it stays in the outbox", folder.name, exc)
                return
            self.outbox.remove(folder)

    def _drop_expired(self) -> None:
        """Kept parts of failed scans not retried within the service's window go (frames of a customer's feet)."""
        now = time.monotonic()
        for scan_id in [s for s, h in self._held.items() if h.drop_at is not None and now > h.drop_at]:
            self._held.pop(scan_id).scan.close()


class _Reporter:
    """A scan's progress and camera frames for the service, sent from a thread of their own at most every `every_s`:
    the scan's threads only hand them over (the newest wins) and never wait for the network. The last progress is
    sent again when nothing new came for a while, so the scan's lease holds through the rig's start and the
    reconstruction. A report the service cannot take is skipped; staff's cancel cancels the scan."""

    def __init__(self, link: ServiceLink, scan_id: str, every_s: float):
        self.link, self.scan_id, self.every_s = link, scan_id, every_s
        self.on_cancel = lambda: None
        self._lock = threading.Lock()
        self._progress: Progress | None = None  # the newest progress not sent yet
        self._frame: np.ndarray | None = None  # the newest camera frame not sent yet
        self._last = Progress("connect", 0.0, None, None, "starting the rig")
        self._sent_at = -1e9

    def progress(self, p: Progress) -> None:
        with self._lock:
            self._progress = p

    def frame(self, image: np.ndarray) -> None:
        with self._lock:
            self._frame = image

    @contextmanager
    def sending(self, keepalive_s: float):
        """While the body runs, send what was handed over; the last progress again after `keepalive_s` of quiet."""
        done = threading.Event()

        def send() -> None:
            while not done.wait(self.every_s):
                self._send_pending(keepalive_s)

        thread = threading.Thread(target=send, name=f"report-{self.scan_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def stage(self, phase: str, fraction: float, message: str) -> None:
        self._send(lambda: self.link.report(self.scan_id, phase, fraction, None, None, message))

    def _send_pending(self, keepalive_s: float) -> None:
        with self._lock:
            p, self._progress = self._progress, None
            image, self._frame = self._frame, None
        if p is not None or time.monotonic() - self._sent_at >= keepalive_s:
            p = self._last = p or self._last
            self._sent_at = time.monotonic()
            phase = "measure" if p.phase == "done" else p.phase
            self._send(lambda: self.link.report(self.scan_id, phase, SCAN_SHARE * p.fraction, p.eta_s,
                                                p.arm_angle_deg, p.message))
        if image is not None:
            self._send(lambda: self.link.frame(self.scan_id, preview_jpeg(image)))

    def _send(self, call) -> None:
        try:
            if call():
                self.on_cancel()
        except Gone:
            self.on_cancel()
        except (httpx.HTTPError, OSError):
            pass


def cmd_agent(args: argparse.Namespace) -> int:
    settings = get_settings()
    agent = Agent(args.service, args.key, args.rig, settings)
    signal.signal(signal.SIGTERM, _stopped)
    if args.exit_with_parent:
        when_orphaned(lambda: os.kill(os.getpid(), signal.SIGTERM))
    print(f"footfit agent {agent.name}: rig {args.rig} ({settings.agent.rigs}) for {args.service}; outbox "
          f"{agent.outbox.folder}; Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    finally:
        agent.close()  # the rig is released (a simulated rig's process ends); the outbox stays
    return 0


def _stopped(_signal, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the agent as Ctrl-C does


def add_agent_command(sub) -> None:
    agent = sub.add_parser("agent", help="run a store's rig for the fit service (connects out; no inbound port)",
                           description="Run the scans kiosks ask for on this PC's rig: take them from the service, "
                                       "scan, reconstruct here and upload the passport (docs/deployment.md).")
    agent.add_argument("--service", required=True, metavar="URL", help="the fit service, e.g. https://fit.example")
    agent.add_argument("--key", required=True, metavar="KIOSK_KEY", help="a kiosk key of the rig's store")
    agent.add_argument("--rig", required=True, metavar="SERIAL", help="the rig this PC runs")
    agent.add_argument("--exit-with-parent", action="store_true",
                       help="stop when the process that started this one ends (as `footfit demo` starts it)")
    agent.set_defaults(func=cmd_agent)

