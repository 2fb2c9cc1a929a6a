"""The matcher's Python API (fitcore/fit/matcher.py) on small synthetic catalogues imported through shoe_db, in the
operator's view and as a retailer's (selling its assortment)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.db import open_service_db
from core.errors import CatalogError, MeasurementError
from core.mesh import write_points
from fitcore.fit.catalogue import Assortment
from fitcore.fit.matcher import Matcher, MatchFilters, ScannedFeet
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import generate_catalogue, write_catalogue
from testing.api_world import store_stock
from testing.fit_subjects import subject_feet


def _imported(url: str, models: int, seed: int, folder):
    """The operator's import of a generated catalogue, and the file's stock in its stores."""
    products = write_catalogue(generate_catalogue(models, seed, stores=3), folder)
    engine = open_service_db(url)
    assert import_products(products, folder / "interiors", engine=engine).committed
    store_stock(engine, products)
    return engine


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    return Matcher(load_matcher_catalogue(_imported(f"sqlite:///{folder / 'c.sqlite'}", 30, 3, folder)))


@pytest.fixture(scope="module")
def retailer(matcher):
    """The matcher as a retailer's that sells every other model, under its own SKUs, at 50 + the model id."""
    c = matcher.catalogue
    sold = np.flatnonzero(np.isin(c.model_ids, c.models.model_ids[::2]))[::-1]  # in any order
    return matcher.selling(Assortment.aligned(c.size_ids, c.size_ids[sold], [f"R-{c.sku[i]}" for i in sold],
                                              50.0 + c.model_ids[sold], ["GBP"] * len(sold)))


@pytest.fixture(scope="module")
def feet():
    return subject_feet(6)


def _nominal(matcher: Matcher, size_id: int) -> float:
    c = matcher.catalogue
    return float(c.nominal_foot_length_mm[np.searchsorted(c.size_ids, size_id)])


def test_best_sizes_give_every_model_its_best_size_with_the_sizes_around(matcher, feet):
    fits = matcher.best_sizes(feet)
    c = matcher.catalogue
    assert sorted(f.model_id for f in fits) == sorted(set(c.model_ids.tolist()))
    assert [f.score for f in fits] == sorted((f.score for f in fits), reverse=True)
    longer = "left" if feet.left.measurements.length_mm >= feet.right.measurements.length_mm else "right"
    for f in fits:
        assert c.model_ids[np.searchsorted(c.size_ids, f.size_id)] == f.model_id
        assert f.deciding_foot == longer and f.score == getattr(f, longer).score
        for other in (f.size_down, f.size_up):
            if other is not None:
                assert other.score <= f.score and other.width == f.width
        if f.size_down is not None:
            assert _nominal(matcher, f.size_down.size_id) < _nominal(matcher, f.size_id)
        if f.size_up is not None:
            assert _nominal(matcher, f.size_up.size_id) > _nominal(matcher, f.size_id)
        assert f.fits == (f.score >= matcher.profiles.fits_min_score + 0.05 and getattr(f, longer).verdict != "tight") \
            or abs(f.score - matcher.profiles.fits_min_score) <= 0.05
    json.dumps(fits[0].to_dict())


def test_the_search_finds_the_best_size_of_every_run(matcher, feet):
    """The climb from the length guess ends at the best size of each model, also across sizes of equal score
    (a ski boot's whole and half size share one shell): checked against every size of the catalogue."""
    fits = {f.model_id: f for f in matcher.best_sizes(feet)}
    c = matcher.catalogue
    every = matcher._size_fits(feet, np.arange(len(c.size_ids)))
    for model_id, fit in fits.items():
        best = max(every[int(i)].score for i in np.flatnonzero(c.model_ids == model_id))
        assert fit.score == pytest.approx(best, abs=0.05)


def test_the_best_size_moves_up_when_the_foot_grows(matcher, feet):
    grown = subject_feet(6, scale=1.05)  # ~13 mm longer: two EU sizes, one and a half UK/US sizes
    before = {f.model_id: _nominal(matcher, f.size_id) for f in matcher.best_sizes(feet)}
    after = {f.model_id: _nominal(matcher, f.size_id) for f in matcher.best_sizes(grown)}
    assert all(after[m] >= before[m] for m in before)
    assert sum(after[m] > before[m] for m in before) >= 0.8 * len(before)


def test_top_gives_distinct_models_after_the_filters(matcher, feet):
    top = matcher.top(feet, 3)
    assert len(top) == 3 and len({r.fit.model_id for r in top}) == 3
    assert top[0].fit.score == matcher.best_sizes(feet)[0].score
    assert all(r.reason.startswith("toe room ") and "ball" in r.reason and "heel" in r.reason for r in top)
    models = matcher.catalogue.models
    category = str(models.category[0])
    assert {r.category for r in matcher.top(feet, 5, MatchFilters(category=category))} == {category}
    for r in matcher.top(feet, 10, MatchFilters(gender="women")):
        assert models.gender[models.rows(np.array([r.fit.model_id]))[0]] in ("women", "unisex")
    stocked = matcher.catalogue.stock["STORE-01"]
    in_store = matcher.top(feet, 5, MatchFilters(store="STORE-01"))
    assert in_store and all(r.fit.size_id in stocked for r in in_store)
    with pytest.raises(CatalogError, match="store 'NOWHERE'"):
        matcher.top(feet, 3, MatchFilters(store="NOWHERE"))
    with pytest.raises(CatalogError, match="retailer's prices"):  # the operator's view has none
        matcher.top(feet, 3, MatchFilters(price_max=100.0))


def test_a_retailer_is_recommended_only_what_it_sells_at_its_prices(matcher, retailer, feet):
    c = matcher.catalogue
    sold = set(c.models.model_ids[::2].tolist())
    everything = matcher.top(feet, 30)
    assert {r.fit.model_id for r in everything} - sold, "the operator's view recommends every model"
    assert all(np.isnan(r.price) and r.currency == "" for r in everything)
    mine = retailer.top(feet, 30)
    assert mine and {r.fit.model_id for r in mine} <= sold
    for r in mine:
        assert r.fit.sku == f"R-{c.sku[np.searchsorted(c.size_ids, r.fit.size_id)]}"
        assert (r.price, r.currency) == (50.0 + r.fit.model_id, "GBP")
    assert [r.fit.model_id for r in mine] == [r.fit.model_id for r in everything if r.fit.model_id in sold][:len(mine)]
    cheap = retailer.top(feet, 10, MatchFilters(price_min=55.0, price_max=60.0))
    assert cheap and all(55.0 <= r.price <= 60.0 for r in cheap)
    stocked = c.stock["STORE-01"]
    in_store = retailer.top(feet, 5, MatchFilters(store="STORE-01"))
    assert in_store and all(r.fit.size_id in stocked and r.fit.model_id in sold for r in in_store)
    unsold = next(m for m in c.models.model_ids.tolist() if m not in sold)
    assert retailer.best_sizes(feet, [unsold])[0].sku == ""  # it can size any shoe, but sells none of these
    assert matcher.assortment is None, "a retailer's view leaves the shared matcher alone"


def test_a_kept_search_of_every_model_answers_any_filters_alike(matcher, retailer, feet):
    search = matcher.search(feet)  # the shared matcher's: it answers a retailer's view as well
    assert search.complete and len(search.model_best) == len(np.unique(matcher.catalogue.model_ids))
    models = matcher.catalogue.models
    for filters in (MatchFilters(), MatchFilters(category=str(models.category[0])), MatchFilters(gender="women"),
                    MatchFilters(price_min=60.0, price_max=120.0), MatchFilters(store="STORE-01")):
        fresh, kept = retailer.top(feet, 5, filters), retailer.top(feet, 5, filters, search)
        assert [r.to_dict() for r in kept] == [r.to_dict() for r in fresh]
    some = [int(m) for m in models.model_ids[:4]]
    assert [f.to_dict() for f in matcher.best_sizes(feet, some, search)] == \
        [f.to_dict() for f in matcher.best_sizes(feet, some)]
    partial = matcher._search(feet, np.array(some[:1]))  # a search of some models is never taken for all
    assert not partial.complete
    assert [r.to_dict() for r in matcher.top(feet, 3, search=partial)] == [r.to_dict() for r in matcher.top(feet, 3)]


def test_tryon_gives_region_verdicts_and_the_clearance_at_every_point(matcher, feet):
    best = matcher.best_sizes(feet)[0]
    tried = matcher.tryon(feet, best.model_id, best.size_id)
    assert tried.size.score == best.score and tried.size.left == best.left and tried.size.right == best.right
    for side in ("left", "right"):
        foot = getattr(tried, side)
        assert foot.clearance_mm.shape == (len(getattr(feet, side).points_mm),)
        assert foot.in_shoe.dtype == bool and 0.5 < foot.in_shoe.mean() < 1.0
        assert np.isfinite(foot.clearance_mm).all()
    # one size down is tighter at the toe, whichever size the customer picks
    if best.size_down is not None:
        smaller = matcher.tryon(feet, best.model_id, best.size_down.size_id)
        assert smaller.size.right.region("toe").value_mm < tried.size.right.region("toe").value_mm
    json.dumps(tried.to_dict())


def test_tryon_refuses_unknown_sizes_and_models(matcher, feet):
    c = matcher.catalogue
    with pytest.raises(CatalogError, match="not in the catalogue"):
        matcher.tryon(feet, int(c.model_ids[0]), int(c.size_ids.max()) + 1000)
    other = int(c.model_ids[c.model_ids != c.model_ids[0]][0])
    with pytest.raises(CatalogError, match="belongs to model"):
        matcher.tryon(feet, other, int(c.size_ids[0]))
    with pytest.raises(CatalogError, match="unknown shoe model"):
        matcher.best_sizes(feet, [999999])


def test_an_empty_catalogue_is_refused(tmp_path):
    with pytest.raises(CatalogError, match="footfit catalog generate"):
        Matcher(load_matcher_catalogue(open_service_db(f"sqlite:///{tmp_path / 'empty.sqlite'}")))


def test_scanned_feet_load_refuses_missing_or_damaged_points(feet, tmp_path):
    feet.passport.save(tmp_path / "passport.json")
    with pytest.raises(MeasurementError, match="no left.ply"):
        ScannedFeet.load(tmp_path / "passport.json")
    write_points(tmp_path / "left.ply", feet.left.points_mm)
    write_points(tmp_path / "right.ply", feet.right.points_mm)
    loaded = ScannedFeet.load(tmp_path / "passport.json")
    np.testing.assert_allclose(loaded.right.points_mm, feet.right.points_mm, atol=1e-3)
    damaged = feet.left.points_mm.astype("<f4")
    damaged[::50, 0] = np.nan
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(damaged)}\n" \
             "property float x\nproperty float y\nproperty float z\nend_header\n"
    (tmp_path / "left.ply").write_bytes(header.encode() + damaged.tobytes())  # write_points refuses NaN itself
    with pytest.raises(MeasurementError, match="NaN"):
        ScannedFeet.load(tmp_path / "passport.json")
    (tmp_path / "left.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n")
    with pytest.raises(MeasurementError, match="left"):
        ScannedFeet.load(tmp_path / "passport.json")


def test_the_catalogue_loads_alike_from_sqlite_and_postgresql(database_url, feet, tmp_path):
    """Filters' metadata and the stores' stock come with the sections in a few queries, on both databases."""
    matcher = Matcher(load_matcher_catalogue(_imported(database_url, 6, 9, tmp_path)))
    c = load_matcher_catalogue(open_service_db(database_url))
    assert len(c.models.model_ids) == 6 and set(c.stock) == {"STORE-01", "STORE-02", "STORE-03"}
    assert len(c.sku) == len(c.size_ids) and all(isinstance(label, str) for label in c.size_label)
    fits = matcher.best_sizes(feet)
    assert len(fits) == 6 and all(0.0 <= f.score <= 100.0 for f in fits)
