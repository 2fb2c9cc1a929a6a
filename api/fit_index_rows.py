"""The fit index's rows written through a bare session: the chunks (tenant-owned) and their columns. Shared by the
tenant's repository (api/repository/fit_index.py, api/fit_index.py), which reaches a chunk through the tenant's
scope first, and by erasure (api/privacy.py), which reaches chunks by a passport id, unique over every tenant."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete
from sqlmodel import Session, select

from api.models import FitIndexChunk, FitIndexColumn
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


def chunk_of(row: FitIndexChunk) -> Chunk:
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
        chunk = chunk_of(row)
        keep = [i for i, p in enumerate(chunk.passport_ids) if p not in erased]
        dropped += len(chunk.passport_ids) - len(keep)
        rewrite(session, chunk, keep)
    return dropped


def put_columns(session: Session, chunk_id: int, columns: list[IndexColumn], versions: dict[int, str]) -> None:
    """Store (replace) the chunk's columns of these products, each with its version (the caller commits)."""
    models = [c.model_id for c in columns]
    session.execute(delete(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk_id,
                                                 FitIndexColumn.model_id.in_(models)))
    session.add_all([FitIndexColumn(chunk_id=chunk_id, model_id=c.model_id, version=versions[c.model_id],
                                         fits=c.fits, sizes=c.sizes, scores=c.scores) for c in columns])
