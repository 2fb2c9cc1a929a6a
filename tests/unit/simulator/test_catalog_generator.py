"""The synthetic catalogue: deterministic, realistic size runs, labels that lie by about half a size."""

import numpy as np

from simulator.catalog import generate_catalogue


def test_same_seed_same_catalogue_other_seed_another():
    a, b, c = generate_catalogue(8, seed=5), generate_catalogue(8, seed=5), generate_catalogue(8, seed=6)
    assert a.rows == b.rows and a.truth == b.truth
    assert all(np.array_equal(a.interiors[k].vertices_mm, b.interiors[k].vertices_mm) for k in a.interiors)
    assert a.rows != c.rows


def test_labels_deviate_about_half_a_size_and_brands_run_small_or_large():
    catalogue = generate_catalogue(300, seed=11)
    bias = np.array([t.length_bias_mm for t in catalogue.truth])
    assert 2.0 < np.abs(bias).mean() < 5.0  # half an EU size is 3.3 mm
    tendencies = {t.brand_tendency for t in catalogue.truth}
    assert {"small", "large"} <= tendencies
    small = np.mean([t.length_bias_mm for t in catalogue.truth if t.brand_tendency == "small"])
    large = np.mean([t.length_bias_mm for t in catalogue.truth if t.brand_tendency == "large"])
    assert small < -2.0 and large > 2.0


def test_every_model_has_a_scan_skus_are_unique_and_stock_is_plausible():
    catalogue = generate_catalogue(60, seed=2, stores=4)
    skus = [r["sku"] for r in catalogue.rows]
    assert len(set(skus)) == len(skus)
    assert all(t.scanned_skus for t in catalogue.truth)
    per_model = {}
    for r in catalogue.rows:
        per_model.setdefault(r["model_code"], []).append(r)
    assert all(6 <= len(rows) <= 26 for rows in per_model.values())  # a size run, perhaps in two widths
    quantities = np.array([q for r in catalogue.rows for q in r["stock"].values()])
    assert 0.2 < (quantities == 0).mean() < 0.9 and quantities.max() < 15
