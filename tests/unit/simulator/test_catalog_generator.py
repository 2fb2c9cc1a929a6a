"""The synthetic catalogue: deterministic, realistic size runs, labels that lie by about half a size, last families
drawn per model, and brands that grade their own way."""

import json
from collections import Counter

import numpy as np
import pytest

from core.errors import SimulatorError
from core.sizes import UK_US_STEP_MM, width_steps
from simulator.catalog import (
    FAMILY_SHARES,
    GIRTH_PER_SIZE_MM,
    generate_catalogue,
    true_last,
    write_catalogue,
)
from simulator.lasts import LAST_FAMILIES, last_interior


@pytest.fixture(scope="module")
def large():
    return generate_catalogue(300, seed=11)


def test_same_seed_same_catalogue_other_seed_another():
    a, b, c = generate_catalogue(8, seed=5), generate_catalogue(8, seed=5), generate_catalogue(8, seed=6)
    assert a.rows == b.rows and a.truth == b.truth and a.lasts == b.lasts
    assert all(np.array_equal(a.interiors[k].vertices_mm, b.interiors[k].vertices_mm) for k in a.interiors)
    assert a.rows != c.rows
    assert [t.grading for t in a.truth] != [t.grading for t in c.truth]


def test_labels_deviate_about_half_a_size_and_brands_run_small_or_large(large):
    bias = np.array([t.length_bias_mm for t in large.truth])
    assert 2.0 < np.abs(bias).mean() < 5.0  # half an EU size is 3.3 mm
    tendencies = {t.brand_tendency for t in large.truth}
    assert {"small", "large"} <= tendencies
    small = np.mean([t.length_bias_mm for t in large.truth if t.brand_tendency == "small"])
    big = np.mean([t.length_bias_mm for t in large.truth if t.brand_tendency == "large"])
    assert small < -2.0 and big > 2.0


def test_every_model_has_a_scan_skus_are_unique_and_stock_is_plausible():
    catalogue = generate_catalogue(60, seed=2, stores=4)
    skus = [r["sku"] for r in catalogue.rows]
    assert len(set(skus)) == len(skus)
    assert all(t.scanned_skus for t in catalogue.truth)
    per_model = Counter(r["model_code"] for r in catalogue.rows)
    assert all(6 <= n <= 39 for n in per_model.values())  # a size run, perhaps in up to three width fittings
    quantities = np.array([q for r in catalogue.rows for q in r["stock"].values()])
    assert 0.2 < (quantities == 0).mean() < 0.9 and quantities.max() < 15


def test_models_draw_their_last_family_which_only_the_truth_says(large, tmp_path):
    shares = Counter(t.last_family for t in large.truth)
    assert set(shares) == set(LAST_FAMILIES)
    for family, share in FAMILY_SHARES.items():
        assert shares[family] / len(large.truth) == pytest.approx(share, abs=0.07)
    assert all(true_last(large, r["sku"]).family == t.last_family
               for t in large.truth for r in large.rows if r["model_code"] == t.model_code)
    small = generate_catalogue(6, seed=4)
    products = write_catalogue(small, tmp_path)
    text = products.read_text()
    assert not any(family in text for family in LAST_FAMILIES) and "donor" not in text
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert [t["last_family"] for t in truth] == [t.last_family for t in small.truth]
    assert truth[0]["grading"]["girth_per_size_mm"] == small.truth[0].grading.girth_per_size_mm


def test_brands_grade_their_own_way(large):
    laws = {t.brand: t.grading for t in large.truth}
    per_size = np.array([law.girth_per_size_mm for law in laws.values()])
    assert len(laws) == 16 and len(set(per_size)) == 16
    assert abs(per_size.mean() - GIRTH_PER_SIZE_MM[0]) < 0.8 and 0.5 < per_size.std() < 1.6
    assert len({law.fittings for law in laws.values()}) >= 3
    assert all("standard" in law.fittings for law in laws.values())
    assert {t.brand: t.grading for t in generate_catalogue(300, seed=11).truth} == laws  # by seed


def test_every_size_is_its_master_last_graded_by_its_brands_law(large):
    rows = {}
    for r in large.rows:
        rows.setdefault(r["model_code"], []).append(r)
    for truth in large.truth[:60]:
        law = truth.grading
        sizes = rows[truth.model_code]
        masters = {true_last(large, r["sku"]) for r in sizes if true_last(large, r["sku"]).grade is None}
        assert len(masters) == 1  # the middle size of the standard fitting (a ski boot's: its shell's two sizes)
        master = masters.pop()
        assert {r["width"] for r in sizes} <= set(law.fittings)
        for r in sizes:
            last = true_last(large, r["sku"])
            assert last.master == master
            assert last.length_bias_mm == pytest.approx(truth.length_bias_mm, abs=1e-3)  # truth.json rounds
            assert last.allowance_mm == pytest.approx(truth.allowance_mm, abs=1e-3)
            fittings = width_steps("standard", r["width"])
            expected = (law.girth_per_size_mm * (last.foot_length_mm - master.foot_length_mm) / UK_US_STEP_MM
                        + law.girth_per_fitting_mm * fittings)
            assert last.ball_girth_mm - master.ball_girth_mm == pytest.approx(expected, abs=1e-9)
            # breadth follows girth in the master's (the family's) proportion
            assert last.ball_width_mm / master.ball_width_mm == pytest.approx(last.ball_girth_mm
                                                                               / master.ball_girth_mm)


def test_a_scanned_size_is_the_scan_of_its_true_last():
    catalogue = generate_catalogue(12, seed=7)
    for truth in catalogue.truth:
        for sku in truth.scanned_skus:
            scans = [m for name, m in catalogue.interiors.items() if name.startswith(sku) or
                     name.startswith(f"{truth.brand}_{truth.model_code}_")]
            assert any(np.array_equal(m.vertices_mm, last_interior(true_last(catalogue, sku)).vertices_mm)
                       for m in scans)
    with pytest.raises(SimulatorError, match="not in this synthetic catalogue"):
        true_last(catalogue, "NOPE-42")
