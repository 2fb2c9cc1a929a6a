"""The learner: from the sizes customers tried, kept and returned to corrections of how the matcher reads each shoe,
each customer's preferences, each category's ideals and a calibrated chance of keeping a size (docs/learning.md).

Pure numpy and scipy: no database, no service, no simulator. `learn(observations, profiles)` fits everything by
MAP; the `LearnedState` it returns (product knowledge, not personal) adjusts the matcher's readings
(`adjusted`), gives the keep chance of any size (`keep_probability`) and says in plain words what it learned of a
shoe (`reasons`); `CustomerPreferences`, returned beside it, is personal data and is kept, exported and erased
with its customers.

The model. The customer perceives each measure of MEASURES (mm, as the matcher reads them at the size tried) as

    perceived = reading + correction(brand, model, width, size) - preference(customer) - shift(category)

and compares it with the profile's ideal in the profile's units: d = (perceived - ideal) / unit. The keep model
(fitcore.fit.keep_model) turns d into the chances of tight / good / loose per measure and of keeping the size.
- correction = brand + model + width fitting (each a Gaussian around the one above, the brand's around 0: a model
  without feedback is read as its brand's, a brand without feedback as its geometry), plus the brand's grading:
  so much per size step away from REFERENCE_LENGTH_MM (brands grade their own way).
- preference: a customer's wish for more toe room, a roomier forefoot (mm of girth) and heel (PREFERENCES),
  around 0.
- shift: how customers of a category (ski boots: of a level) see its profile's ideal, around the hand-set one.
- the keep model's thresholds (scales of the profile's good band), slopes and lapses, around the hand-set profile.
Every prior is Gaussian (LearningPriors). `learn` finds the MAP by L-BFGS on the prior-scaled parameters with an
analytic gradient, each event's likelihood averaged over what is still uncertain about it (its correction's and
its customer's preference's Laplace variance), products first, customers after (docs/learning.md, fitting).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy import optimize, sparse
from scipy.special import expit, logit

from core.errors import ConfigError, InvalidInput
from core.sizes import EU_STEP_MM
from core.vocabulary import FEEDBACK_SOURCES, FIT_DIRECTIONS, REGIONS, RETURN_REASONS
from fitcore.fit.keep_model import (
    OUTCOME_KINDS,
    Calibration,
    MeasureChances,
    Outcomes,
    calibration,
    keep_chance,
    log_likelihood,
    measure_chances,
    softened,
)
from fitcore.fit.profiles import MEASURES, FitProfiles

# A customer's preferences, and what each moves per measure of MEASURES: toe room (mm); forefoot room as mm of
# girth (the ball's value is girth room / 2 pi, its width room follows in the girth/breadth ratio 2.47); heel room.
PREFERENCES = ("toe", "forefoot", "heel")
PREFERENCE_LOADING = np.array([
    [1.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 1.0 / (2.0 * math.pi), 0.0, 0.0, 1.0 / 2.47],
    [0.0, 0.0, 0.0, 1.0, 0.0],
])
REFERENCE_LENGTH_MM = 260.0  # corrections are stated at the size of this nominal foot; grading is per step from it
GRADING_STEP_MM = EU_STEP_MM
# `reasons` speaks of a correction when it is at least this large (mm, per measure) and twice its SD
REASON_MIN_MM = (2.0, 0.5, 1.0, 1.0, 1.0)
_REASON_WORDS = (("runs {mm:.0f} mm short", "runs {mm:.0f} mm long"),
                 ("tight around the ball", "roomy around the ball"),
                 ("low over the instep", "roomy over the instep"),
                 ("snug at the heel", "loose at the heel"),
                 ("narrow across the ball", "wide across the ball"))
_MEASURES_OF_REGION = {region: tuple(m for m, name in enumerate(MEASURES) if name.split("_")[0] == region)
                       for region in REGIONS}  # the ball: its girth and its width
PASSES = 2  # fits of the products and categories, each with the uncertainty the one before left (learn)
MAX_ITERATIONS = 2000  # L-BFGS iterations per pass
FTOL, GTOL = 1e-8, 1e-3  # L-BFGS stops: relative change of the objective, largest prior-scaled gradient
_M = len(MEASURES)
_REGION_MEASURES = np.array([[m in _MEASURES_OF_REGION[r] for m in range(_M)] for r in REGIONS])  # (REGIONS, M)


# --- what the learner reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitObservation:
    """One size a customer tried in a store or bought in the webshop, and what became of it."""

    customer: str  # an opaque key of the customer (personal: the preference learned from it is personal data)
    brand: str
    model: str  # the brand's model code
    width: str  # width fitting
    category: str  # with `level` (ski boots), selects the fit profile
    values_mm: tuple[float, ...]  # the matcher's readings at the size, per MEASURES (the deciding foot)
    nominal_length_mm: float  # the nominal foot length of the size's label (core.sizes)
    source: str  # FEEDBACK_SOURCES
    at: datetime
    kept: bool
    complaint_region: str | None = None  # when not kept: where it was wrong (REGIONS)...
    complaint_direction: str | None = None  # ...and which way (FIT_DIRECTIONS)
    return_reason: str | None = None  # a webshop return's reason (RETURN_REASONS); None: none given
    level: str = ""

    def __post_init__(self):
        values = tuple(float(v) for v in np.asarray(self.values_mm, dtype=np.float64).ravel())
        object.__setattr__(self, "values_mm", values)
        problem = self._problem()
        if problem:
            raise InvalidInput(f"feedback of customer {self.customer!r} on {self.brand} {self.model} "
                               f"({self.width}): {problem}")

    def _problem(self) -> str | None:
        if len(self.values_mm) != _M or not np.isfinite(self.values_mm).all():
            return f"values_mm needs {_M} finite readings ({', '.join(MEASURES)}), got {self.values_mm}"
        if self.source not in FEEDBACK_SOURCES:
            return f"source {self.source!r} unknown: use one of {', '.join(FEEDBACK_SOURCES)}"
        if (self.complaint_region is None) != (self.complaint_direction is None):
            return "a complaint needs both its region and its direction"
        if self.complaint_region is not None and self.complaint_region not in REGIONS:
            return f"complaint region {self.complaint_region!r} unknown: use one of {', '.join(REGIONS)}"
        if self.complaint_direction is not None and self.complaint_direction not in FIT_DIRECTIONS:
            return f"complaint direction {self.complaint_direction!r} unknown: use one of {', '.join(FIT_DIRECTIONS)}"
        if self.return_reason is not None and self.return_reason not in RETURN_REASONS:
            return f"return reason {self.return_reason!r} unknown: use one of {', '.join(RETURN_REASONS)} or none"
        if self.kept and (self.complaint_region or self.return_reason):
            return "a kept size has no complaint and no return reason"
        if self.complaint_region and self.return_reason:
            return "give a complaint (a try) or a return reason (a purchase), not both"
        if not self.nominal_length_mm > 0:
            return f"nominal_length_mm must be positive, got {self.nominal_length_mm}"
        return None

    def outcome(self) -> tuple[int, tuple[int, ...]]:
        """(kind index into OUTCOME_KINDS, the measures it names)."""
        if self.kept:
            return OUTCOME_KINDS.index("kept"), ()
        if self.complaint_region is not None:
            return OUTCOME_KINDS.index(self.complaint_direction), _MEASURES_OF_REGION[self.complaint_region]
        if self.return_reason is not None:  # too small: some measure tight; too large: none tight, some loose
            kind = "tight" if self.return_reason == "too_small" else "loose"
            return OUTCOME_KINDS.index(kind), tuple(range(_M))
        return OUTCOME_KINDS.index("not_kept"), ()


@dataclass(frozen=True)
class SizeKeys:
    """Which shoe and size each of P readings belongs to: what the learned state needs to adjust them."""

    brand: Sequence[str]
    model: Sequence[str]
    width: Sequence[str]
    category: Sequence[str]  # category_key of each size's model
    nominal_length_mm: np.ndarray  # (P,)
    profile: np.ndarray  # (P,) row of FitProfiles (FitProfiles.index_for the model's category and level)

    @classmethod
    def of(cls, observations: Sequence[FitObservation], profiles: FitProfiles) -> "SizeKeys":
        return cls([o.brand for o in observations], [o.model for o in observations],
                   [o.width for o in observations], [category_key(o.category, o.level) for o in observations],
                   np.array([o.nominal_length_mm for o in observations], dtype=np.float64),
                   np.array([profiles.index_for(o.category, o.level) for o in observations], dtype=np.int64))


def category_key(category: str, level: str = "") -> str:
    """What a shift of the ideals is learned per: the category, and for ski boots (whose profile follows the
    level) the category and level, e.g. "ski/expert"."""
    return f"{category}/{level}" if level else category


# --- what the learner writes ----------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LearningPriors(_Frozen):
    """The Gaussian priors: SDs per measure of MEASURES (mm) unless said otherwise (docs/learning.md, priors)."""

    brand_sd_mm: tuple[float, ...] = (3.0, 0.6, 1.0, 1.0, 1.2)  # a brand's correction around the geometry
    model_sd_mm: tuple[float, ...] = (4.0, 0.8, 1.2, 1.2, 1.5)  # a model's around its brand's
    run_sd_mm: tuple[float, ...] = (1.0, 0.4, 0.5, 0.5, 0.8)  # a width fitting's around its model's
    grading_sd_mm: tuple[float, ...] = (0.5, 0.15, 0.2, 0.2, 0.3)  # a brand's grading, per size step
    category_sd_mm: tuple[float, ...] = (3.0, 0.5, 1.0, 1.0, 1.0)  # a category's ideal around the profile's
    preference_sd_mm: tuple[float, ...] = (3.0, 3.0, 1.0)  # a customer's, per PREFERENCES
    band_scale_sd: float = 1.0  # log of the scale of the profile's good band (prior: the band as set)
    slope: float = 4.0  # the keep model's slope, per unit of deviation...
    slope_sd: float = 1.0  # ...and the SD of its log
    lapse: tuple[float, ...] = (0.02, 0.08)  # per FEEDBACK_SOURCES: the chance a size is kept though not right
    lapse_sd: float = 1.0  # of its logit


class Correction(_Frozen):
    """A learned shift per measure of MEASURES, with its SD and the evidence behind it."""

    mm: tuple[float, ...]
    sd_mm: tuple[float, ...]
    events: int
    customers: int


class BrandLearned(_Frozen):
    brand: str
    correction: Correction  # added to the matcher's reading at REFERENCE_LENGTH_MM
    grading_mm_per_step: tuple[float, ...]  # added per size step (GRADING_STEP_MM) above REFERENCE_LENGTH_MM
    grading_sd_mm: tuple[float, ...]


class ModelLearned(_Frozen):
    brand: str
    model: str
    correction: Correction  # the brand's and the model's together


class RunLearned(_Frozen):
    brand: str
    model: str
    width: str
    correction: Correction  # brand, model and width fitting together


class CategoryLearned(_Frozen):
    category: str  # category_key
    shift: Correction  # the ideal as the category's customers see it: the profile's ideal + shift


class KeepParameters(_Frozen):
    band_lo_scale: tuple[float, ...]  # per measure: the tight threshold is (lo - ideal) / unit times this
    band_hi_scale: tuple[float, ...]  # the loose threshold: (hi - ideal) / unit times this
    slope: tuple[float, ...]  # per measure, per unit of deviation
    lapse: tuple[float, ...]  # per FEEDBACK_SOURCES


@dataclass(frozen=True)
class KeepTerms:
    """What a learned state adds to the matcher's readings of P sizes to give their keep chances
    (LearnedState.keep_terms), each (P, MEASURES)."""

    offset_mm: np.ndarray  # correction - preference - category shift: what the customer perceives beyond the reading
    t_lo: np.ndarray  # the keep model's thresholds, in the profile's units
    t_hi: np.ndarray
    slope: np.ndarray  # per unit, softened by how unsure the offset is


class LearnedState(_Frozen):
    """What the learner knows of the products: per brand, model and width fitting corrections, per category shifts
    of the ideals, the keep model. No personal data. `version` is a hash of the content: the same events learn the
    same version."""

    measures: tuple[str, ...] = MEASURES
    priors: LearningPriors
    events: int
    brands: tuple[BrandLearned, ...]
    models: tuple[ModelLearned, ...]
    runs: tuple[RunLearned, ...]
    categories: tuple[CategoryLearned, ...]
    keep: KeepParameters
    version: str = ""

    def content_hash(self) -> str:
        return hashlib.sha256(self.model_copy(update={"version": ""}).model_dump_json().encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> "LearnedState":
        """A state written by `to_json`, checked: its measures must be the matcher's and its content its version."""
        try:
            state = cls.model_validate_json(text)
        except ValidationError as e:
            raise ConfigError(f"not a learned state: {e}; learn again from the feedback events") from None
        if state.measures != MEASURES:
            raise ConfigError(f"the learned state judges measures {state.measures}, the matcher {MEASURES}: it was "
                              f"learned by another version of footfit; learn again")
        if state.version != state.content_hash():
            raise ConfigError(f"learned state {state.version}: its content does not match its version (edited or "
                              f"damaged); learn again or restore the stored copy")
        return state

    # --- using it ---

    def corrections(self, keys: SizeKeys) -> tuple[np.ndarray, np.ndarray]:
        """(mm, sd_mm), each (P, MEASURES): what to add to the matcher's readings of these sizes, from the most
        specific level learned (width fitting, else model, else brand, else nothing: the geometry), with the
        brand's grading for the size."""
        p = self.priors
        run_var, model_var, brand_var = (np.square(s) for s in (p.run_sd_mm, p.model_sd_mm, p.brand_sd_mm))
        shoes = list(zip(keys.brand, keys.model, keys.width))
        distinct = {shoe: i for i, shoe in enumerate(dict.fromkeys(shoes))}  # look each shoe up once
        n = len(distinct)
        mm, var = np.zeros((n, _M)), np.tile(run_var + model_var + brand_var, (n, 1))
        grading, grading_var = np.zeros((n, _M)), np.tile(np.square(p.grading_sd_mm), (n, 1))
        for i, shoe in enumerate(distinct):
            brand, model, _ = shoe
            if brand in self._brands:
                grading[i] = self._brands[brand].grading_mm_per_step
                grading_var[i] = np.square(self._brands[brand].grading_sd_mm)
            if shoe in self._runs:
                mm[i], var[i] = self._runs[shoe].correction.mm, np.square(self._runs[shoe].correction.sd_mm)
            elif (brand, model) in self._models:
                c = self._models[brand, model].correction
                mm[i], var[i] = c.mm, np.square(c.sd_mm) + run_var
            elif brand in self._brands:
                c = self._brands[brand].correction
                mm[i], var[i] = c.mm, np.square(c.sd_mm) + run_var + model_var
        at = np.array([distinct[shoe] for shoe in shoes], dtype=np.int64)
        steps = (np.asarray(keys.nominal_length_mm, dtype=np.float64)[:, None] - REFERENCE_LENGTH_MM) / GRADING_STEP_MM
        return mm[at] + grading[at] * steps, np.sqrt(var[at] + grading_var[at] * steps ** 2)

    def adjusted(self, values_mm: np.ndarray, keys: SizeKeys, profiles: FitProfiles,
                 preference: "CustomerPreference | None" = None) -> np.ndarray:
        """(P, MEASURES) the readings as this customer (None: a new customer) perceives them against the hand-set
        profile: score them with the profile as before (fitcore.fit.fit_model.scores)."""
        return self._perceived(values_mm, keys, profiles, *self._preference(preference, len(keys.brand)))[0]

    def keep_probability(self, values_mm: np.ndarray, keys: SizeKeys, profiles: FitProfiles,
                         preference: "CustomerPreference | None" = None, source: str | None = None) -> np.ndarray:
        """(P,) the chance the customer (None: a new customer) keeps each size, averaged over what is not known
        for sure (the corrections, the customer's preference); `source` adds that source's lapse (a webshop buyer
        keeps some sizes that are not right), None gives the chance that the size is right."""
        lapse = 0.0 if source is None else self.keep.lapse[FEEDBACK_SOURCES.index(source)]
        chances = self._chances(values_mm, keys, profiles, *self._preference(preference, len(keys.brand)))
        return keep_chance(chances, lapse)

    def keep_terms(self, keys: SizeKeys, profiles: FitProfiles,
                   preference: "CustomerPreference | None" = None) -> KeepTerms:
        """Per size, everything its keep chance needs besides the matcher's readings, for a kernel that reads the
        sizes itself (fitcore.fit.mailing): `keep_probability` of readings v is keep_chance(measure_chances((v +
        offset_mm - ideal) / unit, t_lo, t_hi, slope), lapse) with the profile's ideal and unit."""
        offset_mm, var = self._perceived(np.zeros((len(keys.brand), _M)), keys, profiles,
                                         *self._preference(preference, len(keys.brand)))
        return KeepTerms(offset_mm, *self._keep_shape(np.asarray(keys.profile, dtype=np.int64), profiles, var))

    def reasons(self, brand: str, model: str, width: str) -> tuple[str, ...]:
        """What learning says of this shoe in plain words, e.g. "runs 4 mm short, by 37 customers' tries": its
        confident corrections (at least REASON_MIN_MM and twice their SD), from the most specific level learned
        (width fitting, model, brand), with the tries of the model's customers (all its width fittings), or of the
        brand's when only the brand has feedback. Nothing when nothing is confident."""
        learned = self._runs.get((brand, model, width)) or self._models.get((brand, model))
        by_brand = learned is None
        if by_brand:
            learned = self._brands.get(brand)
            if learned is None:
                return ()
        c = learned.correction
        customers = c.customers if by_brand else self._models[brand, model].correction.customers
        by = f"by {customers} customer's tries" if customers == 1 else f"by {customers} customers' tries"
        like = f" like other {brand} shoes" if by_brand else ""
        return tuple(f"{_REASON_WORDS[m][mm > 0].format(mm=abs(mm))}{like}, {by}"
                     for m, (mm, sd) in enumerate(zip(c.mm, c.sd_mm))
                     if abs(mm) >= REASON_MIN_MM[m] and abs(mm) >= 2.0 * sd)

    def _preference(self, preference: "CustomerPreference | None", count: int) -> tuple[np.ndarray, np.ndarray]:
        """(mm, mm^2), each (count, MEASURES): what a customer's preference takes off each reading and its
        variance; a new customer's is 0 with the prior's variance."""
        if preference is None:
            mm, sd = np.zeros(len(PREFERENCES)), np.asarray(self.priors.preference_sd_mm)
        else:
            mm, sd = np.asarray(preference.mm), np.asarray(preference.sd_mm)
        return np.tile(_loaded(mm), (count, 1)), np.tile(_loaded(sd ** 2, PREFERENCE_LOADING ** 2), (count, 1))

    def _perceived(self, values_mm: np.ndarray, keys: SizeKeys, profiles: FitProfiles, preference_mm: np.ndarray,
                   preference_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(perceived values (P, MEASURES) mm, their variance mm^2)."""
        correction, correction_sd = self.corrections(keys)
        shift = np.zeros((len(self.categories) + 1, _M))  # last row: a category not learned
        shift_var = np.tile(np.square(self.priors.category_sd_mm), (len(self.categories) + 1, 1))
        for i, learned in enumerate(self.categories):
            shift[i], shift_var[i] = learned.shift.mm, np.square(learned.shift.sd_mm)
        row = np.array([self._category_row.get(c, len(self.categories)) for c in keys.category], dtype=np.int64)
        values = np.asarray(values_mm, dtype=np.float64)
        return (values + correction - preference_mm - shift[row],
                correction_sd ** 2 + preference_var + shift_var[row])

    def _chances(self, values_mm: np.ndarray, keys: SizeKeys, profiles: FitProfiles, preference_mm: np.ndarray,
                 preference_var: np.ndarray) -> MeasureChances:
        perceived, var = self._perceived(values_mm, keys, profiles, preference_mm, preference_var)
        q = np.asarray(keys.profile, dtype=np.int64)
        t_lo, t_hi, k = self._keep_shape(q, profiles, var)
        return measure_chances((perceived - profiles.ideal[q]) / profiles.unit[q], t_lo, t_hi, k)

    def _keep_shape(self, q: np.ndarray, profiles: FitProfiles,
                    var: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t_lo, t_hi, slope), each (P, MEASURES): the keep model's thresholds for profile rows q and its slope
        softened by the perceived values' variance (mm^2)."""
        unit = profiles.unit[q]
        t_lo, t_hi = _thresholds(profiles, q, self.keep)
        return t_lo, t_hi, np.exp(softened(np.log(self.keep.slope), var / unit ** 2))

    @cached_property
    def _runs(self) -> dict[tuple[str, str, str], RunLearned]:
        return {(r.brand, r.model, r.width): r for r in self.runs}

    @cached_property
    def _models(self) -> dict[tuple[str, str], ModelLearned]:
        return {(m.brand, m.model): m for m in self.models}

    @cached_property
    def _brands(self) -> dict[str, BrandLearned]:
        return {b.brand: b for b in self.brands}

    @cached_property
    def _category_row(self) -> dict[str, int]:
        return {c.category: i for i, c in enumerate(self.categories)}


class CustomerPreference(_Frozen):
    """One customer's learned preferences (personal data), per PREFERENCES: more room wanted than the profile's
    ideal (mm; the forefoot's in mm of girth), with SDs and the events behind them."""

    customer: str
    mm: tuple[float, ...]
    sd_mm: tuple[float, ...]
    events: int


class CustomerPreferences(_Frozen):
    """Every customer's learned preferences: personal data, stored inside the tenant, exported and erased with its
    customer (`without`)."""

    state_version: str  # the LearnedState learned with them
    customers: tuple[CustomerPreference, ...]

    def of(self, customer: str) -> CustomerPreference | None:
        return self._by_key.get(customer)

    def without(self, customer: str) -> "CustomerPreferences":
        """These preferences with one customer's erased."""
        return CustomerPreferences(state_version=self.state_version,
                                   customers=tuple(c for c in self.customers if c.customer != customer))

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> "CustomerPreferences":
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            raise ConfigError(f"not learned customer preferences: {e}; learn again from the feedback events") from None

    @cached_property
    def _by_key(self) -> dict[str, CustomerPreference]:
        return {c.customer: c for c in self.customers}


def _loaded(preference: np.ndarray, loading: np.ndarray = PREFERENCE_LOADING) -> np.ndarray:
    """(..., MEASURES) what preferences (..., PREFERENCES) move per measure. einsum, not matmul: a BLAS call on
    thousands of rows starts threads that keep spinning and take a second core's time."""
    return np.einsum("...p,pm->...m", preference, loading)


def _unloaded(per_measure: np.ndarray) -> np.ndarray:
    """(..., PREFERENCES) the transpose of `_loaded`: a gradient by measure as a gradient by preference."""
    return np.einsum("...m,pm->...p", per_measure, PREFERENCE_LOADING)


def _thresholds(profiles: FitProfiles, q: np.ndarray, keep: KeepParameters) -> tuple[np.ndarray, np.ndarray]:
    """(t_lo, t_hi), each (P, MEASURES) in units: the profile's good band around its ideal, scaled."""
    base_lo = (profiles.lo[q] - profiles.ideal[q]) / profiles.unit[q]
    base_hi = (profiles.hi[q] - profiles.ideal[q]) / profiles.unit[q]
    return base_lo * np.asarray(keep.band_lo_scale), base_hi * np.asarray(keep.band_hi_scale)


# --- learning ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Learned:
    state: LearnedState
    preferences: CustomerPreferences
    iterations: int
    converged: bool


def learn(observations: Sequence[FitObservation], profiles: FitProfiles, priors: LearningPriors = LearningPriors(),
          passes: int = PASSES) -> Learned:
    """The model (module docstring) learned from these observations, in two stages (docs/learning.md, fitting):

    1. the products, the categories and the keep model, with every event's likelihood averaged over its customer's
       preference as the prior has it (a population of customers, so a handful of events per customer cannot be
       explained away by their preferences) and over the uncertainty its correction had after the pass before;
    2. each customer's preference given all that, by MAP.

    Laplace gives every estimate's SD. Deterministic: the same observations in the same order learn the same state.
    """
    design = _Design.of(observations, profiles)
    problem = _Problem(design, profiles, priors)
    prior = _Uncertainty.prior(design, priors)

    def products_uncertainty(z: np.ndarray) -> _Uncertainty:
        """Laplace at z for the products and categories, the customers' preferences as their prior has them."""
        return replace(_Uncertainty.laplace(design, priors, problem.correction_gradients(z)),
                       preference=prior.preference)

    z, iterations, converged = np.zeros(problem.size), 0, True
    problem.variance_mm2 = prior.per_event(design)  # the first pass starts from what the events leave of the priors
    for _ in range(passes):
        problem.variance_mm2 = products_uncertainty(z).per_event(design)
        z, steps, done = problem.fit(z, [name for name in problem.blocks if name != "customer"])
        iterations, converged = iterations + steps, converged and done
    uncertainty = products_uncertainty(z)
    problem.variance_mm2 = replace(uncertainty, preference=np.zeros_like(prior.preference)).per_event(design)
    z, steps, done = problem.fit(z, ["customer"])
    preference = _Uncertainty.laplace(design, priors, problem.correction_gradients(z)).preference
    theta = problem.unpack(z)
    state = _state(design, priors, theta, uncertainty)
    state = state.model_copy(update={"version": state.content_hash()})
    customers = _preferences(design, theta, replace(uncertainty, preference=preference))
    return Learned(state, CustomerPreferences(state_version=state.version, customers=customers),
                   iterations + steps, converged and done)


def evaluate(state: LearnedState, preferences: CustomerPreferences | None, observations: Sequence[FitObservation],
             profiles: FitProfiles) -> Calibration:
    """How well the state's keep chances (with each event's source's lapse and its customer's preferences, when
    learned) predict whether these sizes were kept: Brier score, log loss, reliability table. Evaluate on
    observations the state did not learn from (`split_recent`)."""
    keys = SizeKeys.of(observations, profiles)
    preference_mm, preference_var = state._preference(None, len(observations))
    for i, o in enumerate(observations):
        known = preferences.of(o.customer) if preferences is not None else None
        if known is not None:
            preference_mm[i], preference_var[i] = (a[0] for a in state._preference(known, 1))
    values = np.array([o.values_mm for o in observations], dtype=np.float64).reshape(-1, _M)
    lapse = np.array([state.keep.lapse[FEEDBACK_SOURCES.index(o.source)] for o in observations])
    predicted = keep_chance(state._chances(values, keys, profiles, preference_mm, preference_var), lapse)
    return calibration(predicted, np.array([o.kept for o in observations], dtype=bool))


def split_recent(observations: Sequence[FitObservation],
                 held_out: float = 0.2) -> tuple[list[FitObservation], list[FitObservation]]:
    """(older, most recent `held_out` share) by time: learn on the first, judge a new state on the second."""
    ordered = sorted(observations, key=lambda o: o.at)
    cut = len(ordered) - int(round(held_out * len(ordered)))
    return ordered[:cut], ordered[cut:]


@dataclass(frozen=True)
class _Design:
    """The observations as arrays; brands, models, runs, customers and categories numbered in sorted order."""

    brands: list[str]
    models: list[tuple[str, str]]
    runs: list[tuple[str, str, str]]
    customers: list[str]
    categories: list[str]  # category_key
    brand: np.ndarray  # (E,) per event, index into brands...
    model: np.ndarray
    run: np.ndarray
    customer: np.ndarray
    category: np.ndarray  # ...into categories
    profile_row: np.ndarray  # (E,) row of FitProfiles
    model_brand: np.ndarray  # (models,) index into brands
    run_model: np.ndarray  # (runs,) index into models
    values_mm: np.ndarray  # (E, MEASURES)
    steps: np.ndarray  # (E,) size steps from REFERENCE_LENGTH_MM
    source: np.ndarray  # (E,) index into FEEDBACK_SOURCES
    outcomes: Outcomes

    @classmethod
    def of(cls, observations: Sequence[FitObservation], profiles: FitProfiles) -> "_Design":
        def numbered(keys: list) -> tuple[list, np.ndarray]:
            distinct = sorted(set(keys))
            at = {k: i for i, k in enumerate(distinct)}
            return distinct, np.array([at[k] for k in keys], dtype=np.int64)

        obs = list(observations)
        brands, brand = numbered([o.brand for o in obs])
        models, model = numbered([(o.brand, o.model) for o in obs])
        runs, run = numbered([(o.brand, o.model, o.width) for o in obs])
        customers, customer = numbered([o.customer for o in obs])
        categories, category = numbered([category_key(o.category, o.level) for o in obs])
        at_brand = {b: i for i, b in enumerate(brands)}
        at_model = {m: i for i, m in enumerate(models)}
        outcome = [o.outcome() for o in obs]
        named = np.zeros((len(obs), _M), dtype=bool)
        for i, (_, measures) in enumerate(outcome):
            named[i, list(measures)] = True
        return cls(
            brands, models, runs, customers, categories, brand, model, run, customer, category,
            np.array([profiles.index_for(o.category, o.level) for o in obs], dtype=np.int64),
            np.array([at_brand[b] for b, _ in models], dtype=np.int64),
            np.array([at_model[b, m] for b, m, _ in runs], dtype=np.int64),
            np.array([o.values_mm for o in obs], dtype=np.float64).reshape(-1, _M),
            (np.array([o.nominal_length_mm for o in obs], dtype=np.float64) - REFERENCE_LENGTH_MM) / GRADING_STEP_MM,
            np.array([FEEDBACK_SOURCES.index(o.source) for o in obs], dtype=np.int64),
            Outcomes.of(np.array([kind for kind, _ in outcome], dtype=np.int64), named,
                        np.array([o.complaint_region is not None for o in obs], dtype=bool), _REGION_MEASURES))

    @cached_property
    def members(self) -> dict[str, sparse.csr_matrix]:
        """Per level, the (n, E) 0/1 matrix of which events belong to each brand, model, ...: `members[level] @ x`
        sums x (E, ...) per member."""
        def member(index: np.ndarray, n: int) -> sparse.csr_matrix:
            e = len(index)
            return sparse.csr_matrix((np.ones(e), (index, np.arange(e))), shape=(n, e))

        return {"brand": member(self.brand, len(self.brands)), "model": member(self.model, len(self.models)),
                "run": member(self.run, len(self.runs)), "customer": member(self.customer, len(self.customers)),
                "category": member(self.category, len(self.categories))}

    def customers_per(self, level: str) -> np.ndarray:
        """(n,) how many distinct customers have events at each member of a level."""
        index = getattr(self, level)
        n = self.members[level].shape[0]
        pairs = np.unique(index * max(1, len(self.customers)) + self.customer)
        return np.bincount(pairs // max(1, len(self.customers)), minlength=n)


@dataclass
class _Problem:
    """The negative log posterior of the prior-scaled parameters z (theta = prior mean + prior SD * z, so every
    parameter's prior is a unit Gaussian and L-BFGS sees a well-scaled problem) and its gradient."""

    design: _Design
    profiles: FitProfiles
    priors: LearningPriors
    blocks: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False)  # name -> (prior mean, prior SD)
    variance_mm2: np.ndarray | None = None  # (E, MEASURES) the uncertainty each event's likelihood averages over

    def __post_init__(self):
        d, p = self.design, self.priors

        def per(n: int, sd: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((n, len(sd))), np.tile(np.asarray(sd, dtype=np.float64), (n, 1))

        self.blocks = {
            "brand": per(len(d.brands), p.brand_sd_mm), "grading": per(len(d.brands), p.grading_sd_mm),
            "model": per(len(d.models), p.model_sd_mm), "run": per(len(d.runs), p.run_sd_mm),
            "category": per(len(d.categories), p.category_sd_mm),
            "customer": per(len(d.customers), p.preference_sd_mm),
            "band_lo": (np.zeros(_M), np.full(_M, p.band_scale_sd)),
            "band_hi": (np.zeros(_M), np.full(_M, p.band_scale_sd)),
            "slope": (np.full(_M, math.log(p.slope)), np.full(_M, p.slope_sd)),
            "lapse": (logit(np.asarray(p.lapse, dtype=np.float64)), np.full(len(FEEDBACK_SOURCES), p.lapse_sd)),
        }
        q = d.profile_row
        self._ideal, self._unit = self.profiles.ideal[q], self.profiles.unit[q]
        self._base_lo = (self.profiles.lo[q] - self._ideal) / self._unit
        self._base_hi = (self.profiles.hi[q] - self._ideal) / self._unit

    @property
    def size(self) -> int:
        return sum(mean.size for mean, _ in self.blocks.values())

    def unpack(self, z: np.ndarray) -> dict[str, np.ndarray]:
        theta, at = {}, 0
        for name, (mean, sd) in self.blocks.items():
            theta[name] = mean + sd * z[at:at + mean.size].reshape(mean.shape)
            at += mean.size
        return theta

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = self.unpack(z)
        terms, t_lo, t_hi, slope_share = self._terms(theta)
        d, members = self.design, self.design.members
        by_c = terms.d / self._unit  # d log L / d correction (mm), per event and measure
        gradient = {
            "brand": members["brand"] @ by_c, "grading": members["brand"] @ (by_c * d.steps[:, None]),
            "model": members["model"] @ by_c, "run": members["run"] @ by_c,
            "category": -(members["category"] @ by_c),
            "customer": -_unloaded(members["customer"] @ by_c),
            "band_lo": (terms.t_lo * t_lo).sum(axis=0), "band_hi": (terms.t_hi * t_hi).sum(axis=0),
            "slope": (terms.log_k * slope_share).sum(axis=0),
            "lapse": np.bincount(d.source, weights=terms.lapse_logit, minlength=len(FEEDBACK_SOURCES)),
        }
        flat = np.concatenate([(-np.asarray(gradient[name]) * sd).ravel() for name, (_, sd) in self.blocks.items()])
        return float(-terms.value.sum() + 0.5 * np.square(z).sum()), flat + z

    def _terms(self, theta: dict[str, np.ndarray]):
        """(the log-likelihood terms, t_lo, t_hi, d log_k / d slope) of every event at theta: the model of the
        module docstring, the slope softened by each event's variance."""
        d = self.design
        correction = (theta["brand"][d.brand] + theta["model"][d.model] + theta["run"][d.run]
                      + theta["grading"][d.brand] * d.steps[:, None])
        perceived = (d.values_mm + correction - _loaded(theta["customer"][d.customer])
                     - theta["category"][d.category])
        t_lo = self._base_lo * np.exp(theta["band_lo"])
        t_hi = self._base_hi * np.exp(theta["band_hi"])
        deviation = (perceived - self._ideal) / self._unit
        variance = 0.0 if self.variance_mm2 is None else self.variance_mm2 / self._unit ** 2
        log_k = softened(theta["slope"], variance)
        terms = log_likelihood(deviation, t_lo, t_hi, log_k, theta["lapse"][d.source], d.outcomes)
        return terms, t_lo, t_hi, np.exp(2.0 * (log_k - theta["slope"]))  # d log_k / d slope

    def fit(self, z: np.ndarray, free: list[str]) -> tuple[np.ndarray, int, bool]:
        """(the MAP over the `free` blocks, the others held at z; L-BFGS iterations; converged)."""
        chosen = np.concatenate([np.full(mean.size, name in free) for name, (mean, _) in self.blocks.items()])
        if not chosen.any():
            return z, 0, True

        def objective(part: np.ndarray) -> tuple[float, np.ndarray]:
            whole = z.copy()
            whole[chosen] = part
            value, gradient = self(whole)
            return value, gradient[chosen]

        result = optimize.minimize(objective, z[chosen], jac=True, method="L-BFGS-B",
                                   options=dict(maxiter=MAX_ITERATIONS, maxcor=10, ftol=FTOL, gtol=GTOL))
        out = z.copy()
        out[chosen] = result.x
        return out, int(result.nit), bool(result.success)

    def correction_gradients(self, z: np.ndarray) -> np.ndarray:
        """(E, MEASURES) each event's d log L / d correction at z: the evidence for the Laplace SDs."""
        return self._terms(self.unpack(z))[0].d / self._unit


# --- uncertainty and the state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Uncertainty:
    """Posterior covariances (mm^2) of what was learned: Laplace, with the information of the events estimated
    by the sum of their gradients' outer products (positive semi-definite by construction) at the MAP."""

    brand: np.ndarray  # (B, M, M) the brands' corrections
    model: np.ndarray  # (models, M, M) brand + model
    run: np.ndarray  # (runs, M, M) brand + model + width fitting
    grading: np.ndarray  # (B, M) variances of the brands' grading per step
    shift: np.ndarray  # (categories, M) variances of the categories' shifts
    preference: np.ndarray  # (C, PREFERENCES) variances of the customers' preferences

    @classmethod
    def prior(cls, design: _Design, priors: LearningPriors) -> "_Uncertainty":
        def tiled(variance: np.ndarray, n: int) -> np.ndarray:
            return np.tile(variance, (n, 1) if variance.ndim == 1 else (n, 1, 1))

        brand, model, run = (np.square(s) for s in (priors.brand_sd_mm, priors.model_sd_mm, priors.run_sd_mm))
        return cls(tiled(np.diag(brand), len(design.brands)), tiled(np.diag(brand + model), len(design.models)),
                   tiled(np.diag(brand + model + run), len(design.runs)),
                   tiled(np.square(priors.grading_sd_mm), len(design.brands)),
                   tiled(np.square(priors.category_sd_mm), len(design.categories)),
                   tiled(np.square(priors.preference_sd_mm), len(design.customers)))

    @classmethod
    def laplace(cls, design: _Design, priors: LearningPriors, per_event: np.ndarray) -> "_Uncertainty":
        """From each event's d log L / d correction (E, MEASURES) at the MAP."""
        m = design.members
        brand, model, run = _hierarchy_covariances(design, priors, _information(m["run"], per_event))
        return cls(brand, model, run,
                   _block_variance(_information(m["brand"], per_event * design.steps[:, None]), priors.grading_sd_mm),
                   _block_variance(_information(m["category"], -per_event), priors.category_sd_mm),
                   _block_variance(_information(m["customer"], -_unloaded(per_event)),
                                   priors.preference_sd_mm))

    def per_event(self, design: _Design) -> np.ndarray:
        """(E, MEASURES) mm^2: the variance of each event's perceived value from all that was learned."""
        return (np.diagonal(self.run, axis1=1, axis2=2)[design.run]
                + self.grading[design.brand] * design.steps[:, None] ** 2
                + _loaded(self.preference[design.customer], PREFERENCE_LOADING ** 2) + self.shift[design.category])


def _information(members: sparse.csr_matrix, gradients: np.ndarray) -> np.ndarray:
    """(n, k, k) per member the sum of its events' gradient outer products (k = gradients' columns)."""
    k = gradients.shape[1]
    outer = (gradients[:, :, None] * gradients[:, None, :]).reshape(len(gradients), k * k)
    return np.asarray(members @ outer).reshape(-1, k, k)


def _hierarchy_covariances(design: _Design, priors: LearningPriors,
                           run_information: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior covariances of each brand's, model's and run's correction by Gaussian belief propagation on the
    tree brand -> model -> run (exact for Gaussian evidence; the customers' preferences and the categories' shifts
    held at their MAP): the runs' information goes up to the brands, and each level's prior comes back down."""
    inv = np.linalg.inv

    def message(information: np.ndarray, sd: tuple[float, ...]) -> np.ndarray:
        """The information on a parent from a child's (the child = the parent + N(0, sd^2))."""
        return information - information @ inv(information + np.diag(1.0 / np.square(sd))) @ information

    def symmetric(m: np.ndarray) -> np.ndarray:
        return 0.5 * (m + np.swapaxes(m, -1, -2))

    from_run = message(run_information, priors.run_sd_mm)
    model_information = np.zeros((len(design.models), _M, _M))
    np.add.at(model_information, design.run_model, from_run)
    from_model = message(model_information, priors.model_sd_mm)
    brand_precision = np.tile(np.diag(1.0 / np.square(priors.brand_sd_mm)), (len(design.brands), 1, 1))
    np.add.at(brand_precision, design.model_brand, from_model)
    model_precision = inv(symmetric(inv(brand_precision[design.model_brand] - from_model))
                          + np.diag(np.square(priors.model_sd_mm))) + model_information
    run_precision = inv(symmetric(inv(model_precision[design.run_model] - from_run))
                        + np.diag(np.square(priors.run_sd_mm))) + run_information
    return tuple(symmetric(inv(symmetric(m))) for m in (brand_precision, model_precision, run_precision))


def _block_variance(information: np.ndarray, sd: tuple[float, ...]) -> np.ndarray:
    """(n, k) variances of independent blocks: their information plus a Gaussian prior's, inverted."""
    precision = information + np.diag(1.0 / np.square(sd))
    return np.diagonal(np.linalg.inv(precision), axis1=1, axis2=2)


def _state(design: _Design, priors: LearningPriors, theta: dict[str, np.ndarray],
           uncertainty: _Uncertainty) -> LearnedState:
    def floats(values) -> tuple[float, ...]:
        return tuple(float(v) for v in values)

    def corrections(mm: np.ndarray, variance: np.ndarray, level: str) -> list[Correction]:
        events = np.bincount(getattr(design, level), minlength=len(mm))
        return [Correction(mm=floats(v), sd_mm=floats(np.sqrt(s)), events=int(n), customers=int(c))
                for v, s, n, c in zip(mm, variance, events, design.customers_per(level))]

    def diagonal(covariance: np.ndarray) -> np.ndarray:
        return np.diagonal(covariance, axis1=1, axis2=2)

    brand_mm = theta["brand"]
    model_mm = brand_mm[design.model_brand] + theta["model"]
    run_mm = model_mm[design.run_model] + theta["run"]
    keep = KeepParameters(band_lo_scale=floats(np.exp(theta["band_lo"])),
                          band_hi_scale=floats(np.exp(theta["band_hi"])), slope=floats(np.exp(theta["slope"])),
                          lapse=floats(expit(theta["lapse"])))
    brands = corrections(brand_mm, diagonal(uncertainty.brand), "brand")
    return LearnedState(
        priors=priors, events=len(design.brand),
        brands=tuple(BrandLearned(brand=b, correction=c, grading_mm_per_step=floats(g),
                                  grading_sd_mm=floats(np.sqrt(v)))
                     for b, c, g, v in zip(design.brands, brands, theta["grading"], uncertainty.grading)),
        models=tuple(ModelLearned(brand=b, model=m, correction=c) for (b, m), c in
                     zip(design.models, corrections(model_mm, diagonal(uncertainty.model), "model"))),
        runs=tuple(RunLearned(brand=b, model=m, width=w, correction=c) for (b, m, w), c in
                   zip(design.runs, corrections(run_mm, diagonal(uncertainty.run), "run"))),
        categories=tuple(CategoryLearned(category=name, shift=c) for name, c in
                         zip(design.categories, corrections(theta["category"], uncertainty.shift, "category"))),
        keep=keep)


def _preferences(design: _Design, theta: dict[str, np.ndarray],
                 uncertainty: _Uncertainty) -> tuple[CustomerPreference, ...]:
    events = np.bincount(design.customer, minlength=len(design.customers))
    return tuple(CustomerPreference(customer=key, mm=tuple(float(x) for x in v),
                                    sd_mm=tuple(float(x) for x in np.sqrt(s)), events=int(n))
                 for key, v, s, n in zip(design.customers, theta["customer"], uncertainty.preference, events))
