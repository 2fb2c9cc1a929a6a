"""The foot passport: built from measured feet and plate metrics, JSON round trip, and validation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from core.errors import MeasurementError
from core.sizes import sizes_for
from fitcore.scan.measure import measure_mesh
from fitcore.scan.passport import PASSPORT_VERSION, Passport, build_passport
from fitcore.scan.pressure import FootPressure, PlateMetrics
from simulator.subjects import population_subject

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def passport() -> Passport:
    subject = population_subject(2)
    left, right = measure_mesh(subject.left, "left"), measure_mesh(subject.right, "right")
    foot = FootPressure(contact_area_cm2=110.0, peak_kpa=130.0, mean_force_n=370.0, arch_index=0.23,
                        arch_type="normal", cop_sway_mm=1.4, axis_deg=2.0)
    plate = PlateMetrics(left=foot, right=foot, load_left_percent=51.2, cop_sway_mm=1.9, frames=200)
    return build_passport(left, right, plate, rig_serial="FF-RIG-0042", calibration_id="cal-7",
                          scanned_at=T0, finished_at=T0 + timedelta(seconds=40),
                          measured_at=T0 + timedelta(seconds=41))


def test_the_passport_holds_every_documented_field(passport):
    data = json.loads(passport.to_json())
    assert data["version"] == PASSPORT_VERSION
    for side in ("left", "right"):
        foot = data["feet"][side]
        assert set(foot["measurements"]) == {"length_mm", "ball_width_mm", "ball_girth_mm", "instep_girth_mm",
                                             "heel_width_mm", "instep_height_mm"}
        assert set(foot["sizes"]) == {"mondopoint", "eu", "uk", "us_men", "us_women"}
        assert {"arch_index", "arch_type", "contact_area_cm2", "peak_kpa"} <= set(foot["pressure"])
        assert foot["toe_shape"] in ("egyptian", "greek", "square")
        assert np.asarray(foot["rig_to_foot"]).shape == (4, 4)
        assert foot["quality"]["points"] > 1000
        assert foot["sizes"]["eu"] == sizes_for(foot["measurements"]["length_mm"]).eu
    assert data["load_left_percent"] == 51.2 and data["rig_serial"] == "FF-RIG-0042"
    assert data["calibration_id"] == "cal-7" and data["scanned_at"].startswith("2026-03-01T10:00:00")
    longer = max(data["feet"][s]["measurements"]["length_mm"] for s in ("left", "right"))
    assert data["pair_sizes"]["eu"] == sizes_for(longer).eu


def test_json_round_trip_keeps_everything(passport, tmp_path):
    path = tmp_path / "passport.json"
    passport.save(path)
    again = Passport.load(path)
    assert again == passport
    assert again.to_json() == passport.to_json()


def _broken(passport: Passport, change) -> str:
    data = json.loads(passport.to_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.update(version=99), "version"),
        (lambda d: d["feet"].pop("right"), "right"),
        (lambda d: d["feet"]["left"]["measurements"].update(length_mm=-3.0), "length_mm"),
        (lambda d: d["feet"]["left"]["pressure"].update(arch_index=1.7), "arch_index"),
        (lambda d: d["feet"]["left"].update(toe_shape="roman"), "toe_shape"),
        (lambda d: d["feet"]["left"].update(rig_to_foot=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
         "rigid"),
        (lambda d: d["feet"]["left"].update(rig_to_foot=[[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "4x4"),
        (lambda d: d.update(shoe_size=42), "shoe_size"),
        (lambda d: d.update(load_left_percent=140), "load_left_percent"),
    ],
    ids=["version", "missing-foot", "negative-length", "arch-index", "toe-shape", "not-rigid", "not-4x4",
         "unknown-field", "load"],
)
def test_an_invalid_passport_is_refused_naming_the_field(passport, change, field):
    with pytest.raises(MeasurementError, match=field):
        Passport.from_json(_broken(passport, change))


def test_a_missing_passport_file_is_refused(tmp_path):
    with pytest.raises(MeasurementError, match="no passport"):
        Passport.load(tmp_path / "nope.json")
