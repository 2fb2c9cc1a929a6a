"""Test helpers for the matcher's tests: simulated customers' feet as the matcher gets them, small catalogues.

Feet come from population subjects (simulator/subjects.py): the true mesh sampled on its surface and measured
with the product's code, points in the foot frame, so no scan is needed (a scan's points are tested in the CLI
test through `footfit scan`'s output format)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from core.mesh import Mesh
from fitcore.fit.matcher import ScannedFeet
from fitcore.scan.measure import measure_points, sample_surface
from fitcore.scan.passport import Passport, build_passport
from fitcore.scan.pressure import FootPressure, PlateMetrics
from simulator.subjects import population_subject

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
SAMPLES_PER_MM2 = 0.3


def foot_points(mesh: Mesh, side: str):
    """(points in the foot frame, measurements) of a foot mesh standing on z = 0."""
    points, _ = sample_surface(mesh, per_mm2=SAMPLES_PER_MM2, seed=0)
    measured = measure_points(points, side)
    t = measured.foot_from_plate
    return points @ t[:3, :3].T + t[:3, 3], measured


def subject_feet(seed: int, scale: float = 1.0) -> ScannedFeet:
    """Both feet of population subject `seed` (optionally scaled, e.g. 1.04: a grown foot) with their passport."""
    subject = population_subject(seed)
    points, measured = {}, {}
    for side in ("left", "right"):
        mesh = getattr(subject, side)
        points[side], measured[side] = foot_points(Mesh(mesh.vertices_mm * scale, mesh.triangles), side)
    return ScannedFeet.from_arrays(passport_of(measured["left"], measured["right"]), points["left"], points["right"])


def passport_of(left, right) -> Passport:
    foot = FootPressure(contact_area_cm2=110.0, peak_kpa=130.0, mean_force_n=370.0, arch_index=0.23,
                        arch_type="normal", cop_sway_mm=1.4, axis_deg=2.0)
    plate = PlateMetrics(left=foot, right=foot, load_left_percent=51.0, cop_sway_mm=1.9, frames=200)
    return build_passport(left, right, plate, rig_serial="FF-TEST", calibration_id="cal-test", scanned_at=T0,
                          finished_at=T0 + timedelta(seconds=40), measured_at=T0 + timedelta(seconds=41))


def mirrored_y(points_mm: np.ndarray) -> np.ndarray:
    return points_mm * np.array([1.0, -1.0, 1.0])
