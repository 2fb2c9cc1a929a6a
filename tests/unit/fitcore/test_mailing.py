"""The mailing filter (fitcore/fit/mailing.py): many passports x products in one numba-parallel pass."""

from __future__ import annotations

import numpy as np
import pytest

from api.db import open_service_db
from core.errors import CatalogError
from fitcore.fit.mailing import DESCRIPTOR_FIELDS, mailing_filter, mailing_filter_reference
from fitcore.fit.matcher import Matcher
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import generate_catalogue, write_catalogue
from testing.fit_subjects import subject_feet

SEEDS = (1, 6, 12, 17)


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mailing")
    products = write_catalogue(generate_catalogue(30, 8, stores=2), folder)
    engine = open_service_db(f"sqlite:///{folder / 'c.sqlite'}")
    assert import_products(products, folder / "interiors", engine=engine).committed
    return Matcher(load_matcher_catalogue(engine))


@pytest.fixture(scope="module")
def customers():
    return [subject_feet(seed) for seed in SEEDS]


def test_the_mailing_filter_agrees_with_the_matcher_per_passport(matcher, customers):
    model_ids = np.unique(matcher.catalogue.model_ids)
    descriptors = np.stack([matcher.mailing_descriptor(feet) for feet in customers])
    assert descriptors.shape == (len(SEEDS), len(DESCRIPTOR_FIELDS))
    fits = mailing_filter(descriptors, matcher.mailing_products(model_ids), matcher.profiles)
    expected = np.stack([matcher.fits(feet, model_ids) for feet in customers])
    assert fits.shape == expected.shape and expected.any() and not expected.all()
    # only the heel comes from the descriptor's signature instead of the foot's points (docs/fit-model.md)
    agreement = (fits == expected).mean()
    print(f"mailing vs matcher agreement {agreement:.3f} over {fits.size} pairs")
    assert agreement >= 0.97


def test_the_parallel_kernel_equals_its_reference(matcher, customers):
    model_ids = np.unique(matcher.catalogue.model_ids)[:12]
    base = np.stack([matcher.mailing_descriptor(feet) for feet in customers])
    rng = np.random.default_rng(0)
    many = np.repeat(base, 10, axis=0)
    many[:, 0] += rng.normal(0.0, 8.0, len(many))  # lengths around the customers', as a real batch spreads
    many[:, 1] += rng.normal(0.0, 6.0, len(many))
    products = matcher.mailing_products(model_ids)
    fits = mailing_filter(many, products, matcher.profiles)
    np.testing.assert_array_equal(fits, mailing_filter_reference(many, products, matcher.profiles))
    assert 0 < fits.sum() < fits.size


def test_bad_descriptors_are_refused(matcher, customers):
    products = matcher.mailing_products(np.unique(matcher.catalogue.model_ids)[:3])
    good = matcher.mailing_descriptor(customers[0])
    with pytest.raises(CatalogError, match="shape"):
        mailing_filter(good, products, matcher.profiles)
    bad = np.stack([good, good])
    bad[1, 2] = np.nan
    with pytest.raises(CatalogError, match="row 1"):
        mailing_filter(bad, products, matcher.profiles)
    with pytest.raises(CatalogError, match="unknown shoe model"):
        matcher.mailing_products([123456])
