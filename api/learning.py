"""The product learns (issue 14): the learning job, the learned state each answer's advice comes from, the A/B arm
of each customer, and the catalogue's data quality as the feedback sees it (docs/learning.md, "The service").

The job (`Learning.run`: `footfit learn`, POST /v1/learning/runs, and on a schedule in the service) reads the
feedback events (api/repository/feedback.for_learning, each tenant's through its own Repository) and turns each
one that says what became of a size into a FitObservation: a try in a store (kept, or where and which way it was
wrong), a webshop return or exchange (not kept; too_small / too_large as its reason, none_given / other as no
reason) and a keep past the return window. Its readings are the matcher's at that size (`Matcher.tryon`, the
deciding foot), its shoe the catalogue's. The most recent `held_out_share` of them are set aside; a candidate state
is learned from the rest (fitcore.fit.learning.learn) and judged with the state in use on the held-out events:
it is ADOPTED when its log loss there is lower, else REJECTED. Every version is stored with its judgement
(api/repository/learning.py), reproducible from the events (the same events learn the same version: then nothing
new is stored), and an adopted one can be rolled back (the one adopted before it is used again).

By default the shoes' corrections, the categories' ideals and the keep model are learned from every tenant's
feedback together (setting learning.pooled): product knowledge, with no customer in it. Customers' preferences,
learned beside it, stay in their tenant (its Repository writes them) and are exported and erased with the customer.

One run at a time over every process: a lease in the database (`job_lease`), taken by one UPDATE and renewed by a
heartbeat while the run works (setting service.job_lease_s, as mailing jobs); a run that finds it lost (its process
stalled past the lease and another run took over) stores nothing. A run whose process died holds the job at most
one lease time. The service's scheduler runs the job when the last run finished `interval_hours` ago.

The learned state's fit (L-BFGS) is best with one BLAS thread: `footfit` sets OPENBLAS_NUM_THREADS=1 before scipy
loads (cli/main.py; threadpoolctl is not installed); a process started otherwise should set it itself.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.auth import Principal
from api.batch import Batch
from api.fitting import Fitting, feet_of
from api.models import RETURN_EVENTS, LearnedStateRecord, Tenant, as_utc, utc_now
from api.repository import Repository, feedback, passports
from api.repository import learning as stored
from api.repository.feedback import LearningEvent
from api.schemas import (
    CalibrationOut,
    JudgementOut,
    LearnedVersionOut,
    LearningRunOut,
    LearningStatusOut,
    QualityEntryOut,
    QualityOut,
    RollbackOut,
)
from api.worker import Heartbeat, worker_id
from core.errors import CatalogError, ConfigError, Conflict, FootfitError, InvalidInput, MeasurementError, NotFound
from core.settings import LearningSettings
from core.vocabulary import FIT_DIRECTIONS, REGIONS, RETURN_REASONS
from fitcore.fit.advice import LEARNING, PRIOR_VERSION, Advisor, advice_arm, prior_state, readings_mm, shoe_of
from fitcore.fit.learning import (
    REASON_MIN_MM,
    CustomerPreference,
    CustomerPreferences,
    FitObservation,
    LearnedState,
    category_key,
    evaluate,
    learn,
    split_recent,
)
from fitcore.fit.matcher import Matcher
from fitcore.fit.profiles import MEASURES
from shoe_db import versions as data_versions
from shoe_db.models import Brand, ShoeModel

log = logging.getLogger(__name__)
LEASE = "learning"
FIRST_CHECK_S = 60.0  # the scheduler looks whether a run is due this long after the service starts...
CHECK_EVERY_S = 600.0  # ...and then this often
PASSPORTS_PER_READ = 200  # the job reads this many passports' points at a time
ADOPTION_RULE = "adopted when its log loss on the held-out recent feedback is lower than the state in use's"
POOLED = "every tenant"
CONFIDENT_SDS = 2.0  # the quality report names corrections this many SDs from 0 (as LearnedState.reasons does)


# --- what a run stores beside the state ------------------------------------------------------------------------


class RunEvidence(BaseModel):
    """What the feedback on one size run (model and width fitting) said, counted: the quality report's words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: str
    model: str
    width: str
    tries: int
    said_tight: tuple[int, ...]  # per REGIONS: complaints that way (the toe's with the returns too small) ...
    said_loose: tuple[int, ...]  # ... and the other way (the toe's with the returns too large)


_EVIDENCE = TypeAdapter(list[RunEvidence])
_RETURN_WAY = {"too_small": "tight", "too_large": "loose"}  # a return's reason as what it says of the length


def evidence_of(observations: Sequence[FitObservation]) -> list[RunEvidence]:
    """Per size run, its tries and what they said which way."""
    tries: Counter = Counter()
    said: dict[tuple[str, str, str], dict[str, list[int]]] = {}
    for o in observations:
        run = (o.brand, o.model, o.width)
        tries[run] += 1
        ways = said.setdefault(run, {way: [0] * len(REGIONS) for way in FIT_DIRECTIONS})
        if o.complaint_region is not None:
            ways[o.complaint_direction][REGIONS.index(o.complaint_region)] += 1
        elif o.return_reason is not None:
            ways[_RETURN_WAY[o.return_reason]][REGIONS.index("toe")] += 1
    return [RunEvidence(brand=b, model=m, width=w, tries=tries[b, m, w], said_tight=tuple(said[b, m, w]["tight"]),
                        said_loose=tuple(said[b, m, w]["loose"])) for b, m, w in sorted(tries)]


# --- the state in use --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InUse:
    """The learned state a scope's advice comes from: an adopted version, or the hand-set prior (record_id None)."""

    state: LearnedState
    version: str
    record_id: int | None

    @property
    def learned(self) -> bool:
        return self.record_id is not None


@dataclass(frozen=True)
class CustomerAdvice:
    """What one customer's answers are made with: the state in use and their A/B arm."""

    in_use: InUse
    arm: str

    @property
    def learned(self) -> bool:
        """Learning picks this customer's sizes: their arm is LEARNING and a learned state is adopted."""
        return self.arm == LEARNING and self.in_use.learned

    @property
    def version(self) -> str:
        """The learning version the answer names: the state its keep chances come from."""
        return self.in_use.version if self.learned else PRIOR_VERSION


@dataclass(frozen=True)
class TriedOn:
    """A passport as stored, with the sizes its customer tried on (size id -> model id): what a batch worker reads
    for the learning job."""

    passport_id: str
    passport_json: str
    left_points: bytes
    right_points: bytes
    sizes: dict[int, int]


def readings_of(passports_tried: list[TriedOn], matcher: Matcher) -> dict[tuple[str, int], tuple[float, ...]]:
    """Per (passport, size) tried on, the deciding foot's readings in that size (mm, fitcore.fit.advice.readings_mm);
    passports whose points cannot be read and sizes without an interior are left out. Runs on a batch worker."""
    readings = {}
    for tried in passports_tried:
        try:
            feet = feet_of(tried.passport_json, tried.left_points, tried.right_points)
        except MeasurementError as e:
            log.info("passport %s not read for learning: %s", tried.passport_id, e)
            continue
        for size_id, model_id in tried.sizes.items():
            try:
                size = matcher.tryon(feet, model_id, size_id).size
            except CatalogError:  # a size without an interior: the matcher cannot read it
                continue
            readings[tried.passport_id, size_id] = readings_mm(getattr(size, feet.deciding_side))
    return readings


class Learning:
    """The learned state in use in this process, the customers' arms, the learning job and its schedule."""

    def __init__(self, engine: Engine, fitting: Fitting, settings: LearningSettings, lease_s: float, batch: Batch):
        """`batch`: where the job reads the feedback's passports (api/batch.py)."""
        self.engine, self.fitting, self.settings, self.batch = engine, fitting, settings, batch
        self.lease = timedelta(seconds=lease_s)
        self.prior = prior_state()
        self._in_use: dict[int | None, tuple[int, InUse]] = {}  # scope -> (its data version, the state in use)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # --- advice ---

    def scope(self, tenant_id: int) -> int | None:
        """Whose learned state a tenant's advice uses: the pooled one (None), or its own."""
        return None if self.settings.pooled else tenant_id

    def in_use(self, session: Session, scope: int | None) -> InUse:
        """The scope's state in use, read on the caller's session (a request holds one connection, not two). Re-read
        when the scope's data version (shoe_db/versions.py) moved, so a version adopted or rolled back by any
        process is used by every process from its next answer on."""
        name = data_versions.learning(scope)
        counted = data_versions.read(session.connection(), [name])[name]
        with self._lock:
            kept = self._in_use.get(scope)
        if kept is not None and kept[0] == counted:
            return kept[1]
        record = stored.in_use(session, scope)
        state = _readable(record)
        current = InUse(self.prior, PRIOR_VERSION, None) if state is None else InUse(state, record.version, record.id)
        with self._lock:
            self._in_use[scope] = (counted, current)
        return current

    def for_customer(self, repo: Repository, customer_id: str) -> CustomerAdvice:
        return CustomerAdvice(self.in_use(repo.session, self.scope(repo.tenant_id)),
                              advice_arm(repo.tenant_id, customer_id, self.settings.ab_holdout_share))

    def advisor(self, repo: Repository, matcher: Matcher, advice: CustomerAdvice, customer_id: str) -> Advisor:
        """The advice for a customer of the repository's tenant: with learning, the state in use and the customer's
        preference learned with it; else the geometry's, with the prior's keep chances. The chances include the
        caller's channel's lapse (a store's key: store; else webshop)."""
        source = "store" if repo.principal.is_kiosk else "webshop"
        if not advice.learned:
            return Advisor(matcher, self.prior, learned=False, source=source)
        preference = stored.preference(repo, customer_id, advice.in_use.record_id)
        return Advisor(matcher, advice.in_use.state, learned=True, preference=preference, source=source,
                       fits_keep_chance=self.settings.fits_keep_chance)

    # --- the job ---

    def run(self, tenant: str | None = None, actor: str = "job:learning") -> list[LearningRunOut]:
        """Learn, judge and store a new version per scope: every tenant's feedback together when pooled, else each
        tenant's (or the named one's) own. Conflict while another run holds the lease."""
        holder = f"{actor} {worker_id()}"
        if not stored.take_lease(self.engine, LEASE, holder, self.lease):
            raise Conflict("a learning run is in progress (in this or another process): wait for it; "
                           "`footfit learn --status` shows when the last one finished")

        def still_ours() -> bool:
            return stored.renew_lease(self.engine, LEASE, holder, self.lease)

        try:
            with Session(self.engine, expire_on_commit=False) as session, \
                    Heartbeat(still_ours, self.lease.total_seconds(), "learning"):
                tenants = self._tenants(session, tenant)
                scopes = [(None, tenants)] if self.settings.pooled else [(t.id, [t]) for t in tenants]
                return [self._run_scope(session, scope, members, actor, still_ours) for scope, members in scopes]
        finally:
            stored.end_lease(self.engine, LEASE, holder)

    def _tenants(self, session: Session, name: str | None) -> list[Tenant]:
        """The tenants whose feedback a run reads: every one, or (learning per tenant) the named one."""
        if name is None:
            return list(session.exec(select(Tenant).order_by(Tenant.id)))
        return [session.get(Tenant, self._scope_named(session, name))]

    @staticmethod
    def _tenant(session: Session, name: str) -> Tenant:
        found = session.exec(select(Tenant).where(Tenant.name == name)).first()
        if found is None:
            raise NotFound(f"no tenant {name!r}: `footfit tenants list` shows them")
        return found

    def _run_scope(self, session: Session, scope: int | None, tenants: list[Tenant], actor: str,
                   still_ours: Callable[[], bool]) -> LearningRunOut:
        started = time.monotonic()
        learned_from = POOLED if scope is None else tenants[0].name
        observations, owner, skipped, matcher = self._observations(tenants, actor)
        record = stored.in_use(session, scope)
        current = _readable(record)
        if current is None:  # nothing adopted, or a state this footfit cannot read: the prior is what is in use
            record, current = None, self.prior
        in_use = PRIOR_VERSION if record is None else record.version

        def report(outcome: str, detail: str, version: str | None = None, judgement: JudgementOut | None = None,
                   held_out: int = 0) -> LearningRunOut:
            now_in_use = stored.in_use(session, scope)
            return LearningRunOut(learned_from=learned_from, outcome=outcome, version=version,
                                  in_use=PRIOR_VERSION if now_in_use is None else now_in_use.version,
                                  events=len(observations), held_out=held_out, skipped=skipped, judgement=judgement,
                                  seconds=round(time.monotonic() - started, 2), detail=detail)

        if len(observations) < self.settings.min_events:
            return report("too_few_events", f"{len(observations)} usable feedback events, fewer than the "
                                            f"{self.settings.min_events} a run needs (setting learning.min_events)")
        older, recent = split_recent(observations, self.settings.held_out_share)
        candidate = learn(older, matcher.profiles)
        version = candidate.state.version
        if version == in_use:
            return report("unchanged", f"the feedback learns version {version} again, the one in use", version,
                          held_out=len(recent))
        before = stored.found(session, scope, version)
        if before is not None and before.status == "rolled_back":
            return report("rejected", f"the feedback learns version {version} again, which was rolled back: it is "
                                      f"not adopted again", version, held_out=len(recent))
        if before is not None and before.status == "rejected" and before.compared_with == in_use:
            return report("rejected", f"the feedback learns version {version} again, rejected before against "
                                      f"{in_use}, the version still in use", version, held_out=len(recent))
        current_preferences = None if record is None else self._preferences(tenants, record, actor)
        ours = evaluate(candidate.state, candidate.preferences, recent, matcher.profiles)
        theirs = evaluate(current, current_preferences, recent, matcher.profiles)
        adopt = ours.log_loss < theirs.log_loss
        if not still_ours():  # renewed: the writes below have a whole lease time
            raise Conflict("this learning run stalled past its lease (setting service.job_lease_s) and another run "
                           "took the job over: nothing was stored; `footfit learn --status` shows the outcome")
        judgement = JudgementOut(rule=ADOPTION_RULE, candidate=CalibrationOut.of(ours),
                                 in_use=CalibrationOut.of(theirs), in_use_version=in_use, adopted=adopt)
        new = stored.add(session, LearnedStateRecord(
            tenant_id=scope, version=version, status="candidate", events=len(older), held_out=len(recent),
            compared_with=in_use, log_loss=ours.log_loss, brier=ours.brier, current_log_loss=theirs.log_loss,
            current_brier=theirs.brier, judgement_json=judgement.model_dump_json(),
            evidence_json=_EVIDENCE.dump_json(evidence_of(older)).decode(), state_json=candidate.state.to_json()))
        if adopt:  # the preferences of the versions a rollback may bring back stay, the older ones go
            kept = [new.id, *stored.adopted_ids(session, scope, stored.PREFERENCE_VERSIONS_KEPT - 1)]
            self._save_preferences(tenants, new, kept, candidate.preferences.customers, owner, actor)
        stored.judged(session, new, adopt)
        said = (f"log loss {ours.log_loss:.4f} against {theirs.log_loss:.4f} of {in_use} (Brier {ours.brier:.4f} "
                f"against {theirs.brier:.4f}) on the {len(recent)} most recent events")
        return report("adopted" if adopt else "rejected", f"{'adopted' if adopt else 'rejected'}: {said}", version,
                      judgement, len(recent))

    def _observations(self, tenants: list[Tenant], actor: str) -> tuple[list[FitObservation], dict[str, int], int,
                                                                        Matcher | None]:
        """The events of the tenants' consenting customers as the learner reads them, in the order they were
        stored; each customer's tenant; how many events were skipped; the matcher that read them."""
        observations, owner, skipped, matcher = [], {}, 0, None
        for tenant in tenants:
            with Session(self.engine, expire_on_commit=False) as session:
                repo = Repository(session, Principal(actor, tenant.id, None, frozenset()))
                events = feedback.for_learning(repo)
                usable = [e for e in events if _outcome(e) is not None]
                skipped += len(events) - len(usable)
                if usable and matcher is None:
                    self.fitting.sync(session.connection())
                    matcher = self.fitting.matcher()
                read = self._read(repo, matcher, usable)
            skipped += len(usable) - len(read)
            observations += read
            owner.update({o.customer: tenant.id for o in read})
        return observations, owner, skipped, matcher

    def _read(self, repo: Repository, matcher: Matcher, events: list[LearningEvent]) -> list[FitObservation]:
        """FitObservations of the events whose passport and size the matcher can read, in the events' order. The
        reading runs on Dask (api/batch.py): the matcher scattered once, the passports read PASSPORTS_PER_READ at a
        time as tasks finish, each (passport, size) tried on once."""
        sizes: dict[str, dict[int, int]] = defaultdict(dict)  # passport -> its sizes tried -> their model
        for e in events:
            sizes[e.passport_id][e.size_id] = e.model_id
        passport_ids = sorted(sizes)

        def works():
            for start in range(0, len(passport_ids), PASSPORTS_PER_READ):
                yield [TriedOn(r.id, r.passport_json, r.left_points, r.right_points, sizes[r.id])
                       for r in passports.by_ids(repo, passport_ids[start:start + PASSPORTS_PER_READ])]

        readings: dict[tuple[str, int], tuple[float, ...]] = {}
        self.batch.map(readings_of, works(), matcher, lambda i, read: readings.update(read))
        out = []
        for e in events:
            values = readings.get((e.passport_id, e.size_id))
            if values is None:
                continue
            shoe = shoe_of(matcher.catalogue, e.size_id)
            out.append(FitObservation(customer=e.customer_id, brand=shoe.brand, model=shoe.model, width=shoe.width,
                                      category=shoe.category, level=shoe.level, values_mm=values,
                                      nominal_length_mm=shoe.nominal_length_mm, source=e.source, at=e.occurred_at,
                                      **_outcome(e)))
        return out

    def _preferences(self, tenants: list[Tenant], record: LearnedStateRecord, actor: str) -> CustomerPreferences:
        """The preferences learned with a stored state, of the tenants' customers (each tenant's read through its
        Repository)."""
        learned = []
        for tenant in tenants:
            with Session(self.engine) as session:
                learned += stored.preferences(Repository(session, Principal(actor, tenant.id, None, frozenset())),
                                              record.id)
        return CustomerPreferences(state_version=record.version, customers=tuple(learned))

    def _save_preferences(self, tenants: list[Tenant], record: LearnedStateRecord, kept: list[int],
                          learned: Sequence[CustomerPreference], owner: dict[str, int], actor: str) -> None:
        """Each tenant's customers' preferences into that tenant, through its Repository; those of states not in
        `kept` go."""
        for tenant in tenants:
            with Session(self.engine) as session:
                repo = Repository(session, Principal(actor, tenant.id, None, frozenset()))
                stored.save_preferences(repo, record, [p for p in learned if owner.get(p.customer) == tenant.id])
                stored.keep_preferences_of(repo, kept)
                session.commit()

    # --- versions ---

    def status(self) -> LearningStatusOut:
        with Session(self.engine) as session:
            names = {t.id: t.name for t in session.exec(select(Tenant))}
            scopes = [None] if self.settings.pooled else sorted(names)
            in_use = {scope: stored.in_use(session, scope) for scope in scopes}
            rows = sorted((r for scope in scopes for r in stored.versions(session, scope)), key=lambda r: -r.id)
            finished = stored.last_finished(session, LEASE)
        used = {r.id for r in in_use.values() if r is not None}
        return LearningStatusOut(
            pooled=self.settings.pooled, interval_hours=self.settings.interval_hours,
            last_finished_at=None if finished is None else as_utc(finished),
            ab_holdout_share=self.settings.ab_holdout_share,
            in_use={POOLED if scope is None else names[scope]: PRIOR_VERSION if r is None else r.version
                    for scope, r in in_use.items()},
            versions=[version_out(r, names, r.id in used) for r in rows])

    def roll_back(self, version: str, tenant: str | None = None) -> RollbackOut:
        """Take an adopted version out of use (api/repository/learning.roll_back)."""
        with Session(self.engine, expire_on_commit=False) as session:
            scope = self._scope_named(session, tenant)
            names = {t.id: t.name for t in session.exec(select(Tenant))}
            rolled, now = stored.roll_back(session, scope, version)
        return RollbackOut(rolled_back=version_out(rolled, names, False),
                           in_use=PRIOR_VERSION if now is None else now.version)

    def _scope_named(self, session: Session, tenant: str | None) -> int | None:
        """The scope of the learned states asked about: the pooled one, or (learning per tenant) the named
        tenant's."""
        if self.settings.pooled:
            if tenant is not None:
                raise InvalidInput("learning is pooled over every tenant (setting learning.pooled): leave the tenant "
                                   "out", [("tenant", "learning is pooled")])
            return None
        if tenant is None:
            raise InvalidInput("learning is per tenant (setting learning.pooled is false): name the tenant",
                               [("tenant", "required")])
        return self._tenant(session, tenant).id

    # --- data quality for the catalogue's owner ---

    def quality(self, tenant: str | None = None, limit: int = 50) -> QualityOut:
        """The size runs whose feedback disagrees with their interior most, from the state in use."""
        with Session(self.engine) as session:
            scope = self._scope_named(session, tenant)
            record = stored.in_use(session, scope)
            models = {(b, code): CatalogueModel(model_id, name, category_key(category, level))
                      for model_id, b, code, name, category, level in session.exec(
                          select(ShoeModel.id, Brand.name, ShoeModel.code, ShoeModel.name, ShoeModel.category,
                                 ShoeModel.level).join(Brand, Brand.id == ShoeModel.brand_id))}
        learned_from = POOLED if scope is None else tenant
        state = _readable(record)
        if state is None:
            return QualityOut(learning_version=None, learned_from=learned_from, entries=[])
        evidence = {(e.brand, e.model, e.width): e for e in _EVIDENCE.validate_json(record.evidence_json or "[]")}
        entries = catalogue_quality(state, evidence, models)
        return QualityOut(learning_version=record.version, learned_from=learned_from, entries=entries[:limit])

    # --- the schedule ---

    def start(self) -> None:
        """Run the job on its schedule in a thread of this process, until `close` (no thread when the interval
        is 0)."""
        if self.settings.interval_hours > 0:
            threading.Thread(target=self._scheduled, name="learning-schedule", daemon=True).start()

    def close(self) -> None:
        self._stop.set()

    def _scheduled(self) -> None:
        wait = FIRST_CHECK_S
        while not self._stop.wait(wait):
            wait = CHECK_EVERY_S
            if not self._due():
                continue
            try:
                for run in self.run(actor="job:learning-schedule"):
                    log.info("learning run over %s: %s", run.learned_from, run.detail)
            except Conflict:
                pass  # another process runs it now
            except FootfitError as e:
                log.warning("the scheduled learning run failed: %s", e)
            except Exception:  # a background thread: nobody else would hear of it
                log.exception("the scheduled learning run failed")

    def _due(self) -> bool:
        with Session(self.engine) as session:
            finished = stored.last_finished(session, LEASE)
        interval = timedelta(hours=self.settings.interval_hours)
        return finished is None or as_utc(finished) + interval <= as_utc(utc_now())


def _readable(record: LearnedStateRecord | None) -> LearnedState | None:
    """The stored state, or None for none or one that cannot be read (learned by a footfit judging other measures,
    or damaged): the advice falls back to the prior, and the next run judges against the prior."""
    if record is None:
        return None
    try:
        return stored.state_of(record)
    except ConfigError as e:
        log.warning("learned state %s is not used: %s", record.version, e)
        return None


def _outcome(e: LearningEvent) -> dict | None:
    """What became of the size, as FitObservation's fields; None for an event that does not say (recommended,
    chosen, bought, a try without its outcome)."""
    if e.event == "tried" and e.kept is not None:
        return dict(kept=e.kept, complaint_region=e.complaint_region, complaint_direction=e.complaint_direction)
    if e.event in RETURN_EVENTS:
        return dict(kept=False, return_reason=e.reason if e.reason in RETURN_REASONS else None)
    if e.event == "kept":
        return dict(kept=True)
    return None


def version_out(record: LearnedStateRecord, names: dict[int, str], in_use: bool) -> LearnedVersionOut:
    return LearnedVersionOut(
        version=record.version, learned_from=POOLED if record.tenant_id is None else names[record.tenant_id],
        status=record.status, in_use=in_use, created_at=as_utc(record.created_at),
        adopted_at=None if record.adopted_at is None else as_utc(record.adopted_at), events=record.events,
        held_out=record.held_out, compared_with=record.compared_with, log_loss=record.log_loss, brier=record.brier,
        in_use_log_loss=record.current_log_loss, in_use_brier=record.current_brier)


# --- data quality ------------------------------------------------------------------------------------------------

# Per measure, how a run disagrees with its interior's reading (correction < 0, > 0), and what customers say that way.
_DISAGREES = {
    "toe": ("fits {mm:.0f} mm shorter than its interior reads", "fits {mm:.0f} mm longer than its interior reads"),
    "ball": ("tighter around the ball than its interior reads ({girth:.0f} mm of girth)",
             "roomier around the ball than its interior reads ({girth:.0f} mm of girth)"),
    "instep": ("lower over the instep than its interior reads ({girth:.0f} mm of girth)",
               "roomier over the instep than its interior reads ({girth:.0f} mm of girth)"),
    "heel": ("snugger at the heel than its interior reads ({mm:.1f} mm)",
             "looser at the heel than its interior reads ({mm:.1f} mm)"),
    "ball_width": ("narrower across the ball than its interior reads ({mm:.0f} mm)",
                   "wider across the ball than its interior reads ({mm:.0f} mm)"),
}
_SAID = {"toe": ("too short", "too long"), "ball": ("tight at the ball", "loose at the ball"),
         "instep": ("pressing on the instep", "loose over the instep"),
         "heel": ("tight at the heel", "slipping at the heel")}


@dataclass(frozen=True)
class CatalogueModel:
    """What the quality report names a learned model by, from the catalogue."""

    model_id: int
    name: str
    category: str  # category_key


def catalogue_quality(state: LearnedState, evidence: dict[tuple[str, str, str], RunEvidence],
                      models: dict[tuple[str, str], CatalogueModel]) -> list[QualityEntryOut]:
    """Per size run, the measure on which its customers feel it furthest from its interior's reading, against the
    SD: the learned correction less its category's shift (a category's ideal and its models' corrections are told
    apart by their priors only; the difference is what the feedback says), where that is at least REASON_MIN_MM
    and CONFIDENT_SDS SDs (the correction's, given the shift); the strongest evidence (|difference| / SD, then
    tries) first."""
    shifts = {c.category: np.asarray(c.shift.mm) for c in state.categories}
    entries = []
    for run in state.runs:
        c, model = run.correction, models.get((run.brand, run.model))
        felt = np.asarray(c.mm) - shifts.get(model.category if model else "", np.zeros(len(MEASURES)))
        ratios = [abs(mm) / sd if abs(mm) >= REASON_MIN_MM[m] and sd > 0 else 0.0
                  for m, (mm, sd) in enumerate(zip(felt, c.sd_mm))]
        m = max(range(len(MEASURES)), key=lambda i: ratios[i])
        if ratios[m] < CONFIDENT_SDS:
            continue
        measure, mm = MEASURES[m], float(felt[m])
        region = REGIONS.index(measure.split("_")[0])
        seen = evidence.get((run.brand, run.model, run.width))
        said = 0 if seen is None else (seen.said_tight if mm < 0 else seen.said_loose)[region]
        words = _DISAGREES[measure][mm > 0].format(mm=abs(mm), girth=abs(mm) * 2.0 * math.pi)
        told = _SAID[REGIONS[region]][mm > 0]
        entries.append(QualityEntryOut(
            model_id=model.model_id if model else None, brand=run.brand, model_code=run.model,
            model_name=model.name if model else "", width=run.width, measure=measure, correction_mm=round(mm, 2),
            sd_mm=round(c.sd_mm[m], 2), evidence=round(ratios[m], 2), tries=c.events, customers=c.customers,
            said=said, finding=f"{words}: {c.events} tries, {said} said {told}"))
    entries.sort(key=lambda e: (-e.evidence, -e.tries))
    return entries


async def learning_service(request: Request) -> Learning:  # async: FastAPI runs it without a worker thread
    return request.app.state.learning
