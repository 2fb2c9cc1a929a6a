"""The learner (fitcore/fit/learning.py, fitcore/fit/keep_model.py) on synthetic feedback with known answers.

A small hidden world of its own, seeded: brands, models and width fittings whose true corrections (how the matcher
misreads them) are drawn from Gaussians, brands that grade their own way, profiles whose true ideals are shifted,
customers with hidden preferences, and a keep rule of its own making: each measure is perceived with logistic noise
and is tight, good or loose against thresholds; a size is kept when all are good (or by a lapse); a store customer
names the worst region, a webshop buyer returns "too small" when something is tight, else "too large", and some say
nothing. The learner must find the hidden corrections, preferences and keep chances.

`python -m tests.unit.fitcore.test_learning` prints the seconds to learn 1k / 3k / 10k events with the recovery
and calibration figures (docs/learning.md quotes them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy.special import expit

from core.errors import ConfigError, InvalidInput
from fitcore.fit.keep_model import OUTCOME_KINDS, Outcomes, calibration, log_likelihood, measure_chances
from fitcore.fit.learning import (
    GRADING_STEP_MM,
    PREFERENCE_LOADING,
    REFERENCE_LENGTH_MM,
    CustomerPreferences,
    FitObservation,
    LearnedState,
    SizeKeys,
    evaluate,
    learn,
    split_recent,
)
from fitcore.fit.profiles import MEASURES, FitProfiles

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CATEGORIES = ("walking", "running", "hiking", "casual")
# the hidden world's spreads, per measure of MEASURES (toe, ball, instep, heel, ball_width), mm
BRAND_SD, MODEL_SD, RUN_SD = np.array([2.0, 0.4, 0.6, 0.6, 0.8]), np.array([3.0, 0.6, 0.8, 0.8, 1.0]), \
    np.array([0.5, 0.3, 0.3, 0.3, 0.5])
GRADING_SD = np.array([0.3, 0.1, 0.1, 0.1, 0.2])  # per size step
PREFERENCE_SD = np.array([3.0, 3.0, 1.0])  # toe mm, forefoot mm of girth, heel mm
SHIFT = {"walking": np.array([1.5, 0.2, 0.0, 0.0, 0.0]), "hiking": np.array([-1.0, 0.0, 0.0, 0.5, 0.0])}
BAND_SCALE, SLOPE = np.array([3.0, 2.0, 1.5, 1.5, 2.0]), 3.0  # the true keep rule
LAPSE = {"store": 0.02, "webshop": 0.08}
READING_SD_UNITS = 0.8  # the sizes tried: readings scattered around the profile's ideal
SILENT = {"store": 0.1, "webshop": 0.25}  # share of not-kept sizes with no complaint / no return reason


@dataclass(frozen=True)
class HiddenWorld:
    profiles: FitProfiles
    brand_of: dict[str, str]  # model code -> brand
    category_of: dict[str, str]
    widths_of: dict[str, tuple[str, ...]]
    correction: dict[tuple[str, str, str], np.ndarray]  # (brand, model, width) -> mm at REFERENCE_LENGTH_MM
    grading: dict[str, np.ndarray]  # brand -> mm per size step
    preference: np.ndarray  # (customers, 3)
    foot_mm: np.ndarray  # (customers,)

    def events(self, count: int, seed: int, customers=None, models=None,
               t0: datetime = T0) -> tuple[list[FitObservation], np.ndarray]:
        """`count` tries and purchases (of these customer indices and model codes; default all) and each one's true
        keep chance."""
        rng = np.random.default_rng(seed)
        p = self.profiles
        customers = np.arange(len(self.preference)) if customers is None else np.asarray(customers)
        models = sorted(self.brand_of) if models is None else list(models)
        events, chances = [], []
        for e in range(count):
            i = int(customers[rng.integers(len(customers))])
            model = models[rng.integers(len(models))]
            brand, category = self.brand_of[model], self.category_of[model]
            width = self.widths_of[model][rng.integers(len(self.widths_of[model]))]
            q = p.index_for(category)
            source = "store" if rng.random() < 0.5 else "webshop"
            nominal = self.foot_mm[i] + rng.normal(0.0, 3.0)
            steps = (nominal - REFERENCE_LENGTH_MM) / GRADING_STEP_MM
            reading = p.ideal[q] + rng.normal(0.0, READING_SD_UNITS, len(MEASURES)) * p.unit[q]
            perceived = (reading + self.correction[brand, model, width] + self.grading[brand] * steps
                         - self.preference[i] @ PREFERENCE_LOADING - SHIFT.get(category, 0.0))
            d = (perceived - p.ideal[q]) / p.unit[q]
            t_lo = (p.lo[q] - p.ideal[q]) / p.unit[q] * BAND_SCALE
            t_hi = (p.hi[q] - p.ideal[q]) / p.unit[q] * BAND_SCALE
            felt = d + rng.logistic(0.0, 1.0, len(MEASURES)) / SLOPE
            tight, loose = felt < t_lo, felt > t_hi
            good_chance = np.prod(expit(SLOPE * (t_hi - d)) - expit(SLOPE * (t_lo - d)))
            chances.append(LAPSE[source] + (1 - LAPSE[source]) * good_chance)
            kept = not (tight | loose).any() or rng.random() < LAPSE[source]
            said = {}
            if not kept and rng.random() >= SILENT[source]:
                if source == "store":  # the worst measure's region, and which way
                    worst = int(np.argmax(np.maximum(t_lo - felt, felt - t_hi)))
                    said = dict(complaint_region=MEASURES[worst].split("_")[0],
                                complaint_direction="tight" if tight[worst] else "loose")
                else:
                    said = dict(return_reason="too_small" if tight.any() else "too_large")
            events.append(FitObservation(
                customer=f"c{i}", brand=brand, model=model, width=width, category=category,
                values_mm=tuple(reading), nominal_length_mm=float(nominal), source=source,
                at=t0 + timedelta(minutes=e), kept=kept, **said))
        return events, np.array(chances)

    def true_run_mm(self, brand: str, model: str, width: str) -> np.ndarray:
        return self.correction[brand, model, width]


def hidden_world(seed: int = 0, models: int = 80, brands: int = 6, customers: int = 3500) -> HiddenWorld:
    rng = np.random.default_rng(seed)
    names = [f"Brand{b}" for b in range(brands)]
    brand_mm = {b: rng.normal(0.0, BRAND_SD) for b in names}
    grading = {b: rng.normal(0.0, GRADING_SD) for b in names}
    brand_of, category_of, widths_of, correction = {}, {}, {}, {}
    for j in range(models):
        code, brand = f"M{j:03d}", names[j % brands]
        brand_of[code], category_of[code] = brand, CATEGORIES[rng.integers(len(CATEGORIES))]
        widths_of[code] = ("standard", "wide") if rng.random() < 0.4 else ("standard",)
        model_mm = brand_mm[brand] + rng.normal(0.0, MODEL_SD)
        for width in widths_of[code]:
            correction[brand, code, width] = model_mm + rng.normal(0.0, RUN_SD)
    return HiddenWorld(FitProfiles.load(), brand_of, category_of, widths_of, correction, grading,
                       rng.normal(0.0, PREFERENCE_SD, (customers, 3)), rng.normal(258.0, 14.0, customers))


TRAINING_CUSTOMERS = np.arange(3000)  # the rest of the world's customers are new to the learner


@pytest.fixture(scope="module")
def world() -> HiddenWorld:
    return hidden_world()


@pytest.fixture(scope="module")
def learned(world):
    """The learner on the first 1,000 and on 10,000 events of the world (seconds printed, not asserted)."""
    events, _ = world.events(10_000, seed=1, customers=TRAINING_CUSTOMERS)
    out = {}
    for count in (1_000, 10_000):
        start = time.process_time()
        out[count] = learn(events[:count], world.profiles)
        print(f"learned {count} events in {time.process_time() - start:.1f} s of CPU")
    return out


def run_errors(world: HiddenWorld, state: LearnedState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(learned - true correction, learned SD, events) per run the state knows, (runs, MEASURES)."""
    error = np.array([np.array(r.correction.mm) - world.true_run_mm(r.brand, r.model, r.width) for r in state.runs])
    sd = np.array([r.correction.sd_mm for r in state.runs])
    return error, sd, np.array([r.correction.events for r in state.runs])


# --- the keep model -------------------------------------------------------------------------------------------


def test_the_keep_models_gradient_is_the_derivative_of_its_likelihood():
    rng = np.random.default_rng(5)
    e, m = 40, 5
    kinds = rng.integers(len(OUTCOME_KINDS), size=e)
    named = rng.random((e, m)) < 0.5
    named[np.arange(e), rng.integers(m, size=e)] = True
    regions = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=bool)
    complaint = (kinds >= OUTCOME_KINDS.index("tight")) & (rng.random(e) < 0.5)
    named[complaint] = regions[rng.integers(len(regions), size=complaint.sum())]
    outcomes = Outcomes.of(kinds, named, complaint, regions)
    inputs = dict(d=rng.normal(0, 1.5, (e, m)), t_lo=-rng.uniform(0.3, 2, (e, m)), t_hi=rng.uniform(0.3, 2, (e, m)),
                  log_k=rng.normal(1, 0.3, (e, m)), lapse_logit=rng.normal(-3, 0.5, e))
    terms = log_likelihood(**inputs, outcomes=outcomes)
    for name, x in inputs.items():
        step = 1e-6
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            up, down = {**inputs, name: x.copy()}, {**inputs, name: x.copy()}
            up[name][index] += step
            down[name][index] -= step
            numeric[index] = (log_likelihood(**up, outcomes=outcomes).value
                              - log_likelihood(**down, outcomes=outcomes).value).sum() / (2 * step)
        assert np.allclose(getattr(terms, name), numeric, atol=1e-5), name


def test_the_chances_of_each_measure_add_up_and_stay_exact_far_outside_the_band():
    d = np.array([[-40.0, -1.0, 0.0, 1.0, 40.0]])
    chances = measure_chances(d, np.full_like(d, -0.5), np.full_like(d, 0.5), np.full_like(d, 3.0))
    assert np.allclose(chances.tight + chances.good + chances.loose, 1.0)
    assert chances.good[0, 0] == pytest.approx(np.exp(-3.0 * 39.5) * (1 - np.exp(-3.0)), rel=1e-9)
    assert chances.good[0, 2] == pytest.approx(expit(1.5) - expit(-1.5))


def test_a_complaints_chances_over_the_regions_add_up_to_not_keeping_the_size():
    """A complaint names one region; over all regions and directions its chances sum to 1 - P(keep) (before the
    lapse), so complaints cannot all be made likely at once."""
    rng = np.random.default_rng(2)
    regions = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=bool)
    d = rng.normal(0, 1.5, (1, 5))
    args = dict(d=d, t_lo=np.full_like(d, -0.7), t_hi=np.full_like(d, 0.9), log_k=np.full_like(d, 1.0),
                lapse_logit=np.full(1, -30.0))
    total = 0.0
    for region in regions:
        for kind in ("tight", "loose"):
            outcome = Outcomes.of([OUTCOME_KINDS.index(kind)], region[None], [True], regions)
            total += np.exp(log_likelihood(**args, outcomes=outcome).value[0])
    kept = np.exp(log_likelihood(**args, outcomes=Outcomes.of([0], np.ones((1, 5), bool))).value[0])
    assert total == pytest.approx(1.0 - kept, rel=1e-9)


def test_calibration_counts_each_prediction_in_its_bin():
    c = calibration(np.array([0.05, 0.05, 0.95, 0.5]), np.array([False, True, True, True]))
    assert c.count == 4 and [b.count for b in c.bins] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert c.bins[0].observed == 0.5 and c.bins[9].predicted == 0.95
    assert c.brier == pytest.approx((0.05 ** 2 + 0.95 ** 2 + 0.05 ** 2 + 0.5 ** 2) / 4)
    assert c.worst_gap == pytest.approx(0.5)


# --- what the learner reads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, words", [
    (dict(complaint_region="arch", complaint_direction="tight"), "complaint region 'arch' unknown"),
    (dict(complaint_region="toe"), "needs both its region and its direction"),
    (dict(return_reason="wrong colour"), "return reason 'wrong colour' unknown"),
    (dict(source="phone"), "source 'phone' unknown"),
    (dict(values_mm=(1.0, 2.0)), "needs 5 finite readings"),
    (dict(values_mm=(1.0, 2.0, float("nan"), 0.0, 0.0)), "needs 5 finite readings"),
    (dict(kept=True, return_reason="too_small"), "a kept size has no complaint"),
])
def test_observations_that_cannot_be_true_are_refused(change, words):
    fields = dict(customer="c1", brand="B", model="M", width="standard", category="walking",
                  values_mm=(15.0, 0.0, 0.0, 0.5, 0.0), nominal_length_mm=260.0, source="store", at=T0, kept=False)
    with pytest.raises(InvalidInput, match=words):
        FitObservation(**{**fields, **change})


# --- what the learner finds -------------------------------------------------------------------------------------


def test_the_learner_finds_the_hidden_corrections_better_as_events_grow(world, learned):
    few, many = (run_errors(world, learned[n].state) for n in (1_000, 10_000))
    rmse_few, rmse_many = (np.sqrt((error ** 2).mean(axis=0)) for error, _, _ in (few, many))
    # toe, ball, instep, heel, ball width (mm); measured 0.97, 0.30, 0.92, 0.65, 0.47 at 10k (2.27, 0.57, ... at 1k)
    assert (rmse_many < [1.6, 0.5, 1.1, 0.8, 0.7]).all(), rmse_many
    assert rmse_many[0] < 0.6 * rmse_few[0] and rmse_many[1] < 0.75 * rmse_few[1]
    error, sd, events = many
    assert (np.abs(error) < 2 * sd).mean(axis=0).min() > 0.8  # the SDs mean what they say (measured >= 0.87)
    busy = events >= 100
    assert busy.sum() >= 20 and np.abs(error[busy, 0]).max() < 3.0  # every busy run within 3 mm (measured 2.3)


def test_the_hidden_preferences_of_returning_customers_are_learned(world):
    regulars = np.arange(3000, 3030)
    base, _ = world.events(1_000, seed=3, customers=TRAINING_CUSTOMERS)
    theirs, _ = world.events(30 * 40, seed=4, customers=regulars, t0=T0 + timedelta(days=30))
    result = learn(base + theirs, world.profiles)
    found = np.array([result.preferences.of(f"c{i}").mm for i in regulars])
    true = world.preference[regulars]
    assert np.corrcoef(found[:, 0], true[:, 0])[0, 1] > 0.8  # toe room: measured r = 0.93, RMSE 1.2 mm
    assert np.sqrt(np.mean((found[:, 0] - true[:, 0]) ** 2)) < 1.8
    assert np.corrcoef(found[:, 1], true[:, 1])[0, 1] > 0.7  # forefoot: measured r = 0.92
    one_event = [c for c in result.preferences.customers if c.events == 1]
    assert np.mean([c.sd_mm[0] for c in one_event]) > 2 * np.mean(
        [result.preferences.of(f"c{i}").sd_mm[0] for i in regulars])


def test_keep_chances_are_calibrated_on_held_out_events(world, learned):
    state, preferences = learned[10_000].state, learned[10_000].preferences
    for customers in (TRAINING_CUSTOMERS, np.arange(3000, 3500)):  # customers it learned from, and new ones
        held_out, truth = world.events(4_000, seed=99, customers=customers, t0=T0 + timedelta(days=60))
        c = evaluate(state, preferences, held_out, world.profiles)
        kept = np.array([o.kept for o in held_out])
        best = calibration(truth, kept)  # the hidden world's own chances: the best any learner can do
        assert c.brier < best.brier + 0.04, (c.brier, best.brier)  # measured 0.199 vs 0.171, 0.197 vs 0.169
        gaps = [abs(b.observed - b.predicted) for b in c.bins if b.count >= 100]
        assert max(gaps) < 0.09, c.bins  # measured 0.077 (known customers), 0.044 (new)


def test_a_model_without_events_is_read_as_its_brand_and_a_brand_without_events_as_its_geometry(world, learned):
    state = learned[10_000].state
    brand = state.brands[0]
    values = np.array([[15.0, 0.0, -1.0, 0.5, 0.5]] * 3)
    keys = SizeKeys(brand=[brand.brand, "NewBrand", brand.brand], model=["NEW1", "NEW2", "NEW3"],
                    width=["standard"] * 3, category=["running"] * 3,
                    nominal_length_mm=np.array([REFERENCE_LENGTH_MM, REFERENCE_LENGTH_MM,
                                                REFERENCE_LENGTH_MM + 2 * GRADING_STEP_MM]),
                    profile=np.full(3, world.profiles.index_for("running")))
    mm, sd = state.corrections(keys)
    assert mm[0].tolist() == list(brand.correction.mm)
    assert mm[1].tolist() == [0.0] * 5
    assert mm[2] == pytest.approx(np.array(brand.correction.mm) + 2 * np.array(brand.grading_mm_per_step))
    priors = state.priors
    assert sd[1] == pytest.approx(np.sqrt(np.square(priors.brand_sd_mm) + np.square(priors.model_sd_mm)
                                          + np.square(priors.run_sd_mm)))
    assert (sd[0] < sd[1]).all()  # what the brand's models taught is known better than a stranger's
    shift = next(c.shift.mm for c in state.categories if c.category == "running")
    assert state.adjusted(values, keys, world.profiles)[1].tolist() == (values[1] - shift).tolist()


def test_a_few_events_move_a_correction_less_than_many(world):
    """Shrinkage: a new model of Brand0 that the matcher reads 6 mm too long (its true correction: the brand's runs'
    mean, 6 mm shorter); 3 tries move its correction a little away from the brand's, 100 tries nearly all the way."""
    brand = "Brand0"
    brand_runs = [mm for (b, _, _), mm in world.correction.items() if b == brand]
    true_new = np.mean(brand_runs, axis=0) + np.array([-6.0, 0.0, 0.0, 0.0, 0.0])
    extra = HiddenWorld(world.profiles, {**world.brand_of, "NEW": brand}, {**world.category_of, "NEW": "walking"},
                        {**world.widths_of, "NEW": ("standard",)},
                        {**world.correction, (brand, "NEW", "standard"): true_new}, world.grading, world.preference,
                        world.foot_mm)
    base, _ = world.events(1_000, seed=5, customers=TRAINING_CUSTOMERS)
    toe, moved = {}, {}
    for count in (3, 100):
        new, _ = extra.events(count, seed=6, customers=TRAINING_CUSTOMERS, models=["NEW"], t0=T0 + timedelta(days=9))
        state = learn(base + new, world.profiles).state
        run = next(r for r in state.runs if r.model == "NEW")
        assert run.correction.events == count
        toe[count] = run.correction.mm[0]
        moved[count] = toe[count] - next(b.correction.mm[0] for b in state.brands if b.brand == brand)
    assert abs(moved[3]) < abs(moved[100]) and abs(moved[3]) < 3.0, moved  # measured -2.6 and -5.5 mm
    assert abs(toe[100] - true_new[0]) < 2.0 < abs(toe[3] - true_new[0]), (toe, true_new[0])


def test_reasons_are_given_only_for_confident_corrections_and_point_the_true_way(world, learned):
    state = learned[10_000].state
    models = {(m.brand, m.model): m.correction for m in state.models}
    agree = []
    for run in state.runs:
        truth = world.true_run_mm(run.brand, run.model, run.width)
        for phrase in state.reasons(run.brand, run.model, run.width):
            assert phrase.endswith(f"by {models[run.brand, run.model].customers} customers' tries")
            if phrase.startswith("runs"):
                agree.append(("short" in phrase) == (truth[0] < 0))
                assert agree[-1] or abs(truth[0]) < 2.0, (phrase, truth)  # a wrong way only for a small truth
    assert len(agree) >= 10 and np.mean(agree) >= 0.9, agree  # measured 48 of 48
    few = learned[1_000].state
    assert all(not few.reasons(m.brand, m.model, "standard") for m in few.models if m.correction.events <= 2)
    assert state.reasons("NoSuchBrand", "X", "standard") == ()
    confident = next(b for b in state.brands if state.reasons(b.brand, "NEW", "standard"))
    assert all(f"like other {confident.brand} shoes, by {confident.correction.customers} customers' tries" in phrase
               for phrase in state.reasons(confident.brand, "NEW", "standard"))


def test_the_state_and_the_preferences_round_trip_through_json_exactly(learned):
    result = learned[1_000]
    state = LearnedState.from_json(result.state.to_json())
    assert state == result.state and state.version == result.state.version == result.preferences.state_version
    assert CustomerPreferences.from_json(result.preferences.to_json()) == result.preferences
    tampered = result.state.to_json().replace('"events":1000', '"events":1001', 1)
    with pytest.raises(ConfigError, match="does not match its version"):
        LearnedState.from_json(tampered)
    with pytest.raises(ConfigError, match="not a learned state"):
        LearnedState.from_json("{}")


def test_refits_are_deterministic(world, learned):
    events, _ = world.events(1_000, seed=1, customers=TRAINING_CUSTOMERS)
    again = learn(events, world.profiles)
    assert again.state.to_json() == learned[1_000].state.to_json()
    assert again.preferences.to_json() == learned[1_000].preferences.to_json()


def test_erasing_a_customer_removes_only_their_preference(learned):
    preferences = learned[1_000].preferences
    key = preferences.customers[0].customer
    erased = preferences.without(key)
    assert erased.of(key) is None and len(erased.customers) == len(preferences.customers) - 1
    assert f'"{key}"' not in erased.to_json()
    assert erased.of(preferences.customers[1].customer) == preferences.customers[1]


def test_with_no_events_the_state_is_the_priors(world):
    result = learn([], world.profiles)
    state = result.state
    assert (state.brands, state.models, state.runs, state.categories, state.events) == ((), (), (), (), 0)
    assert state.keep.slope == pytest.approx((state.priors.slope,) * 5)
    assert state.keep.lapse == pytest.approx(state.priors.lapse)
    values = np.array([[17.0, 0.0, 0.0, 0.0, 0.0]])
    keys = SizeKeys(["B"], ["M"], ["standard"], ["walking"], np.array([260.0]),
                    np.array([world.profiles.index_for("walking")]))
    assert state.adjusted(values, keys, world.profiles).tolist() == values.tolist()


def test_split_recent_holds_out_the_newest_events(world):
    events, _ = world.events(50, seed=8)
    older, recent = split_recent(list(reversed(events)), held_out=0.2)
    assert len(recent) == 10 and min(o.at for o in recent) > max(o.at for o in older)


if __name__ == "__main__":  # the figures docs/learning.md quotes
    world = hidden_world()
    events, _ = world.events(10_000, seed=1, customers=TRAINING_CUSTOMERS)
    known, known_truth = world.events(4_000, seed=99, customers=TRAINING_CUSTOMERS, t0=T0 + timedelta(days=60))
    new, new_truth = world.events(4_000, seed=99, customers=np.arange(3000, 3500), t0=T0 + timedelta(days=60))
    for count in (1_000, 3_000, 10_000):
        start, wall = time.process_time(), time.perf_counter()
        result = learn(events[:count], world.profiles)
        cpu, wall = time.process_time() - start, time.perf_counter() - wall
        error, sd, _ = run_errors(world, result.state)
        print(f"{count} events: {cpu:.1f} s CPU ({wall:.1f} s wall), {result.iterations} L-BFGS iterations")
        print(f"  correction RMSE per measure {np.sqrt((error ** 2).mean(axis=0)).round(2)} mm, mean SD "
              f"{sd.mean(axis=0).round(2)}, within 2 SD {(np.abs(error) < 2 * sd).mean(axis=0).round(2)}")
        for name, held_out, truth in (("known customers", known, known_truth), ("new customers", new, new_truth)):
            c = evaluate(result.state, result.preferences, held_out, world.profiles)
            best = calibration(truth, np.array([o.kept for o in held_out]))
            print(f"  {name}: Brier {c.brier:.3f} (hidden world's own {best.brier:.3f}), log loss {c.log_loss:.3f}, "
                  f"worst bin gap {max(abs(b.observed - b.predicted) for b in c.bins if b.count >= 100):.3f}")
            print("   ", " ".join(f"{b.predicted:.2f}/{b.observed:.2f}/{b.count}" for b in c.bins if b.count))
