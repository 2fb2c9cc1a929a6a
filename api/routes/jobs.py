"""Batch jobs of every kind (api/mailing.py runs them): list, follow and cancel them; and the tenant's fit index
(api/fit_index.py): its size, and a job bringing it up to date."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.access import access
from api.mailing import MailingRunner
from api.repository import Repository, mailings
from api.repository import fit_index as stored
from api.routes.mailing import JobId, MailingJobOut, job_out, mailing_runner

router = APIRouter(tags=["batch jobs"])
CONFLICT = {409: {"description": "the tenant has as many jobs waiting as the service queues"}}


class FitIndexOut(BaseModel):
    chunks: int = Field(description="chunks of passports (the unit of batch work and storage)")
    passports: int = Field(description="passports indexed (new ones are indexed by the next refresh or mailing)")
    stored_bytes: int = Field(description="bytes of the index: descriptors and packed outcomes")


@router.get("/jobs", response_model=list[MailingJobOut], summary="The tenant's newest batch jobs, newest first")
def list_jobs(limit: Annotated[int, Query(ge=1, le=200)] = 50,
              repo: Repository = Depends(access("batch:run"))) -> list[MailingJobOut]:
    return [job_out(job) for job in mailings.recent(repo, limit)]


@router.get("/jobs/{job_id}", response_model=MailingJobOut, summary="A batch job's state and progress")
def get_job(job_id: JobId, repo: Repository = Depends(access("batch:run"))) -> MailingJobOut:
    return job_out(mailings.get(repo, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=MailingJobOut,
             summary="Cancel a batch job: a queued one at once, a running one at its next step; it keeps no output",
             responses={409: {"description": "the job has finished already"}})
def cancel_job(job_id: JobId, repo: Repository = Depends(access("batch:run"))) -> MailingJobOut:
    return job_out(mailings.cancel(repo, mailings.get(repo, job_id)))


@router.get("/fit-index", response_model=FitIndexOut, summary="The size of the tenant's fit index")
def fit_index_size(repo: Repository = Depends(access("batch:run"))) -> FitIndexOut:
    chunks, passports, size = stored.size_of(repo)
    return FitIndexOut(chunks=chunks, passports=passports, stored_bytes=size)


@router.post("/fit-index/refresh", status_code=202, response_model=MailingJobOut, responses=CONFLICT,
             summary="Start a job bringing the tenant's fit index up to date (new and rescanned passports, new and "
                     "changed products); mailings do it first too")
def refresh_fit_index(repo: Repository = Depends(access("batch:run")),
                      runner: MailingRunner = Depends(mailing_runner)) -> MailingJobOut:
    return job_out(runner.submit(repo, [], kind="fit-index"))
