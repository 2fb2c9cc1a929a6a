"""What the product learned and what it brings: the learning job and its versions (the operator's: a pooled state
is every tenant's), the catalogue's data quality as the feedback sees it (the operator's), and each tenant's KPIs of
the advice (api/learning.py, api/kpis.py; docs/learning.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.access import access
from api.auth import OPERATOR_SCOPE
from api.kpis import KPI_GROUPS, KPI_PERIODS, kpis
from api.learning import Learning, learning_service
from api.repository import Repository
from api.schemas import KpisOut, LearningRunIn, LearningRunOut, LearningStatusOut, QualityOut, RollbackIn, RollbackOut

router = APIRouter(tags=["learning"])
TenantQuery = Annotated[str | None, Query(min_length=1, max_length=120,
                                          description="only with learning per tenant (learning.pooled false): whose "
                                                      "learned state")]


@router.get("/learning", response_model=LearningStatusOut,
            summary="Operator only: the learned versions (newest first) with how each was judged, and the one in use")
def learning_status(_repo: Repository = Depends(access(OPERATOR_SCOPE)),
                    learning: Learning = Depends(learning_service)) -> LearningStatusOut:
    return learning.status()


@router.post("/learning/runs", response_model=list[LearningRunOut],
             summary="Operator only: learn now from the feedback, judge the new state against the one in use on the "
                     "most recent feedback, adopt it if better (takes seconds to minutes)",
             responses={409: {"description": "a learning run is in progress"}})
def run_learning(body: LearningRunIn | None = None, repo: Repository = Depends(access(OPERATOR_SCOPE)),
                 learning: Learning = Depends(learning_service)) -> list[LearningRunOut]:
    return learning.run(body.tenant if body else None, actor=repo.principal.key_id)


@router.post("/learning/rollback", response_model=RollbackOut,
             summary="Operator only: take an adopted learned version out of use; the one adopted before it is used "
                     "again (or none: the geometry's advice)",
             responses={409: {"description": "the version is not adopted"}})
def roll_back_learning(body: RollbackIn, _repo: Repository = Depends(access(OPERATOR_SCOPE)),
                       learning: Learning = Depends(learning_service)) -> RollbackOut:
    return learning.roll_back(body.version, body.tenant)


@router.get("/catalog/quality", response_model=QualityOut,
            summary="Operator only: the shoes whose feedback disagrees with their interior (a scan or grading error), "
                    "strongest evidence first, saying which measure and which way")
def catalogue_quality(tenant: TenantQuery = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      _repo: Repository = Depends(access(OPERATOR_SCOPE)),
                      learning: Learning = Depends(learning_service)) -> QualityOut:
    return learning.quality(tenant, limit)


@router.get("/kpis", response_model=KpisOut,
            summary="Your KPIs of the advice over a window: first size kept in store visits, returns for size and "
                    "exchanges per 100 webshop purchases; by category, brand, store or A/B arm; per day, week or "
                    "month")
def tenant_kpis(since: Annotated[datetime | None, Query(description="from (default: your first event)")] = None,
                until: Annotated[datetime | None, Query(description="to, not included (default: now)")] = None,
                by: Literal[KPI_GROUPS] | None = None, per: Literal[KPI_PERIODS] | None = None,
                repo: Repository = Depends(access("kpis:read"))) -> KpisOut:
    return kpis(repo, since, until, by, per)
