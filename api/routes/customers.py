"""Customers by loyalty id, their consent, their passports (list, upload), export, erasure and audit trail."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile
from pydantic import Field

from api.access import access
from api.models import Customer
from api.passport_upload import parse_upload
from api.repository import Repository, consents, customers, passports
from api.routes.views import passport_summary
from api.schemas import (
    AuditEntryOut,
    ConsentChange,
    ConsentIn,
    ConsentOut,
    ConsentState,
    CustomerIn,
    CustomerOut,
    ErasureOut,
    PassportSummary,
)

router = APIRouter(prefix="/customers", tags=["customers"])
LoyaltyPath = Annotated[str, Field(min_length=1, max_length=64)]


def customer_out(repo: Repository, customer: Customer) -> CustomerOut:
    return CustomerOut(loyalty_id=customer.loyalty_id, created_at=customer.created_at,
                       consent=ConsentState(**consents.in_force(repo, customer.id)),
                       passports=passports.count_of(repo, customer))


@router.post("", status_code=201, response_model=CustomerOut, summary="Create a customer by loyalty id",
             responses={409: {"description": "the loyalty id exists already"}})
def create_customer(body: CustomerIn, repo: Repository = Depends(access("customers:write"))) -> CustomerOut:
    return customer_out(repo, customers.create(repo, body.loyalty_id))


@router.get("/{loyalty_id}", response_model=CustomerOut, summary="A customer: consent in force, passport count")
def get_customer(loyalty_id: LoyaltyPath, repo: Repository = Depends(access("passports:read"))) -> CustomerOut:
    return customer_out(repo, customers.get(repo, loyalty_id, purpose="get customer"))


@router.post("/{loyalty_id}/consents", status_code=201, response_model=ConsentChange,
             summary="Give or withdraw consent (scan_storage, webshop, marketing); the source recorded is the key's "
                     "(kiosk or webshop). Withdrawn scan storage erases the passports at once for a key with "
                     "passports:erase, else at the next privacy purge")
def record_consent(loyalty_id: LoyaltyPath, body: ConsentIn,
                   repo: Repository = Depends(access("customers:write"))) -> ConsentChange:
    consent, erased = customers.record_consent(repo, customers.get(repo, loyalty_id), body)
    return ConsentChange(consent=ConsentOut.model_validate(consent, from_attributes=True), erased_passports=erased)


@router.get("/{loyalty_id}/consents", response_model=list[ConsentOut], summary="The consent history, oldest first")
def consent_history(loyalty_id: LoyaltyPath, repo: Repository = Depends(access("passports:read"))) -> list[ConsentOut]:
    customer = customers.get(repo, loyalty_id, purpose="consent history")
    return [ConsentOut.model_validate(c, from_attributes=True) for c in consents.history(repo, customer)]


@router.get("/{loyalty_id}/passports", response_model=list[PassportSummary],
            summary="The customer's passports, newest first")
def list_passports(loyalty_id: LoyaltyPath,
                   repo: Repository = Depends(access("passports:read"))) -> list[PassportSummary]:
    customer = customers.get(repo, loyalty_id, purpose="list passports")
    return [passport_summary(p) for p in passports.listing(repo, customer)]


@router.post("/{loyalty_id}/passports", status_code=201, response_model=PassportSummary,
             summary="Upload a passport from elsewhere: passport.json + left.ply + right.ply",
             responses={409: {"description": "no scan-storage consent"}})
def upload_passport(loyalty_id: LoyaltyPath, passport: UploadFile = File(description="passport.json"),
                    left: UploadFile = File(description="left.ply: the left foot's points, foot frame, mm"),
                    right: UploadFile = File(description="right.ply: the right foot's points, foot frame, mm"),
                    repo: Repository = Depends(access("scans:write"))) -> PassportSummary:
    customer = customers.get(repo, loyalty_id)
    upload = parse_upload(passport.file.read(), {"left": left.file.read(), "right": right.file.read()})
    return passport_summary(passports.add(repo, customer, upload, source="upload"))


@router.get("/{loyalty_id}/export", summary="Everything about the customer: a zip of JSON and PLY",
            response_class=Response,
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "customer.json and passports/<id>/{passport.json,left.ply,right.ply}"}})
def export_customer(loyalty_id: LoyaltyPath, repo: Repository = Depends(access("passports:export"))) -> Response:
    archive = customers.export(repo, customers.get(repo, loyalty_id))
    return Response(archive, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="customer-{loyalty_id}.zip"'})


@router.delete("/{loyalty_id}", response_model=ErasureOut,
               summary="Erase the customer with passports, fit results, feedback and consent records")
def erase_customer(loyalty_id: LoyaltyPath, repo: Repository = Depends(access("passports:erase"))) -> ErasureOut:
    return ErasureOut(deleted=dict(customers.erase(repo, customers.get(repo, loyalty_id))))


@router.get("/{loyalty_id}/audit", response_model=list[AuditEntryOut],
            summary="The customer's audit trail, oldest first: who created, scanned, read, exported or erased them "
                    "or their passports, and who was refused (tenant keys with audit:read)")
def customer_audit(loyalty_id: LoyaltyPath,
                   repo: Repository = Depends(access("audit:read"))) -> list[AuditEntryOut]:
    entries = customers.audit_trail(repo, customers.get(repo, loyalty_id))
    return [AuditEntryOut.model_validate(e, from_attributes=True) for e in entries]
