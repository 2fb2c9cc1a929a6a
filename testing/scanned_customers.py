"""Simulated customers scanned by the product: the simulator renders what the rig records (simulator.customers),
the product's own pipeline (fitcore.scan.pipeline.passport_from_scan: reconstruction, measurement, plate metrics)
turns it into a passport and point clouds exactly as the product writes them. Only the serial and HTTP transport
is skipped, as in bench/bench_accuracy.py.

Scans are cached on disk under the data folder (var/bench/customers/PROFILE/seed-NNNNN/), keyed by seed and scan
profile, so a second run of a benchmark does not render again. The hidden truth (the subject's feet) is never
written into the scan folder's passport or clouds, only into customer.json beside them, for the benchmark.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import ScanQualityError, SimulatorError
from core.settings import get_settings
from device.profile import ScanProfile
from fitcore.scan.calibrate import calibration_from_stills
from fitcore.scan.calibration import RigCalibration
from fitcore.scan.pipeline import passport_from_scan
from simulator.customers import (
    Customer,
    render_calibration_stills,
    render_scan,
    subject_of,
)
from simulator.subjects import Subject

RIG_SERIAL = "FF-FIT-0001"
SCAN_FILES = ("passport.json", "left.ply", "right.ply")  # what the product writes for a scan
SCAN_ATTEMPTS = 3  # a scan below quality is taken again, at a new placement, as staff would
PLACEMENT_SEED_STEP = 100_003


@dataclass(frozen=True)
class ScannedCustomer:
    customer: Customer
    folder: Path  # passport.json, left.ply, right.ply (the product's files) and customer.json (truth)
    source: str  # the subject drawn ("ansur:male:12345")
    scan_attempts: int

    @property
    def passport_path(self) -> Path:
        return self.folder / "passport.json"


def customers_dir(profile: ScanProfile) -> Path:
    return get_settings().data_dir / "bench" / "customers" / profile.name


def rig_calibration(serial: str = RIG_SERIAL) -> RigCalibration:
    """The benchmark rig's calibration from rendered stills (product code), cached beside the customers."""
    path = get_settings().data_dir / "bench" / "customers" / f"calibration-{serial}.json"
    if path.is_file():
        return RigCalibration.from_json(json.loads(path.read_text()))

    calibration = calibration_from_stills(render_calibration_stills(serial), serial)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, json.dumps(calibration.to_json()))
    return calibration


def scanned_customer(customer: Customer, calibration: RigCalibration, profile: ScanProfile) -> ScannedCustomer:
    """The customer's scan folder, from the cache or scanned now (and cached). A failed scan leaves nothing."""
    folder = customers_dir(profile) / f"seed-{customer.seed:05d}"
    cached = cached_scan(folder, customer, calibration.rig_serial)
    if cached is not None:
        return cached
    subject = subject_of(customer)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        attempts = _scan_into(staging, subject, customer.seed, calibration, profile)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    truth = {"customer": asdict(customer), "source": subject.source, "scan_attempts": attempts,
             "rig_serial": calibration.rig_serial, "profile": profile.name,
             "true_dims": {"left": asdict(subject.left_dims), "right": asdict(subject.right_dims)},
             "toe_shape": subject.toe_shape}
    (staging / "customer.json").write_text(json.dumps(truth, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return ScannedCustomer(customer, folder, subject.source, attempts)


def cached_scan(folder: Path, customer: Customer, rig_serial: str) -> ScannedCustomer | None:
    """The scan in `folder` if it is complete and of this customer on this rig, else None."""
    record = folder / "customer.json"
    if not (record.is_file() and all((folder / name).is_file() for name in SCAN_FILES)):
        return None
    data = json.loads(record.read_text())
    if Customer(**data["customer"]) != customer or data["rig_serial"] != rig_serial:
        return None
    return ScannedCustomer(customer, folder, data["source"], data["scan_attempts"])


def _scan_into(folder: Path, subject: Subject, seed: int, calibration: RigCalibration,
               profile: ScanProfile) -> int:
    """Scan at a random placement; a scan the product rejects is taken again at another. Returns the attempts."""
    reasons = []
    for attempt in range(SCAN_ATTEMPTS):
        raw = render_scan(subject, seed + attempt * PLACEMENT_SEED_STEP, calibration.rig_serial, profile)
        try:
            passport_from_scan(raw, calibration).write(folder)
            return attempt + 1
        except ScanQualityError as e:
            reasons.append(str(e))
    raise SimulatorError(f"{subject.source} (seed {seed}): every one of {SCAN_ATTEMPTS} scans was rejected: "
                         + " | ".join(reasons) + ": report this subject to the reconstruction's owner")


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
