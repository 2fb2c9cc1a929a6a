"""The cavity's girth round a ball line (fitcore/fit/ball_line.py): the numba table equals its numpy reference, and
its walls, found in a few steps, are where bisection on the clearance finds them."""

from __future__ import annotations

import numpy as np
import pytest

from fitcore.fit.ball_line import (
    BALL_LINE_ANGLES_DEG,
    RAYS,
    ball_girth_table,
    ball_girth_table_reference,
    girth_at,
    girth_at_reference,
    span_stations,
)
from fitcore.fit.clearance import IDENTITY_POSE, clearance_reference_mm
from simulator.catalog import LastSpec, last_interior
from shoe_db.interior import interior_from_scan


@pytest.fixture(scope="module")
def interiors():
    """Three imported interiors of other sizes and toe shapes."""
    out = []
    for length, toe in ((230.0, "round"), (265.0, "square"), (295.0, "pointed")):
        spec = LastSpec(foot_length_mm=length, allowance_mm=15.0, length_bias_mm=0.0, girth_bias_mm=0.0,
                        collar_height_mm=58.0, toe_box_height_mm=30.0, toe_shape=toe, toe_offset_mm=6.0)
        out.append(interior_from_scan(last_interior(spec), length)[0])
    return np.stack([i.sections for i in out]), np.array([i.length_mm for i in out])


def _bisected_girth(sections, length_mm, k, angle_rad):
    """The girth with each ray's wall found by 30 bisection steps on the clearance (the slow, sure way)."""
    theta = 2 * np.pi * np.arange(RAYS) / RAYS
    centre = np.array([length_mm * (k + 0.5) / sections.shape[0], sections[k, 0], sections[k, 1]])
    along = np.array([np.sin(angle_rad), -np.cos(angle_rad), 0.0])
    lo, hi = np.zeros(RAYS), np.full(RAYS, 120.0)
    for _ in range(30):
        r = 0.5 * (lo + hi)
        points = centre + np.outer(r * np.cos(theta), along) + np.outer(r * np.sin(theta), [0.0, 0.0, 1.0])
        inside = clearance_reference_mm(points, sections.astype(np.float64), length_mm, IDENTITY_POSE) > 0
        lo, hi = np.where(inside, r, lo), np.where(inside, hi, r)
    r = 0.5 * (lo + hi)
    s, z = r * np.cos(theta), r * np.sin(theta)
    return np.hypot(np.diff(np.r_[s, s[0]]), np.diff(np.r_[z, z[0]])).sum()


def test_the_table_equals_its_reference_and_bisection(interiors):
    sections, lengths = interiors
    table = ball_girth_table(sections, lengths)
    assert table.shape == (len(lengths), sections.shape[1], len(BALL_LINE_ANGLES_DEG))
    np.testing.assert_allclose(table, ball_girth_table_reference(sections, lengths), atol=1e-6)
    first, last = span_stations(sections.shape[1])
    for i in range(len(lengths)):
        for k in (first, (first + last) // 2, last):
            for a, angle in enumerate(np.radians(BALL_LINE_ANGLES_DEG)):
                assert table[i, k, a] == pytest.approx(_bisected_girth(sections[i], lengths[i], k, angle), abs=0.1)
        assert (table[i, :first] == table[i, first]).all() and (table[i, last + 1:] == table[i, last]).all()


def test_reading_the_table_interpolates_between_stations_and_angles(interiors):
    sections, lengths = interiors
    table = ball_girth_table(sections, lengths)
    k = 30
    x_mid = lengths[1] * (k + 1.0) / sections.shape[1]  # halfway between stations k and k + 1
    angle_mid = np.radians(np.mean(BALL_LINE_ANGLES_DEG))
    expected = table[1, k:k + 2].mean()
    assert girth_at(table, 1, x_mid, lengths[1], angle_mid) == pytest.approx(expected, abs=1e-9)
    assert girth_at_reference(table, np.array([1]), np.array([x_mid]), lengths[1:2], np.array([angle_mid]))[0] \
        == pytest.approx(expected, abs=1e-9)
    steep = girth_at(table, 1, x_mid, lengths[1], np.radians(60.0))  # beyond the table: its nearest angle
    assert steep == pytest.approx(table[1, k:k + 2, -1].mean(), abs=1e-9)
