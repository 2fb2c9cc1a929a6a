"""True comfort: the simulated customer's judgement of a true foot in a true interior (simulator/comfort.py)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from core.errors import SimulatorError
from core.mesh import Mesh
from core.sizes import EU_STEP_MM, GIRTH_PER_WIDTH_FITTING_MM, UK_US_STEP_MM
from core.vocabulary import REGIONS
from simulator.comfort import (
    FOREFOOT_GIRTH,
    FOREFOOT_WIDTH,
    GIRTH_JND_MM,
    GIRTH_PER_BREADTH,
    KEPT_MARGIN,
    TERMS,
    WEIGHTS,
    WIDTH_JND_MM,
    Complaint,
    PairComfort,
    Preferences,
    RegionFit,
    band_cost,
    comfort,
    judged,
    kept,
    pair_comfort,
    place_foot,
    preference,
    region_costs,
)
from simulator.lasts import Donor, Grade, LastSpec, last_interior, nominal_foot, tube_triangles
from simulator.subjects import FootDims, ball_section, deform_template, mirrored, template_subject

DESIGN_LENGTH_MM = 265.0
CUT_STATIONS = 44
CUT_RING_POINTS = 48


@pytest.fixture(scope="module")
def design_foot() -> Mesh:
    """The nominal foot the generator's lasts are made for: breadth 0.38, girth 0.93, heel 0.25 of its length."""
    length = DESIGN_LENGTH_MM
    return deform_template(FootDims(length, 0.38 * length, 0.93 * length, 0.25 * length))


@pytest.fixture(scope="module")
def placed(design_foot):
    return place_foot(design_foot, "left")


@pytest.fixture(scope="module")
def pair(design_foot):
    return {"left": place_foot(design_foot, "left"), "right": place_foot(mirrored(design_foot), "right")}


def _last(allowance_mm: float, sizes_off: int = 0, **changes) -> LastSpec:
    """A superellipse last built for the design foot, or for a foot `sizes_off` EU sizes longer."""
    spec = LastSpec(foot_length_mm=DESIGN_LENGTH_MM + sizes_off * EU_STEP_MM, allowance_mm=allowance_mm,
                    length_bias_mm=0.0, girth_bias_mm=0.0, collar_height_mm=58.0, toe_box_height_mm=30.0,
                    toe_shape="round", toe_offset_mm=6.0)
    return replace(spec, **changes)


def _cut_from_foot(foot: Mesh, sizes_off: int, allowance_mm: float = 17.0, ease_mm: float = 2.0,
                   collar_mm: float = 58.0) -> Mesh:
    """A last cut from a foot, as a last maker would: its cross-sections (convex hulls below the collar, the
    footprint flattened onto the insole) with `ease_mm` of girth, the last section shrinking to a tip
    `allowance_mm` ahead of the toes; graded `sizes_off` EU sizes (length by the step, girth 0.75 mm per mm)."""
    pternion_x = foot.vertices_mm[foot.vertices_mm[:, 2] < 50.0, 0].min()
    foot = Mesh(foot.vertices_mm - [pternion_x, 0.0, 0.0], foot.triangles)
    length = float(foot.vertices_mm[:, 0].max())
    x = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, CUT_STATIONS + 2)[1:-1])) * length
    angles = -np.pi + 2 * np.pi * np.arange(CUT_RING_POINTS) / CUT_RING_POINTS
    rings = []
    for station in x:
        points = ball_section(foot, np.array([station, 0.0, 0.0]), np.array([station, 1.0, 0.0]))[:, 1:]
        points = points[points[:, 1] < collar_mm]
        footprint = points[points[:, 1] < 3.0] * [1.0, 0.0]
        hull = cv2.convexHull(np.vstack([points, footprint]).astype(np.float32)).reshape(-1, 2).astype(float)
        centre = hull.mean(axis=0)
        rings.append(centre + (_ray_to_outline(hull - centre, angles) + ease_mm / (2 * np.pi))[:, None]
                     * np.column_stack([np.cos(angles), np.sin(angles)]))
    tip = rings[-1]
    for t in (0.25, 0.5, 0.75):  # the toe box: the last section rounding off to the tip
        rings.append(np.column_stack([tip[:, 0].mean() + (tip[:, 0] - tip[:, 0].mean()) * np.sqrt(1 - t * t),
                                      tip[:, 1] * np.sqrt(1 - t * t)]))
    x = np.r_[x, length + allowance_mm * np.array([0.25, 0.5, 0.75])]
    rings = np.maximum(np.array(rings), [-np.inf, 0.0])
    ends = [[0.0, *rings[0].mean(axis=0)], [length + allowance_mm, *tip.mean(axis=0) * [1.0, 0.5]]]
    vertices = np.vstack([np.column_stack([np.repeat(x, CUT_RING_POINTS), rings.reshape(-1, 2)]), ends])
    grown_mm = sizes_off * EU_STEP_MM
    across = 1.0 + 0.75 * grown_mm / (0.93 * length)
    return Mesh(vertices * [1.0 + grown_mm / length, across, across], tube_triangles(len(x), CUT_RING_POINTS))


def _ray_to_outline(outline: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Distance from the origin to a convex outline around it, along each angle."""
    p, e = outline, np.roll(outline, -1, axis=0) - outline
    d = np.column_stack([np.cos(angles), np.sin(angles)])
    det = e[None, :, 0] * d[:, None, 1] - e[None, :, 1] * d[:, None, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (e[None, :, 0] * p[None, :, 1] - e[None, :, 1] * p[None, :, 0]) / det
        s = (d[:, None, 0] * p[None, :, 1] - d[:, None, 1] * p[None, :, 0]) / det
    return np.where((r > 0) & (s >= -1e-9) & (s <= 1 + 1e-9), r, np.inf).min(axis=1)


def _scores(placed, allowance_mm, wants, sizes):
    return {k: comfort(placed, last_interior(_last(allowance_mm, k)), wants).score for k in sizes}


# --- the ball is read as lasts and feet are measured, on any kind of last ---


def test_a_last_cut_from_the_foot_with_the_published_ease_fits_it(design_foot, placed):
    """The forefoot measures follow the published figures on a cavity of the foot's own shape, not on one
    generator's: 2 mm of ease reads ~2 mm of girth, the breadth about nothing, and nothing presses."""
    fit = comfort(placed, _cut_from_foot(design_foot, 0), preference("walking"))
    assert fit.fit.forefoot_girth_mm == pytest.approx(2.0, abs=1.5)
    assert FOREFOOT_WIDTH.low_mm - 0.5 < fit.fit.forefoot_width_mm < 1.0
    assert fit.fit.toe_room_mm == pytest.approx(17.0, abs=1.0)
    assert max(fit.fit.toe_box_pressure_mm, fit.fit.forefoot_pressure_mm, fit.fit.instep_pressure_mm) < 1.0
    assert -fit.score < 0.5  # comfortable: nothing noticeably wrong


@pytest.mark.parametrize("kind", ["superellipse", "cut from the foot"])
def test_every_kind_of_last_is_kept_in_its_size_tight_one_smaller_and_roomy_two_larger(design_foot, pair, kind):
    wants = preference("walking")
    make = {"superellipse": lambda k: last_interior(_last(17.0, k)),
            "cut from the foot": lambda k: _cut_from_foot(design_foot, k)}[kind]
    pairs = {k: pair_comfort(pair, make(k), wants) for k in (-1, 0, 1, 2)}
    best = min(p.cost for p in pairs.values() if not p.too_tight)
    assert pairs[0].cost == best and kept(pairs[0], best)
    assert pairs[-1].too_tight and not kept(pairs[-1], best)
    assert pairs[2].complaint.direction == "loose" and not pairs[2].too_tight and not kept(pairs[2], best)
    girths = [p.left.fit.forefoot_girth_mm for p in pairs.values()]
    assert girths == sorted(girths)  # more girth with every size


NOMINAL_MM = 266.67  # EU 42
FAMILY_CASES = [("superellipse", Donor()), ("straight", Donor()), ("foot", Donor())] + [
    ("foot", Donor(seed, sex)) for sex in ("female", "male") for seed in (0, 1, 2)]


@pytest.fixture(scope="module")
def nominal_pair():
    """Both feet of the nominal foot of EU 42 (simulator.lasts.nominal_foot), placed."""
    foot = nominal_foot(NOMINAL_MM)
    return {"left": place_foot(foot, "left"), "right": place_foot(mirrored(foot), "right")}


@pytest.mark.parametrize("family, donor", FAMILY_CASES)
def test_the_nominal_foot_keeps_its_own_size_in_every_family_one_smaller_pinches_two_larger_are_loose(
        nominal_pair, family, donor):
    """The catalogue's families (simulator/lasts.py) judged by the same measures: in the size made for it the
    nominal foot reads the published ball of well-fitted shoes and keeps it; one size smaller (graded by the
    mean law, 6.35 mm of girth per UK size) is too tight, two larger are loose and not kept (docs/simulator.md)."""
    master = LastSpec(foot_length_mm=NOMINAL_MM, allowance_mm=17.0, length_bias_mm=0.0, girth_bias_mm=0.0,
                      collar_height_mm=58.0, toe_box_height_mm=30.0, toe_shape="round", toe_offset_mm=6.0,
                      family=family, donor=donor)
    wants = preference("walking")
    pairs = {}
    for k in (-1, 0, 1, 2):
        size = master if k == 0 else replace(master, foot_length_mm=NOMINAL_MM + k * EU_STEP_MM,
                                             grade=Grade(NOMINAL_MM, 6.35 * k * EU_STEP_MM / UK_US_STEP_MM))
        pairs[k] = pair_comfort(nominal_pair, last_interior(size), wants)
    best = min(p.cost for p in pairs.values())
    own = pairs[0]
    assert FOREFOOT_GIRTH.low_mm < own.left.fit.forefoot_girth_mm < FOREFOOT_GIRTH.high_mm + 1.0
    assert FOREFOOT_WIDTH.low_mm < own.left.fit.forefoot_width_mm < FOREFOOT_WIDTH.high_mm
    assert own.cost == best and kept(own, best)
    assert pairs[-1].too_tight
    assert pairs[2].complaint.direction == "loose" and not pairs[2].too_tight and not kept(pairs[2], best)


def test_comfort_falls_two_sizes_too_small_or_too_large(placed):
    scores = _scores(placed, 17.0, preference("walking"), (-2, 0, 2))
    assert scores[-2] < scores[0] - 1.0  # at least one perception threshold squared worse
    assert scores[2] < scores[0] - 1.0
    assert scores[-2] < scores[2]  # too small hurts more than too large


@pytest.mark.parametrize("category, level, allowance_mm", [
    ("walking", "", 17.0), ("running", "", 15.0), ("hiking", "", 11.0), ("cycling", "", 6.0), ("ski", "expert", 7.0),
])
def test_the_size_a_last_was_built_for_wins_for_its_foot(placed, category, level, allowance_mm):
    scores = _scores(placed, allowance_mm, preference(category, level), range(-3, 4))
    assert max(scores, key=scores.get) == 0, scores


def test_a_tight_forefoot_costs_more_than_the_same_room(placed):
    wants = preference("walking")
    fitting = GIRTH_PER_WIDTH_FITTING_MM
    fits = {k: comfort(placed, last_interior(_last(17.0, girth_bias_mm=k * fitting)), wants) for k in (-3, 0, 3)}
    assert fits[-3].fit.forefoot_girth_mm < fits[0].fit.forefoot_girth_mm < fits[3].fit.forefoot_girth_mm
    assert fits[-3].score < fits[0].score - 1.0
    # the same distance outside the comfortable band: four times the cost on the tight side, and the forefoot
    # outweighs every other region
    design = fits[0].fit
    excess = GIRTH_JND_MM / 2
    tight = replace(design, forefoot_girth_mm=FOREFOOT_GIRTH.low_mm - excess)
    roomy = replace(design, forefoot_girth_mm=FOREFOOT_GIRTH.high_mm + excess)
    tight_cost, roomy_cost = region_costs(tight, wants), region_costs(roomy, wants)
    assert tight_cost["forefoot_girth"] == pytest.approx(4 * roomy_cost["forefoot_girth"])
    assert tight_cost["forefoot_girth"] == pytest.approx(1.0)  # half a width fitting tight: one threshold
    assert WEIGHTS["forefoot_girth"] == max(WEIGHTS.values())
    assert band_cost(0.5 * (FOREFOOT_GIRTH.low_mm + FOREFOOT_GIRTH.high_mm), FOREFOOT_GIRTH, GIRTH_JND_MM) == 0.0


def test_the_right_foot_is_the_mirror_of_the_left():
    subject = template_subject()  # its right foot is its left foot mirrored
    interior = last_interior(_last(17.0, sizes_off=0, foot_length_mm=255.0))
    wants = preference("walking")
    left = comfort(place_foot(subject.left, "left"), interior, wants)
    right = comfort(place_foot(subject.right, "right"), interior, wants)
    assert right.score == pytest.approx(left.score, abs=1e-9)
    assert right.fit == left.fit
    wrong_shoe = comfort(place_foot(subject.right, "left"), interior, wants)  # a right foot in a left shoe
    assert wrong_shoe.fit != left.fit


def test_a_placed_right_foot_has_its_big_toe_on_the_medial_side(design_foot):
    right = place_foot(mirrored(design_foot), "right")
    tip = right.points_mm[np.argmax(right.points_mm[:, 0])]
    assert tip[1] < -10.0  # the template's longest toe is the big toe, medial: -y in the left shoe's frame
    below_ankle = right.points_mm[right.points_mm[:, 2] < 50.0]
    assert below_ankle[:, 0].min() == pytest.approx(0.0, abs=2.0)  # the pternion at the counter's x = 0
    assert right.ball.medial_mm[1] < 0.0 < right.ball.lateral_mm[1]  # the ball line: medial on -y as well


def test_the_ball_line_girth_is_the_feet_measured_girth(design_foot, placed):
    """The foot's ball girth in the comfort model is the tape measure the population feet were shaped to."""
    assert placed.ball.girth_mm == pytest.approx(0.93 * DESIGN_LENGTH_MM, abs=0.5)


def test_feet_without_the_template_landmarks_and_unknown_names_are_refused(design_foot):
    box = Mesh(np.array([[0, 0, 0], [250, 0, 0], [0, 90, 0], [0, 0, 60]], float),
               np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))
    with pytest.raises(SimulatorError, match="FIND template"):
        place_foot(box, "left")
    with pytest.raises(SimulatorError, match="'left' or 'right'"):
        place_foot(design_foot, "both")
    with pytest.raises(SimulatorError, match="category 'bowling' unknown"):
        preference("bowling")
    with pytest.raises(SimulatorError, match="level 'pro' unknown"):
        preference("ski", "pro")


# --- personal preferences ---


def test_personal_preferences_shift_a_categorys_bands():
    walking = preference("walking")
    assert preference("walking", personal=Preferences()) == walking
    roomy = preference("walking", personal=Preferences(toe_room_mm=3.0, forefoot_girth_mm=2.47, heel_width_mm=-1.0))
    assert (roomy.toe_room.low_mm, roomy.toe_room.high_mm) == (18.0, 23.0)
    assert roomy.forefoot_girth.low_mm == pytest.approx(walking.forefoot_girth.low_mm + 2.47)
    assert roomy.forefoot_width.high_mm == pytest.approx(walking.forefoot_width.high_mm + 2.47 / GIRTH_PER_BREADTH)
    assert roomy.heel_width.high_mm == pytest.approx(walking.heel_width.high_mm - 1.0)
    cramped = preference("cycling", personal=Preferences(toe_room_mm=-9.0))  # cycling wants 3-10 mm
    assert cramped.toe_room.low_mm == 0.0  # nobody wants the toes pressed into the toe
    assert cramped.toe_room.high_mm - cramped.toe_room.low_mm == pytest.approx(7.0)


def test_a_customer_who_wants_more_toe_room_prefers_a_longer_size(design_foot, placed):
    fits = {k: comfort(placed, _cut_from_foot(design_foot, k), preference("walking")).fit for k in (0, 1)}
    for wants_mm, best in ((0.0, 0), (10.0, 1)):
        wants = preference("walking", personal=Preferences(toe_room_mm=wants_mm))
        costs = {k: -judged(fit, wants).score for k, fit in fits.items()}
        assert min(costs, key=costs.get) == best, costs


# --- the kept rule and what a customer says ---


def _fit(**changes) -> RegionFit:
    """A foot that fits a walking shoe well everywhere, but for `changes`."""
    inside = RegionFit(toe_room_mm=17.5, toe_box_pressure_mm=0.0, forefoot_girth_mm=0.0, forefoot_width_mm=1.0,
                       forefoot_pressure_mm=0.0, instep_pressure_mm=0.0, heel_width_mm=0.0, heel_slide_mm=0.0,
                       yaw_deg=0.0, shift_mm=0.0)
    return replace(inside, **changes)


def _pair(**changes) -> PairComfort:
    foot = judged(_fit(**changes), preference("walking"))
    return PairComfort(foot, judged(_fit(), preference("walking")))


def test_a_size_within_one_threshold_of_the_best_is_kept_unless_a_region_is_tight():
    best = _pair()
    assert best.cost == 0.0 and best.complaint is None and kept(best, best.cost)
    roomy = _pair(toe_room_mm=20.0 + 0.9 * 20.0 / 3.0)  # 0.9 thresholds too long: 0.81
    assert kept(roomy, 0.0) and not kept(roomy, best_cost=-0.5)
    long = _pair(toe_room_mm=20.0 + 1.1 * 20.0 / 3.0)
    assert long.cost > KEPT_MARGIN and not kept(long, 0.0)
    # the heel weighs 0.5: tight by 1.2 thresholds costs only 0.72, within the margin, yet nobody keeps it
    pinching = _pair(heel_width_mm=-3.0 - 1.2 * WIDTH_JND_MM / 2)
    assert pinching.cost <= KEPT_MARGIN and pinching.too_tight and not kept(pinching, 0.0)
    slipping = _pair(heel_width_mm=4.0 + 1.2 * WIDTH_JND_MM)  # the same cost on the roomy side is kept
    assert not slipping.too_tight and kept(slipping, 0.0)
    # the model's best size may pinch (issue 14's rule as written): a size within one threshold of it is kept,
    # one dearer is not
    far = _pair(toe_room_mm=20.0 + 1.5 * 20.0 / 3.0)
    assert kept(long, pinching.cost) and far.cost > pinching.cost + KEPT_MARGIN and not kept(far, pinching.cost)


@pytest.mark.parametrize("changes, region, direction", [
    (dict(toe_room_mm=5.0), "toe", "tight"),  # the toes hit
    (dict(toe_room_mm=35.0), "toe", "loose"),  # too long
    (dict(toe_box_pressure_mm=15.0), "toe", "tight"),
    (dict(forefoot_girth_mm=-12.0), "ball", "tight"),  # pinches
    (dict(forefoot_width_mm=8.0), "ball", "loose"),
    (dict(forefoot_pressure_mm=15.0), "ball", "tight"),
    (dict(instep_pressure_mm=20.0), "instep", "tight"),  # presses
    (dict(heel_width_mm=9.0), "heel", "loose"),  # slips
])
def test_the_complaint_names_the_worst_region_and_which_way(changes, region, direction):
    assert _pair(**changes).complaint == Complaint(region, direction)


def test_the_worst_complaint_is_the_largest_weighted_cost():
    # the ball a little tight (1.0 weighted x2) and the toes far too long (cost 4): the toes are what they say
    pair = _pair(forefoot_girth_mm=FOREFOOT_GIRTH.low_mm - GIRTH_JND_MM / 2, toe_room_mm=20.0 + 2 * 20.0 / 3.0)
    assert pair.complaint == Complaint("toe", "loose")
    assert {term.region for term in TERMS.values()} <= set(REGIONS)
