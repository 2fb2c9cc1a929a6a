"""Kiosk scans run by the service: one scan job per request, one at a time per rig, each in a background thread.

A job takes the code path of `footfit scan`: the scan session (device/session.py) on the rig's drivers, the rig's
stored calibration checked right after the board's handshake (an uncalibrated rig is refused before the customer
waits), then reconstruction and measurement (fitcore.scan.pipeline); the passport is stored for the customer through
the tenant-scoped repository. Progress (phase, fraction, arm angle, ETA) is polled or streamed.

A device failure leaves the job `failed` with the device's message and keeps what was complete: the plate
recording and each finished foot, in memory only and for RETRY_WINDOW_S at most. A retry scans only the rest, on the
same rig (for a simulated rig: the same simulator, the customer still standing on it). Cancelling stops the arm and
keeps nothing; a finished scan keeps no frames; erasing the customer (`forget_customer`) cancels their scans and
takes their loyalty id out of the status.

Rigs come from the rig provider the service was given (device.rig; `footfit serve` picks it from the setting
`service.rigs`): a simulated rig per job in a child process, exactly as `footfit scan --simulator`, whose subject
follows from the customer's loyalty id so a rescan sees the same feet; or the hardware of the `device` settings.
A board whose serial is not the rig's is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import cv2
import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from api.auth import Principal
from api.models import PassportRecord, new_public_id, utc_now
from api.passport_upload import PassportUpload
from api.repository import Repository, consents, customers, kiosks, passports
from core.errors import Conflict, DeviceError, FootfitError, NotFound, ScanCancelled, ScanFailed, WrongDevice
from core.settings import Settings
from core.vocabulary import SIDES
from device.profile import get_profile
from device.rig import RigConnection, RigProvider, open_scanner
from device.session import KeptScan, Progress, ScanSession
from fitcore.scan.calibration import load_calibration
from fitcore.scan.pipeline import ScanResult, passport_from_scan

log = logging.getLogger(__name__)

SCAN_SHARE = 0.85  # of a job's progress; reconstruction and storage take the rest
MEASURE_SHARE = 0.12
KEPT_JOBS = 200  # finished jobs kept for polling; older ones are forgotten
RETRY_WINDOW_S = 600.0  # a failed scan keeps what it scanned (frames of the customer's feet) this long for a retry
CLOSE_WAIT_S = 15.0  # for a cancelled attempt to stop when the service stops
PREVIEW_WIDTH_PX = 320  # the camera preview's width (grey JPEG)
PREVIEW_MAX_FPS = 4.0  # a preview is encoded at most this often; requests in between get the last one
PREVIEW_JPEG_QUALITY = 70


@dataclass(frozen=True)
class ScanStatus:
    """A job as the API shows it; replaced as a whole on every change (`version` counts the changes)."""

    id: str
    rig: str
    loyalty_id: str
    state: str  # running | failed | cancelled | done
    phase: str  # the scan session's phases (connect, zero, stand, left, right), then measure, store, done
    fraction: float
    eta_s: float | None
    arm_angle_deg: float | None
    message: str
    attempts: int
    kept: tuple[str, ...]  # parts a retry does not scan again: plate, left, right
    passport_id: str | None
    started_at: datetime
    finished_at: datetime | None
    version: int = 0
    failed_device: str | None = None  # a device failure: which device ("board", "plate", "camera")


class CameraPreview:
    """The latest camera frame of a running attempt, for staff to see the customer's feet are in view. Kept in
    memory only (never stored: it shows the customer); the camera thread only hands over its frame, and encoding
    (grey, PREVIEW_WIDTH_PX wide) happens when asked, at most PREVIEW_MAX_FPS times a second."""

    def __init__(self):
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._jpeg: bytes | None = None
        self._encoded_at = -1.0

    def offer(self, image: np.ndarray) -> None:
        with self._lock:
            self._image = image

    def clear(self) -> None:
        with self._lock:
            self._image, self._jpeg = None, None

    def jpeg(self) -> bytes | None:
        """The latest frame as JPEG; None before the first frame (and after the attempt ended)."""
        with self._lock:
            image = self._image
            if image is None:
                return None
            if self._jpeg is not None and time.monotonic() - self._encoded_at < 1.0 / PREVIEW_MAX_FPS:
                return self._jpeg
            self._jpeg, self._encoded_at = preview_jpeg(image), time.monotonic()
            return self._jpeg


def preview_jpeg(image: np.ndarray) -> bytes:
    """A camera frame (BGR or grey) as a small grey JPEG."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height = max(1, round(grey.shape[0] * PREVIEW_WIDTH_PX / grey.shape[1]))
    small = cv2.resize(grey, (PREVIEW_WIDTH_PX, height), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])[1].tobytes()


class PreviewingCamera:
    """The rig's camera as the scan session uses it, handing every frame it reads to the preview."""

    def __init__(self, camera, preview: CameraPreview):
        self._camera, self._preview = camera, preview

    def read(self):
        frame = self._camera.read()
        self._preview.offer(frame.image)
        return frame

    def __getattr__(self, name: str):
        return getattr(self._camera, name)


class ScanJob:
    """One customer's scan on one rig: attempts (the first and retries) in a background thread each."""

    def __init__(self, scan_id: str, kiosk_store_id: int, principal: Principal, rig_serial: str, loyalty_id: str,
                 rescan_of: str | None, engine: Engine, settings: Settings, rigs: RigProvider,
                 passport_stored: Callable[[PassportRecord], None] | None = None):
        self.id, self.store_id, self.principal = scan_id, kiosk_store_id, principal
        self.passport_stored = passport_stored
        self.rig_serial, self.loyalty_id, self.rescan_of = rig_serial, loyalty_id, rescan_of
        self.engine, self.settings, self.rigs = engine, settings, rigs
        self.profile = get_profile(settings.scan_profile)
        self.kept = KeptScan()
        self.preview = CameraPreview()
        self.status = ScanStatus(scan_id, rig_serial, loyalty_id, "running", "connect", 0.0, None, None,
                                 "starting", 0, (), None, utc_now(), None)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._session: ScanSession | None = None
        self._rig: RigConnection | None = None
        self._thread: threading.Thread | None = None

    # --- control (request threads) ---
    def start(self) -> None:
        self._update(state="running", phase="connect", fraction=0.0, eta_s=None, arm_angle_deg=None,
                     message="starting the scan", attempts=self.status.attempts + 1, finished_at=None,
                     failed_device=None)
        self._thread = threading.Thread(target=self._attempt, name=f"scan-{self.id}", daemon=True)
        self._thread.start()

    def cancel(self, reason: str = "scan cancelled by the operator; nothing was kept") -> None:
        with self._lock:
            self._cancel.set()
            session, running = self._session, self.status.state == "running"
        if session is not None:
            session.cancel()
        if not running:
            self._finish("cancelled", reason)

    def forget_customer(self) -> None:
        """The customer is erased: a scan still going stops and stores nothing, and none shows their loyalty id."""
        self.cancel("the customer was erased; nothing was kept")
        with self._lock:
            self.loyalty_id = ""
            self.status = replace(self.status, version=self.status.version + 1, loyalty_id="")

    def close(self) -> None:
        """Cancel, give the attempt a moment to stop the arm, and release the rig (the service is stopping)."""
        self.cancel("the service stopped; nothing was kept")
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT_S)
        with self._lock:
            rig = self._rig
        if rig is not None:
            rig.close()

    # --- the attempt (job thread) ---
    def _attempt(self) -> None:
        try:
            raw, calibration = self._scan()
            self.preview.clear()  # the camera is done: no frame of the customer stays in memory
            self._update(phase="measure", fraction=SCAN_SHARE, eta_s=None, arm_angle_deg=None,
                         message="reconstructing and measuring both feet")
            result = passport_from_scan(raw, calibration)
            if self._cancel.is_set():
                raise ScanCancelled("scan cancelled by the operator; nothing was kept")
            self._update(phase="store", fraction=SCAN_SHARE + MEASURE_SHARE, message="storing the passport")
            passport_id = self._store(result)
        except ScanCancelled as exc:
            self._finish("cancelled", str(exc))
        except (ScanFailed, DeviceError) as exc:
            cause = exc.__cause__ if isinstance(exc, ScanFailed) and exc.__cause__ is not None else exc
            kept = self.kept.parts()
            self._fail(f"device failure: {cause}. POST /v1/scans/{self.id}/retry scans "
                       + (f"the rest ({', '.join(kept)} kept)" if kept else "again"),
                       device=getattr(cause, "device", None))
        except FootfitError as exc:  # calibration, scan quality, consent or customer gone: nothing worth keeping
            self.kept = KeptScan()
            self._fail(f"{exc}. POST /v1/scans/{self.id}/retry scans again once that is fixed")
        except Exception:
            log.exception("scan %s failed", self.id)
            self.kept = KeptScan()
            self._fail(f"internal error while scanning (logged by the service); POST /v1/scans/{self.id}/retry "
                       f"scans again")
        else:
            self._finish("done", "scan complete: the passport is stored", passport_id=passport_id)

    def _scan(self):
        """The raw scan of both feet (kept parts are not scanned again) and the rig's calibration."""
        if self._rig is None:
            self._rig = self.rigs.connect(self.rig_serial, customer=self.loyalty_id)
        devices = self._rig.devices
        calibration = {}

        def check_rig(identity) -> None:
            if identity.serial != self.rig_serial:
                raise WrongDevice("board", f"the board at {devices.board_url} is rig {identity.serial}, not "
                                           f"{self.rig_serial}: check the kiosk's device settings")
            calibration["rig"] = load_calibration(self.settings.data_dir, identity.serial)

        with open_scanner(devices, self.profile) as scanner:
            camera = PreviewingCamera(scanner.camera, self.preview)
            session = ScanSession(scanner.board, scanner.plate, camera, self.profile,
                                  on_progress=self._on_progress, reconnect_window_s=devices.reconnect_window_s,
                                  check_rig=check_rig, kept=self.kept)
            with self._lock:
                self._session = session
                if self._cancel.is_set():
                    session.cancel()
            try:
                raw = session.run()
            finally:
                with self._lock:
                    self._session = None
        return raw, calibration["rig"]

    def _on_progress(self, p: Progress) -> None:
        self._update(phase=p.phase if p.phase != "done" else "measure", fraction=SCAN_SHARE * p.fraction,
                     eta_s=p.eta_s, arm_angle_deg=p.arm_angle_deg, message=p.message)

    def _store(self, result: ScanResult) -> str:
        upload = PassportUpload(result.passport, {side: result.points_in_foot_frame(side)[0].astype(np.float32)
                                                  for side in SIDES})
        with Session(self.engine, expire_on_commit=False) as session:
            repo = Repository(session, self.principal, passport_stored=self.passport_stored)
            customer = customers.get(repo, self.loyalty_id)
            if self.rescan_of:
                record = passports.read(repo, self.rescan_of, purpose="kiosk rescan")
                return passports.replace(repo, record, upload, pressure=result.pressure_map).id
            return passports.add(repo, customer, upload, source="kiosk", pressure=result.pressure_map).id

    # --- state ---
    def _update(self, **changes) -> None:
        with self._lock:
            self.status = replace(self.status, version=self.status.version + 1, **changes)

    def _fail(self, message: str, device: str | None = None) -> None:
        if self._cancel.is_set():  # cancelled while the failure happened: the operator's word wins
            self._finish("cancelled", "scan cancelled by the operator; nothing was kept")
            return
        self.preview.clear()
        self._update(state="failed", message=message, eta_s=None, kept=self.kept.parts(), finished_at=utc_now(),
                     failed_device=device)
        if self.kept.parts():
            timer = threading.Timer(RETRY_WINDOW_S, self._give_up, args=(self.status.attempts,))
            timer.daemon = True
            timer.start()

    def _give_up(self, attempt: int) -> None:
        """No retry came in time for this failed attempt: what it kept is dropped and the rig released."""
        if self.status.state == "failed" and self.status.attempts == attempt:
            self.cancel(f"no retry within {RETRY_WINDOW_S:g} s: the scan was given up; nothing was kept")

    def _finish(self, state: str, message: str, passport_id: str | None = None) -> None:
        self.preview.clear()
        with self._lock:
            if self.status.state in ("done", "cancelled"):
                return
            rig, self._rig = self._rig, None
            self.kept = KeptScan()  # done: the passport holds what counts; cancelled: nothing is kept
            self.status = replace(self.status, version=self.status.version + 1, state=state, message=message,
                                  eta_s=0.0 if state == "done" else None, kept=(), passport_id=passport_id,
                                  fraction=1.0 if state == "done" else self.status.fraction,
                                  phase="done" if state == "done" else self.status.phase, finished_at=utc_now())
        if rig is not None:
            rig.close()


class ScanManager:
    """The scan jobs of one service process, by id, and which job holds each rig."""

    def __init__(self, engine: Engine, settings: Settings, rigs: RigProvider,
                 passport_stored: Callable[[PassportRecord], None] | None = None):
        self.engine, self.settings, self.rigs = engine, settings, rigs
        self.passport_stored = passport_stored  # told of each stored scan (the service prepares its fit work)
        self._jobs: dict[str, ScanJob] = {}
        self._rigs: dict[str, ScanJob] = {}
        self._lock = threading.Lock()

    def start(self, repo: Repository, rig_serial: str, loyalty_id: str, rescan_of: str | None = None) -> ScanJob:
        """Start a scan of the customer on the tenant's rig; refused (409) while the rig scans someone. A failed
        scan still holding the rig is given up (cancelled) for the new one."""
        kiosk = kiosks.get(repo, rig_serial)
        customer = customers.get(repo, loyalty_id)
        consents.require_scan_storage(repo, customer)
        if rescan_of is not None and passports.read(repo, rescan_of, purpose="kiosk rescan").customer_id != customer.id:
            raise Conflict(f"passport {rescan_of!r} is not a passport of customer {loyalty_id!r}: a rescan replaces "
                           f"one of the scanned customer's passports")
        with self._lock:
            holder = self._rigs.get(rig_serial)
            if holder is not None and holder.status.state == "running":
                raise Conflict(f"rig {rig_serial} is scanning (scan {holder.id}): wait for it to finish or cancel "
                               f"it with POST /v1/scans/{holder.id}/cancel")
            job = ScanJob(new_public_id(), kiosk.store_id, repo.principal, rig_serial, loyalty_id, rescan_of,
                          self.engine, self.settings, self.rigs, self.passport_stored)
            self._jobs[job.id] = job
            self._rigs[rig_serial] = job
            self._forget_old()
        if holder is not None:
            holder.cancel(f"given up for scan {job.id} on the same rig; nothing was kept")
        job.start()
        return job

    def job(self, principal: Principal, scan_id: str) -> ScanJob:
        """The caller's job: its tenant's, and for a kiosk key one of its own store's (else not found)."""
        job = self._jobs.get(scan_id)
        if job is None or job.principal.tenant_id != principal.tenant_id or (
                principal.is_kiosk and job.store_id != principal.store_id):
            raise NotFound(f"no scan {scan_id!r}: start one with POST /v1/rigs/{{rig}}/scans")
        return job

    def retry(self, principal: Principal, scan_id: str) -> ScanJob:
        job = self.job(principal, scan_id)
        with self._lock:
            if job.status.state != "failed":
                raise Conflict(f"scan {scan_id} is {job.status.state}: only a failed scan can be retried")
            job.start()
        return job

    def forget_customer(self, tenant_id: int, loyalty_id: str) -> None:
        """The tenant's customer is erased: their scans stop, keep nothing and no longer show the loyalty id."""
        with self._lock:
            jobs = [job for job in self._jobs.values()
                    if job.principal.tenant_id == tenant_id and job.loyalty_id == loyalty_id]
        for job in jobs:
            job.forget_customer()

    def close(self) -> None:
        """Cancel every scan and release the rigs (the service is stopping)."""
        for job in list(self._jobs.values()):
            job.close()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status.state in ("done", "cancelled")]
        for job in sorted(finished, key=lambda j: j.status.started_at)[:max(0, len(finished) - KEPT_JOBS)]:
            del self._jobs[job.id]
