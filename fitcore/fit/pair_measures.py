"""Per (foot, size) pair: the foot's placement and the room measured from the sizes' station tables (toe room,
forefoot and instep girth room, room across the ball), in one numba pass.

The matcher's second kernel, beside fitcore.fit.clearance's point kernel. It reads per-size tables indexed by the
pair's size (no per-pair copies of the tables), which is what makes it cheaper than numpy at 20,000 pairs a
search. fitcore.fit.fit_model states the formulas and holds the plain numpy reference (`pair_measures_reference`) the
tests compare this with. Geometry constants come in as arguments (fitcore.fit.fit_model owns them).

Per foot (rows of `feet`, FOOT_FIELDS): length, heel and ball centre and tip position across the foot, instep
girth, ball width (mm); per foot `forefoot_girths` (F, len(forefoot_at)) the foot's girth at the forefoot
stations. Per size: `centre_y` (n, STATIONS) the sections' centre line, `perimeters` and `ball_breadths`
(n, STATIONS), `lengths` (n,). Output: poses (P, 4) cos, sin, dx, dy and measures (P, 4) in MEASURE_COLUMNS.
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import numba

FOOT_FIELDS = ("length_mm", "heel_centre_y_mm", "ball_centre_y_mm", "tip_y_mm", "instep_girth_mm", "ball_width_mm")
MEASURE_COLUMNS = ("toe", "forefoot", "instep", "ball_width")


@numba.njit(cache=True, inline="always")
def _along(table, size, x_mm, length_mm):
    """table[size] (STATIONS,) linearly interpolated at x (fitcore.fit.fit_model._along for one value)."""
    k_count = table.shape[1]
    u = min(max(x_mm / length_mm * k_count - 0.5, 0.0), k_count - 1.0)
    k = min(int(u), k_count - 2)
    t = u - k
    return (1.0 - t) * table[size, k] + t * table[size, k + 1]


@numba.njit(cache=True, inline="always")
def _measure_pair(p, feet, forefoot_girths, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths,
                  lengths, placement, forefoot_at, width_at, poses, out):
    f, s = foot_of_pair[p], size_of_pair[p]
    foot, length = feet[f, 0], lengths[s]
    heel_at, ball_at, instep_at, max_sin = placement[0], placement[1], placement[2], placement[3]
    dy = _along(centre_y, s, heel_at * foot, length) - feet[f, 1]
    ball_x = ball_at * foot
    sin = min(max((_along(centre_y, s, ball_x, length) - dy - feet[f, 2]) / ball_x, -max_sin), max_sin)
    cos = math.sqrt(1.0 - sin * sin)
    poses[p, 0], poses[p, 1], poses[p, 2], poses[p, 3] = cos, sin, 0.0, dy
    out[p, 0] = length - (cos * foot - sin * feet[f, 3])
    room = 0.0
    for i in range(forefoot_at.shape[0]):
        room += _along(perimeters, s, cos * forefoot_at[i] * foot, length) - forefoot_girths[f, i]
    out[p, 1] = room / (forefoot_at.shape[0] * 2.0 * math.pi)
    out[p, 2] = (_along(perimeters, s, cos * instep_at * foot, length) - feet[f, 4]) / (2.0 * math.pi)
    widest = -np.inf
    for i in range(width_at.shape[0]):
        widest = max(widest, _along(ball_breadths, s, cos * width_at[i] * foot, length))
    out[p, 3] = widest - feet[f, 5]


@numba.njit(cache=True, parallel=True)
def pair_measures(feet, forefoot_girths, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths, lengths,
                  placement, forefoot_at, width_at):
    """(poses (P, 4), measures (P, 4)) of every pair, in parallel over pairs (module docstring)."""
    poses = np.empty((foot_of_pair.shape[0], 4))
    out = np.empty((foot_of_pair.shape[0], len(MEASURE_COLUMNS)))
    for p in numba.prange(foot_of_pair.shape[0]):
        _measure_pair(p, feet, forefoot_girths, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths,
                      lengths, placement, forefoot_at, width_at, poses, out)
    return poses, out


@numba.njit(cache=True)
def pair_measures_serial(feet, forefoot_girths, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths,
                         lengths, placement, forefoot_at, width_at):
    """`pair_measures` on one thread, for a few pairs (a try-on): waking threads would cost more."""
    poses = np.empty((foot_of_pair.shape[0], 4))
    out = np.empty((foot_of_pair.shape[0], len(MEASURE_COLUMNS)))
    for p in range(foot_of_pair.shape[0]):
        _measure_pair(p, feet, forefoot_girths, foot_of_pair, size_of_pair, centre_y, perimeters, ball_breadths,
                      lengths, placement, forefoot_at, width_at, poses, out)
    return poses, out
