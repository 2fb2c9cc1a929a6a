"""Mailing jobs (api/mailing.py): which customers each product fits, for customers with marketing consent."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.access import access
from api.mailing import MailingRunner
from api.models import MailingJob
from api.repository import Repository, mailings
from core.errors import Conflict

router = APIRouter(prefix="/mailings", tags=["mailing"])
JobId = Annotated[str, Field(min_length=1, max_length=32)]
MAX_PRODUCTS = 1000


class MailingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1, max_length=MAX_PRODUCTS, description="the products (shoe model ids, as recommendations show "
                                                           "them) of the mailing")


class MailingJobOut(BaseModel):
    """A batch job: a mailing, or a refresh of the fit index (kind)."""

    id: str
    kind: Literal["mailing", "fit-index"] = Field(description="a mailing, or a refresh of the tenant's fit index")
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    cancel_requested: bool = Field(description="asked to stop: it stops at its next step and keeps no output")
    model_ids: list[int] = Field(description="a mailing's products (empty for a fit index refresh)")
    progress: float = Field(ge=0, le=1, description="share of the job's work done")
    passports: int = Field(description="customers matched: marketing consent in force and a passport")
    skipped: int = Field(description="customers left out: no marketing consent in force")
    error: str = Field(description="why a failed job failed")
    created_at: datetime
    finished_at: datetime | None


class ProductAudience(BaseModel):
    model_id: int
    customers: list[str] = Field(description="loyalty ids of the customers it fits")


class MailingResultsOut(BaseModel):
    job: MailingJobOut
    products: list[ProductAudience]


def mailing_runner(request: Request) -> MailingRunner:
    return request.app.state.mailing


def job_out(job: MailingJob) -> MailingJobOut:
    return MailingJobOut(id=job.id, kind=job.kind, state=job.state, cancel_requested=job.cancel_requested,
                         model_ids=json.loads(job.model_ids_json), progress=job.progress, passports=job.passports,
                         skipped=job.skipped, error=job.error, created_at=job.created_at,
                         finished_at=job.finished_at)


@router.post("", status_code=202, response_model=MailingJobOut,
             summary="Start a mailing job: for each product, the customers (with marketing consent) it fits",
             responses={409: {"description": "the tenant has as many jobs waiting as the service queues"}})
def start_mailing(body: MailingIn, repo: Repository = Depends(access("batch:run")),
                  runner: MailingRunner = Depends(mailing_runner)) -> MailingJobOut:
    return job_out(runner.submit(repo, body.model_ids))


@router.get("/{job_id}", response_model=MailingJobOut, summary="A mailing job's state and progress")
def get_mailing(job_id: JobId, repo: Repository = Depends(access("batch:run"))) -> MailingJobOut:
    return job_out(mailings.get(repo, job_id, "mailing"))


@router.get("/{job_id}/results", response_model=MailingResultsOut,
            summary="A finished job's output: per product the loyalty ids it fits (customers who withdrew marketing "
                    "consent since are left out)",
            responses={409: {"description": "the job has not finished"}})
def mailing_results(job_id: JobId, repo: Repository = Depends(access("batch:run"))) -> MailingResultsOut:
    job = mailings.get(repo, job_id, "mailing")
    if job.state != "done":
        raise Conflict(f"mailing job {job_id} is {job.state}"
                       + (f" ({job.error})" if job.error else "") + ": results exist once it is done; poll "
                       f"GET /v1/mailings/{job_id}")
    fits = mailings.results(repo, job)
    return MailingResultsOut(job=job_out(job), products=[ProductAudience(model_id=m, customers=c)
                                                         for m, c in fits.items()])
