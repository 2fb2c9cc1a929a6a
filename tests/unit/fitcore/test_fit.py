"""The fit model (fitcore/fit/fit_model.py, fitcore/fit/profiles.py): placement, region values, verdicts, profiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from core.errors import ConfigError, MeasurementError
from core.mesh import Mesh
from core.sizes import EU_STEP_MM
from core.vocabulary import REGIONS, VERDICTS
from fitcore.fit.clearance import outline_measures_reference
from fitcore.fit.fit_model import (
    BALL_WIDTH_HEIGHTS_MM,
    BALL_WIDTH_STATIONS,
    HEEL_SLICES,
    HEEL_Z_MM,
    SizeTables,
    evaluate_pairs,
    poses,
    prepare_foot,
    scores,
)
from fitcore.fit.profiles import DEFAULT_PATH, FitProfiles
from fitcore.fit.sections import station_x_mm
from shoe_db.interior import interior_from_scan
from simulator.catalog import LastSpec, last_interior
from simulator.subjects import population_subject
from testing.fit_subjects import foot_points, mirrored_y
from testing.interiors import mesh_section

ALLOWANCE_MM = 15.0
PROFILES = FitProfiles.load()
WALKING = PROFILES.index_for("walking")


@pytest.fixture(scope="module")
def feet():
    """Three subjects' left feet: (points in the foot frame, measurements, prepared shape)."""
    out = []
    for seed in (4, 11, 23):
        points, m = foot_points(population_subject(seed).left, "left")
        out.append((points, m, _prepared(points, "left", m)))
    return out


def _prepared(points, side, m, **measures):
    """The foot prepared for the matcher with its measurements (`measures` overrides some of them)."""
    taken = dict(length_mm=m.length_mm, instep_height_mm=m.instep_height_mm, ball_girth_mm=m.ball_girth_mm,
                 instep_girth_mm=m.instep_girth_mm, ball_width_mm=m.ball_width_mm)
    return prepare_foot(points, side, **{**taken, **measures})


def _made_for(m, size_steps: float = 0.0, girth_bias_mm: float = 0.0):
    """The interior of a shoe made on a last for this foot's length (+ size_steps EU sizes), as imported; its
    ball girth is the last's rule (the nominal foot's + ease, simulator.lasts.LastSpec) + girth_bias_mm."""
    return _made_for_with_mesh(m, size_steps, girth_bias_mm)[0]


def _made_for_with_mesh(m, size_steps: float = 0.0, girth_bias_mm: float = 0.0):
    """`_made_for`'s interior and its cavity mesh in the shoe frame."""
    foot_length = m.length_mm + size_steps * EU_STEP_MM
    spec = LastSpec(foot_length_mm=foot_length, allowance_mm=ALLOWANCE_MM, length_bias_mm=0.0,
                    girth_bias_mm=girth_bias_mm, collar_height_mm=58.0,
                    toe_box_height_mm=30.0, toe_shape="round", toe_offset_mm=6.0)
    return interior_from_scan(last_interior(spec), foot_length)


def _evaluate(shape, interiors, profile=WALKING):
    sections = np.stack([i.sections for i in interiors])
    lengths = np.array([i.length_mm for i in interiors])
    n = len(interiors)
    values = evaluate_pairs([shape], np.zeros(n, dtype=int), np.arange(n), SizeTables.of(sections, lengths),
                            PROFILES.negative_weight)
    score, verdict = scores(values, np.full(n, profile), PROFILES)
    return values, score, verdict


def test_a_shoe_made_for_the_foot_reads_its_designed_toe_room(feet):
    for _, m, shape in feet:
        values, _, _ = _evaluate(shape, [_made_for(m)])
        assert values.value_mm[0, REGIONS.index("toe")] == pytest.approx(ALLOWANCE_MM, abs=0.5)


def test_the_ball_reads_the_cavity_round_the_foots_own_ball_line(feet):
    """The ball's room is the cavity's girth in the vertical plane through the placed foot's ball points minus the
    foot's ball girth: against a direct cut of the interior's mesh in that plane (its convex outline), within 2 mm
    of girth (the table's 36 rays and its interpolation between stations and angles)."""
    for _, m, shape in feet:
        interior, mesh = _made_for_with_mesh(m)
        values, _, _ = _evaluate(shape, [interior])
        cos, sin, dx, dy = poses(shape, interior.sections[None, :, 0].astype(np.float64),
                                 np.array([interior.length_mm]))[0]
        middle = np.array([cos * shape.ball_line_x_mm - sin * shape.ball_line_y_mm + dx,
                           sin * shape.ball_line_x_mm + cos * shape.ball_line_y_mm + dy])
        angle = shape.ball_line_angle_rad + np.arcsin(sin)
        across = np.array([np.cos(angle), np.sin(angle)])  # the plane's normal in (x, y)
        along = np.array([np.sin(angle), -np.cos(angle)])
        plan = mesh.vertices_mm[:, :2] - middle
        turned = Mesh(np.column_stack([plan @ across, plan @ along, mesh.vertices_mm[:, 2]]), mesh.triangles)
        cut_girth = ConvexHull(mesh_section(turned, 0.0)).area  # a 2-D hull's "area" is its perimeter
        reading = values.value_mm[0, REGIONS.index("ball")]
        assert reading == pytest.approx((cut_girth - m.ball_girth_mm) / (2 * np.pi), abs=2.0 / (2 * np.pi))


def test_the_ball_reads_the_ball_girth_alone(feet):
    """A fuller ball tightens the ball by its girth / 2 pi; a fuller instep leaves it (the instep has its own)."""
    points, m, shape = feet[0]
    interior = _made_for(m)
    ball = REGIONS.index("ball")

    def room(ball_girth_mm, instep_girth_mm):
        foot = _prepared(points, "left", m, ball_girth_mm=ball_girth_mm, instep_girth_mm=instep_girth_mm)
        return _evaluate(foot, [interior])[0].value_mm[0, ball]

    base = room(m.ball_girth_mm, m.instep_girth_mm)
    assert room(m.ball_girth_mm, m.instep_girth_mm + 12.0) == pytest.approx(base, abs=1e-9)
    assert base - room(m.ball_girth_mm + 12.0, m.instep_girth_mm) == pytest.approx(12.0 / (2 * np.pi), abs=1e-9)


def _forefoot_matched_bias_mm(m, shape) -> float:
    """The last's girth bias at which the shoe made for the foot reads the profile's ideal forefoot room
    (the room is linear in the bias: solved from two biases)."""
    ball = REGIONS.index("ball")
    room = [_evaluate(shape, [_made_for(m, 0, bias)])[0].value_mm[0, ball] for bias in (0.0, 10.0)]
    return float((PROFILES.ideal[WALKING, ball] - room[0]) * 10.0 / (room[1] - room[0]))


def test_two_sizes_too_small_is_tight_and_two_too_big_is_roomy(feet):
    for _, m, shape in feet:
        matched = _forefoot_matched_bias_mm(m, shape)  # the middle size's forefoot girth is the foot's
        values, score, verdict = _evaluate(shape, [_made_for(m, s, matched) for s in (-2, 0, 2)])
        toe = REGIONS.index("toe")
        assert verdict[0, toe] == 0 and verdict[2, toe] == 2  # tight, roomy
        assert score[1] > score[0] and score[1] > score[2]
        assert score[2] > score[0]  # the same deviation weighs more when tight
        ball = REGIONS.index("ball")
        assert values.value_mm[0, ball] < values.value_mm[1, ball] < values.value_mm[2, ball]


def test_a_narrow_last_reads_a_tight_ball(feet):
    for _, m, shape in feet:
        values, _, verdict = _evaluate(shape, [_made_for(m, 0, girth_bias_mm=-25.0), _made_for(m, 0)])
        ball = REGIONS.index("ball")
        assert verdict[0, ball] == 0
        assert values.value_mm[1, ball] - values.value_mm[0, ball] == pytest.approx(25.0 / (2 * np.pi), abs=1.0)


def test_a_right_foot_is_mirrored_into_the_left_shoe_frame(feet):
    """A right foot that is the mirror image of a left one fits a (left-frame) interior exactly as the left."""
    points, m, left = feet[0]
    right = _prepared(mirrored_y(points), "right", m)
    interiors = [_made_for(m, -1), _made_for(m, 1)]
    a, _, _ = _evaluate(left, interiors)
    b, _, _ = _evaluate(right, interiors)
    np.testing.assert_allclose(a.value_mm, b.value_mm, atol=1e-6)
    wrong = _prepared(points, "right", m)
    c, _, _ = _evaluate(wrong, interiors)  # a left foot declared right lands medial side out: the heel differs
    assert np.abs(c.value_mm - a.value_mm).max() > 0.1


def test_bad_points_are_refused(feet):
    points, m, _ = feet[0]
    damaged = points.copy()
    damaged[10, 2] = np.nan
    with pytest.raises(MeasurementError, match="NaN"):
        _prepared(damaged, "left", m)
    with pytest.raises(MeasurementError, match="at least"):
        _prepared(points[:100], "left", m)
    heelless = points[points[:, 0] > 0.3 * m.length_mm]
    with pytest.raises(MeasurementError, match="heel"):
        _prepared(heelless, "left", m)
    sides = (points[:, 2] >= HEEL_Z_MM[0]) & (points[:, 2] < HEEL_Z_MM[1])
    sideless = points[~(sides & (points[:, 0] > 0.01 * m.length_mm) & (points[:, 0] < 0.3 * m.length_mm))]
    with pytest.raises(MeasurementError, match="heel's sides"):
        _prepared(sideless, "left", m)


def test_a_heel_seen_only_near_the_back_is_matched(feet):
    """A light scan that misses the heel's sides at 9% of the length is not refused: that slice takes the
    breadth of the nearest slice seen."""
    points, m, whole = feet[0]
    at = HEEL_SLICES[-1] * m.length_mm
    thin = points[~((np.abs(points[:, 0] - at) <= 0.02 * m.length_mm) & (points[:, 2] >= HEEL_Z_MM[0])
                    & (points[:, 2] < HEEL_Z_MM[1]))]
    shape = _prepared(thin, "left", m)
    assert shape.heel_breadths_mm[-1] == shape.heel_breadths_mm[-2]
    np.testing.assert_allclose(shape.heel_breadths_mm[:-1], whole.heel_breadths_mm[:-1], atol=1.0)


def test_profiles_follow_the_design_priors():
    toe = REGIONS.index("toe")
    band = {name: (PROFILES.lo[i, toe], PROFILES.hi[i, toe]) for i, name in enumerate(PROFILES.names)}
    assert band["walking"] == (15.0, 20.0) and band["running"] == (12.0, 20.0) and band["cycling"][1] == 10.0
    assert PROFILES.names[PROFILES.index_for("ski", "expert")] == "ski_race"
    assert PROFILES.names[PROFILES.index_for("ski", "beginner")] == "ski_comfort"
    assert PROFILES.names[PROFILES.index_for("unknown-category")] == "walking"


def test_a_broken_profiles_file_is_refused(tmp_path):
    text = DEFAULT_PATH.read_text()
    for broken, match in ((text.replace('running = "running"', 'running = "sprinting"'), "unknown profiles"),
                          (text.replace("[defaults.heel]", "[defaults.hee]"), "cannot read"),
                          (text.replace("lo = 15.0, ideal = 17.5", "lo = 18.0, ideal = 17.5"), "lo <= ideal")):
        path = tmp_path / "profiles.toml"
        path.write_text(broken)
        with pytest.raises(ConfigError, match=match):
            FitProfiles.load(path)


def test_the_ball_is_judged_by_its_width_as_well_as_its_girth(feet):
    """The same foot and shoe with the ball measured 0.5 mm narrower than the shoe and 5.5 mm wider: the same girth
    room; the first ball's verdict is its girth's, the second's is tight, and it scores lower."""
    ball = REGIONS.index("ball")
    lo, hi = PROFILES.lo[WALKING, ball], PROFILES.hi[WALKING, ball]
    for points, m, shape in feet:
        interior = _made_for(m)
        shoe_breadth = _evaluate(shape, [interior])[0].ball_width_mm[0] + m.ball_width_mm
        fitting = _evaluate(_prepared(points, "left", m, ball_width_mm=shoe_breadth - 0.5), [interior])
        wide = _evaluate(_prepared(points, "left", m, ball_width_mm=shoe_breadth + 5.5), [interior])
        girth = fitting[0].value_mm[0, ball]
        assert wide[0].value_mm[0, ball] == pytest.approx(girth)
        assert fitting[0].ball_width_mm[0] == pytest.approx(0.5) and wide[0].ball_width_mm[0] == pytest.approx(-5.5)
        assert fitting[2][0, ball] == VERDICTS.index("tight" if girth < lo else "roomy" if girth > hi else "good")
        assert wide[2][0, ball] == VERDICTS.index("tight")
        assert wide[1][0] < fitting[1][0]


def test_the_room_across_the_ball_is_the_widest_breadth_near_the_insole_minus_the_foot(feet):
    """Against a plain computation: breadths of the outline at each height (numpy reference), the widest over the
    forefoot's stations (linear along the length), minus the passport's ball width."""
    _, m, shape = feet[1]
    interiors = [_made_for(m, steps) for steps in (-1.0, 0.0, 1.5)]
    values, _, _ = _evaluate(shape, interiors)
    for i, interior in enumerate(interiors):
        breadths = np.max([outline_measures_reference(interior.sections[None], z)[1][0]
                           for z in BALL_WIDTH_HEIGHTS_MM], axis=0)
        pose = poses(shape, interior.sections[None, :, 0], np.array([interior.length_mm]))[0]
        x = pose[0] * np.asarray(BALL_WIDTH_STATIONS) * shape.length_mm + pose[2]
        widest = np.interp(x, station_x_mm(interior.length_mm), breadths).max()
        assert values.ball_width_mm[i] == pytest.approx(widest - m.ball_width_mm, abs=1e-6)


@pytest.mark.parametrize("pairs", [6, 120])  # one thread, and the parallel pass (PARALLEL_FROM_PAIRS)
def test_the_numba_kernels_give_the_plain_references_values(feet, pairs):
    """fitcore.fit.pair_measures and fitcore.fit.clearance's kernels against their numpy references, on three feet in
    interiors a size apart (both feet's pairs mixed, in a shuffled order)."""
    shapes = [shape for _, _, shape in feet]
    interiors = [_made_for(m, steps) for _, m, _ in feet for steps in (-1.0, 0.0, 1.0)]
    tables = SizeTables.of(np.stack([i.sections for i in interiors]), np.array([i.length_mm for i in interiors]))
    rng = np.random.default_rng(0)
    foot_of_pair, size_of_pair = rng.integers(0, len(shapes), pairs), rng.integers(0, len(interiors), pairs)
    fast = evaluate_pairs(shapes, foot_of_pair, size_of_pair, tables, PROFILES.negative_weight)
    plain = evaluate_pairs(shapes, foot_of_pair, size_of_pair, tables, PROFILES.negative_weight, plain=True)
    for field in ("value_mm", "pressure_mm", "ball_width_mm"):
        np.testing.assert_allclose(getattr(fast, field), getattr(plain, field), atol=1e-4)
