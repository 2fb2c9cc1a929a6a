"""Mailing jobs: for a list of products (shoe models), which of the tenant's customers each one fits, leaving out
everyone whose marketing consent is not in force (never given, or withdrawn).

A job runs in the background (one at a time per service process: the filter's numba kernel already uses every
core) and goes queued -> running -> done | failed, with its progress stored as it goes. Jobs wait in one queue per
tenant (at most `mailing_jobs_queued_per_tenant`) and the tenants take turns: the next job is the oldest of the
tenant whose last turn is longest ago, so one tenant's ten large jobs do not hold back another's small one.

A job takes each consenting customer's newest passport, turns chunks of them into the mailing filter's compact
descriptors (Matcher.mailing_descriptor) and runs fitcore.fit.mailing.mailing_filter over chunk x products. It
decides as the advice does (docs/learning.md): with the learned state in use for the tenant (read once when the
job starts) a product fits a customer of the learning arm when a size around its best is kept with at least the
setting learning.fits_keep_chance; the A/B holdout's customers, and everyone while no learned state is adopted, get
the geometry's decision. Its outputs (`mailing_match` rows) are derived from passports, so erasing a passport or a
customer erases them (api/privacy.py); the results list only customers whose marketing consent is still in force
when they are read.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sqlalchemy import Engine, update
from sqlmodel import Session

from api.auth import Principal
from api.fitting import Fitting, scanned_feet
from api.learning import Learning
from api.models import MailingJob, utc_now
from api.repository import Repository, mailings, passports
from core.errors import Conflict, FootfitError
from core.settings import ServiceSettings
from fitcore.fit.advice import LEARNING, advice_arm
from fitcore.fit.mailing import LearnedMailing, MailingProducts, mailing_filter
from fitcore.fit.matcher import Matcher
from fitcore.fit.profiles import FitProfiles

log = logging.getLogger(__name__)


class MailingRunner:
    """Queues and runs the mailing jobs of one service process."""

    def __init__(self, engine: Engine, fitting: Fitting, settings: ServiceSettings, learning: Learning):
        self.engine, self.fitting, self.learning = engine, fitting, learning
        self.chunk, self.queue_limit = settings.mailing_chunk_passports, settings.mailing_jobs_queued_per_tenant
        self._queues: dict[int, deque[tuple[str, Principal]]] = {}  # tenant -> its waiting jobs, oldest first
        self._last_turn: dict[int, int] = {}  # tenant -> the number of the turn it last had
        self._turns = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailing")  # a turn per queued job
        interrupt_unfinished(engine)

    def submit(self, repo: Repository, model_ids: list[int]) -> MailingJob:
        """Queue a job; unknown products (422) and a tenant's full queue (409) are refused before anything is
        stored."""
        model_ids = sorted(set(model_ids))
        self.fitting.matcher().mailing_products(model_ids)
        with self._lock:
            waiting = len(self._queues.get(repo.tenant_id, ()))
            if waiting >= self.queue_limit:
                raise Conflict(f"your tenant has {waiting} mailing jobs waiting to run, the most the service queues "
                               f"per tenant (setting FOOTFIT_SERVICE__MAILING_JOBS_QUEUED_PER_TENANT): start this "
                               f"one when one of them has run (GET /v1/mailings/{{job_id}})")
            job = mailings.create(repo, model_ids)
            self._queues.setdefault(repo.tenant_id, deque()).append((job.id, repo.principal))
        self._pool.submit(self._run_next)
        return job

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run_next(self) -> None:
        """One turn: the oldest job of the tenant whose last turn is longest ago (a new tenant's first)."""
        with self._lock:
            tenant = min(self._queues, key=lambda t: self._last_turn.get(t, -1))
            job_id, principal = self._queues[tenant].popleft()
            if not self._queues[tenant]:
                del self._queues[tenant]
            self._turns += 1
            self._last_turn[tenant] = self._turns
        self._run(job_id, principal)

    def _run(self, job_id: str, principal: Principal) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            repo = Repository(session, principal)
            job = mailings.get(repo, job_id)
            try:
                self._match(repo, job)
            except Exception as exc:
                if not isinstance(exc, FootfitError):
                    log.exception("mailing job %s failed", job_id)
                session.rollback()
                job.state, job.finished_at = "failed", utc_now()
                job.error = (str(exc) if isinstance(exc, FootfitError) else
                             "internal error (logged by the service): start the job again")[:500]
                mailings.save(repo, job)

    def _match(self, repo: Repository, job: MailingJob) -> None:
        matcher = self.fitting.matcher()
        products = matcher.mailing_products(json.loads(job.model_ids_json))
        learned = self._learned(repo.tenant_id, matcher, products)
        if learned is not None:  # the job's row has no place for it (mailing_job)
            log.info("mailing job %s decides for the learning arm with learned state %s", job.id, learned.version)
        share = self.learning.settings.ab_holdout_share
        passport_ids, skipped = mailings.audience(repo)
        job.state, job.passports, job.skipped = "running", len(passport_ids), skipped
        mailings.save(repo, job)
        for start in range(0, len(passport_ids), self.chunk):
            records = passports.by_ids(repo, passport_ids[start:start + self.chunk])
            if records:
                descriptors = np.stack([matcher.mailing_descriptor(scanned_feet(r)) for r in records])
                learning_arm = np.array([learned is not None and advice_arm(repo.tenant_id, r.customer_id, share)
                                         == LEARNING for r in records], dtype=bool)
                fits = _decided(descriptors, learning_arm, products, matcher.profiles, learned)
                mailings.add_matches(repo, job, [(records[i].id, int(products.model_ids[j]))
                                                 for i, j in zip(*np.nonzero(fits))])
            job.progress = min(start + self.chunk, len(passport_ids)) / len(passport_ids)
            mailings.save(repo, job)
        job.state, job.progress, job.finished_at = "done", 1.0, utc_now()
        mailings.save(repo, job)

    def _learned(self, tenant_id: int, matcher: Matcher, products: MailingProducts) -> LearnedMailing | None:
        """The learned decision with the tenant's state in use (None while no learned state is adopted)."""
        in_use = self.learning.in_use(self.learning.scope(tenant_id))
        if not in_use.learned:
            return None
        return LearnedMailing.of(in_use.state, matcher.catalogue, products, matcher.profiles,
                                 self.learning.settings.fits_keep_chance)


def _decided(descriptors: np.ndarray, learning_arm: np.ndarray, products: MailingProducts, profiles: FitProfiles,
             learned: LearnedMailing | None) -> np.ndarray:
    """(passports, products) bool: the learned decision for the passports of the learning arm, the geometry's for
    the others."""
    fits = np.zeros((len(descriptors), len(products.model_ids)), dtype=bool)
    held_out = ~learning_arm
    fits[held_out] = mailing_filter(descriptors[held_out], products, profiles)
    if learned is not None:
        fits[learning_arm] = mailing_filter(descriptors[learning_arm], products, profiles, learned)
    return fits


def interrupt_unfinished(engine: Engine) -> None:
    """Jobs a previous service process left queued or running will not continue: mark them failed."""
    with Session(engine) as session:
        session.exec(update(MailingJob).where(MailingJob.state.in_(("queued", "running")))
                     .values(state="failed", finished_at=utc_now(),
                             error="interrupted: the service stopped before the job finished; start it again"))
        session.commit()

