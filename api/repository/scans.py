"""The tenant's kiosk scans (scan_job rows; api/scans.py decides what happens to them): found, started one per rig,
and changed under a condition that only one process can win. Erasing a customer forgets their scans
(api/privacy.py)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.models import ScanJobRecord, utc_now
from api.repository import Repository
from core.errors import Conflict, NotFound


def get(repo: Repository, scan_id: str) -> ScanJobRecord:
    """The tenant's scan; for a kiosk key one of its own store's (else not found)."""
    query = select(ScanJobRecord).where(ScanJobRecord.id == scan_id)
    if repo.principal.is_kiosk:
        query = query.where(ScanJobRecord.store_id == repo.principal.store_id)
    record = repo.session.exec(query).first()
    if record is None:
        raise NotFound(f"no scan {scan_id!r}: start one with POST /v1/rigs/{{rig}}/scans")
    return record


def running_on(repo: Repository, rig_serial: str) -> ScanJobRecord | None:
    return repo.session.exec(select(ScanJobRecord).where(ScanJobRecord.rig_serial == rig_serial,
                                                         ScanJobRecord.state == "running")).first()


def add(repo: Repository, record: ScanJobRecord) -> ScanJobRecord:
    """Store a new running scan; Conflict if another process started one on the rig meanwhile (the unique index
    over running scans decides)."""
    repo.session.add(record)
    try:
        repo.session.commit()
    except IntegrityError:
        repo.session.rollback()
        raise Conflict(f"rig {record.rig_serial} is scanning (started through another service process just now): "
                       f"wait for it to finish or cancel it") from None
    repo.session.refresh(record)
    return record


def ended(state: str, message: str) -> dict:
    """The values of a scan that stops running: done, failed or cancelled (the camera's frame goes with it)."""
    return dict(state=state, message=message, finished_at=utc_now(), preview=None,
                eta_s=0.0 if state == "done" else None, cancel_requested=False)


def change(repo: Repository, record: ScanJobRecord, *conditions, **values) -> bool:
    """Apply `values` to the scan (counting the change for progress streams) if it still meets `conditions`; commit;
    False when another process changed it first. `record` is read again either way. Conflict when the change would
    make a second scan run on its rig."""
    try:
        changed = repo.session.execute(
            update(ScanJobRecord).where(ScanJobRecord.id == record.id, *conditions)
            .values(version=ScanJobRecord.version + 1, **values)).rowcount == 1
        repo.session.commit()
    except IntegrityError:
        repo.session.rollback()
        repo.session.refresh(record)
        raise Conflict(f"rig {record.rig_serial} is scanning another customer now: wait for it to finish or cancel "
                       f"it") from None
    repo.session.refresh(record)
    return changed


def waiting(repo: Repository, rig_serial: str) -> ScanJobRecord | None:
    """The rig's running scan no agent has taken yet (a rig runs one scan at a time)."""
    return repo.session.exec(select(ScanJobRecord).where(ScanJobRecord.rig_serial == rig_serial,
                                                         ScanJobRecord.state == "running",
                                                         ScanJobRecord.agent.is_(None))).first()
