"""The matcher's numba kernels against their plain-numpy references (fitcore/fit/clearance.py and mailing.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fitcore.fit.clearance import (
    IDENTITY_POSE,
    N_REGIONS,
    clearance_reference_mm,
    outline_measures,
    outline_measures_reference,
    placed_clearance_mm,
    summarise_pairs,
    summarise_pairs_reference,
    summarise_pairs_serial,
)
from shoe_db.interior import interior_from_scan
from simulator.catalog import LastSpec, last_interior


def _interior(foot_length_mm: float, toe_shape: str = "round"):
    spec = LastSpec(foot_length_mm=foot_length_mm, allowance_mm=15.0, length_bias_mm=0.0, girth_bias_mm=0.0,
                    collar_height_mm=55.0, toe_box_height_mm=29.0, toe_shape=toe_shape, toe_offset_mm=6.0)
    return interior_from_scan(last_interior(spec), foot_length_mm)[0]


@pytest.fixture(scope="module")
def interiors():
    return [_interior(length, shape) for length, shape in ((240.0, "round"), (265.0, "pointed"), (280.0, "square"))]


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(5)
    return rng.uniform([-5.0, -60.0, -2.0], [300.0, 60.0, 90.0], size=(3000, 3))


def test_placed_clearance_matches_the_reference(interiors, points):
    for interior in interiors:
        sections = interior.sections.astype(np.float64)
        np.testing.assert_allclose(placed_clearance_mm(points, sections, interior.length_mm, IDENTITY_POSE),
                                   clearance_reference_mm(points, sections, interior.length_mm, IDENTITY_POSE),
                                   atol=1e-3)
        turn = np.radians(3.0)
        pose = np.array([np.cos(turn), np.sin(turn), 1.5, -2.0])
        np.testing.assert_allclose(placed_clearance_mm(points, sections, interior.length_mm, pose),
                                   clearance_reference_mm(points, sections, interior.length_mm, pose), atol=1e-3)


def test_a_pose_moves_the_points_as_documented(interiors):
    """Shifting the foot 4 mm forward costs exactly 4 mm of clearance at a point just behind the toe's tip."""
    interior = interiors[0]
    sections = interior.sections.astype(np.float64)
    tip = np.array([[interior.length_mm - 6.0, interior.sections[-1, 0], interior.sections[-1, 1]]])
    still = placed_clearance_mm(tip, sections, interior.length_mm, IDENTITY_POSE)[0]
    forward = placed_clearance_mm(tip, sections, interior.length_mm, np.array([1.0, 0.0, 4.0, 0.0]))[0]
    assert still == pytest.approx(6.0, abs=0.01) and forward == pytest.approx(2.0, abs=0.01)


def test_summarise_pairs_matches_the_reference(interiors, points):
    rng = np.random.default_rng(1)
    regions = rng.integers(-1, N_REGIONS, size=len(points))
    start = np.array([0, 1200, 3000])
    sections = np.stack([i.sections for i in interiors])
    lengths = np.array([i.length_mm for i in interiors])
    foot_of_pair = np.array([0, 0, 0, 1, 1, 1, 1])
    size_of_pair = np.array([0, 1, 2, 0, 1, 2, 2])
    turn = np.radians(rng.uniform(-4, 4, size=7))
    poses = np.stack([np.cos(turn), np.sin(turn), rng.uniform(0, 3, 7), rng.uniform(-3, 3, 7)], axis=1)
    args = (points, regions, start, foot_of_pair, size_of_pair, poses, sections, lengths)
    reference = summarise_pairs_reference(*args)
    np.testing.assert_allclose(summarise_pairs(*args), reference, atol=0.05)
    np.testing.assert_allclose(summarise_pairs_serial(*args), reference, atol=0.05)
    assert (reference[:, :, 1] > 0).all() and (reference[:, :, 2] < 0).any()


def test_outline_measures_match_the_reference_and_the_descriptors(interiors):
    sections = np.stack([i.sections for i in interiors])
    for z_mm in (5.0, 23.5, 80.0):
        perimeter, breadth = outline_measures(sections, z_mm)
        ref_perimeter, ref_breadth = outline_measures_reference(sections, z_mm)
        np.testing.assert_allclose(perimeter, ref_perimeter, atol=1e-3)
        np.testing.assert_allclose(breadth, ref_breadth, atol=1e-3)
    perimeter, breadth = outline_measures(sections, 23.5)
    for i, interior in enumerate(interiors):  # the widest ball section's perimeter is the descriptor's girth
        assert perimeter[i].max() >= interior.descriptors.ball_girth_mm - 1.0
        assert breadth[i, :9].max() == pytest.approx(interior.descriptors.heel_width_mm, abs=2.5)
    assert (breadth[:, -1] == 0).all() or (breadth[:, -1] < breadth[:, 24]).all()  # the toe is lower and narrower
