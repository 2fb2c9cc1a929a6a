"""Simulated customers: a population foot pair, a gender and the kind of shoe they came for, scanned on the
virtual rig into a foot passport and point clouds exactly as the product would write them.

The scan is rendered by the simulator's camera and plate and processed by the product's own pipeline
(fitcore.pipeline.passport_from_scan: reconstruction, measurement, plate metrics); only the serial and HTTP
transport is skipped, as in bench/bench_accuracy.py, whose renderers are reused. Scans are cached on disk under
the data folder (var/bench/customers/PROFILE/seed-NNNNN/), keyed by seed and scan profile, so a second run of a
benchmark does not render again. The hidden truth (the subject's feet) is never written into the scan folder's
passport or clouds, only into customer.json beside them, for the benchmark.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from device.profile import ScanProfile
from device.rawscan import PlateRecording, RawScan, ScanStats
from fitcore.calibrate import calibration_from_stills
from fitcore.calibration import RigCalibration
from fitcore.errors import ScanQualityError, SimulatorError
from fitcore.pipeline import passport_from_scan
from fitcore.settings import get_settings
from simulator.camera import VirtualCamera
from simulator.offline import render_stills, render_sweep
from simulator.plate import VirtualPlate
from simulator.rig import rig_geometry
from simulator.scene import Scene
from simulator.subjects import Subject, population_subject

ANSUR_MEN, ANSUR_WOMEN = 4082, 1986  # the survey's mix of sexes (DESIGN.md section 4)
GENDER_OF_SEX = {"male": "men", "female": "women"}
# What customers come to the store for (an assumption: the catalogue's own mix of categories).
CATEGORY_DEMAND = {"running": 0.25, "walking": 0.2, "hiking": 0.15, "trail": 0.1, "casual": 0.12, "cycling": 0.08,
                   "ski": 0.1}
RIG_SERIAL = "FF-FIT-0001"
SCAN_FILES = ("passport.json", "left.ply", "right.ply")  # what the product writes for a scan
SCAN_ATTEMPTS = 3  # a scan below quality is taken again, at a new placement, as staff would
PLACEMENT_SEED_STEP = 100_003
PLATE_ZERO_FRAMES = 20
PLATE_NOISE_THRESHOLD_SD = 4.0  # as the plate driver: a sensel reads 0 until this many noise SDs above zero
_CUSTOMER_STREAM = 2  # the customer's own random stream, apart from the subject's draws of the same seed


@dataclass(frozen=True)
class Customer:
    """Who walks in: seed -> the same person every time."""

    seed: int
    sex: str  # "male" or "female"
    category: str  # the kind of shoe they came for

    @property
    def gender(self) -> str:
        """The catalogue's gender column for this customer's own shoes."""
        return GENDER_OF_SEX[self.sex]


@dataclass(frozen=True)
class ScannedCustomer:
    customer: Customer
    folder: Path  # passport.json, left.ply, right.ply (the product's files) and customer.json (truth)
    source: str  # the subject drawn ("ansur:male:12345")
    scan_attempts: int

    @property
    def passport_path(self) -> Path:
        return self.folder / "passport.json"


def draw_customer(seed: int) -> Customer:
    """Sex in the ANSUR II mix, a category by CATEGORY_DEMAND; deterministic by seed."""
    rng = np.random.default_rng([seed, _CUSTOMER_STREAM])
    sex = "male" if rng.random() < ANSUR_MEN / (ANSUR_MEN + ANSUR_WOMEN) else "female"
    category = str(rng.choice(list(CATEGORY_DEMAND), p=list(CATEGORY_DEMAND.values())))
    return Customer(seed, sex, category)


def subject_of(customer: Customer) -> Subject:
    """The customer's true feet."""
    return population_subject(customer.seed, customer.sex)


def customers_dir(profile: ScanProfile) -> Path:
    return get_settings().data_dir / "bench" / "customers" / profile.name


def rig_calibration(serial: str = RIG_SERIAL) -> RigCalibration:
    """The benchmark rig's calibration from rendered stills (product code), cached beside the customers."""
    path = get_settings().data_dir / "bench" / "customers" / f"calibration-{serial}.json"
    if path.is_file():
        return RigCalibration.from_json(json.loads(path.read_text()))

    rig = rig_geometry(serial)
    scene = Scene(rig, *_feet_on_the_side_pads(), body_weight_kg=75.0, seed=0)
    calibration = calibration_from_stills(render_stills(scene, VirtualCamera(scene, seed=0)), serial)
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


def render_scan(subject: Subject, seed: int, rig_serial: str, profile: ScanProfile) -> RawScan:
    """What the scan session would have recorded: both sweeps and the standing plate, without the transport."""

    scene = Scene(rig_geometry(rig_serial), subject.left, subject.right, subject.body_weight_kg, seed)
    camera = VirtualCamera(scene, seed=seed)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    feet = {side: render_sweep(scene, camera, profile, side) for side in ("left", "right")}
    plate = plate_recording(scene, seed, profile.plate_seconds)
    return RawScan(rig_serial=rig_serial, board_firmware="simulated", plate_serial=f"{rig_serial}-PLATE",
                   camera_source="simulated", profile=profile.name, width_px=profile.width_px,
                   height_px=profile.height_px, started_at=started,
                   finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), feet=feet, plate=plate,
                   stats=ScanStats())


def plate_recording(scene: Scene, seed: int, seconds: float) -> PlateRecording:
    """The virtual plate's frames while the customer stands, zeroed on the empty plate as the driver zeroes."""
    plate = VirtualPlate(scene, serial=f"{scene.rig.serial}-PLATE", seed=seed)
    plate.close()  # waits for the footprints; nothing is streamed, frames are sampled directly
    rate_hz = plate.identity.rate_hz
    scene.place("off")
    empty = np.stack([plate.counts(k / rate_hz) for k in range(PLATE_ZERO_FRAMES)]).astype(np.float32)
    offset, threshold = empty.mean(axis=0), np.maximum(PLATE_NOISE_THRESHOLD_SD * empty.std(axis=0), 1.0)
    scene.place("stand")
    times = np.arange(int(seconds * rate_hz)) / rate_hz
    counts = np.stack([plate.counts(t) for t in times]).astype(np.float32) - offset
    pressures = np.where(counts > threshold, counts * plate.calibration.gain_kpa_per_count, 0.0)
    return PlateRecording(pressures.astype(np.float32), times, np.arange(len(times)), plate.identity.pitch_mm, 0)


def _feet_on_the_side_pads():
    """Calibration needs no feet on the rig; the scene still wants a pair (they stay on the side pads)."""
    subject = population_subject(0)
    return subject.left, subject.right


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
