"""Request and response bodies of the API (pydantic). Times are UTC with their zone; lengths in mm as in the
passport."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.audit import ACTIONS
from api.models import (
    CONSENT_PURPOSES,
    CONSENT_SOURCES,
    FEEDBACK_EVENTS,
    FEEDBACK_REASONS,
    LEARNING_STATUSES,
    RETURN_EVENTS,
    utc_now,
)
from core.sizes import STORE_SIZE_SYSTEMS
from core.vocabulary import FEEDBACK_SOURCES, FIT_DIRECTIONS, REGIONS, SIDES, VERDICTS
from fitcore.fit.advice import ADVICE_ARMS
from fitcore.fit.keep_model import Calibration
from fitcore.fit.profiles import MEASURES
from fitcore.scan.passport import MeasurementsModel, Passport, SizesModel

LoyaltyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                                 description="the tenant's loyalty id of the customer")]
Purpose = Literal[CONSENT_PURPOSES]
ConsentSource = Literal[CONSENT_SOURCES]
FeedbackEvent = Literal[FEEDBACK_EVENTS]
ReturnReason = Literal[FEEDBACK_REASONS]
FeedbackSource = Literal[FEEDBACK_SOURCES]
FitDirection = Literal[FIT_DIRECTIONS]
SizeSystem = Literal[tuple(STORE_SIZE_SYSTEMS)]
Side = Literal[SIDES]
Region = Literal[REGIONS]
Verdict = Literal[VERDICTS]
AdviceArm = Literal[ADVICE_ARMS]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    location: str = Field(description="where the problem is, e.g. body.purpose or passport.feet.left.sizes.eu")
    message: str


class ErrorBody(BaseModel):
    detail: str = Field(description="what was wrong and what to do")
    errors: list[FieldError] = []


class Me(BaseModel):
    key_id: str
    tenant: str
    store: str | None = Field(description="set for a kiosk key: the store it belongs to")
    scopes: list[str]
    retention_days: int = Field(description="the tenant keeps a passport this many days after its last scan (what "
                                            "the kiosk tells customers before they consent)")


class CustomerIn(_In):
    loyalty_id: LoyaltyId


class ConsentIn(_In):
    purpose: Purpose
    granted: bool = Field(description="true gives consent, false withdraws it")
    source: ConsentSource | None = Field(default=None, description="ignored, kept for clients that send it: the "
                                         "source is the calling key's (a kiosk key's store, else the webshop)")


class ConsentOut(BaseModel):
    purpose: Purpose
    granted: bool
    source: ConsentSource
    recorded_at: datetime
    recorded_by: str = Field(description="the key id that recorded it")


class ConsentState(BaseModel):
    scan_storage: bool = False
    webshop: bool = False
    marketing: bool = False


class CustomerOut(BaseModel):
    loyalty_id: str
    created_at: datetime
    consent: ConsentState = Field(description="the consent in force per purpose")
    passports: int


class ConsentChange(BaseModel):
    consent: ConsentOut
    erased_passports: int = Field(description="passports erased because scan-storage consent was withdrawn")


class SessionIn(_In):
    minutes: int | None = Field(default=None, ge=1, description="how long the token lives; default and most: the "
                                                                "setting service.customer_session_minutes (15)")


class SessionOut(BaseModel):
    """A customer session: what the webshop's server hands the shopper's browser (the token, never its key)."""

    id: str = Field(description="the session id, to revoke it (DELETE .../sessions/{session_id})")
    token: str = Field(description="for the browser to send as 'Authorization: Bearer ffs_...'; shown once")
    expires_at: datetime
    passport_id: str | None = Field(description="the customer's newest passport, to try shoes on with (null: none)")


class PassportSummary(BaseModel):
    id: str
    source: Literal["upload", "kiosk"]
    scanned_at: datetime
    created_at: datetime
    updated_at: datetime = Field(description="the last rescan")
    pair_sizes: SizesModel


class FootView(BaseModel):
    measurements: MeasurementsModel
    toe_shape: Literal["egyptian", "greek", "square"]
    sizes: SizesModel


class FeetView(BaseModel):
    left: FootView
    right: FootView


class FitResultOut(BaseModel):
    kind: Literal["recommendations", "size", "tryon"]
    request: dict[str, Any]
    result: Any
    created_at: datetime


class PassportWebshopView(BaseModel):
    """Measurements, sizes and fit results: what a webshop may see."""

    id: str
    scanned_at: datetime
    updated_at: datetime
    feet: FeetView
    pair_sizes: SizesModel
    fit_results: list[FitResultOut]


class PassportStaffView(PassportWebshopView):
    """The webshop view plus the whole passport and where to fetch the point clouds."""

    customer: str = Field(description="loyalty id")
    passport: Passport
    points: dict[Side, str] = Field(description="URL of each foot's PLY (foot frame, mm)")


Sku = Annotated[str, Field(min_length=1, max_length=80)]
Tag = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
FEEDBACK_BACKDATE = timedelta(days=366)  # a webshop posts returns and keeps later, a year at most
FEEDBACK_CLOCK_SKEW = timedelta(minutes=5)  # a caller's clock ahead of the service's by this much is not refused


class FitComplaint(_In):
    """Where a tried size was wrong and which way: toe tight = the toes hit (too short), toe loose = too long, ball
    tight = pinches, ball loose, instep tight = presses, instep loose, heel tight = pinches, heel loose = slips."""

    region: Region
    direction: FitDirection


class FeedbackIn(_In):
    """What happened with one size of a shoe (docs/api.md, "Feedback"). Which fields go with which event is
    checked here; the SKUs, the store and the source against the caller's tenant and key when it is stored."""

    event: FeedbackEvent
    sku: Sku = Field(description="your SKU of the size (an operator's SKU you sell is accepted too)")
    kept: bool | None = Field(default=None, description="'tried' only: the customer would keep this size (leave "
                                                         "it out when not known)")
    complaint: FitComplaint | None = Field(default=None, description="'tried' with kept false only (optional): "
                                                                     "where it was wrong and which way")
    reason: ReturnReason | None = Field(default=None, description="required for 'returned' and 'exchanged', only "
                                                                  "there; none_given when the customer gave none")
    source: FeedbackSource | None = Field(default=None, description="the calling key's and no other: a key of a "
                                                                    "store records store events, a tenant key "
                                                                    "webshop events")
    store: str | None = Field(default=None, max_length=40, description="one of your store codes; a store's key: "
                                                                       "its own, the default")
    recommended_sku: Sku | None = Field(default=None, description="the size the advice gave for this shoe at the "
                                                                  "time (the recommendation's sku)")
    learning_version: Tag | None = Field(default=None, description="the learned state that advice came from, as "
                                                                   "the recommendation said")
    advice_arm: Tag | None = Field(default=None, max_length=32, description="the advice's A/B arm, as the "
                                                                           "recommendation said")
    occurred_at: datetime | None = Field(default=None, description="when it happened, if not now: up to a year "
                                                                   "back (default: the time it is recorded)")

    @model_validator(mode="after")
    def _fields_fit_the_event(self) -> "FeedbackIn":
        if self.kept is not None and self.event != "tried":
            raise ValueError(f"'kept' belongs to 'tried' events only (a purchase kept past the return window is "
                             f"event 'kept'): leave it out of '{self.event}'")
        if self.complaint is not None and not (self.event == "tried" and self.kept is False):
            raise ValueError("a complaint says why a tried size was not kept: send it with event 'tried' and kept "
                             "false, or leave it out")
        if (self.event in RETURN_EVENTS) != (self.reason is not None):
            raise ValueError(f"give a reason for {' and '.join(RETURN_EVENTS)} events, and only for them: "
                             f"{', '.join(FEEDBACK_REASONS[:-1])}, "
                             f"or {FEEDBACK_REASONS[-1]} when the customer gave none")
        if self.occurred_at is not None:
            now = utc_now()  # compared, not converted: a time near year 1 or 9999 cannot be moved to UTC
            at = self.occurred_at if self.occurred_at.tzinfo else self.occurred_at.replace(tzinfo=timezone.utc)
            if not now - FEEDBACK_BACKDATE <= at <= now + FEEDBACK_CLOCK_SKEW:
                raise ValueError(f"occurred_at {at.isoformat()} is not within the last {FEEDBACK_BACKDATE.days} "
                                 f"days: send when it happened, or leave it out for now")
        return self


class FeedbackOut(BaseModel):
    """A stored event, its sizes under your SKUs."""

    id: int
    event: FeedbackEvent
    sku: str
    source: FeedbackSource
    kept: bool | None
    complaint: FitComplaint | None
    reason: ReturnReason | None
    store: str | None
    recommended_sku: str | None
    learning_version: str | None
    advice_arm: str | None
    occurred_at: datetime
    recorded_at: datetime


class StockItem(_In):
    sku: str = Field(min_length=1, max_length=80)
    quantity: int = Field(ge=0, le=1_000_000)


class StockUpdate(_In):
    items: list[StockItem] = Field(min_length=1, max_length=10_000)


class StockOut(BaseModel):
    store: str
    updated: int


class StoreOut(BaseModel):
    code: str
    kiosks: list[str] = Field(description="rig serials")
    size_system: SizeSystem = Field(description="the sizes the store's staff and customers use (the kiosk shows "
                                                "these); set with `footfit stores update --size-system`")


class ImportRowError(BaseModel):
    row: int
    column: str
    message: str


class ImportOut(BaseModel):
    rows: int
    rejected: int
    created: int
    updated: int
    unchanged: int
    scanned: int
    graded: int
    without_interior: int
    stock_rows: int = Field(description="stock quantities set in the tenant's stores")
    errors: list[ImportRowError]
    warnings: list[str]


class ErasureOut(BaseModel):
    deleted: dict[str, int] = Field(description="rows removed per table")


class AuditEntryOut(BaseModel):
    """One entry of the audit log (docs/security.md, "The audit log")."""

    at: datetime
    actor: str = Field(description="the key id (also of a refused request: never its secret), session:<id>, or "
                                   "cli:<command>")
    action: Literal[ACTIONS]
    object_type: str = Field(description="customer, passport, scan or mailing")
    object_id: str = Field(description="its public id; empty for a refused request naming nothing that exists")
    detail: str = Field(description="what for; an entry about a passport starts with its customer ('customer "
                                    "<id>: '); a refusal: status, method and route")


class RegionFitOut(BaseModel):
    region: Region
    verdict: Verdict
    value_mm: float = Field(description="toe: free length in front of the longest toe; others: mean clearance")
    pressure_mm: float = Field(description="mean of the negative clearances in the region (0: nothing presses)")
    good_range_mm: tuple[float, float]
    width_mm: float | None = Field(default=None, description="ball only: room across the ball, the interior's widest "
                                                             "breadth near the insole minus the foot's ball width "
                                                             "(the verdict judges girth and width)")
    width_good_range_mm: tuple[float, float] | None = Field(default=None, description="ball only")


class FootFitOut(BaseModel):
    side: Side
    score: float = Field(description="0..100")
    verdict: Verdict
    regions: list[RegionFitOut]


class SizeFitOut(BaseModel):
    size_id: int
    sku: str
    size_label: str
    size_system: str
    width: str
    score: float
    left: FootFitOut
    right: FootFitOut
    keep_probability: float | None = Field(default=None, ge=0, le=1, description="the chance the customer keeps this "
                                           "size (calibrated on recent feedback; docs/learning.md); null where not "
                                           "judged")


class ModelFitOut(BaseModel):
    """The best size of one model for the pair (the longer foot decides), with one size down and up."""

    model_id: int
    size_id: int
    size_label: str
    size_system: str
    width: str
    sku: str
    score: float
    deciding_foot: Side
    left: FootFitOut
    right: FootFitOut
    size_down: SizeFitOut | None
    size_up: SizeFitOut | None
    fits: bool
    keep_probability: float | None = Field(
        default=None, ge=0, le=1, description="the chance the customer keeps this size: with learning, from what "
                                              "customers kept and returned (calibrated on recent feedback); without "
                                              "(the A/B holdout, or before anything was learned), the hand-set prior's")
    reasons: list[str] = Field(default=[], description="why learning advises this size, in words to say aloud, e.g. "
                                                       "'runs 4 mm short, by 37 customers' tries'; empty when it has "
                                                       "nothing confident to say")
    learning_version: str | None = Field(default=None, description="the learned state the advice came from ('prior': "
                                                                   "none, the hand-set prior); post it back with the "
                                                                   "feedback")
    advice_arm: AdviceArm | None = Field(default=None, description="the customer's A/B arm: 'learning', or 'holdout' "
                                                                  "(the geometry's advice without learning); post it "
                                                                  "back with the feedback")


class RecommendationOut(BaseModel):
    fit: ModelFitOut
    brand: str
    model_code: str
    model_name: str
    category: str
    price: float
    currency: str
    reason: str = Field(description="a sentence a salesperson can say aloud")


class FootTryOnOut(BaseModel):
    fit: FootFitOut
    clearance_mm: list[float] | None = Field(description="signed clearance at each of the foot's points (the "
                                                          "passport's PLY, in order): positive room, negative "
                                                          "pressure; null when asked with per_point=false")
    in_shoe: list[bool] | None = Field(description="false: above the shoe's opening (the leg); null when asked with "
                                                   "per_point=false")


class TryOnOut(BaseModel):
    model_id: int
    size: SizeFitOut
    left: FootTryOnOut
    right: FootTryOnOut


class DrawnFootOut(BaseModel):
    points_mm: list[tuple[float, float, float]] = Field(
        description="the foot's points thinned to at most 3,000 (voxel grid), in the shoe frame as the matcher "
                    "placed the foot (a right foot mirrored)")
    clearance_mm: list[float] = Field(description="signed clearance at each drawn point: positive room, negative "
                                                  "pressure")
    in_shoe: list[bool] = Field(description="false: above the shoe's opening (the leg)")
    points_total: int = Field(description="the foot's points before thinning")


class ShoeRingOut(BaseModel):
    x_mm: float = Field(description="where the cross-section lies along the shoe")
    points_mm: list[tuple[float, float]] = Field(description="(y, z) of the interior wall around the section, a "
                                                             "closed ring")


class TryOnDrawingOut(BaseModel):
    """What a page needs to draw the feet in the shoe; shoe frame: mm, the LEFT shoe, heel counter at x = 0, +x
    toward the toe, insole at z = 0, +y lateral (docs/catalog.md)."""

    inner_length_mm: float
    shoe: list[ShoeRingOut] = Field(description="the interior's cross-sections, heel to toe")
    left: DrawnFootOut
    right: DrawnFootOut


class TryOnDrawnOut(TryOnOut):
    drawing: TryOnDrawingOut | None = Field(default=None, description="with drawing=true: the feet placed in the "
                                                                      "shoe and the shoe's interior, to draw")


# --- learning (api/learning.py), KPIs (api/kpis.py) ---------------------------------------------------------------


class ReliabilityBinOut(BaseModel):
    low: float = Field(description="predicted keep chances in [low, high)")
    high: float
    predicted: float | None = Field(description="their mean (null: no event in the bin)")
    observed: float | None = Field(description="the share of those sizes kept")
    count: int


class CalibrationOut(BaseModel):
    """How well keep chances predicted what customers did (lower is better)."""

    count: int
    brier: float | None
    log_loss: float | None
    bins: list[ReliabilityBinOut]

    @classmethod
    def of(cls, c: Calibration) -> "CalibrationOut":
        def number(x: float) -> float | None:
            return None if x != x else x  # NaN: nothing to say

        return cls(count=c.count, brier=number(c.brier), log_loss=number(c.log_loss),
                   bins=[ReliabilityBinOut(low=b.low, high=b.high, predicted=number(b.predicted),
                                           observed=number(b.observed), count=b.count) for b in c.bins])


class JudgementOut(BaseModel):
    """How a newly learned state was judged against the one in use, on the same recent feedback it never saw."""

    rule: str
    candidate: CalibrationOut
    in_use: CalibrationOut
    in_use_version: str
    adopted: bool


class LearnedVersionOut(BaseModel):
    version: str
    learned_from: str = Field(description="'every tenant' (pooled), or the tenant's name")
    status: Literal[LEARNING_STATUSES]
    in_use: bool
    created_at: datetime
    adopted_at: datetime | None
    events: int = Field(description="feedback events it learned from")
    held_out: int = Field(description="recent events it was judged on")
    compared_with: str = Field(description="the version in use when it was judged ('prior': none)")
    log_loss: float | None
    brier: float | None
    in_use_log_loss: float | None = Field(description="the compared version's on the same events")
    in_use_brier: float | None


class LearningRunOut(BaseModel):
    """One learning run over one scope (every tenant's feedback when pooled, else one tenant's)."""

    learned_from: str = Field(description="'every tenant' (pooled), or the tenant's name")
    outcome: Literal["adopted", "rejected", "unchanged", "too_few_events"]
    version: str | None = Field(description="the state learned (null: too few events)")
    in_use: str = Field(description="the version in use after the run ('prior': none)")
    events: int = Field(description="usable feedback events: learned from and held out")
    held_out: int
    skipped: int = Field(description="events that say nothing the learner reads (a purchase not yet kept or "
                                     "returned, a try without its outcome) or whose size has no interior")
    judgement: JudgementOut | None
    seconds: float
    detail: str


class LearningStatusOut(BaseModel):
    pooled: bool = Field(description="one state learned from every tenant's feedback (setting learning.pooled)")
    interval_hours: float = Field(description="the service learns when the last run is this old (0: never)")
    last_finished_at: datetime | None
    ab_holdout_share: float
    in_use: dict[str, str] = Field(description="per scope ('every tenant', or a tenant's name) the version in use")
    versions: list[LearnedVersionOut] = Field(description="newest first")


Version = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")]
TenantName = Annotated[str, Field(min_length=1, max_length=120)]


class LearningRunIn(_In):
    tenant: TenantName | None = Field(default=None, description="only with learning per tenant (learning.pooled "
                                                                "false): learn this tenant's (default: every tenant's, "
                                                                "each its own)")


class RollbackIn(_In):
    version: Version = Field(description="the adopted version to take out of use; the one adopted before it is used "
                                         "again")
    tenant: TenantName | None = Field(default=None, description="only with learning per tenant: whose version")


class RollbackOut(BaseModel):
    rolled_back: LearnedVersionOut
    in_use: str = Field(description="the version in use now ('prior': none)")


class QualityEntryOut(BaseModel):
    """A size run (model and width fitting) whose feedback disagrees with its interior as the matcher reads it."""

    model_id: int | None = Field(description="null: a model no longer in the catalogue")
    brand: str
    model_code: str
    model_name: str
    width: str
    measure: Literal[MEASURES]
    correction_mm: float = Field(description="how much more room customers feel than the interior's reading, beyond "
                                             "what their category's customers feel (toe room mm; ball and instep: "
                                             "girth room / 2 pi; heel clearance; room across the ball)")
    sd_mm: float
    evidence: float = Field(description="|correction| / SD: the ranking")
    tries: int = Field(description="feedback events on the run")
    customers: int
    said: int = Field(description="of them, complaints and returns saying that way")
    finding: str = Field(description="e.g. 'fits 5 mm shorter than its interior reads: 41 tries, 17 said too short'")


class QualityOut(BaseModel):
    learning_version: str | None = Field(description="the learned state read (null: none adopted yet)")
    learned_from: str
    entries: list[QualityEntryOut] = Field(description="strongest evidence first")


class KpiRowOut(BaseModel):
    group: str = Field(description="the category, brand, store code or A/B arm ('all' without `by`; '(none)' where "
                                   "an event has none: a webshop event's store, an event posted without its arm)")
    period_start: date | None = Field(description="the day, week (Monday) or month the row covers (null: the window)")
    events: int
    visits: int = Field(description="store visits trying a model: a customer's first try of a model on a day")
    first_size_kept: float | None = Field(description="share of those visits whose first size tried was kept")
    purchases: int
    returns: int = Field(description="purchases returned or exchanged, for any reason")
    returns_for_size: int = Field(description="returns and exchanges giving too_small or too_large")
    returns_for_size_per_100: float | None = Field(description="per 100 purchases")
    exchanges: int
    exchanges_per_100: float | None


class KpisOut(BaseModel):
    since: datetime | None
    until: datetime
    by: str | None
    per: str | None
    rows: list[KpiRowOut]
