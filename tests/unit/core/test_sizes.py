"""Shoe sizes from foot length: the ISO 19407 formulas of docs/reference.md and the documented rounding."""

import math

import pytest

from core.errors import MeasurementError
from core.sizes import MM_PER_INCH, SIZE_SYSTEMS, STORE_SIZE_SYSTEMS, Sizes, pair_sizes, sizes_for


@pytest.mark.parametrize("length_mm", [221.0, 246.3, 258.8, 271.2, 287.4, 301.9])
def test_sizes_follow_the_formulas_within_half_a_rounding_step(length_mm):
    s = sizes_for(length_mm)
    inches = length_mm / MM_PER_INCH
    assert abs(s.mondopoint - length_mm) <= 2.5
    assert abs(s.eu - (1.5 * length_mm / 10 + 2)) <= 0.5
    assert abs(s.uk - (3 * inches - 23)) <= 0.25
    assert abs(s.us_men - (3 * inches - 22)) <= 0.25
    assert abs(s.us_women - (3 * inches - 21)) <= 0.25
    assert s.us_men - s.uk == 1.0 and s.us_women - s.us_men == 1.0
    assert s.eu == int(s.eu) and s.uk * 2 == int(s.uk * 2)


def test_one_paris_point_of_length_is_one_eu_size_and_halves_round_up():
    # EU 42 is made for a 266.67 mm foot: exactly half-way between EU 41.5 and 42.5 feet it rounds up
    boundary_mm = (42.5 - 2) / 1.5 * 10
    assert sizes_for(boundary_mm).eu == 43.0
    assert sizes_for(boundary_mm - 0.01).eu == 42.0
    assert sizes_for(boundary_mm + 20 / 3).eu == 44.0  # one Paris point (6.67 mm) longer: one size up


def test_sizes_grow_with_length():
    previous = sizes_for(200.0)
    for tenth in range(2001, 3200, 7):
        s = sizes_for(tenth / 10)
        for field in ("mondopoint", "eu", "uk", "us_men", "us_women"):
            assert getattr(s, field) >= getattr(previous, field)
        previous = s


def test_the_longer_foot_decides_the_pair():
    assert pair_sizes(262.0, 271.0) == sizes_for(271.0) == pair_sizes(271.0, 262.0)


@pytest.mark.parametrize("bad", [0.27, 50.0, 900.0, math.nan, math.inf])
def test_a_length_that_is_no_foot_is_refused(bad):
    with pytest.raises(MeasurementError, match="not a foot"):
        sizes_for(bad)


@pytest.mark.parametrize("system, label, length_mm", [("EU", 42, 266.667), ("UK", 8, 262.467),
                                                     ("US-M", 9, 262.467), ("US-W", 9, 254.0), ("MP", 265, 265.0)])
def test_label_and_length_are_inverse(system, label, length_mm):
    s = SIZE_SYSTEMS[system]
    assert s.foot_length_mm(label) == pytest.approx(length_mm, abs=0.001)
    assert s.label_for_length(s.foot_length_mm(label)) == pytest.approx(label)


def test_the_step_between_whole_sizes_is_the_formulas():
    for s in SIZE_SYSTEMS.values():
        label, whole_size = (250.0, 5.0) if s.code == "MP" else (10.0, 1.0)  # Mondopoint: labelled every 5 mm
        assert s.foot_length_mm(label + whole_size) - s.foot_length_mm(label) == pytest.approx(s.step_mm)


def test_a_store_speaks_known_size_systems_and_the_passport_has_their_sizes():
    assert set(STORE_SIZE_SYSTEMS) == {"eu", "uk", "us", "mondopoint"}  # what the API stores: keep accepting these
    fields = {"EU": "eu", "UK": "uk", "US-M": "us_men", "US-W": "us_women", "MP": "mondopoint"}
    assert sorted(code for codes in STORE_SIZE_SYSTEMS.values() for code in codes) == sorted(SIZE_SYSTEMS)
    assert set(fields) == set(SIZE_SYSTEMS) and set(fields.values()) == set(Sizes.__dataclass_fields__)


def test_ski_boots_label_mondopoint_in_cm():
    assert SIZE_SYSTEMS["MP"].foot_length_mm(27.5) == SIZE_SYSTEMS["MP"].foot_length_mm(275) == 275.0
