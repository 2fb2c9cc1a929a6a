"""The learning benchmark's harness end to end (testing/learning_world.py): a real `footfit serve` process with a
small catalogue imported over the API, customers registered with passports from the cheap path, simulated shoppers'
tries, choice, purchase and return posted as feedback and listed back as posted, and `footfit learn` run on it."""

from __future__ import annotations

import pytest

from fitcore.scan.passport import Passport
from simulator.catalog import generate_catalogue
from simulator.customers import Customer
from testing.api_world import catalogue_files
from testing.learning_world import (
    STORE,
    STORE_CHANNEL,
    TOP,
    WEBSHOP_CHANNEL,
    ShopClient,
    TrueCustomer,
    cheap_scan,
    learning_service,
    shop,
)

MODELS, CATALOGUE_SEED = 3, 1  # testing.api_world's small catalogue


@pytest.mark.slow
def test_shoppers_feedback_goes_through_the_service_and_is_listed_back_as_posted(tmp_path):
    catalogue = generate_catalogue(MODELS, CATALOGUE_SEED, stores=2)  # its truth; the files are the same catalogue's
    products = catalogue_files(MODELS, CATALOGUE_SEED)
    shoe = catalogue.rows[0]
    sex = "female" if shoe["gender"] == "women" else "male"
    with learning_service(tmp_path / "service", products, products.parent / "interiors") as service:
        client = ShopClient(service.address)
        for seed, channel in ((7, STORE_CHANNEL), (8, WEBSHOP_CHANNEL)):
            customer = Customer(seed, sex, shoe["category"])
            truth = TrueCustomer(customer, catalogue)
            files = cheap_scan(truth.subject, tmp_path / f"seed-{seed}")
            measured = Passport.from_json(files.passport.decode()).feet.left.measurements.length_mm
            assert measured == pytest.approx(truth.subject.left_dims.length_mm, abs=2.0)  # measured, not copied
            passport_id = client.register(f"C{seed}", files)

            visit = shop(client, passport_id, customer, channel, truth.fitting, [seed, 1])
            listed = client.feedback(passport_id)

            models = {r["model_code"]: r for r in catalogue.rows}
            assert 1 <= len(visit.shown) <= TOP
            assert all(models[code]["category"] == customer.category for code in visit.shown)
            assert len(listed) == visit.posted
            assert {e.source for e in listed} == {channel}
            assert {(e.learning_version, e.advice_arm) for e in listed} == {("prior", "learning")}
            assert all(e.recommended_sku for e in listed)
            if channel == STORE_CHANNEL:
                assert {e.store for e in listed} == {STORE}
                tries = [(e.sku, e.kept, e.complaint and (e.complaint.region, e.complaint.direction))
                         for e in listed if e.event == "tried"]
                assert tries == [(s.sku, s.kept, s.complaint_region and (s.complaint_region, s.complaint_direction))
                                 for s in visit.said]
                assert len(visit.said) >= len(visit.shown)  # every model shown is tried at least once
                after = [(e.event, e.sku) for e in listed if e.event != "tried"]
                assert after == ([("chosen", visit.chosen_sku), ("bought", visit.chosen_sku)]
                                 if visit.chosen_sku else [])
            else:
                (said,) = visit.said
                assert [e.event for e in listed] == ["bought", "kept" if said.kept else "returned"]
                assert {e.sku for e in listed} == {said.sku}
                assert listed[1].reason == (None if said.kept else said.return_reason or "none_given")

        run = service.learn()
        assert run.outcome == "too_few_events" and run.in_use == "prior", run.printed
        client.close()
