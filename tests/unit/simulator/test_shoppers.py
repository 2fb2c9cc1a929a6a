"""How simulated customers shop (simulator/shoppers.py): store tries, webshop purchases and returns, seasons.

The customer's comfort of each size is the comfort model's own judgement (simulator.comfort.judged) of region fits
laid out along a size run, so that what a customer says and does can be set up exactly."""

from dataclasses import replace

import numpy as np
import pytest

from core.errors import SimulatorError
from core.sizes import EU_STEP_MM, WIDTH_FITTINGS
from simulator.comfort import Complaint, PairComfort, RegionFit, judged, preference
from simulator.customers import draw_customer
from simulator.shoppers import (
    KEPT_ANYWAY_SHARE,
    MAX_STORE_TRIES,
    NO_REASON_SHARE,
    RETURNING_SHARE,
    WIDTH_REASON_FLIP_SHARE,
    Fitting,
    SizeOption,
    Try,
    returns_in_season,
    store_visit,
    webshop_purchase,
)

FOOT_MM = 265.0
STEPS = range(-3, 4)


def _sizes(widths=("standard",)) -> list[SizeOption]:
    return [SizeOption(_sku(k, w), w, FOOT_MM + k * EU_STEP_MM) for w in widths for k in STEPS]


def _sku(step: int, width: str = "standard") -> str:
    return f"M-{width[0].upper()}-{step:+d}"


def _fitting(sizes: list[SizeOption], toe_mm=17.5, girth_mm=0.0, width_mm=1.0, heel_mm=0.0, heel_per_size_mm=1.0,
             counter: list | None = None, heel_of=None) -> Fitting:
    """A customer whose foot sits in size k (EU steps from the one made for their length) of width fitting w with
    these values at k = 0, standard: each size adds a step of toe room, 5 mm of girth and 2 mm of breadth, each
    width fitting 6.5 mm of girth and 2.6 mm of breadth; the heel's clearance grows by `heel_per_size_mm` a size,
    or is `heel_of(k)`."""
    by_sku = {s.sku: s for s in sizes}
    wants = preference("walking")
    heel_of = heel_of or (lambda k: heel_mm + heel_per_size_mm * k)

    def pair_comfort(sku: str) -> PairComfort:
        if counter is not None:
            counter.append(sku)
        size = by_sku[sku]
        k = (size.nominal_mm - FOOT_MM) / EU_STEP_MM
        w = WIDTH_FITTINGS.index(size.width) - WIDTH_FITTINGS.index("standard")
        fit = RegionFit(toe_room_mm=toe_mm + k * EU_STEP_MM, toe_box_pressure_mm=0.0,
                        forefoot_girth_mm=girth_mm + 5.0 * k + 6.5 * w, forefoot_width_mm=width_mm + 2.0 * k + 2.6 * w,
                        forefoot_pressure_mm=0.0, instep_pressure_mm=0.0, heel_width_mm=heel_of(k),
                        heel_slide_mm=0.0, yaw_deg=0.0, shift_mm=0.0)
        return PairComfort(judged(fit, wants), judged(fit, wants))

    return Fitting(sizes, pair_comfort, FOOT_MM)


def test_the_best_size_is_found_by_trying_only_the_sizes_around_it():
    asked = []
    fitting = _fitting(_sizes(("standard", "wide")), counter=asked)
    assert fitting.best_cost == pytest.approx(fitting.comfort(_sku(0)).cost) == 0.0
    assert len(set(asked)) == len(asked) < 14  # each size asked once, the far ones never
    assert _sku(-3) not in fitting.tried and _sku(3, "wide") not in fitting.tried
    assert fitting.kept(_sku(0)) and not fitting.kept(_sku(-1)) and not fitting.kept(_sku(2))


def test_every_kept_size_is_found_though_the_walk_to_the_best_stops_at_the_first_rise():
    """Sizes whose cost rises slowly past the best (the toes a little longer each size): the walk to the best stops
    at the first size that costs more, and the kept sizes are walked on to while they stay within one threshold."""
    toe_mm = {_sku(-1): 10.0, _sku(0): 17.5, _sku(1): 22.58, _sku(2): 23.65, _sku(3): 26.67}  # costs 0, 0.3, 0.6, 2
    wants = preference("walking")

    def pair_comfort(sku: str) -> PairComfort:
        fit = RegionFit(toe_room_mm=toe_mm.get(sku, 40.0), toe_box_pressure_mm=0.0, forefoot_girth_mm=0.0,
                        forefoot_width_mm=1.0, forefoot_pressure_mm=0.0, instep_pressure_mm=0.0, heel_width_mm=0.0,
                        heel_slide_mm=0.0, yaw_deg=0.0, shift_mm=0.0)
        return PairComfort(judged(fit, wants), judged(fit, wants))

    fitting = Fitting(_sizes(), pair_comfort, FOOT_MM)
    assert fitting.best_cost == 0.0 and set(fitting.tried) == {_sku(-1), _sku(0), _sku(1)}
    assert fitting.kept_skus == {_sku(0), _sku(1), _sku(2)}
    assert _sku(3) in fitting.tried and _sku(-2) not in fitting.tried


def test_in_a_store_the_customer_says_the_toes_hit_and_staff_bring_the_next_size_up():
    visit = store_visit(_fitting(_sizes()), _sku(-1))
    assert visit.tries == (Try(_sku(-1), False, Complaint("toe", "tight")), Try(_sku(0), True, None))
    assert visit.chosen_sku == _sku(0)
    too_long = store_visit(_fitting(_sizes()), _sku(2))
    assert too_long.tries[0].complaint == Complaint("toe", "loose") and too_long.tries[1].sku == _sku(1)


def test_a_pinching_ball_gets_the_wider_fitting_when_the_model_has_one_else_a_size_up():
    wide_foot = dict(girth_mm=-10.0, width_mm=-2.0)
    visit = store_visit(_fitting(_sizes(("standard", "wide")), **wide_foot), _sku(0))
    assert visit.tries[0] == Try(_sku(0), False, Complaint("ball", "tight"))
    assert visit.tries[1:] == (Try(_sku(0, "wide"), True, None),) and visit.chosen_sku == _sku(0, "wide")
    without_wide = store_visit(_fitting(_sizes(), **wide_foot), _sku(0))
    assert [t.sku for t in without_wide.tries] == [_sku(0), _sku(1)] and without_wide.chosen_sku == _sku(1)


def test_the_best_size_is_the_cheapest_even_when_it_pinches_and_then_no_size_is_kept():
    """Issue 14's rule as written: the best size is the lowest cost over the model's sizes. A foot whose toes hit
    in the size made for its length, where the ball is roomy one size up: the pinching size costs least, so it is
    the best; the size up is more than one threshold dearer, so it is not kept either: the model does not fit."""
    fitting = _fitting(_sizes(), toe_mm=10.0, girth_mm=8.0)
    smaller, larger = fitting.comfort(_sku(0)), fitting.comfort(_sku(1))
    assert smaller.too_tight and smaller.cost < larger.cost - 1.0 and not larger.too_tight
    assert fitting.best_cost == pytest.approx(smaller.cost)
    assert not fitting.kept(_sku(0)) and not fitting.kept(_sku(1))
    # a heel that pinches a little in one size and slips a little in the next: the pinching size is the best, the
    # next is within one threshold of it, and is kept
    near = _fitting(_sizes(), heel_of=lambda k: {0: -4.56, 1: 7.12}.get(round(k), 0.0))
    assert near.comfort(_sku(0)).too_tight and near.best_cost == pytest.approx(near.comfort(_sku(0)).cost)
    assert near.comfort(_sku(1)).cost <= near.best_cost + 1.0 and near.kept(_sku(1))


def test_staff_bring_at_most_three_sizes_and_never_one_already_tried():
    hopeless = _fitting(_sizes(), girth_mm=-40.0)
    visit = store_visit(hopeless, _sku(0))
    assert len(visit.tries) == MAX_STORE_TRIES and visit.chosen_sku is None
    assert [t.complaint for t in visit.tries] == [Complaint("ball", "tight")] * 3
    assert not any(hopeless.kept(s.sku) for s in _sizes())  # every size pinches: the model does not fit
    # toes hit in one size, the heel slips in the next (a heel cup that suits the size after): staff would bring
    # the first again, so the visit ends without a choice
    between = _fitting(_sizes(), toe_mm=8.0, heel_of=lambda k: {1: 15.0}.get(round(k), 0.0))
    visit = store_visit(between, _sku(0))
    assert [(t.sku, t.complaint) for t in visit.tries] == [(_sku(0), Complaint("toe", "tight")),
                                                            (_sku(1), Complaint("heel", "loose"))]
    assert visit.chosen_sku is None and between.kept(_sku(2))


def test_staff_skip_sizes_of_the_same_shell():
    """A ski boot's whole and half size share one shell: they feel the same, so staff bring the next shell."""
    labels = [FOOT_MM - 5.0, FOOT_MM - 2.5, FOOT_MM, FOOT_MM + 2.5]  # two shells of two sizes each
    sizes = [SizeOption(f"SKI-{i}", "standard", mm) for i, mm in enumerate(labels)]
    shell = {s.sku: s.nominal_mm // 5.0 * 5.0 for s in sizes}
    plain = _fitting(_sizes())

    def same_shell_comfort(sku: str) -> PairComfort:  # the shell ~1 EU size too small, then right
        return plain.comfort(_sku(-1 if shell[sku] < FOOT_MM else 0))

    fitting = Fitting(sizes, same_shell_comfort, FOOT_MM)
    visit = store_visit(fitting, "SKI-0")
    assert [t.sku for t in visit.tries] == ["SKI-0", "SKI-2"] and visit.chosen_sku == "SKI-2"


def test_a_webshop_customer_keeps_a_size_that_fits_and_returns_one_that_does_not():
    fitting = _fitting(_sizes())
    right = webshop_purchase(fitting, _sku(0), seed=1)
    assert right.kept and right.right and right.reason is None
    assert webshop_purchase(fitting, _sku(-2), seed=1) == webshop_purchase(fitting, _sku(-2), seed=1)
    returns = [webshop_purchase(fitting, _sku(-2), seed=(7, n)) for n in range(4000)]
    assert not any(p.right for p in returns)
    kept_anyway = np.mean([p.kept for p in returns])
    assert kept_anyway == pytest.approx(KEPT_ANYWAY_SHARE, abs=0.015)
    sent_back = [p for p in returns if not p.kept]
    assert np.mean([p.reason is None for p in sent_back]) == pytest.approx(NO_REASON_SHARE, abs=0.025)
    assert {p.reason for p in sent_back} == {None, "too_small"}  # the toes hit: a length problem is named right
    assert {p.reason for p in (webshop_purchase(fitting, _sku(3), seed=(7, n)) for n in range(200))} >= {"too_large"}


def test_some_returns_for_a_width_problem_tick_the_other_box():
    wide_foot = _fitting(_sizes(), girth_mm=-10.0, width_mm=-2.0)
    assert wide_foot.comfort(_sku(0)).complaint == Complaint("ball", "tight")
    reasons = [webshop_purchase(wide_foot, _sku(0), seed=(3, n)).reason for n in range(4000)]
    given = [r for r in reasons if r is not None]
    assert np.mean([r == "too_large" for r in given]) == pytest.approx(WIDTH_REASON_FLIP_SHARE, abs=0.025)


def test_a_share_of_customers_comes_back_in_each_later_season():
    customers = [draw_customer(seed) for seed in range(3000)]
    back = np.array([[returns_in_season(c, season) for season in (1, 2)] for c in customers])
    assert back.mean(axis=0) == pytest.approx([RETURNING_SHARE] * 2, abs=0.03)
    assert abs(np.corrcoef(back.T)[0, 1]) < 0.06  # each season drawn on its own
    assert returns_in_season(customers[5], 1) == returns_in_season(replace(customers[5]), 1)
    with pytest.raises(SimulatorError, match="season 0 is the customer's first visit"):
        returns_in_season(customers[0], 0)


def test_sizes_outside_the_model_and_unknown_fittings_are_refused():
    fitting = _fitting(_sizes())
    with pytest.raises(SimulatorError, match="not one of this model's"):
        fitting.comfort("OTHER-42")
    with pytest.raises(SimulatorError, match="width fitting"):
        Fitting([SizeOption("X", "broad", FOOT_MM)], fitting.comfort, FOOT_MM)
    with pytest.raises(SimulatorError, match="without sizes"):
        Fitting([], fitting.comfort, FOOT_MM)
