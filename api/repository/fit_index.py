"""The tenant's fit index (api/fit_index.py keeps it): chunks of passports and, per chunk and product, the packed
outcomes (fitcore.fit.fit_index), read through the tenant's scope. The chunks are tenant-owned; their columns are
reached through them. Rows are written by api/fit_index_rows.py once a chunk was read here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import select

from api.fit_index_rows import Chunk, chunk_of, remove_chunk
from api.models import FitIndexChunk, FitIndexColumn, PassportRecord
from api.repository import Repository


@dataclass(frozen=True)
class LivePassport:
    id: str
    customer_id: str
    updated_at: datetime


def live_passports(repo: Repository) -> list[LivePassport]:
    """Every passport of the tenant, with its customer and when it was last (re)scanned."""
    rows = repo.session.exec(select(PassportRecord.id, PassportRecord.customer_id, PassportRecord.updated_at))
    return [LivePassport(*row) for row in rows]


def chunks(repo: Repository, ids: list[int] | None = None) -> list[Chunk]:
    """The tenant's chunks (those of `ids`, else all), oldest first."""
    query = select(FitIndexChunk).order_by(FitIndexChunk.id)
    if ids is not None:
        query = query.where(FitIndexChunk.id.in_(ids))
    rows = repo.session.exec(query)
    return [chunk_of(row) for row in rows]


def clear(repo: Repository) -> None:
    """Drop the tenant's whole index (the next refresh matches every passport from its points)."""
    for chunk_id in repo.session.exec(select(FitIndexChunk.id)).all():
        remove_chunk(repo.session, chunk_id)
    repo.session.commit()


def column_versions(repo: Repository, chunk_id: int) -> dict[int, str]:
    """Per model the version of the chunk's column."""
    if not _owned(repo, chunk_id):
        return {}
    return dict(repo.session.exec(select(FitIndexColumn.model_id, FitIndexColumn.version)
                                  .where(FitIndexColumn.chunk_id == chunk_id)).all())


def remove_columns(repo: Repository, chunk_id: int, model_ids: Iterable[int]) -> None:
    repo.session.execute(delete(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk_id,
                                                      FitIndexColumn.model_id.in_(list(model_ids))))


def fits_bits(repo: Repository, model_ids: list[int]) -> Iterable[tuple[int, int, list[str], bytes]]:
    """Per chunk of the tenant and product among `model_ids`: (chunk id, model id, the chunk's passport ids, the
    product's fits bits): what a mailing reads."""
    for chunk_id, slots_json in repo.session.exec(select(FitIndexChunk.id, FitIndexChunk.passport_ids)
                                                  .order_by(FitIndexChunk.id)).all():
        passport_ids = json.loads(slots_json)
        for model_id, bits in repo.session.exec(select(FitIndexColumn.model_id, FitIndexColumn.fits)
                                                .where(FitIndexColumn.chunk_id == chunk_id,
                                                       FitIndexColumn.model_id.in_(model_ids))):
            yield chunk_id, model_id, passport_ids, bits


def size_of(repo: Repository) -> tuple[int, int, int]:
    """(chunks, passports, bytes of columns and descriptors) of the tenant's index."""
    chunks_, slots, descriptor_bytes = repo.session.exec(
        select(func.count(), func.coalesce(func.sum(FitIndexChunk.slots), 0),
               func.coalesce(func.sum(func.length(FitIndexChunk.descriptors)), 0))).one()
    column_bytes = repo.session.exec(
        select(func.coalesce(func.sum(func.length(FitIndexColumn.fits) + func.length(FitIndexColumn.sizes)
                                      + func.length(FitIndexColumn.scores)), 0))
        .where(FitIndexColumn.chunk_id.in_(select(FitIndexChunk.id)))).one()
    return int(chunks_), int(slots), int(descriptor_bytes) + int(column_bytes)


def _owned(repo: Repository, chunk_id: int) -> bool:
    """The chunk is the tenant's (columns carry no tenant: every write reaches them through an owned chunk)."""
    return repo.session.exec(select(FitIndexChunk.id).where(FitIndexChunk.id == chunk_id)).first() is not None
