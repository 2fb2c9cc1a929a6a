"""Simulated customers: drawn in the survey's mix, scanned through the simulator into the product's files, cached."""

import json
from collections import Counter

import numpy as np
import pytest

from core.errors import SimulatorError
from core.settings import get_settings
from device.profile import ScanProfile, get_profile
from fitcore.scan.passport import Passport
from fitcore.scan.pressure import plate_metrics
from simulator.customers import ANSUR_MEN, ANSUR_WOMEN, CATEGORY_DEMAND, Customer, draw_customer, plate_recording
from simulator.plate import GRAVITY_M_S2
from simulator.rig import rig_geometry
from simulator.scene import Scene
from simulator.subjects import population_subject
from testing import scanned_customers
from testing.scanned_customers import cached_scan, rig_calibration, scanned_customer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder of the module's own, through the one settings object."""
    folder = tmp_path_factory.mktemp("data")
    patch = pytest.MonkeyPatch()
    patch.setenv("FOOTFIT_DATA_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    patch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def calibration(data_dir):
    return rig_calibration()


def test_customers_come_in_the_surveys_mix_of_sexes_and_the_demanded_categories():
    customers = [draw_customer(seed) for seed in range(3000)]
    assert customers == [draw_customer(seed) for seed in range(3000)]
    men = np.mean([c.sex == "male" for c in customers])
    assert men == pytest.approx(ANSUR_MEN / (ANSUR_MEN + ANSUR_WOMEN), abs=0.03)
    shares = Counter(c.category for c in customers)
    for category, share in CATEGORY_DEMAND.items():
        assert shares[category] / len(customers) == pytest.approx(share, abs=0.03)
    assert {c.gender for c in customers} == {"men", "women"}


def test_the_plate_recording_is_zeroed_and_carries_the_body_weight_on_both_feet():
    subject = population_subject(3)
    scene = Scene(rig_geometry("FF-TEST-PLATE"), subject.left, subject.right, subject.body_weight_kg, seed=3)
    recording = plate_recording(scene, seed=3, seconds=0.2)
    assert recording.pressures_kpa.shape[0] == 20
    assert (recording.pressures_kpa >= 0).all() and (recording.pressures_kpa == 0).mean() > 0.8
    metrics = plate_metrics(recording.pressures_kpa, recording.pitch_mm)
    assert 35.0 < metrics.load_left_percent < 65.0
    force_n = metrics.left.mean_force_n + metrics.right.mean_force_n
    assert force_n == pytest.approx(subject.body_weight_kg * GRAVITY_M_S2, rel=0.15)


@pytest.mark.slow
def test_a_customer_is_scanned_into_the_products_files_measured_right_and_cached(data_dir, calibration, monkeypatch):
    customer = draw_customer(7)
    profile = get_profile("light")
    scan = scanned_customer(customer, calibration, profile)
    assert scan.folder == data_dir / "bench" / "customers" / "light" / "seed-00007"
    passport = Passport.load(scan.passport_path)
    truth = json.loads((scan.folder / "customer.json").read_text())
    assert truth["customer"]["category"] == customer.category and truth["source"] == scan.source
    for side in ("left", "right"):
        assert (scan.folder / f"{side}.ply").stat().st_size > 10_000
        measured = getattr(passport.feet, side).measurements.length_mm
        assert measured == pytest.approx(truth["true_dims"][side]["length_mm"], abs=3.0)
    assert not list(scan.folder.parent.glob("*.partial"))

    stamp = scan.passport_path.stat().st_mtime_ns
    with monkeypatch.context() as patch:  # from the cache: nothing rendered, scanned or calibrated again
        for name in ("render_scan", "passport_from_scan", "calibration_from_stills"):
            patch.setattr(scanned_customers, name, _not_again)
        assert scanned_customer(customer, calibration, profile) == scan
        assert rig_calibration().calibration_id == calibration.calibration_id
    assert scan.passport_path.stat().st_mtime_ns == stamp

    # the cache never hands out another customer's scan, another rig's, or an incomplete one
    assert cached_scan(scan.folder, Customer(7, customer.sex, "bowling"), calibration.rig_serial) is None
    assert cached_scan(scan.folder, customer, "FF-OTHER-RIG") is None
    (scan.folder / "right.ply").unlink()
    assert cached_scan(scan.folder, customer, calibration.rig_serial) is None


def _not_again(*_args):
    raise AssertionError("a cached scan or calibration was made again")


@pytest.mark.slow
def test_a_customer_the_product_cannot_measure_is_refused_and_leaves_no_files(data_dir, calibration):
    sparse = ScanProfile("sparse", binning=2, step_deg=40.0, speed_dps=120.0, accel_dps2=1200.0,
                         laser_pattern="LR", plate_seconds=0.1)  # nine frames per foot: far below quality
    with pytest.raises(SimulatorError, match="every one of 3 scans was rejected"):
        scanned_customer(draw_customer(11), calibration, sparse)
    assert not (data_dir / "bench" / "customers" / "sparse").exists() or \
        not list((data_dir / "bench" / "customers" / "sparse").iterdir())
