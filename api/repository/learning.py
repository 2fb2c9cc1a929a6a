"""What the learner learned, stored: the versions of the learned state (with how each was judged, which is in use,
rollback), each customer's learned preference per version, and the lease one learning job holds at a time.

A learned state is product knowledge, pooled over every tenant (`scope` None) unless the setting learning.pooled
is off (`scope` a tenant id): its functions take a plain Session and name the scope, as no tenant's Repository
owns a pooled state. A customer's preference is personal data: read and written through the tenant's Repository
only (its table is one of TENANT_OWNED), exported and erased with the customer (api/privacy.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, update
from sqlmodel import Session, select

from api.models import CustomerPreferenceRecord, JobLease, LearnedStateRecord, utc_now
from api.repository import Repository
from core.errors import Conflict, NotFound
from fitcore.fit.learning import PREFERENCES, CustomerPreference, LearnedState
from shoe_db import versions as data_versions

PREFERENCE_VERSIONS_KEPT = 3  # customers' preferences are kept for the newest adopted versions (rollbacks) only
_PREFERENCE_COLUMNS = tuple(f"{name}_mm" for name in PREFERENCES)
_PREFERENCE_SD_COLUMNS = tuple(f"{name}_sd_mm" for name in PREFERENCES)


# --- the versions -------------------------------------------------------------------------------------------


def _in_scope(scope: int | None):
    return LearnedStateRecord.tenant_id.is_(None) if scope is None else LearnedStateRecord.tenant_id == scope


def in_use(session: Session, scope: int | None) -> LearnedStateRecord | None:
    """The version in use for the scope: the one adopted last and not rolled back (None: none yet)."""
    return session.exec(_adopted(scope)).first()


def adopted_ids(session: Session, scope: int | None, count: int) -> list[int]:
    """The ids of the scope's `count` versions adopted last and not rolled back, the one in use first."""
    return [record.id for record in session.exec(_adopted(scope).limit(count))]


def _adopted(scope: int | None):
    return (select(LearnedStateRecord).where(_in_scope(scope), LearnedStateRecord.status == "adopted")
            .order_by(LearnedStateRecord.adopted_at.desc(), LearnedStateRecord.id.desc()))


def found(session: Session, scope: int | None, version: str) -> LearnedStateRecord | None:
    """The scope's stored row of this version (the newest, should it have been learned twice)."""
    return session.exec(select(LearnedStateRecord)
                        .where(_in_scope(scope), LearnedStateRecord.version == version)
                        .order_by(LearnedStateRecord.id.desc())).first()


def versions(session: Session, scope: int | None, limit: int = 50) -> list[LearnedStateRecord]:
    """The scope's versions, newest first."""
    return list(session.exec(select(LearnedStateRecord).where(_in_scope(scope))
                             .order_by(LearnedStateRecord.id.desc()).limit(limit)))


def add(session: Session, record: LearnedStateRecord) -> LearnedStateRecord:
    session.add(record)
    session.commit()
    session.refresh(record)
    return record


def judged(session: Session, record: LearnedStateRecord, adopt: bool) -> LearnedStateRecord:
    """A candidate judged: adopted (in use from now) or rejected."""
    record.status = "adopted" if adopt else "rejected"
    record.adopted_at = utc_now() if adopt else None
    if adopt:
        data_versions.count_write(session.connection(), data_versions.learning(record.tenant_id))
    return add(session, record)


def roll_back(session: Session, scope: int | None, version: str) -> tuple[LearnedStateRecord,
                                                                         LearnedStateRecord | None]:
    """Take an adopted version out of use for good (a later run that learns it again does not adopt it); the
    version adopted before it is in use again, if any. (the version rolled back, the one now in use)."""
    record = found(session, scope, version)
    if record is None:
        raise NotFound(f"no learned state {version!r}: `footfit learn --status` (GET /v1/learning) lists them")
    if record.status != "adopted":
        raise Conflict(f"learned state {version} is {record.status.replace('_', ' ')}, not adopted: only an "
                       f"adopted version can be rolled back")
    record.status = "rolled_back"
    data_versions.count_write(session.connection(), data_versions.learning(scope))
    add(session, record)
    return record, in_use(session, scope)


def state_of(record: LearnedStateRecord) -> LearnedState:
    """The stored state, checked against its version (LearnedState.from_json)."""
    return LearnedState.from_json(record.state_json)


# --- customers' preferences (personal: through the tenant's Repository) --------------------------------------


def save_preferences(repo: Repository, state: LearnedStateRecord, learned: Iterable[CustomerPreference]) -> int:
    """Store the tenant's customers' preferences learned with `state` (the caller gives only its customers'; the
    caller commits); how many."""
    rows = [CustomerPreferenceRecord(tenant_id=repo.tenant_id, customer_id=p.customer, state_id=state.id,
                                     events=p.events, **dict(zip(_PREFERENCE_COLUMNS, p.mm)),
                                     **dict(zip(_PREFERENCE_SD_COLUMNS, p.sd_mm)))
             for p in learned]
    repo.session.add_all(rows)
    return len(rows)


def keep_preferences_of(repo: Repository, state_ids: list[int]) -> int:
    """Erase the tenant's customers' preferences of every state but these (the caller commits); rows erased."""
    return repo.session.exec(delete(CustomerPreferenceRecord)
                             .where(CustomerPreferenceRecord.state_id.not_in(state_ids))).rowcount


def preference(repo: Repository, customer_id: str, state_id: int) -> CustomerPreference | None:
    """The customer's preference learned with that state (None: a new customer to it)."""
    row = repo.session.exec(select(CustomerPreferenceRecord).where(CustomerPreferenceRecord.state_id == state_id,
                                                                   CustomerPreferenceRecord.customer_id == customer_id)
                            ).first()
    return None if row is None else _preference(row)


def preferences(repo: Repository, state_id: int) -> list[CustomerPreference]:
    """The tenant's customers' preferences learned with that state."""
    return [_preference(row) for row in repo.session.exec(
        select(CustomerPreferenceRecord).where(CustomerPreferenceRecord.state_id == state_id)
        .order_by(CustomerPreferenceRecord.customer_id))]


def _preference(row: CustomerPreferenceRecord) -> CustomerPreference:
    return CustomerPreference(customer=row.customer_id, events=row.events,
                              mm=tuple(getattr(row, c) for c in _PREFERENCE_COLUMNS),
                              sd_mm=tuple(getattr(row, c) for c in _PREFERENCE_SD_COLUMNS))


# --- one job at a time ----------------------------------------------------------------------------------------


def take_lease(engine: Engine, name: str, holder: str, lasting: timedelta) -> bool:
    """Take the job's lease if nobody holds it (or the holder's has run out: a process that died); one UPDATE, so
    two processes cannot both take it. True if taken."""
    now = utc_now()
    lease = JobLease.__table__
    with engine.begin() as conn:
        taken = conn.execute(update(lease).where(lease.c.name == name,
                                                 or_(lease.c.holder.is_(None), lease.c.expires_at < now))
                             .values(holder=holder, expires_at=now + lasting)).rowcount
    return taken == 1


def renew_lease(engine: Engine, name: str, holder: str, lasting: timedelta) -> bool:
    """Extend the holder's lease from now; False if it is no longer the holder's (it ran out and another took it)."""
    lease = JobLease.__table__
    with engine.begin() as conn:
        return conn.execute(update(lease).where(lease.c.name == name, lease.c.holder == holder)
                            .values(expires_at=utc_now() + lasting)).rowcount == 1


def end_lease(engine: Engine, name: str, holder: str) -> None:
    """Give the lease back and note that the job finished now."""
    lease = JobLease.__table__
    with engine.begin() as conn:
        conn.execute(update(lease).where(lease.c.name == name, lease.c.holder == holder)
                     .values(holder=None, expires_at=None, finished_at=utc_now()))


def last_finished(session: Session, name: str) -> datetime | None:
    """When the job last finished (None: never)."""
    row = session.get(JobLease, name)
    return None if row is None else row.finished_at
