"""The tenant's fit index (api/fit_index.py keeps it): chunks of passports and, per chunk and product, the packed
outcomes (fitcore.fit.fit_index). The chunks are tenant-owned; their columns are reached through them: the
functions taking a bare session write a chunk already read through the tenant's repository, or (erasure) reach
chunks by a passport id, which is unique."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func
from sqlmodel import Session, select

from api.models import FitIndexChunk, FitIndexColumn, PassportRecord
from api.repository import Repository
from fitcore.fit.fit_index import IndexColumn, bits_blob, bits_from_blob, descriptors_blob, descriptors_from_blob


@dataclass(frozen=True)
class Chunk:
    """A chunk as read: its passports in slot order, their descriptors and arms, and what it was matched with."""

    id: int
    tenant_id: int
    passport_ids: list[str]
    descriptors: np.ndarray  # (slots, DESCRIPTOR_FIELDS) float32
    learning_arm: np.ndarray  # (slots,) bool
    decision: str
    as_of: datetime


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
    return [_chunk(row) for row in rows]


def _chunk(row: FitIndexChunk) -> Chunk:
    return Chunk(row.id, row.tenant_id, json.loads(row.passport_ids), descriptors_from_blob(row.descriptors, row.slots),
                 bits_from_blob(row.learning_arm, row.slots), row.decision, row.as_of)


def add_chunk(session: Session, tenant_id: int, passport_ids: list[str], descriptors: np.ndarray,
              learning_arm: np.ndarray, decision: str, as_of: datetime) -> Chunk:
    """A new chunk, without columns yet (the caller commits)."""
    row = FitIndexChunk(tenant_id=tenant_id, slots=len(passport_ids), passport_ids=json.dumps(passport_ids),
                        descriptors=descriptors_blob(descriptors), learning_arm=bits_blob(learning_arm),
                        decision=decision, as_of=as_of)
    session.add(row)
    session.flush()
    return Chunk(row.id, tenant_id, passport_ids, descriptors, np.asarray(learning_arm, dtype=bool), decision, as_of)


def remove_chunk(session: Session, chunk_id: int) -> None:
    """A chunk and its columns (the caller commits; the chunk was read through the tenant's repository)."""
    session.execute(delete(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk_id))
    session.execute(delete(FitIndexChunk).where(FitIndexChunk.id == chunk_id))


def rewrite(session: Session, chunk: Chunk, keep: list[int]) -> Chunk | None:
    """The chunk replaced by one of only the slots `keep`, its columns cut to them (nothing matched again); None
    if none are kept (the caller commits)."""
    kept_columns = [(IndexColumn(c.model_id, c.fits, c.sizes, c.scores), c.version)
                    for c in session.exec(select(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk.id))]
    remove_chunk(session, chunk.id)
    if not keep:
        return None
    new = add_chunk(session, chunk.tenant_id, [chunk.passport_ids[i] for i in keep], chunk.descriptors[keep],
                    chunk.learning_arm[keep], chunk.decision, chunk.as_of)
    slots = np.asarray(keep, dtype=np.int64)
    put_columns(session, new.id, [c.take(slots, len(chunk.passport_ids)) for c, _ in kept_columns],
                {c.model_id: version for c, version in kept_columns})
    return new


def drop_passports(session: Session, passport_ids: list[str]) -> int:
    """Take erased passports out of the index at once: each chunk holding one is rewritten without it. Returns
    the slots dropped (api/privacy.py; the caller commits)."""
    erased, dropped = set(passport_ids), 0
    holding = set()
    for passport_id in erased:  # ids are unique random hex: a text match finds exactly the chunks holding one
        holding.update(session.exec(select(FitIndexChunk.id)
                                    .where(FitIndexChunk.passport_ids.contains(json.dumps(passport_id)))))
    for row in session.exec(select(FitIndexChunk).where(FitIndexChunk.id.in_(holding))).all():
        chunk = _chunk(row)
        keep = [i for i, p in enumerate(chunk.passport_ids) if p not in erased]
        dropped += len(chunk.passport_ids) - len(keep)
        rewrite(session, chunk, keep)
    return dropped


def column_versions(repo: Repository, chunk_id: int) -> dict[int, str]:
    """Per model the version of the chunk's column."""
    if not _owned(repo, chunk_id):
        return {}
    return dict(repo.session.exec(select(FitIndexColumn.model_id, FitIndexColumn.version)
                                  .where(FitIndexColumn.chunk_id == chunk_id)).all())


def put_columns(session: Session, chunk_id: int, columns: list[IndexColumn], versions: dict[int, str]) -> None:
    """Store (replace) the chunk's columns of these products, each with its version (the caller commits)."""
    models = [c.model_id for c in columns]
    session.execute(delete(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk_id,
                                                 FitIndexColumn.model_id.in_(models)))
    session.add_all([FitIndexColumn(chunk_id=chunk_id, model_id=c.model_id, version=versions[c.model_id],
                                         fits=c.fits, sizes=c.sizes, scores=c.scores) for c in columns])


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
