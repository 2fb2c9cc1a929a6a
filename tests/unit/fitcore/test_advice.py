"""Learned advice over the matcher's results (fitcore/fit/advice.py): without learning it is the geometry's, with the
hand-set prior's keep chances; a learned state that knows a model runs short moves its size up, centred as the
matcher centres a best size, and says why; the top n are the most likely kept among a wider list; a retailer's
advice moves only to sizes it offers; the A/B arm is stable and splits customers by its share."""

from __future__ import annotations

import numpy as np
import pytest

from api.db import open_service_db
from core.vocabulary import REGIONS
from fitcore.fit.advice import (
    HOLDOUT,
    LEARNING,
    Advisor,
    advice_arm,
    prior_state,
    readings_mm,
    run_neighbours,
    shoe_of,
)
from fitcore.fit.catalogue import Assortment
from fitcore.fit.learning import Correction, LearnedState, LearningPriors, ModelLearned
from fitcore.fit.matcher import Matcher, MatchFilters
from fitcore.fit.profiles import MEASURES
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import generate_catalogue, write_catalogue
from testing.fit_subjects import subject_feet

MODELS = 12


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    products = write_catalogue(generate_catalogue(MODELS, 5, stores=1), folder)
    engine = open_service_db(f"sqlite:///{folder / 'c.sqlite'}")
    assert import_products(products, folder / "interiors", engine=engine).committed
    return Matcher(load_matcher_catalogue(engine))


@pytest.fixture(scope="module")
def feet():
    return subject_feet(6)


def _running_off(matcher: Matcher, model_id: int, toe_mm: float, customers: int = 37) -> LearnedState:
    """A state in which customers judge the toe room alone (the other measures' bands wide) and feel one model's
    `toe_mm` off the matcher's reading, for sure."""
    shoe = shoe_of(matcher.catalogue, int(matcher.catalogue.size_ids[matcher.catalogue.model_ids == model_id][0]))
    prior = prior_state()
    wide = (1.0, *(50.0,) * (len(MEASURES) - 1))
    learned = ModelLearned(brand=shoe.brand, model=shoe.model, correction=Correction(
        mm=(toe_mm, 0.0, 0.0, 0.0, 0.0), sd_mm=(0.2,) * len(MEASURES), events=3 * customers, customers=customers))
    state = prior.model_copy(update={"models": (learned,), "events": 3 * customers, "version": "",
                                     "keep": prior.keep.model_copy(update={"band_lo_scale": wide,
                                                                           "band_hi_scale": wide})})
    return state.model_copy(update={"version": state.content_hash()})


def _short(matcher: Matcher, feet) -> tuple[int, float]:
    """A model with a size up and down for these feet, and how many mm short it must run for its size up to give
    the profile's ideal toe room (at least 3 mm)."""
    for fit in matcher.best_sizes(feet):
        if fit.size_up is None or fit.size_down is None:
            continue
        shoe = shoe_of(matcher.catalogue, fit.size_id)
        ideal = matcher.profiles.ideal[matcher.profiles.index_for(shoe.category, shoe.level), 0]
        toe_mm = float(ideal - getattr(fit.size_up, fit.deciding_foot).region("toe").value_mm)
        if toe_mm <= -3.0:
            return fit.model_id, toe_mm
    raise AssertionError("no model whose size up is long enough")


def test_the_prior_is_a_state_without_corrections_whose_version_is_its_content():
    prior = prior_state()
    assert (prior.events, prior.brands, prior.models, prior.runs, prior.categories) == (0, (), (), (), ())
    assert prior.keep.band_lo_scale == prior.keep.band_hi_scale == (1.0,) * len(MEASURES)
    assert prior.keep.slope == (LearningPriors().slope,) * len(MEASURES)
    assert LearnedState.from_json(prior.to_json()) == prior
    assert prior_state(LearningPriors(slope=3.0)).version != prior.version


def test_the_arm_is_stable_and_splits_customers_by_its_share():
    customers = [f"customer-{i}" for i in range(4000)]
    arms = [advice_arm(1, c, 0.1) for c in customers]
    assert arms == [advice_arm(1, c, 0.1) for c in customers], "the same on every call"
    assert 0.08 < arms.count(HOLDOUT) / len(arms) < 0.12
    assert {advice_arm(1, c, 0.0) for c in customers} == {LEARNING}
    assert {advice_arm(1, c, 1.0) for c in customers} == {HOLDOUT}
    held = {c for c, arm in zip(customers, arms) if arm == HOLDOUT}
    assert held <= {c for c in customers if advice_arm(1, c, 0.3) == HOLDOUT}, "a larger share keeps the held-out"
    assert held != {c for c in customers if advice_arm(2, c, 0.1) == HOLDOUT}, "each tenant splits its own"


def test_readings_are_the_measures_in_order_and_neighbours_the_matchers(matcher, feet):
    for fit in matcher.best_sizes(feet)[:5]:
        decider = getattr(fit, fit.deciding_foot)
        values = readings_mm(decider)
        assert len(values) == len(MEASURES)
        assert values[:len(REGIONS)] == tuple(decider.region(r).value_mm for r in REGIONS)
        assert values[MEASURES.index("ball_width")] == decider.region("ball").width_mm
        down, up = run_neighbours(matcher.catalogue, fit.size_id)
        assert (down, up) == (fit.size_down and fit.size_down.size_id, fit.size_up and fit.size_up.size_id)


def test_without_learning_the_advice_is_the_geometrys_with_the_priors_chances(matcher, feet):
    advisor = Advisor(matcher, prior_state(), learned=False, source="store")
    advised = advisor.top(feet, MODELS, MatchFilters())
    geometric = matcher.top(feet, MODELS)
    assert [a.recommendation for a in advised] == geometric, "in the geometry's order, whatever the chances"
    chances = [a.advice.keep_probability for a in advised]
    assert chances != sorted(chances, reverse=True), "the chances alone would order them otherwise"
    for a in advised:
        assert a.advice.fit == a.recommendation.fit and a.advice.reasons == ()
        assert 0.0 < a.advice.keep_probability < 1.0
    model_id = _short(matcher, feet)[0]
    size = advisor.best_size(feet, model_id)
    assert size.fit == matcher.best_sizes(feet, [model_id])[0] and size.geometry_size_id == size.fit.size_id
    chances = advisor.keep_probabilities([(size.fit.deciding_foot, s) for s in (size.fit.size_down, size.fit.size_up)])
    assert (size.size_down_keep_probability, size.size_up_keep_probability) == tuple(chances)
    webshop = Advisor(matcher, prior_state(), learned=False, source="webshop").best_size(feet, model_id)
    assert webshop.keep_probability > size.keep_probability, "the webshop's lapse: some keep what is not right"


def test_a_model_that_runs_short_is_advised_a_size_up_centred_and_said_why(matcher, feet):
    model_id, toe_mm = _short(matcher, feet)
    geometric = matcher.best_sizes(feet, [model_id])[0]
    state = _running_off(matcher, model_id, toe_mm)
    advice = Advisor(matcher, state, learned=True).best_size(feet, model_id)
    fit = advice.fit
    assert (advice.geometry_size_id, fit.size_id) == (geometric.size_id, geometric.size_up.size_id)
    assert fit.size_down.size_id == geometric.size_id and fit.size_down.left == geometric.left
    up = run_neighbours(matcher.catalogue, fit.size_id)[1]
    assert (fit.size_up and fit.size_up.size_id) == up
    assert (fit.left, fit.right, fit.score) == (geometric.size_up.left, geometric.size_up.right,
                                                geometric.size_up.score)
    assert advice.keep_probability > advice.size_down_keep_probability
    assert advice.reasons[0].startswith(f"one size up from {geometric.size_label}: a ")
    assert advice.reasons[1] == f"runs {abs(toe_mm):.0f} mm short, by 37 customers' tries"
    holdout = Advisor(matcher, prior_state(), learned=False).best_size(feet, model_id)
    assert holdout.fit == geometric and holdout.reasons == ()


def test_with_learning_a_model_fits_when_its_advised_size_is_likely_enough_kept(matcher, feet):
    model_id, toe_mm = _short(matcher, feet)
    state = _running_off(matcher, model_id, toe_mm)
    chance = Advisor(matcher, state, learned=True).best_size(feet, model_id).keep_probability
    lenient = Advisor(matcher, state, learned=True, fits_keep_chance=chance - 0.01).best_size(feet, model_id)
    strict = Advisor(matcher, state, learned=True, fits_keep_chance=chance + 0.01).best_size(feet, model_id)
    assert lenient.fit.size_id == strict.fit.size_id and lenient.fit.fits and not strict.fit.fits
    far_too_long = Advisor(matcher, _running_off(matcher, model_id, 40.0), learned=True).best_size(feet, model_id)
    assert far_too_long.keep_probability < 0.5 and not far_too_long.fit.fits


def test_the_top_are_the_most_likely_kept_among_a_wider_list(matcher, feet):
    geometric = matcher.top(feet, 3)
    first = geometric[0].fit.model_id
    state = _running_off(matcher, first, 40.0)  # the geometry's first: far too long for everyone
    advised = Advisor(matcher, state, learned=True).top(feet, 3, MatchFilters())
    chances = [a.advice.keep_probability for a in advised]
    assert chances == sorted(chances, reverse=True) and len(advised) == 3
    assert first not in [a.recommendation.fit.model_id for a in advised]
    wider = {r.fit.model_id for r in matcher.top(feet, 12)}
    assert {a.recommendation.fit.model_id for a in advised} <= wider


def test_a_retailers_advice_moves_only_to_a_size_it_sells(matcher, feet):
    model_id, toe_mm = _short(matcher, feet)
    geometric = matcher.best_sizes(feet, [model_id])[0]
    c = matcher.catalogue
    sold = np.flatnonzero(c.size_ids != geometric.size_up.size_id)
    retailer = matcher.selling(Assortment.aligned(c.size_ids, c.size_ids[sold], [f"R-{c.sku[i]}" for i in sold],
                                                  np.full(len(sold), 80.0), ["EUR"] * len(sold)))
    state = _running_off(matcher, model_id, toe_mm)
    everything = {r.fit.model_id for r in matcher.top(feet, MODELS)}
    assert model_id in everything
    advised = Advisor(retailer, state, learned=True).top(feet, MODELS, MatchFilters())
    mine = next(a for a in advised if a.recommendation.fit.model_id == model_id)
    assert mine.recommendation.fit.size_id == geometric.size_id, "the size up is not sold: the advice stays"
    anywhere = Advisor(matcher, state, learned=True).top(feet, MODELS, MatchFilters())
    moved = next(a for a in anywhere if a.recommendation.fit.model_id == model_id)
    assert moved.recommendation.fit.size_id == geometric.size_up.size_id
    assert moved.recommendation.reason.startswith("toe room ")
