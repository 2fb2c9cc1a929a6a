"""The tenant's mailing jobs (api/mailing.py runs them): the job, its audience (customers with marketing consent
in force) and its output, which names customers and so is read audited; and the queue every service process takes
jobs from (across tenants: the runner's, not a request's), each job under a lease (api/worker.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from datetime import datetime, timezone

from sqlalchemy import delete, func, insert, or_, update
from sqlmodel import Session, select

from api.models import Customer, FitIndexChunk, MailingJob, MailingMatch, PassportRecord, as_utc, utc_now
from api.repository import Repository, consents
from core.errors import Conflict, NotFound

UNFINISHED = ("queued", "running")
ROWS_PER_STATEMENT = 10_000  # output rows inserted by one statement


def create(repo: Repository, model_ids: list[int], kind: str = "mailing") -> MailingJob:
    job = MailingJob(tenant_id=repo.tenant_id, created_by=repo.principal.key_id, kind=kind, state="queued",
                     model_ids_json=json.dumps(model_ids))
    return save(repo, job)


def get(repo: Repository, job_id: str, kind: str | None = None) -> MailingJob:
    """The tenant's job (of this kind, if given)."""
    job = repo.session.exec(select(MailingJob).where(MailingJob.id == job_id)).first()
    if job is None or (kind is not None and job.kind != kind):
        what = {"mailing": "mailing job", "fit-index": "fit index job"}.get(kind, "batch job")
        raise NotFound(f"no {what} {job_id!r}: GET /v1/jobs lists your tenant's batch jobs")
    return job


def recent(repo: Repository, limit: int) -> list[MailingJob]:
    """The tenant's newest jobs, newest first."""
    return list(repo.session.exec(select(MailingJob).order_by(MailingJob.created_at.desc()).limit(limit)))


def cancel(repo: Repository, job: MailingJob) -> MailingJob:
    """A queued job is cancelled at once; a running one is asked to stop (its process stops at its next step and
    keeps nothing of the job's output). A finished job cannot be (Conflict)."""
    if job.state not in UNFINISHED:
        raise Conflict(f"job {job.id} is {job.state}: only a queued or running job can be cancelled")
    taken = repo.session.execute(update(MailingJob).where(MailingJob.id == job.id, MailingJob.state == "queued")
                                 .values(state="cancelled", error="cancelled on request", finished_at=utc_now()))
    if taken.rowcount == 0:  # running (or taken meanwhile): its process stops it
        repo.session.execute(update(MailingJob).where(MailingJob.id == job.id, MailingJob.state.in_(UNFINISHED))
                             .values(cancel_requested=True))
    repo.session.commit()
    repo.session.refresh(job)
    return job


def waiting(repo: Repository) -> int:
    """The tenant's jobs not yet taken by a process."""
    return repo.session.exec(select(func.count()).select_from(MailingJob).where(MailingJob.state == "queued")).one()


def save(repo: Repository, job: MailingJob) -> MailingJob:
    repo.session.add(job)
    repo.session.commit()
    repo.session.refresh(job)
    return job


def audience(repo: Repository) -> tuple[list[str], int]:
    """The newest passport of every customer whose marketing consent is in force, and how many customers are left
    out for lacking that consent (never given, or withdrawn)."""
    consenting = consents.marketing_consenting(repo)
    customers = repo.session.exec(select(func.count()).select_from(Customer)).one()
    newest: dict[str, str] = {}
    for passport_id, customer_id in repo.session.exec(
            select(PassportRecord.id, PassportRecord.customer_id)
            .order_by(PassportRecord.created_at.desc(), PassportRecord.id)):
        if customer_id in consenting:
            newest.setdefault(customer_id, passport_id)
    return sorted(newest.values()), customers - len(consenting)


def add_matches(repo: Repository, job: MailingJob, fits: Iterable[tuple[int, Sequence[str]]]) -> None:
    """Per product (model id), the passports whose customers it fits; passports erased meanwhile are left out (the
    tenant's passports are read once: a field-scale mailing names more of them than one statement may bind).
    Written ROWS_PER_STATEMENT rows a statement. The caller commits, with the job's progress."""
    live = set(repo.session.exec(select(PassportRecord.id)))
    for model_id, passport_ids in fits:
        rows = [{"job_id": job.id, "passport_id": p, "model_id": model_id} for p in passport_ids if p in live]
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            repo.session.execute(insert(MailingMatch), rows[start:start + ROWS_PER_STATEMENT])


def saved_by(repo: Repository, job: MailingJob, holder: str, lease_until: datetime) -> bool:
    """Commit the job's changes (and what else the session holds: its matches) if `holder` still holds its lease,
    renewing it; else roll back and say so (the lease ran out and another process took the job over)."""
    held = repo.session.execute(update(MailingJob).where(MailingJob.id == job.id, MailingJob.lease_holder == holder)
                                .values(lease_expires_at=lease_until)).rowcount == 1
    if not held:
        repo.session.rollback()
        return False
    repo.session.add(job)
    repo.session.commit()
    repo.session.refresh(job)
    return True


def renew(session: Session, job_id: str, holder: str, lease_until: datetime) -> bool:
    """Extend the holder's lease of a running job; False if it is no longer the holder's."""
    renewed = session.execute(update(MailingJob).where(MailingJob.id == job_id, MailingJob.lease_holder == holder,
                                                       MailingJob.state == "running")
                              .values(lease_expires_at=lease_until)).rowcount == 1
    session.commit()
    return renewed


def takeable(session: Session, now: datetime, limit: int = 100) -> list[MailingJob]:
    """Jobs a process may take, across tenants: queued ones and running ones whose lease has run out (their process
    died); the tenant whose latest turn began longest ago first (a tenant's first turn before all), then the oldest
    job."""
    jobs = session.exec(select(MailingJob).where(_takeable(now)).order_by(MailingJob.created_at).limit(limit)).all()
    tenants = {job.tenant_id for job in jobs}
    last_turn = dict(session.exec(select(MailingJob.tenant_id, func.max(MailingJob.started_at))
                                  .where(MailingJob.tenant_id.in_(tenants)).group_by(MailingJob.tenant_id)).all())
    never = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(jobs, key=lambda job: (as_utc(last_turn.get(job.tenant_id) or never), as_utc(job.created_at)))


def take(session: Session, job: MailingJob, holder: str, now: datetime, lease_until: datetime) -> bool:
    """Take the job for `holder` if it is still takeable (one UPDATE: of processes racing for it, one wins); a job
    taken over from a dead process loses the matches of its unfinished turn, in the same transaction."""
    taken = session.execute(update(MailingJob).where(MailingJob.id == job.id, _takeable(now))
                            .values(state="running", lease_holder=holder, lease_expires_at=lease_until,
                                    started_at=now, attempts=MailingJob.attempts + 1, progress=0.0)).rowcount == 1
    if taken:
        session.execute(delete(MailingMatch).where(MailingMatch.job_id == job.id))
    session.commit()
    return taken


def end_turn(session: Session, job_id: str, holder: str, state: str, error: str = "") -> None:
    """The holder's job is done, failed or cancelled: its lease ends; a job not done keeps no output."""
    ended = session.execute(update(MailingJob).where(MailingJob.id == job_id, MailingJob.lease_holder == holder)
                            .values(state=state, error=error[:500], finished_at=utc_now(), lease_holder=None,
                                    lease_expires_at=None)).rowcount == 1
    if ended and state != "done":
        session.execute(delete(MailingMatch).where(MailingMatch.job_id == job_id))
    session.commit()


def queue_fit_index_refreshes(session: Session, actor: str, queue_limit: int) -> list[int]:
    """After the shoes changed (a catalogue import): a fit index refresh queued for every tenant that keeps an index
    and has none waiting, room in its queue permitting (a full queue's tenant is refreshed by its next mailing);
    across tenants, as the operator's import is. Returns the tenants queued for."""
    indexed = set(session.exec(select(FitIndexChunk.tenant_id).distinct()))
    waiting = dict(session.exec(select(MailingJob.tenant_id, func.count()).where(MailingJob.state == "queued")
                                .group_by(MailingJob.tenant_id)).all())
    refreshing = set(session.exec(select(MailingJob.tenant_id).where(MailingJob.state == "queued",
                                                                      MailingJob.kind == "fit-index")))
    queued = sorted(t for t in indexed - refreshing if waiting.get(t, 0) < queue_limit)
    session.add_all([MailingJob(tenant_id=t, created_by=actor, kind="fit-index", state="queued", model_ids_json="[]")
                     for t in queued])
    session.commit()
    return queued


def give_back(session: Session, job_id: str, holder: str) -> None:
    """The holder stops before the job is done (its process is stopping): queued again, this turn not counted."""
    session.execute(update(MailingJob).where(MailingJob.id == job_id, MailingJob.lease_holder == holder)
                    .values(state="queued", lease_holder=None, lease_expires_at=None,
                            attempts=MailingJob.attempts - 1))
    session.commit()


def _takeable(now: datetime):
    """Queued, or running under a lease that has run out (or none: left by a service before leases)."""
    return or_(MailingJob.state == "queued",
               (MailingJob.state == "running") & or_(MailingJob.lease_expires_at.is_(None),
                                                     MailingJob.lease_expires_at < now))


def results(repo: Repository, job: MailingJob) -> dict[int, list[str]]:
    """Per product of the job, the loyalty ids it fits, among customers whose marketing consent is still in force
    (audited for the job and for each customer it names)."""
    consenting = consents.marketing_consenting(repo)
    fits: dict[int, list[str]] = {m: [] for m in json.loads(job.model_ids_json)}
    rows = repo.session.exec(select(MailingMatch.model_id, Customer.id, Customer.loyalty_id)
                             .join(PassportRecord, PassportRecord.id == MailingMatch.passport_id)
                             .join(Customer, Customer.id == PassportRecord.customer_id)
                             .where(MailingMatch.job_id == job.id)
                             .order_by(MailingMatch.model_id, Customer.loyalty_id))
    named = set()
    for model_id, customer_id, loyalty_id in rows:
        if customer_id in consenting:
            fits[model_id].append(loyalty_id)
            named.add(customer_id)
    repo.audit("read", "mailing", job.id, f"results: {sum(map(len, fits.values()))} customer-product pairs")
    for customer_id in sorted(named):
        repo.audit("read", "customer", customer_id, f"named in the results of mailing {job.id}")
    repo.session.commit()
    return fits
