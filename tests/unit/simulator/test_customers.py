"""Simulated customers' own taste in fit (simulator.customers.preferences_of), drawn apart from who they are."""

import numpy as np
import pytest

from simulator.comfort import Preferences
from simulator.customers import (
    FOREFOOT_GIRTH_SD_MM,
    HEEL_LOCK_SD_MM,
    TOE_ROOM_SD_MM,
    Customer,
    draw_customer,
    preferences_of,
)


def test_who_walks_in_is_unchanged_by_their_preferences():
    """Customer and draw_customer key the scan caches: the preferences have a stream of their own."""
    assert [draw_customer(seed) for seed in range(4)] == [
        Customer(0, "male", "walking"), Customer(1, "male", "walking"), Customer(2, "female", "cycling"),
        Customer(3, "male", "casual")]


def test_the_same_customer_has_the_same_preferences_and_others_differ():
    first = preferences_of(draw_customer(7))
    assert isinstance(first, Preferences)
    assert preferences_of(draw_customer(7)) == first
    assert preferences_of(draw_customer(8)) != first


def test_preferences_spread_as_documented_and_do_not_follow_sex_or_category():
    customers = [draw_customer(seed) for seed in range(4000)]
    drawn = np.array([[p.toe_room_mm, p.forefoot_girth_mm, p.heel_width_mm]
                      for p in map(preferences_of, customers)])
    assert drawn.mean(axis=0) == pytest.approx([0.0, 0.0, 0.0], abs=0.12)
    assert drawn.std(axis=0) == pytest.approx([TOE_ROOM_SD_MM, FOREFOOT_GIRTH_SD_MM, HEEL_LOCK_SD_MM], rel=0.05)
    assert np.abs(np.corrcoef(drawn.T)[np.triu_indices(3, 1)]).max() < 0.05  # three separate tastes
    men = np.array([c.sex == "male" for c in customers])
    runners = np.array([c.category == "running" for c in customers])
    for group in (men, runners):
        assert np.abs(drawn[group].mean(axis=0) - drawn[~group].mean(axis=0)).max() < 0.3
