"""Kiosk scans: rows (scan_job) that any service process answers for, run by the rig's agent in the store.

The service never opens a scanner's ports. A kiosk asks for a scan (`start`): the row is stored `running`, phase
`connect`, waiting for the rig's agent (cli/agent.py, `footfit agent`), which connects out to the service with
its store's kiosk key, takes the scan (`take`), reports progress (`report`, which also tells it when staff
cancelled), shows the camera (`show_frame`: the latest small grey JPEG, kept in the row only while the camera
runs), reconstructs and measures at the store, and uploads the passport (`store_passport`), which becomes the
customer's in the same transaction that marks the scan done. An upload is idempotent: the agent may send it again
(it does when an answer is lost) and the scan keeps the passport of the first.

One scan runs per rig over every process: a unique index over the running rows. Every take and report renews the
attempt's lease (setting service.scan_lease_s); a scan no agent takes within that time, or whose agent stops
reporting, is failed with the reason when it is next read, and the rig is free. An agent that was cut off and
comes back takes its scan up again (unless the rig has started another), and uploads the passport of a scan it
finished meanwhile: it is stored unless the scan was cancelled or its customer erased.

A device failure leaves the scan `failed` with the device's message and the parts the agent keeps for a retry
(`kept`: plate, finished feet; the frames stay at the store) for service.scan_retry_window_s. A retry runs the scan
again on the same rig and the agent scans only the rest; after the window the scan is given up. Cancelling stops the arm at the agent's next report and keeps nothing; erasing the
customer cancels their scans and takes their loyalty id out of them (api/repository/scans.forget_customer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update

from api.models import Customer, PassportRecord, ScanJobRecord, as_utc, utc_now
from api.passport_upload import PassportUpload
from api.repository import Repository, consents, customers, kiosks, passports, scans
from core.errors import Conflict
from core.settings import ServiceSettings
from fitcore.scan.pressure import PressureMap

WAITING = "waiting for the rig: its agent in the store takes the scan"
DONE = "scan complete: the passport is stored"
CANCELLED = "scan cancelled by the operator; nothing was kept"


@dataclass(frozen=True)
class AgentReport:
    """What the agent says of a running attempt."""

    phase: str
    fraction: float
    eta_s: float | None
    arm_angle_deg: float | None
    message: str


class ScanJobs:
    """The kiosk's and the agents' operations on scans, for any service process."""

    def __init__(self, settings: ServiceSettings):
        self.lease = timedelta(seconds=settings.scan_lease_s)
        self.retry_window = timedelta(seconds=settings.scan_retry_window_s)

    # --- the kiosk's side ---

    def start(self, repo: Repository, rig_serial: str, loyalty_id: str, rescan_of: str | None) -> ScanJobRecord:
        """Ask the rig's agent to scan the customer; refused (409) while the rig scans someone."""
        kiosk = kiosks.get(repo, rig_serial)
        customer = customers.get(repo, loyalty_id)
        consents.require_scan_storage(repo, customer)
        if rescan_of is not None and passports.read(repo, rescan_of, purpose="kiosk rescan").customer_id != customer.id:
            raise Conflict(f"passport {rescan_of!r} is not a passport of customer {loyalty_id!r}: a rescan replaces "
                           f"one of the scanned customer's passports")
        holder = scans.running_on(repo, rig_serial)
        if holder is not None and self._current(repo, holder).state == "running":
            raise Conflict(f"rig {rig_serial} is scanning (scan {holder.id}): wait for it to finish or cancel it "
                           f"with POST /v1/scans/{holder.id}/cancel")
        record = ScanJobRecord(tenant_id=repo.tenant_id, store_id=kiosk.store_id, rig_serial=rig_serial,
                               customer_id=customer.id, loyalty_id=loyalty_id, rescan_of=rescan_of,
                               created_by=repo.principal.key_id, state="running", phase="connect", message=WAITING,
                               lease_expires_at=utc_now() + self.lease)
        return scans.add(repo, record)

    def status(self, repo: Repository, scan_id: str) -> ScanJobRecord:
        return self._current(repo, scans.get(repo, scan_id))

    def cancel(self, repo: Repository, scan_id: str) -> ScanJobRecord:
        """Taken by an agent: it stops the arm at its next report; not taken yet: cancelled at once; failed: what
        it kept for a retry is given up."""
        record = self.status(repo, scan_id)
        if record.state == "running" and record.agent is not None:
            scans.change(repo, record, ScanJobRecord.state == "running", ScanJobRecord.agent == record.agent,
                         cancel_requested=True, message="cancelling: the arm stops")
        elif record.state == "running":
            scans.change(repo, record, ScanJobRecord.state == "running", ScanJobRecord.agent.is_(None),
                         **scans.ended("cancelled", CANCELLED))
        elif record.state == "failed":
            scans.change(repo, record, ScanJobRecord.state == "failed", kept="",
                         **scans.ended("cancelled", CANCELLED))
        return record

    def retry(self, repo: Repository, scan_id: str) -> ScanJobRecord:
        """Run a failed scan again on its rig; its agent scans only what it did not keep."""
        record = self.status(repo, scan_id)
        if record.state != "failed":
            raise Conflict(f"scan {scan_id} is {record.state}: only a failed scan can be retried")
        if record.customer_id is None:
            raise Conflict(f"scan {scan_id}'s customer was erased: start a new scan")
        holder = scans.running_on(repo, record.rig_serial)
        if holder is not None and self._current(repo, holder).state == "running":
            raise Conflict(f"rig {record.rig_serial} is scanning (scan {holder.id}): retry when it is done")
        scans.change(repo, record, ScanJobRecord.state == "failed", state="running", phase="connect",
                     fraction=0.0, eta_s=None, arm_angle_deg=None, message=WAITING, attempts=record.attempts + 1,
                     agent=None, lease_expires_at=utc_now() + self.lease, finished_at=None, failed_device=None,
                     cancel_requested=False)
        return record

    def _current(self, repo: Repository, record: ScanJobRecord) -> ScanJobRecord:
        """The scan with its time limits applied: a running scan nobody took, or whose agent stopped reporting,
        within the lease is failed with the reason (and the rig free); a failed scan not retried within the retry
        window is given up (its agent drops what it kept at the same time)."""
        now = utc_now()
        if record.state == "running" and as_utc(record.lease_expires_at) < now:
            silent = int(self.lease.total_seconds())
            message = (f"no agent took the scan within {silent} s: start `footfit agent` for rig "
                       f"{record.rig_serial} on the store's PC (docs/deployment.md), then POST "
                       f"/v1/scans/{record.id}/retry" if record.agent is None else
                       f"the rig's agent has not reported for {silent} s (is the store's PC on and online?): POST "
                       f"/v1/scans/{record.id}/retry scans again; a passport it finished is still stored when it "
                       f"is back")
            scans.change(repo, record, ScanJobRecord.state == "running", ScanJobRecord.lease_expires_at < now,
                         **scans.ended("failed", message))
        elif record.state == "failed" and record.kept and as_utc(record.finished_at) + self.retry_window < now:
            window = int(self.retry_window.total_seconds())
            scans.change(repo, record, ScanJobRecord.state == "failed", kept="",
                         **scans.ended("cancelled", f"no retry within {window} s: the scan was given up; its agent "
                                                    f"kept nothing"))
        return record

    # --- the agent's side ---

    def take(self, repo: Repository, rig_serial: str, agent: str) -> ScanJobRecord | None:
        """The rig's scan waiting for an agent, now this agent's (None: nothing to do)."""
        kiosks.get(repo, rig_serial)
        record = scans.waiting(repo, rig_serial)
        if record is None or self._current(repo, record).state != "running":
            return None
        if not scans.change(repo, record, ScanJobRecord.state == "running", ScanJobRecord.agent.is_(None),
                            agent=agent, lease_expires_at=utc_now() + self.lease, message="the rig starts"):
            return None
        return record

    def report(self, repo: Repository, scan_id: str, agent: str, report: AgentReport) -> ScanJobRecord:
        """The agent's progress, renewing its lease; the answer says whether staff cancelled."""
        record = self._agents(repo, scan_id, agent)
        values = dict(phase=report.phase, fraction=report.fraction, eta_s=report.eta_s,
                      arm_angle_deg=report.arm_angle_deg, lease_expires_at=utc_now() + self.lease)
        if not record.cancel_requested:
            values["message"] = report.message
        self._agents_change(repo, record, agent, **values)
        return record

    def show_frame(self, repo: Repository, scan_id: str, agent: str, jpeg: bytes) -> None:
        record = self._agents(repo, scan_id, agent)
        repo.session.execute(update(ScanJobRecord).where(ScanJobRecord.id == record.id, ScanJobRecord.agent == agent,
                                                         ScanJobRecord.state == "running").values(preview=jpeg))
        repo.session.commit()

    def end(self, repo: Repository, scan_id: str, agent: str, state: str, message: str,
            failed_device: str | None = None, kept: tuple[str, ...] = ()) -> ScanJobRecord:
        """The agent's attempt ended without a passport: failed (with what it keeps for a retry) or cancelled."""
        record = self._agents(repo, scan_id, agent)
        self._agents_change(repo, record, agent, **scans.ended(state, message), failed_device=failed_device,
                            kept=",".join(kept) if state == "failed" else "", agent=None)
        return record

    def store_passport(self, repo: Repository, scan_id: str, upload: PassportUpload,
                       pressure: PressureMap) -> ScanJobRecord:
        """The finished scan's passport, stored for its customer with the scan marked done in one transaction.
        Sent again, the scan's passport is the first one's (nothing is stored twice)."""
        record = scans.get(repo, scan_id)
        kiosks.get(repo, record.rig_serial)
        if record.passport_id is None:
            try:
                self._store(repo, record, upload, pressure)
            except _NotStorable:
                repo.session.rollback()
            repo.session.refresh(record)
        if record.passport_id is None:
            why = "its customer was erased" if record.customer_id is None else f"it is {record.state}"
            raise Conflict(f"scan {scan_id}'s passport is not stored: {why}; nothing was kept")
        return record

    def _store(self, repo: Repository, record: ScanJobRecord, upload: PassportUpload, pressure: PressureMap) -> None:
        def mark_done(passport: PassportRecord) -> None:
            done = repo.session.execute(
                update(ScanJobRecord).where(ScanJobRecord.id == record.id, ScanJobRecord.passport_id.is_(None),
                                            ScanJobRecord.customer_id.is_not(None),
                                            ScanJobRecord.state != "cancelled")
                .values(passport_id=passport.id, fraction=1.0, phase="done", arm_angle_deg=None, kept="",
                        version=ScanJobRecord.version + 1, **scans.ended("done", DONE))).rowcount
            if done != 1:
                raise _NotStorable(record.id)

        if record.customer_id is None or record.state == "cancelled":
            raise _NotStorable(record.id)
        if record.rescan_of:
            kept = passports.read(repo, record.rescan_of, purpose="kiosk rescan")
            passports.replace(repo, kept, upload, pressure, before_commit=mark_done)
        else:
            customer = repo.session.get(Customer, record.customer_id)
            passports.add(repo, customer, upload, source="kiosk", pressure=pressure, before_commit=mark_done)

    def _agents(self, repo: Repository, scan_id: str, agent: str) -> ScanJobRecord:
        """The scan, if it is running with this agent's attempt (Conflict tells the agent to stop it). A scan failed
        because this agent went silent runs again when it is back, unless the rig has started another meanwhile."""
        record = self._current(repo, scans.get(repo, scan_id))
        kiosks.get(repo, record.rig_serial)
        if record.state == "failed" and record.agent == agent:
            try:
                scans.change(repo, record, ScanJobRecord.state == "failed", ScanJobRecord.agent == agent,
                             state="running", finished_at=None, lease_expires_at=utc_now() + self.lease,
                             message="the rig's agent is back")
            except Conflict:  # the rig runs another scan now: this one stays failed
                pass
        if record.state != "running" or record.agent != agent:
            raise Conflict(f"scan {scan_id} is not running on this agent (it is {record.state}): stop it; nothing "
                           f"more is stored for it")
        return record

    def _agents_change(self, repo: Repository, record: ScanJobRecord, holder: str, **values) -> None:
        if not scans.change(repo, record, ScanJobRecord.state == "running", ScanJobRecord.agent == holder, **values):
            raise Conflict(f"scan {record.id} is no longer running on this agent: stop it")


class _NotStorable(Exception):
    """The scan took another passport meanwhile, was cancelled, or lost its customer."""
