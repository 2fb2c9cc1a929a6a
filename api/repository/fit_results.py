"""The fit answers given for a passport, kept for its webshop view: the newest per kind and request, and of each
kind at most FIT_RESULTS_KEPT (a webshop asking with ever new filters must not grow the passport without end)."""

from __future__ import annotations

import json

from sqlalchemy import delete
from sqlmodel import select

from api.models import FitResult, PassportRecord
from api.repository import Repository

FIT_RESULTS_KEPT = 5  # per passport and kind of answer (recommendations, size, tryon)


def of_passport(repo: Repository, record: PassportRecord) -> list[FitResult]:
    """Newest first."""
    return list(repo.session.exec(select(FitResult).where(FitResult.passport_id == record.id)
                                  .order_by(FitResult.id.desc())))


def save(repo: Repository, record: PassportRecord, kind: str, request: dict, result_json: str) -> None:
    """Keep the answer, committed with the audit entry of the passport's read."""
    request_json = json.dumps(request, sort_keys=True)
    same_kind = (FitResult.passport_id == record.id, FitResult.kind == kind)
    others = (*same_kind, FitResult.request_json != request_json)
    kept = select(FitResult.id).where(*others).order_by(FitResult.id.desc()).limit(FIT_RESULTS_KEPT - 1)
    repo.session.exec(delete(FitResult).where(*same_kind, FitResult.id.not_in(kept.scalar_subquery())))
    repo.session.add(FitResult(passport_id=record.id, kind=kind, request_json=request_json, result_json=result_json))
    repo.commit()
