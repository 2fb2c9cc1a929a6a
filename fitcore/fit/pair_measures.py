"""Per (foot, size) pair: the foot's placement and the room measured from the sizes' station tables (toe room,
ball and instep girth room, room across the ball), in one numba pass.

The matcher's second kernel, beside fitcore.fit.clearance's point kernel. It reads per-size tables indexed by the
pair's size (no per-pair copies of the tables), which is what makes it cheaper than numpy at 20,000 pairs a
search. fitcore.fit.fit_model states the formulas and holds the plain numpy reference (`pair_measures_reference`) the
tests compare this with. Geometry constants come in as arguments (fitcore.fit.fit_model owns them).

Per foot (rows of `feet`, FOOT_FIELDS): length, heel and ball centre and tip position across the foot, instep
girth, ball width, ball girth (mm) and the ball line's middle (mm) and angle (rad). Per size: `centre_y`
(n, STATIONS) the sections' centre line, `perimeters` and `ball_breadths` (n, STATIONS), `ball_girths`
(n, STATIONS, angles: fitcore.fit.ball_line), `lengths` (n,). Output: poses (P, 4) cos, sin, dx, dy and measures
(P, 4) in MEASURE_COLUMNS.
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import numba
from fitcore.fit.ball_line import girth_at

FOOT_FIELDS = ("length_mm", "heel_centre_y_mm", "ball_centre_y_mm", "tip_y_mm", "instep_girth_mm", "ball_width_mm",
               "ball_girth_mm", "ball_line_x_mm", "ball_line_y_mm", "ball_line_angle_rad")
MEASURE_COLUMNS = ("toe", "ball", "instep", "ball_width")


@numba.njit(cache=True, inline="always")
def _along(table, size, x_mm, length_mm):
    """table[size] (STATIONS,) linearly interpolated at x (fitcore.fit.fit_model._along for one value)."""
    k_count = table.shape[1]
    u = min(max(x_mm / length_mm * k_count - 0.5, 0.0), k_count - 1.0)
    k = min(int(u), k_count - 2)
    t = u - k
    return (1.0 - t) * table[size, k] + t * table[size, k + 1]


@numba.njit(cache=True, inline="always")
def _measure_pair(p, feet, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, ball_girths, lengths,
                  placement, width_at, poses, out):
    f, s = foot_of_pair[p], size_of_pair[p]
    foot, length = feet[f, 0], lengths[s]
    heel_at, ball_at, instep_at, max_sin = placement[0], placement[1], placement[2], placement[3]
    dy = _along(centre_y, s, heel_at * foot, length) - feet[f, 1]
    ball_x = ball_at * foot
    sin = min(max((_along(centre_y, s, ball_x, length) - dy - feet[f, 2]) / ball_x, -max_sin), max_sin)
    cos = math.sqrt(1.0 - sin * sin)
    poses[p, 0], poses[p, 1], poses[p, 2], poses[p, 3] = cos, sin, 0.0, dy
    out[p, 0] = length - (cos * foot - sin * feet[f, 3])
    line_x = cos * feet[f, 7] - sin * feet[f, 8]  # the ball line's middle, placed (dx is 0)
    line_y = sin * feet[f, 7] + cos * feet[f, 8] + dy
    angle = feet[f, 9] + math.asin(sin)
    crossing = line_x + (line_y - _along(centre_y, s, line_x, length)) * math.tan(angle)
    out[p, 1] = (girth_at(ball_girths, s, crossing, length, angle) - feet[f, 6]) / (2.0 * math.pi)
    out[p, 2] = (_along(perimeters, s, cos * instep_at * foot, length) - feet[f, 4]) / (2.0 * math.pi)
    widest = -np.inf
    for i in range(width_at.shape[0]):
        widest = max(widest, _along(ball_breadths, s, cos * width_at[i] * foot, length))
    out[p, 3] = widest - feet[f, 5]


@numba.njit(cache=True, parallel=True)
def pair_measures(feet, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, ball_girths, lengths,
                  placement, width_at):
    """(poses (P, 4), measures (P, 4)) of every pair, in parallel over pairs (module docstring)."""
    poses = np.empty((foot_of_pair.shape[0], 4))
    out = np.empty((foot_of_pair.shape[0], len(MEASURE_COLUMNS)))
    for p in numba.prange(foot_of_pair.shape[0]):
        _measure_pair(p, feet, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, ball_girths, lengths,
                      placement, width_at, poses, out)
    return poses, out


@numba.njit(cache=True)
def pair_measures_serial(feet, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, ball_girths, lengths,
                         placement, width_at):
    """`pair_measures` on one thread, for a few pairs (a try-on): waking threads would cost more."""
    poses = np.empty((foot_of_pair.shape[0], 4))
    out = np.empty((foot_of_pair.shape[0], len(MEASURE_COLUMNS)))
    for p in range(foot_of_pair.shape[0]):
        _measure_pair(p, feet, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, ball_girths, lengths,
                      placement, width_at, poses, out)
    return poses, out
