"""The service's tables: tenants and their stores, kiosks, API keys and customer session tokens; customers,
consent, passports and what is derived from them (fit results, feedback); the audit log; what the learner learned
(its versions, customers' preferences) and the lease of the learning job.

Times are timezone-aware UTC (SQLModel stores them as UTC on SQLite and PostgreSQL alike). Public ids of
personal records (customers, passports) are random UUID hex strings, so ids carry no order or count.
`tenant_store` says which tenant owns each of the catalogue's stores (shoe_db `store`, whose `stock` is so that
tenant's); `assortment_item` is what a tenant sells of the operator's interior database, under its own SKUs and
at its own prices.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

import shoe_db.models  # noqa: F401  (the `store` and `size_variant` tables the foreign keys name)
from core.vocabulary import RETURN_REASONS

CONSENT_PURPOSES = ("scan_storage", "webshop", "marketing")
CONSENT_SOURCES = ("kiosk", "webshop", "staff", "paper", "email")  # where the customer decided
# What happened with a size a customer was shown (docs/api.md, "Feedback"): `kept` is a purchase kept past the return
# window, `exchanged` one sent back for another size (the new size is a `bought` of its own).
FEEDBACK_EVENTS = ("recommended", "tried", "chosen", "bought", "returned", "exchanged", "kept")
RETURN_EVENTS = ("returned", "exchanged")  # the events that carry a reason
# What a return or exchange may give as its reason: the two the learner reads (core.vocabulary), then the ones that
# say nothing about the size; none_given is common in the field.
FEEDBACK_REASONS = RETURN_REASONS + ("other", "none_given")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """A time in UTC; one without a zone is taken to be UTC already (as passports write them)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def new_public_id() -> str:
    return uuid.uuid4().hex


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=120)
    retention_days: int
    created_at: datetime = Field(default_factory=utc_now)


class TenantStore(SQLModel, table=True):
    """A catalogue store (stock lives there) owned by one tenant."""

    __tablename__ = "tenant_store"

    store_id: int = Field(foreign_key="store.id", primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    size_system: str = Field(default="eu", max_length=12)  # core.sizes.STORE_SIZE_SYSTEMS: the kiosk shows sizes in it


class AssortmentItem(SQLModel, table=True):
    """One SKU a tenant sells: one of the operator's sizes (shared, read-only to tenants) under the tenant's own SKU
    and EAN, at its own price. Its stores hold stock (shoe_db `stock`) of these sizes only."""

    __tablename__ = "assortment_item"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"), UniqueConstraint("tenant_id", "size_id"))

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    size_id: int = Field(foreign_key="size_variant.id")
    sku: str = Field(max_length=80)
    ean: str = Field(default="", max_length=13)
    price_cents: int
    currency: str = Field(default="EUR", max_length=3)


class Kiosk(SQLModel, table=True):
    """A scanner rig standing in one of the tenant's stores."""

    __tablename__ = "kiosk"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    rig_serial: str = Field(unique=True, max_length=40)
    name: str = Field(default="", max_length=120)


class ApiKey(SQLModel, table=True):
    """A key is shown once as `ff_<id>_<secret>`; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=16)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    store_id: int | None = Field(default=None, foreign_key="store.id")  # set: a kiosk key of that store
    scopes: str = Field(max_length=400)  # space-separated
    secret_sha256: str = Field(max_length=64)
    label: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime
    revoked_at: datetime | None = None


class SessionToken(SQLModel, table=True):
    """A customer session token, shown once as `ffs_<id>_<secret>` to the webshop's server that opened it with its
    key, for one shopper's browser: it reads that customer's passports' fit answers only, for minutes. Only the
    SHA-256 of the secret is kept. The database erases it with its customer (ON DELETE CASCADE)."""

    __tablename__ = "session_token"

    id: str = Field(primary_key=True, max_length=16)
    customer_id: str = Field(sa_column=Column(String(32), ForeignKey("customer.id", ondelete="CASCADE"),
                                              nullable=False, index=True))
    opened_by: str = Field(foreign_key="api_key.id", max_length=16)  # the key id of the webshop's server
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime
    revoked_at: datetime | None = None


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("tenant_id", "loyalty_id"),)

    id: str = Field(default_factory=new_public_id, primary_key=True, max_length=32)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    loyalty_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now)


class Consent(SQLModel, table=True):
    """One consent decision (given or withdrawn); the newest per purpose is in force."""

    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=32)
    purpose: str = Field(max_length=20)
    granted: bool
    source: str = Field(max_length=20)
    recorded_at: datetime = Field(default_factory=utc_now)
    recorded_by: str = Field(max_length=40)  # key id


class PassportRecord(SQLModel, table=True):
    """A stored foot passport and both feet's points (foot frame, mm, little-endian float32 x, y, z)."""

    __tablename__ = "passport"

    id: str = Field(default_factory=new_public_id, primary_key=True, max_length=32)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=32)
    source: str = Field(max_length=10)  # upload | kiosk
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)  # the last rescan
    scanned_at: datetime
    passport_json: str
    left_points: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    right_points: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class PressureMapRecord(SQLModel, table=True):
    """The standing pressure picture of a kiosk scan (fitcore.scan.pressure.PressureMap as JSON; plate frame, kPa).
    Derived from the scan, so erased with its passport; an uploaded passport has none."""

    __tablename__ = "pressure_map"

    passport_id: str = Field(foreign_key="passport.id", primary_key=True, max_length=32)
    map_json: str


class FitResult(SQLModel, table=True):
    """A fit answer given for a passport (recommendations, size, try-on verdicts), kept for the webshop view."""

    __tablename__ = "fit_result"

    id: int | None = Field(default=None, primary_key=True)
    passport_id: str = Field(foreign_key="passport.id", index=True, max_length=32)
    kind: str = Field(max_length=20)
    request_json: str
    result_json: str
    created_at: datetime = Field(default_factory=utc_now)


class Feedback(SQLModel, table=True):
    """One thing that happened with one of the operator's sizes a passport's customer was shown: what the learner
    learns from (docs/api.md, "Feedback"). Personal data: erased with its passport (api/privacy.py). Columns added
    by migration 0009 are null on older rows where nothing can stand in for them."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    passport_id: str = Field(foreign_key="passport.id", index=True, max_length=32)
    event: str = Field(max_length=12)  # FEEDBACK_EVENTS
    size_id: int = Field(foreign_key="size_variant.id")
    source: str = Field(max_length=8)  # core.vocabulary.FEEDBACK_SOURCES: the recording key's (a store's key: store)
    kept: bool | None = None  # tried only: the customer would keep this size (None: not said)
    complaint_region: str | None = Field(default=None, max_length=8)  # a try not kept: where (REGIONS) ...
    complaint_direction: str | None = Field(default=None, max_length=8)  # ... and which way (FIT_DIRECTIONS)
    reason: str | None = Field(default=None, max_length=12)  # RETURN_EVENTS only: FEEDBACK_REASONS
    store_id: int | None = Field(default=None, foreign_key="store.id")
    recommended_size_id: int | None = Field(default=None, foreign_key="size_variant.id")  # the advice at the time
    learning_version: str | None = Field(default=None, max_length=80)  # the learned state that advice came from
    advice_arm: str | None = Field(default=None, max_length=32)  # its A/B arm (e.g. the holdout without learning)
    occurred_at: datetime  # when it happened (a webshop posts returns later); older rows: recorded_at
    recorded_at: datetime = Field(default_factory=utc_now, index=True)  # when the service stored it
    recorded_by: str = Field(max_length=40)  # key id


class AuditEntry(SQLModel, table=True):
    """Who read, exported or erased which personal record, when. Append-only (database triggers refuse UPDATE
    and DELETE); it names records by their public id, never holds measurements or geometry."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, index=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    actor: str = Field(max_length=40)  # key id, or "cli:<command>"
    action: str = Field(max_length=12)  # read | export | erase | purge | consent
    object_type: str = Field(max_length=12)  # customer | passport
    object_id: str = Field(max_length=32)
    detail: str = Field(default="", max_length=200)


JOB_KINDS = ("mailing", "fit-index")  # which products fit which customers; bringing the tenant's fit index up to date


class MailingJob(SQLModel, table=True):
    """A background batch job of one tenant (kind): a mailing (which of the listed products, shoe models, fit which
    customer), or a refresh of the tenant's fit index."""

    __tablename__ = "mailing_job"

    id: str = Field(default_factory=new_public_id, primary_key=True, max_length=32)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    created_by: str = Field(max_length=40)  # key id
    created_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None
    kind: str = Field(default="mailing", max_length=10)  # JOB_KINDS
    state: str = Field(max_length=10, index=True)  # queued | running | done | failed | cancelled
    cancel_requested: bool = False  # asked to stop: the process running it stops at its next step
    model_ids_json: str  # the product list, a JSON array of model ids (empty for a fit-index job)
    progress: float = 0.0  # share of the passports matched, 0-1
    passports: int = 0  # customers matched (marketing consent and a passport)
    skipped: int = 0  # customers left out: no marketing consent in force
    error: str = Field(default="", max_length=500)
    # Any service process may run a job (api/mailing.py): the one holding its lease, until the lease expires.
    attempts: int = 0  # turns taken at it; a turn whose process died is taken over, up to MAX_ATTEMPTS
    lease_holder: str | None = Field(default=None, max_length=80)  # the process running it (api.worker.worker_id)
    lease_expires_at: datetime | None = None  # renewed while it runs; after it, another process may take the job
    started_at: datetime | None = None  # when its latest turn began (tenants take turns by it)


class MailingMatch(SQLModel, table=True):
    """One output row of a mailing job: the product fits the customer of this passport. Derived from the passport,
    so it is erased with it (api/privacy.py)."""

    __tablename__ = "mailing_match"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="mailing_job.id", index=True, max_length=32)
    passport_id: str = Field(foreign_key="passport.id", index=True, max_length=32)
    model_id: int


class FitIndexChunk(SQLModel, table=True):
    """A chunk of one tenant's fit index (fitcore/fit/fit_index.py, api/fit_index.py): up to
    batch.chunk_passports passports in slot order, kept as their mailing descriptors and advice arms. Derived from
    the passports, so a passport's erasure takes it out (api/privacy.py)."""

    __tablename__ = "fit_index_chunk"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    slots: int  # passports in the chunk
    passport_ids: str = Field(sa_column=Column(Text, nullable=False))  # JSON array, slot order
    descriptors: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32 (slots, DESCRIPTOR_FIELDS)
    learning_arm: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # packed bits, per slot
    decision: str = Field(max_length=120)  # what the learning arm decides with: "" geometry, else the learned state's
    as_of: datetime  # the passports as read then: one rescanned after it is matched again


class FitIndexColumn(SQLModel, table=True):
    """One product's outcomes over one chunk's passports, packed (fitcore.fit.fit_index.IndexColumn)."""

    __tablename__ = "fit_index_column"

    chunk_id: int = Field(sa_column=Column(ForeignKey("fit_index_chunk.id", ondelete="CASCADE"), primary_key=True))
    model_id: int = Field(primary_key=True)
    version: str = Field(max_length=16)  # the product's version matched against (fit_index.product_versions)
    fits: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sizes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    scores: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# A learned state's life (api/learning.py): learned and not yet judged, adopted (in use, or once), judged worse than
# the one in use on recent feedback, taken out of use by a rollback (never adopted again).
LEARNING_STATUSES = ("candidate", "adopted", "rejected", "rolled_back")


class LearnedStateRecord(SQLModel, table=True):
    """One version of what the learner learned (fitcore.fit.learning.LearnedState as JSON): product knowledge, no
    personal data, so it is pooled over every tenant (tenant_id null) unless the setting learning.pooled is off.
    Every version is kept, with how it was judged: its keep chances and the state in use's on the same held-out
    recent feedback."""

    __tablename__ = "learned_state"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)  # null: learned from every tenant
    version: str = Field(max_length=16, index=True)  # LearnedState.version: a hash of its content
    status: str = Field(max_length=12)  # LEARNING_STATUSES
    created_at: datetime = Field(default_factory=utc_now)
    adopted_at: datetime | None = None
    events: int  # the feedback events it learned from
    held_out: int  # the recent events it was judged on
    compared_with: str = Field(default="", max_length=16)  # the version in use when it was judged
    log_loss: float | None = None  # its keep chances on the held-out events ...
    brier: float | None = None
    current_log_loss: float | None = None  # ... and those of the version in use
    current_brier: float | None = None
    judgement_json: str = ""  # both calibrations with their reliability tables (api.schemas.JudgementOut)
    evidence_json: str = ""  # per size run, how many tries and what they said (api.learning.RunEvidence)
    state_json: str


class CustomerPreferenceRecord(SQLModel, table=True):
    """A customer's learned preference (fitcore.fit.learning.CustomerPreference) in one learned state: personal
    data, kept in its tenant, exported and erased with the customer (api/privacy.py), never pooled."""

    __tablename__ = "customer_preference"
    __table_args__ = (UniqueConstraint("state_id", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=32)
    state_id: int = Field(foreign_key="learned_state.id", index=True)
    toe_mm: float  # more toe room wanted than the profile's ideal (fitcore.fit.learning.PREFERENCES)
    forefoot_mm: float  # a roomier forefoot, mm of girth
    heel_mm: float
    toe_sd_mm: float
    forefoot_sd_mm: float
    heel_sd_mm: float
    events: int  # the customer's events it was learned from


class JobLease(SQLModel, table=True):
    """Who runs a service job now, until when, and when it last finished: one run at a time over every process
    (the lease is taken by one UPDATE), and the schedule (api/learning.py)."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str | None = Field(default=None, max_length=80)
    expires_at: datetime | None = None
    finished_at: datetime | None = None


class ScanJobRecord(SQLModel, table=True):
    """A kiosk scan: asked for by a kiosk, run by its rig's agent in the store (cli/agent.py), followed through any
    service process (api/scans.py). One scan runs per rig at a time: a unique index over the running ones. The
    latest camera frame (`preview`, a small grey JPEG) is kept only while the camera runs."""

    __tablename__ = "scan_job"
    __table_args__ = (Index("uq_scan_job_running_rig", "rig_serial", unique=True,
                            sqlite_where=text("state = 'running'"), postgresql_where=text("state = 'running'")),)

    id: str = Field(default_factory=new_public_id, primary_key=True, max_length=32)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    store_id: int = Field(foreign_key="store.id")
    rig_serial: str = Field(max_length=40)
    customer_id: str | None = Field(default=None, foreign_key="customer.id", index=True, max_length=32)
    loyalty_id: str = Field(default="", max_length=64)  # blanked when the customer is erased
    rescan_of: str | None = Field(default=None, max_length=32)  # the passport a rescan replaces
    created_by: str = Field(max_length=40)  # key id
    state: str = Field(max_length=10)  # running | failed | cancelled | done
    phase: str = Field(max_length=10)  # connect, zero, stand, left, right, measure, store, done
    fraction: float = 0.0
    eta_s: float | None = None
    arm_angle_deg: float | None = None
    message: str = Field(default="", max_length=500)
    attempts: int = 1
    kept: str = Field(default="", max_length=40)  # parts a failed scan keeps at the store: plate,left,right
    passport_id: str | None = Field(default=None, max_length=32)
    failed_device: str | None = Field(default=None, max_length=10)
    started_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None
    version: int = 0  # counts the changes a progress stream shows
    agent: str | None = Field(default=None, max_length=80)  # the rig agent running the attempt (None: not taken)
    lease_expires_at: datetime | None = None  # the agent's reports renew it; after it the scan is failed
    cancel_requested: bool = False  # the agent stops at its next report
    preview: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
