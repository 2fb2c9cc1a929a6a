"""Batch jobs: mailings (for a list of products, shoe models, which of the tenant's customers each one fits,
leaving out everyone whose marketing consent is not in force: never given, or withdrawn) and refreshes of the
tenant's fit index (api/fit_index.py).

A job is a row (mailing_job) that any service process may run: queued -> running -> done | failed | cancelled,
its progress stored as it goes; a cancelled job stops at its next step and keeps no output. Each process that
runs jobs (setting service.runs_jobs) takes one at a time (its batch work already uses every core of its Dask
cluster) by one UPDATE, so of processes racing for a job one wins. It holds the job under a
lease (api/worker.py) renewed while it runs; every write checks the lease is still its own. When a process dies,
its job's lease runs out and the next process looking for work takes it over from the start (the dead turn's
matches are deleted as it is taken), up to MAX_ATTEMPTS turns; then the job fails with the reason.

Jobs wait in one queue per tenant (at most `mailing_jobs_queued_per_tenant`) and the tenants take turns: the next
job is the oldest of the tenant whose latest turn began longest ago, so one tenant's ten large jobs do not hold
back another's small one.

A job brings the tenant's fit index up to date (api/fit_index.py: only passports and products changed since are
matched, on Dask) and reads its products' columns for each consenting customer's newest passport. The index
decides as the advice does (docs/learning.md): with the learned state in use for the tenant a product fits a
customer of the learning arm when a size around its best is kept with at least the setting
learning.fits_keep_chance; the A/B holdout's customers, and everyone while no learned state is adopted, get the
geometry's decision (fitcore.fit.mailing). Its outputs (`mailing_match` rows) are derived from passports, so
erasing a passport or a customer erases them (api/privacy.py); the results list only customers whose marketing
consent is still in force when they are read.
"""

from __future__ import annotations

import json
import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from api.auth import Principal
from api.fit_index import FitIndex, matches
from api.fitting import Fitting
from api.models import MailingJob, utc_now
from api.repository import Repository, mailings
from api.worker import Heartbeat, lease_until, worker_id
from core.errors import Conflict, FootfitError
from core.settings import ServiceSettings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # turns at one job: a job that took down its process this often is not tried again
REFRESH_SHARE = 0.9  # of a job's progress: bringing the fit index up to date; the rest is reading it


class LeaseLost(Exception):
    """This process's lease of a job ran out and another process took it over: stop without writing."""


class Stopping(Exception):
    """This process is stopping: give the job back to the queue for another process's turn."""


class Cancelled(Exception):
    """The job was cancelled on request: stop, keeping nothing of its output."""


class MailingRunner:
    """Queues mailing jobs in the database and, in a process that runs jobs, takes and runs them one at a time."""

    def __init__(self, engine: Engine, fitting: Fitting, settings: ServiceSettings, index: FitIndex):
        self.engine, self.fitting, self.index = engine, fitting, index
        self.queue_limit = settings.mailing_jobs_queued_per_tenant
        self.lease_s, self.poll_s, self.runs_jobs = settings.job_lease_s, settings.job_poll_s, settings.runs_jobs
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, repo: Repository, model_ids: list[int], kind: str = "mailing") -> MailingJob:
        """Queue a job (a mailing of these products, or a refresh of the fit index); unknown products (422) and a
        tenant's full queue (409) are refused before anything is stored."""
        model_ids = sorted(set(model_ids))
        if kind == "mailing":
            self.fitting.sync(repo.session.connection())
            self.fitting.matcher().mailing_products(model_ids)
        waiting = mailings.waiting(repo)
        if waiting >= self.queue_limit:
            raise Conflict(f"your tenant has {waiting} batch jobs waiting to run, the most the service queues "
                           f"per tenant (setting FOOTFIT_SERVICE__MAILING_JOBS_QUEUED_PER_TENANT): start this "
                           f"one when one of them has run (GET /v1/jobs)")
        job = mailings.create(repo, model_ids, kind)
        self.start()
        self._wake.set()
        return job

    def refresh_fit_indexes(self, actor: str) -> list[int]:
        """The shoes changed (a catalogue import): queue a refresh of every tenant's fit index, so a new season is
        matched in the background before the next mailing asks (mailings.queue_fit_index_refreshes)."""
        with Session(self.engine) as session:
            queued = mailings.queue_fit_index_refreshes(session, actor, self.queue_limit)
        if queued:
            log.info("fit index refreshes queued for %d tenants after a change of the shoes", len(queued))
            self.start()
            self._wake.set()
        return queued

    def start(self) -> None:
        """Begin taking jobs (if this process runs jobs): those queued, and those whose process died."""
        with self._starting:
            if self.runs_jobs and self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._take_jobs, name="mailing", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop taking jobs; a job running now stops at its next chunk and is left to another process's turn."""
        self._stop.set()
        self._wake.set()

    def _take_jobs(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self._take_one()
            except OperationalError as exc:  # the database away for a moment: try again at the next poll
                log.warning("looking for mailing jobs: the database did not answer (%s); trying again in %.1f s",
                            str(exc.orig).strip().splitlines()[0], self.poll_s)
                ran = False
            except Exception:  # a bug: logged, and the loop goes on with the next job
                log.exception("taking a mailing job failed")
                ran = False
            if not ran:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _take_one(self) -> bool:
        """Take the next job some process may run and run it; False if there was none."""
        holder = worker_id()
        with Session(self.engine, expire_on_commit=False) as session:
            now = utc_now()
            for job in mailings.takeable(session, now):
                if mailings.take(session, job, holder, now, lease_until(self.lease_s, now)):
                    session.refresh(job)
                    break
            else:
                return False
        if job.attempts > MAX_ATTEMPTS:
            with Session(self.engine) as session:
                mailings.end_turn(session, job.id, holder, "failed",
                                  f"the service process running this job stopped {MAX_ATTEMPTS} times before it "
                                  f"finished; start it again, with fewer products if it happens again")
            return True
        self._run(job, holder)
        return True

    def _run(self, job: MailingJob, holder: str) -> None:
        principal = Principal(job.created_by, job.tenant_id, None, frozenset())
        with Session(self.engine, expire_on_commit=False) as session, \
                Heartbeat(lambda: self._renew(job.id, holder), self.lease_s, f"mailing-{job.id}") as heartbeat:
            repo = Repository(session, principal)
            job = mailings.get(repo, job.id)
            try:
                self._match(repo, job, holder, heartbeat)
            except LeaseLost:
                log.warning("mailing job %s was taken over by another process; this one stops", job.id)
                return
            except Stopping:
                session.rollback()
                mailings.give_back(session, job.id, holder)
                return
            except Cancelled:
                session.rollback()
                mailings.end_turn(session, job.id, holder, "cancelled", "cancelled on request")
                return
            except Exception as exc:
                if not isinstance(exc, FootfitError):
                    log.exception("mailing job %s failed", job.id)
                session.rollback()
                mailings.end_turn(session, job.id, holder, "failed",
                                  str(exc) if isinstance(exc, FootfitError) else
                                  "internal error (logged by the service): start the job again")
                return
            mailings.end_turn(session, job.id, holder, "done")

    def _renew(self, job_id: str, holder: str) -> bool:
        with Session(self.engine) as session:
            return mailings.renew(session, job_id, holder, lease_until(self.lease_s))

    def _match(self, repo: Repository, job: MailingJob, holder: str, heartbeat: Heartbeat) -> None:
        def save() -> None:
            if self._stop.is_set():
                raise Stopping(job.id)
            if heartbeat.lost or not mailings.saved_by(repo, job, holder, lease_until(self.lease_s)):
                raise LeaseLost(job.id)
            if job.cancel_requested:
                raise Cancelled(job.id)

        def progressed(share: float) -> None:
            job.progress = share
            save()

        if job.kind == "fit-index":
            report = self.index.refresh(repo, progressed)
            log.info("fit index job %s: %s", job.id, report)
            job.progress = 1.0
            save()
            return
        model_ids = json.loads(job.model_ids_json)
        self.fitting.sync(repo.session.connection())
        self.fitting.matcher().mailing_products(model_ids)  # a product gone from the catalogue fails the job
        passport_ids, skipped = mailings.audience(repo)
        job.passports, job.skipped = len(passport_ids), skipped
        save()
        report = self.index.refresh(repo, lambda share: progressed(REFRESH_SHARE * share))
        log.info("mailing job %s: the fit index matched %d new passports and %d columns", job.id,
                 report.matched_passports, report.columns)
        mailings.add_matches(repo, job, matches(repo, model_ids, set(passport_ids)).by_product())
        job.progress = 1.0
        save()
