"""True comfort: the simulated customer's judgement of a true foot in a true interior (simulator/comfort.py)."""

from dataclasses import replace

import numpy as np
import pytest

from core.errors import SimulatorError
from core.mesh import Mesh
from core.sizes import EU_STEP_MM, GIRTH_PER_WIDTH_FITTING_MM, SIZE_SYSTEMS
from simulator.catalog import LastSpec, generate_catalogue, last_interior, true_last
from simulator.comfort import (
    FOREFOOT_GIRTH,
    GIRTH_JND_MM,
    WEIGHTS,
    band_cost,
    comfort,
    place_foot,
    preference,
    region_costs,
)
from simulator.subjects import FootDims, deform_template, mirrored, template_subject

DESIGN_LENGTH_MM = 265.0


@pytest.fixture(scope="module")
def design_foot() -> Mesh:
    """The foot the generator's lasts are made for: breadth 0.38, girth 0.93, heel 0.25 of its length."""
    length = DESIGN_LENGTH_MM
    return deform_template(FootDims(length, 0.38 * length, 0.93 * length, 0.25 * length))


@pytest.fixture(scope="module")
def placed(design_foot):
    return place_foot(design_foot, "left")


def _last(allowance_mm: float, sizes_off: int = 0, **changes) -> LastSpec:
    """A last built for the design foot, or for a foot `sizes_off` EU sizes longer."""
    spec = LastSpec(foot_length_mm=DESIGN_LENGTH_MM + sizes_off * EU_STEP_MM, allowance_mm=allowance_mm,
                    length_bias_mm=0.0, girth_bias_mm=0.0, collar_height_mm=58.0, toe_box_height_mm=30.0,
                    toe_shape="round", toe_offset_mm=6.0)
    return replace(spec, **changes)


def _scores(placed, allowance_mm, wants, sizes):
    return {k: comfort(placed, last_interior(_last(allowance_mm, k)), wants).score for k in sizes}


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


# --- the true last of any size (simulator.catalog.true_last) ---


@pytest.fixture(scope="module")
def catalogue():
    return generate_catalogue(60, seed=3)


def test_a_scanned_size_is_its_scan_and_other_sizes_are_built_for_their_label(catalogue):
    for truth in catalogue.truth[:20]:
        rows = [r for r in catalogue.rows if r["model_code"] == truth.model_code]
        for sku in truth.scanned_skus:
            assert true_last(catalogue, sku) == catalogue.lasts[sku]
        for row in rows:
            last = true_last(catalogue, row["sku"])
            label = float(row["size"])
            if truth.category == "ski":
                label = np.floor(label) + 0.5
            assert last.foot_length_mm == pytest.approx(SIZE_SYSTEMS[row["size_system"]].foot_length_mm(label))
            assert last.length_bias_mm == pytest.approx(truth.length_bias_mm, abs=1e-3)
            expected_girth = truth.girth_bias_mm + (GIRTH_PER_WIDTH_FITTING_MM if row["width"] == "wide" else 0.0)
            assert last.girth_bias_mm == pytest.approx(expected_girth, abs=1e-3)


def test_a_scanned_sizes_true_interior_is_the_scanned_mesh(catalogue):
    truth = catalogue.truth[0]
    sku = truth.scanned_skus[0]
    scanned = [m for name, m in catalogue.interiors.items()
               if name.startswith(sku) or name.startswith(f"{truth.brand}_{truth.model_code}_")]
    assert any(np.array_equal(m.vertices_mm, last_interior(true_last(catalogue, sku)).vertices_mm) for m in scanned)


def test_an_unknown_sku_is_refused(catalogue):
    with pytest.raises(SimulatorError, match="not in this synthetic catalogue"):
        true_last(catalogue, "NOPE-42")
