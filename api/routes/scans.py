"""Kiosk scans (api/scans.py): start one on a rig, follow it (polling or server-sent events), cancel, retry; and the
routes the rig's agent in the store runs them through (take, report, frame, end, passport). A scan shows its
customer's loyalty id, so each answer to a kiosk is audited as a read of the customer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.access import access
from api.auth import Principal
from api.models import ScanJobRecord
from api.passport_upload import parse_upload
from api.repository import Repository
from api.scans import AgentReport, ScanJobs
from api.schemas import LoyaltyId
from core.errors import InvalidInput, NotFound
from fitcore.scan.pressure import PressureMap

router = APIRouter(tags=["scans"])
RigSerial = Annotated[str, Field(min_length=1, max_length=40)]
ScanId = Annotated[str, Field(min_length=1, max_length=32)]
STREAM_POLL_S = 0.25  # how often a progress stream (or an agent waiting for work) looks for news in the database
T = TypeVar("T")
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


class ScanTask(BaseModel):
    """A scan for the agent to run (the scan's attempt `attempt`; a retry's agent scans only what it kept)."""

    scan_id: str
    rig: str
    loyalty_id: str = Field(description="whom the simulated rig shows (the hardware ignores it)")
    attempt: int
    report_within_s: float = Field(description="report at least this often, or the scan fails for silence")
    keep_for_retry_s: float = Field(description="after a failure, keep what was scanned this long for a retry")


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=80, description="the agent's name, the same on every call")


class TakeIn(AgentIn):
    wait_s: float = Field(default=20.0, ge=0, le=60, description="how long to wait for a scan")


class ReportIn(AgentIn):
    phase: Literal["connect", "zero", "stand", "left", "right", "measure", "store"]
    fraction: float = Field(ge=0, le=1)
    eta_s: float | None = Field(default=None, ge=0, le=3600)
    arm_angle_deg: float | None = Field(default=None, ge=-720, le=720)
    message: str = Field(default="", max_length=300)


class ReportOut(BaseModel):
    cancel: bool = Field(description="staff cancelled: stop the arm, keep nothing, and end the scan as cancelled")


class EndIn(AgentIn):
    state: Literal["failed", "cancelled"]
    message: str = Field(min_length=1, max_length=480)
    failed_device: Literal["board", "plate", "camera"] | None = None
    kept: list[Literal["plate", "left", "right"]] = Field(default=[], max_length=3)


def scan_jobs(request: Request) -> ScanJobs:
    return request.app.state.scans


def scan_out(record: ScanJobRecord) -> ScanOut:
    values = {name: getattr(record, name) for name in ScanOut.model_fields if name not in ("rig", "kept")}
    return ScanOut(**values, rig=record.rig_serial, kept=[k for k in record.kept.split(",") if k])


def shown(repo: Repository, record: ScanJobRecord, what: str) -> ScanOut:
    """The scan as answered to a kiosk, audited as a read of its customer."""
    if record.customer_id is not None:
        repo.audit("read", "customer", record.customer_id, f"scan {record.id} {what}")
        repo.commit()
    return scan_out(record)


@router.post("/rigs/{rig_serial}/scans", status_code=202, response_model=ScanOut,
             summary="Start scanning a customer on one of your rigs; the passport is stored when it is done",
             responses={409: {"description": "the rig is scanning, no scan-storage consent, or a rescan of another "
                                             "customer's passport"}})
def start_scan(rig_serial: RigSerial, body: ScanStart, repo: Repository = Depends(access("scans:write")),
               scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    return shown(repo, scans.start(repo, rig_serial, body.loyalty_id, body.rescan_of), "started")


@router.get("/scans/{scan_id}", response_model=ScanOut, summary="A scan's state and progress (polling)")
def get_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
             scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    return shown(repo, scans.status(repo, scan_id), "status")


@router.get("/scans/{scan_id}/events", response_class=StreamingResponse,
            summary="A scan's progress as server-sent events: `progress` while it runs, then one of `done`, "
                    "`failed`, `cancelled`; each event's data is the scan (as GET /v1/scans/{scan_id})",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "an event stream that ends when the scan stops running"}})
def scan_events(scan_id: ScanId, request: Request, repo: Repository = Depends(access("scans:write")),
                scans: ScanJobs = Depends(scan_jobs)) -> StreamingResponse:
    shown(repo, scans.status(repo, scan_id), "progress stream")
    repo.release()
    read = _reader(request, repo.principal, lambda r: scans.status(r, scan_id))
    return StreamingResponse(_events(read), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/scans/{scan_id}/preview", response_class=Response,
            summary="The latest camera frame of a running scan as a small grey JPEG (kept only while the camera "
                    "runs); 404 before the first frame and once the camera is done",
            responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "about 320 px wide, refreshed a few times a second"}})
def scan_preview(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
                 scans: ScanJobs = Depends(scan_jobs)) -> Response:
    jpeg = scans.status(repo, scan_id).preview
    if jpeg is None:
        raise NotFound(f"scan {scan_id} has no camera frame yet: the preview shows the camera while the rig scans "
                       f"(not before it starts, nor after the feet are scanned)")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/scans/{scan_id}/cancel", response_model=ScanOut,
             summary="Cancel a scan: the arm stops, nothing is kept (a running scan reports `cancelled` shortly)")
def cancel_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
                scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    return shown(repo, scans.cancel(repo, scan_id), "cancelled")


@router.post("/scans/{scan_id}/retry", status_code=202, response_model=ScanOut,
             summary="Retry a failed scan on the same rig: what it kept (plate, finished feet) is not scanned again",
             responses={409: {"description": "the scan is not in the failed state"}})
def retry_scan(scan_id: ScanId, repo: Repository = Depends(access("scans:write")),
               scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    return shown(repo, scans.retry(repo, scan_id), "retried")


# --- the rig agent's routes (a kiosk key of the rig's store; docs/deployment.md) ---

@router.post("/rigs/{rig_serial}/agent/take", response_class=StreamingResponse,
             summary="Agent: the rig's next scan, waiting up to wait_s for one; the body is a ScanTask or null",
             responses={200: {"content": {"application/json": {"schema": ScanTask.model_json_schema()}}}})
def agent_take(rig_serial: RigSerial, body: TakeIn, request: Request,
               repo: Repository = Depends(access("scans:write", store_key=True)),
               scans: ScanJobs = Depends(scan_jobs)) -> StreamingResponse:
    task = _task(scans.take(repo, rig_serial, body.agent), scans)
    repo.release()
    take = _reader(request, repo.principal, lambda r: _task(scans.take(r, rig_serial, body.agent), scans))
    return StreamingResponse(_waited(task, take, body.wait_s), media_type="application/json")


@router.post("/scans/{scan_id}/agent/report", response_model=ReportOut,
             summary="Agent: the scan's progress (renews the attempt's lease); the answer says whether to stop",
             responses={409: {"description": "the scan is no longer this agent's: stop it"}})
def agent_report(scan_id: ScanId, body: ReportIn, repo: Repository = Depends(access("scans:write", store_key=True)),
                 scans: ScanJobs = Depends(scan_jobs)) -> ReportOut:
    report = AgentReport(body.phase, body.fraction, body.eta_s, body.arm_angle_deg, body.message)
    return ReportOut(cancel=scans.report(repo, scan_id, body.agent, report).cancel_requested)


@router.put("/scans/{scan_id}/agent/frame", status_code=204, response_class=Response,
            summary="Agent: the camera's latest frame as a small grey JPEG, for the kiosk's preview")
def agent_frame(scan_id: ScanId, agent: Annotated[str, Query(min_length=1, max_length=80)],
                jpeg: Annotated[bytes, Body(media_type="image/jpeg")],
                repo: Repository = Depends(access("scans:write", store_key=True)), scans: ScanJobs = Depends(scan_jobs)) -> Response:
    if not jpeg.startswith(b"\xff\xd8") or len(jpeg) > MAX_FRAME_BYTES:
        raise InvalidInput(f"a frame is a JPEG of at most {MAX_FRAME_BYTES // 1000} kB (fitcore.scan.rig_scan."
                           f"preview_jpeg makes one)")
    scans.show_frame(repo, scan_id, agent, jpeg)
    return Response(status_code=204)


@router.post("/scans/{scan_id}/agent/end", response_model=ScanOut,
             summary="Agent: the attempt ended without a passport: failed (with the parts kept for a retry) or "
                     "cancelled")
def agent_end(scan_id: ScanId, body: EndIn, repo: Repository = Depends(access("scans:write", store_key=True)),
              scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    return scan_out(scans.end(repo, scan_id, body.agent, body.state, body.message, body.failed_device,
                              tuple(body.kept)))


@router.post("/scans/{scan_id}/agent/passport", response_model=ScanOut,
             summary="Agent: the finished scan's passport (passport.json, left.ply, right.ply, pressure_map.json); "
                     "sent again, the first one's is kept",
             responses={409: {"description": "the scan was cancelled or its customer erased: drop it"}})
def agent_passport(scan_id: ScanId, passport: UploadFile = File(description="passport.json"),
                   left: UploadFile = File(description="left.ply: the left foot's points, foot frame, mm"),
                   right: UploadFile = File(description="right.ply: the right foot's points, foot frame, mm"),
                   pressure_map: UploadFile = File(description="pressure_map.json (fitcore.scan.pressure)"),
                   repo: Repository = Depends(access("scans:write", store_key=True)),
                   scans: ScanJobs = Depends(scan_jobs)) -> ScanOut:
    upload = parse_upload(passport.file.read(), {"left": left.file.read(), "right": right.file.read()})
    try:
        pressure = PressureMap.model_validate_json(pressure_map.file.read())
    except ValueError as exc:
        raise InvalidInput(f"pressure_map.json is not a pressure map: {str(exc).splitlines()[0]}") from None
    return scan_out(scans.store_passport(repo, scan_id, upload, pressure))


MAX_FRAME_BYTES = 200_000


def _task(record: ScanJobRecord | None, scans: ScanJobs) -> ScanTask | None:
    return None if record is None else ScanTask(
        scan_id=record.id, rig=record.rig_serial, loyalty_id=record.loyalty_id, attempt=record.attempts,
        report_within_s=scans.lease.total_seconds(), keep_for_retry_s=scans.retry_window.total_seconds())


def _reader(request: Request, principal: Principal, read: Callable[[Repository], T]) -> Callable[[], T]:
    """read() in a session of its own (a stream outlives its request's session)."""
    engine, stored = request.app.state.engine, request.app.state.fitting.prepare

    def in_session() -> T:
        with Session(engine, expire_on_commit=False) as session:
            return read(Repository(session, principal, passport_stored=stored))

    return in_session


async def _waited(task: ScanTask | None, take: Callable[[], ScanTask | None], wait_s: float) -> AsyncIterator[str]:
    """The task, waited for in the database until wait_s (the answer has started: an agent waiting holds none of
    the service's request slots)."""
    deadline = time.monotonic() + wait_s
    while task is None and time.monotonic() < deadline:
        await asyncio.sleep(STREAM_POLL_S)
        task = await run_in_threadpool(take)
    yield json.dumps(None if task is None else task.model_dump())


async def _events(read: Callable[[], ScanJobRecord]) -> AsyncIterator[str]:
    """One event per change of the scan until it stops running."""
    sent, quiet = -1, 0.0
    while True:
        record = await run_in_threadpool(read)
        if record.version != sent:
            sent, quiet = record.version, 0.0
            event = "progress" if record.state == "running" else record.state
            yield f"event: {event}\ndata: {scan_out(record).model_dump_json()}\n\n"
            if record.state != "running":
                return
        elif quiet >= STREAM_KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(STREAM_POLL_S)
        quiet += STREAM_POLL_S
