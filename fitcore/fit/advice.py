"""Learned advice over the matcher's results: which size of each model to recommend, the chance the customer keeps
it, and why (docs/learning.md, "Advice that says how sure it is").

The matcher finds each model's best size by geometry, with the sizes one down and one up (ModelFit). The advice
takes the keep chance of those three from a learned state (fitcore.fit.learning: the readings as this customer
perceives them through the learned corrections, their preference and their category's ideal) and recommends the
one most likely to be kept (the geometry's on a tie); the top n models are the n most likely to be kept among the
geometry's best n x WIDER. A size the advice moves to becomes the answer's best size, with its own neighbours,
so an answer reads as the matcher's does.

Without learning (the A/B holdout, or while no learned state is adopted) the advice is the geometry's, and its
keep chances come from the hand-set prior (`prior_state`, what the learner starts from), with no preference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.errors import CatalogError
from core.settings import LearningSettings
from core.vocabulary import REGIONS
from fitcore.fit.catalogue import MatcherCatalogue
from fitcore.fit.fit_model import FootFit
from fitcore.fit.learning import (
    CustomerPreference,
    KeepParameters,
    LearnedState,
    LearningPriors,
    SizeKeys,
    category_key,
)
from fitcore.fit.matcher import (
    FitSearch,
    Matcher,
    MatchFilters,
    ModelFit,
    Recommendation,
    ScannedFeet,
    SizeFit,
    reason,
)
from fitcore.fit.profiles import MEASURES

LEARNING, HOLDOUT = "learning", "holdout"  # the A/B arms: advice with learning, and the geometry's without
ADVICE_ARMS = (LEARNING, HOLDOUT)
PRIOR_VERSION = "prior"  # the learning version an answer names when its chances come from the hand-set prior
WIDER = 4  # the top n are the n most likely kept among the geometry's best n x WIDER


def prior_state(priors: LearningPriors = LearningPriors()) -> LearnedState:
    """What the learner knows before any feedback: no corrections, no shifts, the keep model as the profiles set
    it (band scales 1, the prior's slope and lapses)."""
    m = len(MEASURES)
    state = LearnedState(priors=priors, events=0, brands=(), models=(), runs=(), categories=(),
                         keep=KeepParameters(band_lo_scale=(1.0,) * m, band_hi_scale=(1.0,) * m,
                                             slope=(priors.slope,) * m, lapse=priors.lapse))
    return state.model_copy(update={"version": state.content_hash()})


def advice_arm(tenant_id: int, customer_id: str, holdout_share: float) -> str:
    """The customer's A/B arm, the same on every request and process: HOLDOUT for the share of customers whose
    hash of (tenant, customer) falls below `holdout_share`, else LEARNING."""
    digest = hashlib.sha256(f"{tenant_id}:{customer_id}".encode()).digest()
    return HOLDOUT if int.from_bytes(digest[:8], "big") / 2.0 ** 64 < holdout_share else LEARNING


# --- what the learner knows a size by -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shoe:
    """One size as the learner knows it (FitObservation's fields): its model, width fitting, profile and label."""

    model_id: int
    brand: str
    model: str  # the brand's model code
    width: str
    category: str
    level: str
    nominal_length_mm: float


def shoe_of(catalogue: MatcherCatalogue, size_id: int) -> Shoe:
    """The size's model and label from the catalogue the matcher holds (CatalogError for a size it lacks)."""
    i = int(np.searchsorted(catalogue.size_ids, size_id))
    if i >= len(catalogue.size_ids) or catalogue.size_ids[i] != size_id:
        raise CatalogError(f"size id {size_id} is not in the catalogue (or has no interior): the matcher cannot "
                           f"read it")
    models = catalogue.models
    r = int(models.rows(np.array([catalogue.model_ids[i]]))[0])
    width = str(catalogue.width[i]) if len(catalogue.width) else "standard"
    nominal = catalogue.nominal_foot_length_mm if len(catalogue.nominal_foot_length_mm) else catalogue.inner_length_mm
    return Shoe(int(catalogue.model_ids[i]), str(models.brand[r]), str(models.code[r]), width,
                str(models.category[r]), str(models.level[r]), float(nominal[i]))


def size_keys(shoes: Sequence[Shoe], matcher: Matcher) -> SizeKeys:
    """What the learned state needs to adjust the readings of these sizes."""
    return SizeKeys([s.brand for s in shoes], [s.model for s in shoes], [s.width for s in shoes],
                    [category_key(s.category, s.level) for s in shoes],
                    np.array([s.nominal_length_mm for s in shoes], dtype=np.float64),
                    np.array([matcher.profiles.index_for(s.category, s.level) for s in shoes], dtype=np.int64))


def readings_mm(fit: FootFit) -> tuple[float, ...]:
    """One foot's readings in one size, per MEASURES: each region's value, then the room across the ball."""
    return (*(fit.region(r).value_mm for r in REGIONS), fit.region("ball").width_mm)


def run_neighbours(catalogue: MatcherCatalogue, size_id: int) -> tuple[int | None, int | None]:
    """The size ids one down and one up of a size in its run (its model and width fitting, by nominal length as
    the matcher orders them); None where the run ends."""
    i = int(np.searchsorted(catalogue.size_ids, size_id))
    run = catalogue.model_ids == catalogue.model_ids[i]
    if len(catalogue.width):
        run &= catalogue.width == catalogue.width[i]
    rows = np.flatnonzero(run)
    nominal = catalogue.nominal_foot_length_mm if len(catalogue.nominal_foot_length_mm) else catalogue.inner_length_mm
    rows = rows[np.argsort(nominal[rows], kind="stable")]
    at = int(np.flatnonzero(rows == i)[0])
    return (int(catalogue.size_ids[rows[at - 1]]) if at > 0 else None,
            int(catalogue.size_ids[rows[at + 1]]) if at + 1 < len(rows) else None)


# --- the advice -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """One model's advice: its fit centred on the advised size, the chance each of the three sizes is kept, and
    why learning advises so (nothing without learning, or when it has nothing confident to say)."""

    fit: ModelFit
    keep_probability: float
    size_down_keep_probability: float | None
    size_up_keep_probability: float | None
    reasons: tuple[str, ...]
    geometry_size_id: int  # the matcher's best size, which learning may have moved from


@dataclass(frozen=True)
class AdvisedRecommendation:
    recommendation: Recommendation  # its fit, price and reason those of the advised size
    advice: Advice


@dataclass(frozen=True)
class _Choice:
    size: SizeFit
    keep_probability: float
    chances: dict[int, float]  # size id -> keep chance, of the geometry's best and its neighbours


class Advisor:
    """Advice for one customer from one matcher (the operator's, or a retailer's `selling` view) and one state.

    `learned`: the state is a learned one, and picks sizes and ranks models; False: the geometry's advice, with
    the state's (the prior's) keep chances. `preference`: the customer's learned preference (None: a new
    customer). `source`: the channel whose lapse the chances include (a webshop buyer keeps some sizes that are
    not right); None: the chance that the size is right. `fits_keep_chance`: with learning, a model fits the
    customer when its advised size is kept with at least this chance (the geometry's `fits` flag judges a score, not
    what customers do, and where many customers keep no size of a model, saying so is half the advice)."""

    def __init__(self, matcher: Matcher, state: LearnedState, learned: bool,
                 preference: CustomerPreference | None = None, source: str | None = None,
                 fits_keep_chance: float = LearningSettings().fits_keep_chance):
        self.matcher, self.state, self.learned = matcher, state, learned
        self.preference, self.source, self.fits_keep_chance = preference, source, fits_keep_chance

    def top(self, feet: ScannedFeet, n: int, filters: MatchFilters,
            search: FitSearch | None = None) -> list[AdvisedRecommendation]:
        """The n best models after the filters, each in its advised size: with learning, the n most likely kept
        among the geometry's best n x WIDER (the geometry's order on a tie); without, the geometry's n."""
        wanted = n * WIDER if self.learned else n
        candidates = self.matcher.top(feet, wanted, filters, search)
        offered = _offered(self.matcher, filters)
        choices = self._choices([r.fit for r in candidates], offered)
        ranked = range(len(candidates))
        if self.learned:
            ranked = sorted(ranked, key=lambda i: -choices[i].keep_probability)[:n]
        out = []
        for i in ranked:
            recommendation, choice = candidates[i], choices[i]
            advice = self._advice(feet, recommendation.fit, choice)
            out.append(AdvisedRecommendation(self._moved(recommendation, advice.fit), advice))
        return out

    def best_size(self, feet: ScannedFeet, model_id: int, search: FitSearch | None = None) -> Advice | None:
        """The model's advised size for these feet (None: the model has no size to fit)."""
        fits = self.matcher.best_sizes(feet, [model_id], search)
        if not fits:
            return None
        return self._advice(feet, fits[0], self._choices(fits, lambda size_id: True)[0])

    def _choices(self, fits: Sequence[ModelFit], offered: Callable[[int], bool]) -> list[_Choice]:
        """Per model, the size the advice picks among the geometry's best and its neighbours (with learning: the
        most likely kept of those offered; a neighbour must beat the geometry's best)."""
        trios = [[s for s in (fit.size_down, _best(fit), fit.size_up) if s is not None] for fit in fits]
        flat = [(fit.deciding_foot, s) for fit, trio in zip(fits, trios) for s in trio]
        chances = iter(self.keep_probabilities(flat))
        choices = []
        for fit, trio in zip(fits, trios):
            by_id = {s.size_id: float(next(chances)) for s in trio}
            chosen = _best(fit)
            if self.learned:
                for size in trio:
                    if by_id[size.size_id] > by_id[chosen.size_id] and offered(size.size_id):
                        chosen = size
            choices.append(_Choice(chosen, by_id[chosen.size_id], by_id))
        return choices

    def keep_probabilities(self, sizes: Sequence[tuple[str, SizeFit]]) -> np.ndarray:
        """The chance the customer keeps each size, read on the foot given with it (the deciding foot)."""
        if not sizes:
            return np.zeros(0)
        shoes = [shoe_of(self.matcher.catalogue, s.size_id) for _, s in sizes]
        values = np.array([readings_mm(getattr(s, foot)) for foot, s in sizes], dtype=np.float64)
        return self.state.keep_probability(values, size_keys(shoes, self.matcher), self.matcher.profiles,
                                           self.preference, self.source)

    def _advice(self, feet: ScannedFeet, fit: ModelFit, choice: _Choice) -> Advice:
        centred = self._centred(feet, fit, choice.size)
        if self.learned:
            centred = replace(centred, fits=choice.keep_probability >= self.fits_keep_chance)
        known = dict(choice.chances)
        new = [s for s in (centred.size_down, centred.size_up) if s is not None and s.size_id not in known]
        chances = self.keep_probabilities([(fit.deciding_foot, s) for s in new])
        known.update({s.size_id: float(p) for s, p in zip(new, chances)})

        def chance(size: SizeFit | None) -> float | None:
            return None if size is None else known[size.size_id]

        return Advice(centred, choice.keep_probability, chance(centred.size_down), chance(centred.size_up),
                      self._reasons(fit, choice), fit.size_id)

    def _centred(self, feet: ScannedFeet, fit: ModelFit, chosen: SizeFit) -> ModelFit:
        """The model's fit with `chosen` as its best size and that size's neighbours around it."""
        if chosen.size_id == fit.size_id:
            return fit
        down_id, up_id = run_neighbours(self.matcher.catalogue, chosen.size_id)
        if fit.size_up is not None and chosen.size_id == fit.size_up.size_id:
            down, up = _best(fit), self._size(feet, fit.model_id, up_id)
        else:
            down, up = self._size(feet, fit.model_id, down_id), _best(fit)
        decider = getattr(chosen, fit.deciding_foot)
        return replace(fit, size_id=chosen.size_id, size_label=chosen.size_label, size_system=chosen.size_system,
                       width=chosen.width, sku=chosen.sku, score=chosen.score, left=chosen.left, right=chosen.right,
                       size_down=down, size_up=up,
                       fits=bool(chosen.score >= self.matcher.profiles.fits_min_score and decider.verdict != "tight"))

    def _size(self, feet: ScannedFeet, model_id: int, size_id: int | None) -> SizeFit | None:
        return None if size_id is None else self.matcher.tryon(feet, model_id, size_id).size

    def _reasons(self, fit: ModelFit, choice: _Choice) -> tuple[str, ...]:
        """Why, in words a salesperson can say: the move away from the geometry's size, then what learning knows
        of the shoe with confidence (LearnedState.reasons)."""
        if not self.learned:
            return ()
        words = []
        if choice.size.size_id != fit.size_id:
            way = "up" if fit.size_up is not None and choice.size.size_id == fit.size_up.size_id else "down"
            words.append(f"one size {way} from {fit.size_label}: a {choice.keep_probability:.0%} chance to keep it "
                         f"against {choice.chances[fit.size_id]:.0%}")
        shoe = shoe_of(self.matcher.catalogue, fit.size_id)
        return (*words, *self.state.reasons(shoe.brand, shoe.model, shoe.width))

    def _moved(self, recommendation: Recommendation, fit: ModelFit) -> Recommendation:
        """The recommendation in the advised size: its fit, the retailer's price of that size, the reason."""
        if fit.size_id == recommendation.fit.size_id:
            return recommendation
        price, currency = recommendation.price, recommendation.currency
        if self.matcher.assortment is not None:
            i = int(np.searchsorted(self.matcher.catalogue.size_ids, fit.size_id))
            price, currency = float(self.matcher.assortment.price[i]), str(self.matcher.assortment.currency[i])
        return replace(recommendation, fit=fit, price=price, currency=currency,
                       reason=reason(getattr(fit, fit.deciding_foot)))


def _best(fit: ModelFit) -> SizeFit:
    """A model's best size as a SizeFit, like its neighbours."""
    return SizeFit(fit.size_id, fit.sku, fit.size_label, fit.size_system, fit.width, fit.score, fit.left, fit.right)


def _offered(matcher: Matcher, filters: MatchFilters) -> Callable[[int], bool]:
    """Whether the advice may move to a size under the filters, as the matcher lets a best size be recommended:
    what the retailer sells, within the price range, in stock at the store when one is named."""
    catalogue, assortment = matcher.catalogue, matcher.assortment
    in_store = None if filters.store is None else set(catalogue.stock.get(filters.store, np.zeros(0)).tolist())

    def offered(size_id: int) -> bool:
        if in_store is not None and size_id not in in_store:
            return False
        if assortment is None:
            return True
        i = int(np.searchsorted(catalogue.size_ids, size_id))
        price = assortment.price[i]
        return bool(assortment.sold[i] and (filters.price_min is None or price >= filters.price_min)
                    and (filters.price_max is None or price <= filters.price_max))

    return offered
