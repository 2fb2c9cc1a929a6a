"""One passport: its views, its point clouds, rescan, erasure, feedback events."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from pydantic import Field

from api.access import access
from api.auth import require_scope
from api.passport_upload import parse_upload, points_from_blob
from api.privacy import ply_bytes
from api.repository import Repository, feedback, passports
from api.routes.views import passport_summary, staff_view, webshop_view
from api.schemas import ErasureOut, FeedbackIn, FeedbackOut, PassportStaffView, PassportSummary, PassportWebshopView
from core.vocabulary import SIDES
from fitcore.scan.pressure import PressureMap

router = APIRouter(prefix="/passports", tags=["passports"])
PassportId = Annotated[str, Field(min_length=1, max_length=32)]


@router.get("/{passport_id}", response_model=PassportWebshopView | PassportStaffView,
            summary="A passport: the webshop view (measurements, sizes, fit results) or, with scans:read, the staff "
                    "view (plus the whole passport and links to the point clouds)")
def get_passport(passport_id: PassportId, request: Request,
                 view: Annotated[Literal["webshop", "staff"], Query()] = "webshop",
                 repo: Repository = Depends(access("passports:read"))) -> PassportWebshopView | PassportStaffView:
    if view == "staff":
        require_scope(repo.principal, "scans:read")
    record = passports.read(repo, passport_id, purpose=f"{view} view", webshop_use=view == "webshop")
    if view == "staff":
        return staff_view(repo, record, str(request.base_url))
    return webshop_view(repo, record)


@router.get("/{passport_id}/points/{side}", summary="One foot's points as PLY (foot frame, mm)",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                 "format": "binary"}}},
                             "description": "binary little-endian PLY, float32 x y z in mm"}})
def get_points(passport_id: PassportId, side: Literal["left", "right"],
               repo: Repository = Depends(access("scans:read"))) -> Response:
    record = passports.read(repo, passport_id, purpose=f"{side} points", webshop_use=False)
    return Response(ply_bytes(points_from_blob(getattr(record, f"{side}_points"))),
                    media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{side}.ply"'})


@router.get("/{passport_id}/pressure", response_model=PressureMap,
            summary="The standing pressure map of a kiosk scan (staff: needs scans:read too): mean pressure per sensel "
                    "(kPa) and centre-of-pressure paths in the plate frame (mm); an uploaded passport has none (404)")
def get_pressure_map(passport_id: PassportId, repo: Repository = Depends(access("passports:read"))) -> PressureMap:
    require_scope(repo.principal, "scans:read")
    return passports.pressure_map(repo, passports.read(repo, passport_id, purpose="pressure map", webshop_use=False))


@router.put("/{passport_id}", response_model=PassportSummary,
            summary="Rescan: replace the passport's scan (same id); its fit results are dropped",
            responses={409: {"description": "no scan-storage consent"}})
def rescan(passport_id: PassportId, passport: UploadFile = File(description="passport.json"),
           left: UploadFile = File(description="left.ply"), right: UploadFile = File(description="right.ply"),
           repo: Repository = Depends(access("scans:write"))) -> PassportSummary:
    record = passports.read(repo, passport_id, purpose="rescan", webshop_use=False)
    upload = parse_upload(passport.file.read(), {side: f.file.read() for side, f in zip(SIDES, (left, right))})
    return passport_summary(passports.replace(repo, record, upload))


@router.delete("/{passport_id}", response_model=ErasureOut,
               summary="Erase the passport with its fit results and feedback")
def erase_passport(passport_id: PassportId, repo: Repository = Depends(access("passports:erase"))) -> ErasureOut:
    return ErasureOut(deleted=dict(passports.erase(repo, passports.get(repo, passport_id))))


@router.post("/{passport_id}/feedback", status_code=201, response_model=FeedbackOut,
             summary="Record what happened with a size of a shoe: recommended, tried (kept, or where it was wrong), "
                     "chosen, bought, returned or exchanged (with a reason), kept past the return window")
def add_feedback(passport_id: PassportId, body: FeedbackIn,
                 repo: Repository = Depends(access("feedback:write"))) -> FeedbackOut:
    record = passports.read(repo, passport_id, purpose="feedback")
    return feedback.add(repo, record, body)


@router.get("/{passport_id}/feedback", response_model=list[FeedbackOut],
            summary="The passport's feedback events, in the order they happened")
def list_feedback(passport_id: PassportId, repo: Repository = Depends(access("passports:read"))) -> list[FeedbackOut]:
    record = passports.read(repo, passport_id, purpose="feedback list")
    return feedback.of_passport(repo, record)
