"""The tenant's mailing jobs (api/mailing.py runs them): the job, its audience (customers with marketing consent
in force) and its output, which names customers and so is read audited."""

from __future__ import annotations

import json

from sqlalchemy import func
from sqlmodel import select

from api.models import Customer, MailingJob, MailingMatch, PassportRecord
from api.repository import Repository, consents
from core.errors import NotFound


def create(repo: Repository, model_ids: list[int]) -> MailingJob:
    job = MailingJob(tenant_id=repo.tenant_id, created_by=repo.principal.key_id, state="queued",
                     model_ids_json=json.dumps(model_ids))
    return save(repo, job)


def get(repo: Repository, job_id: str) -> MailingJob:
    job = repo.session.exec(select(MailingJob).where(MailingJob.id == job_id)).first()
    if job is None:
        raise NotFound(f"no mailing job {job_id!r}: start one with POST /v1/mailings")
    return job


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


def add_matches(repo: Repository, job: MailingJob, matches: list[tuple[str, int]]) -> None:
    """(passport id, model id) pairs: the product fits that passport's customer (passports erased meanwhile are
    left out)."""
    live = set(repo.session.exec(select(PassportRecord.id).where(PassportRecord.id.in_({p for p, _ in matches}))))
    repo.session.add_all([MailingMatch(job_id=job.id, passport_id=p, model_id=m) for p, m in matches if p in live])
    repo.session.commit()


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
