"""Kiosk scans (api/scans.py): start one on a rig, follow it (polling or server-sent events), cancel, retry. A scan
shows its customer's loyalty id, so each answer is audited as a read of the customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.access import access
from api.repository import Repository, customers
from api.scans import ScanJob, ScanManager, ScanStatus
from api.schemas import LoyaltyId
from core.errors import NotFound

router = APIRouter(tags=["scans"])
RigSerial = Annotated[str, Field(min_length=1, max_length=40)]
ScanId = Annotated[str, Field(min_length=1, max_length=32)]
STREAM_POLL_S = 0.1  # how often a progress stream looks for news
STREAM_KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing a quiet stream


class ScanStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loyalty_id: LoyaltyId
    rescan_of: str | None = Field(default=None, min_length=1, max_length=32,
                                  description="a passport of this customer that the scan replaces (a rescan); "
                                              "default: a new passport")


class ScanOut(BaseModel):
    id: str
    rig: str = Field(description="rig serial")
    loyalty_id: str
    state: Literal["running", "failed", "cancelled", "done"] = Field(
        description="failed: `message` says why; POST .../retry scans only what is not in `kept`")
    phase: Literal["connect", "zero", "stand", "left", "right", "measure", "store", "done"]
    fraction: float = Field(ge=0, le=1, description="of the whole job (scan, reconstruction, storage)")
    eta_s: float | None = Field(description="seconds left in the scan; null when unknown")
    arm_angle_deg: float | None
    message: str = Field(description="what the rig does now, or why the scan failed and what to do")
    attempts: int
    kept: list[Literal["plate", "left", "right"]] = Field(description="parts a failed scan keeps for the retry")
    passport_id: str | None = Field(description="set when done: the stored passport")
    started_at: datetime
    finished_at: datetime | None
    failed_device: Literal["board", "plate", "camera"] | None = Field(
        description="set for a device failure: the device to check (board = the arm's motor board)")


def scan_manager(request: Request) -> ScanManager:
    return request.app.state.scans


def scan_out(status: ScanStatus) -> ScanOut:
    return ScanOut(**{name: getattr(status, name) for name in ScanOut.model_fields})


def shown(repo: Repository, scans: ScanManager, job: ScanJob, what: str) -> ScanOut:
    """The scan as answered, audited as a read of its customer. A customer erased meanwhile (through another service
    process) is forgotten by the scan instead."""
    loyalty_id = job.status.loyalty_id
    customer = customers.find(repo, loyalty_id) if loyalty_id else None
    if customer is not None:
        repo.audit("read", "customer", customer.id, f"scan {job.id} {what}")
        repo.commit()
    elif loyalty_id:
        scans.forget_customer(repo.tenant_id, loyalty_id)
    return scan_out(job.status)


@router.post("/rigs/{rig_serial}/scans", status_code=202, response_model=ScanOut,
             summary="Start scanning a customer on one of your rigs; the passport is stored when it is done",
             responses={409: {"description": "the rig is scanning, no scan-storage consent, or a rescan of another "
                                             "customer's passport"}})
def start_scan(rig_serial: RigSerial, body: ScanStart, repo: Repository = Depends(access("scans:write")),
               scans: ScanManager = Depends(scan_manager)) -> ScanOut:
    return shown(repo, scans, scans.start(repo, rig_serial, body.loyalty_id, body.rescan_of), "started")


@router.get("/scans/{scan_id}", response_model=ScanOut, summary="A scan's state and progress (polling)")
def get_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
             scans: ScanManager = Depends(scan_manager)) -> ScanOut:
    return shown(repo, scans, scans.job(repo.principal, scan_id), "status")


@router.get("/scans/{scan_id}/events", response_class=StreamingResponse,
            summary="A scan's progress as server-sent events: `progress` while it runs, then one of `done`, "
                    "`failed`, `cancelled`; each event's data is the scan (as GET /v1/scans/{scan_id})",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "an event stream that ends when the scan stops running"}})
def scan_events(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
                scans: ScanManager = Depends(scan_manager)) -> StreamingResponse:
    job = scans.job(repo.principal, scan_id)
    shown(repo, scans, job, "progress stream")
    repo.release()
    return StreamingResponse(_events(job), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/scans/{scan_id}/preview", response_class=Response,
            summary="The latest camera frame of a running scan as a small grey JPEG (kept in memory only, never "
                    "stored); 404 before the first frame and once the camera is done",
            responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "about 320 px wide, refreshed a few times a second"}})
def scan_preview(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
                 scans: ScanManager = Depends(scan_manager)) -> Response:
    jpeg = scans.job(repo.principal, scan_id).preview.jpeg()
    if jpeg is None:
        raise NotFound(f"scan {scan_id} has no camera frame yet: the preview shows the camera while the rig scans "
                       f"(not before it starts, nor after the feet are scanned)")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/scans/{scan_id}/cancel", response_model=ScanOut,
             summary="Cancel a scan: the arm stops, nothing is kept (a running scan reports `cancelled` shortly)")
def cancel_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
                scans: ScanManager = Depends(scan_manager)) -> ScanOut:
    job = scans.job(repo.principal, scan_id)
    job.cancel()
    return shown(repo, scans, job, "cancelled")


@router.post("/scans/{scan_id}/retry", status_code=202, response_model=ScanOut,
             summary="Retry a failed scan on the same rig: what it kept (plate, finished feet) is not scanned again",
             responses={409: {"description": "the scan is not in the failed state"}})
def retry_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
               scans: ScanManager = Depends(scan_manager)) -> ScanOut:
    return shown(repo, scans, scans.retry(repo.principal, scan_id), "retried")


async def _events(job: ScanJob) -> AsyncIterator[str]:
    """One event per change of the job until it stops running."""
    sent, quiet = -1, 0.0
    while True:
        status = job.status
        if status.version != sent:
            sent, quiet = status.version, 0.0
            event = "progress" if status.state == "running" else status.state
            yield f"event: {event}\ndata: {scan_out(status).model_dump_json()}\n\n"
            if status.state != "running":
                return
        elif quiet >= STREAM_KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(STREAM_POLL_S)
        quiet += STREAM_POLL_S
