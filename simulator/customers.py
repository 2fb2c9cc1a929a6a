"""Simulated customers: a population foot pair, a gender, the kind of shoe they came for and their own taste in
fit, and what the rig would record of them (both sweeps and the standing plate) rendered offline, without the
serial and HTTP transport. Scanning them with the product's pipeline, and caching the scans, is
testing.scanned_customers'. How they behave in a store or a webshop: simulator.shoppers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.rawscan import PlateRecording, RawScan, ScanStats
from device.capture import Still
from device.profile import ScanProfile
from simulator.camera import VirtualCamera
from simulator.comfort import Preferences
from simulator.offline import render_stills, render_sweep
from simulator.plate import VirtualPlate
from simulator.rig import rig_geometry
from simulator.scene import Scene
from simulator.subjects import Subject, population_subject

ANSUR_MEN, ANSUR_WOMEN = 4082, 1986  # the survey's mix of sexes (docs/simulator.md)
GENDER_OF_SEX = {"male": "men", "female": "women"}
# What customers come to the store for (an assumption: the catalogue's own mix of categories).
CATEGORY_DEMAND = {"running": 0.25, "walking": 0.2, "hiking": 0.15, "trail": 0.1, "casual": 0.12, "cycling": 0.08,
                   "ski": 0.1}
PLATE_ZERO_FRAMES = 20
PLATE_NOISE_THRESHOLD_SD = 4.0  # as the plate driver: a sensel reads 0 until this many noise SDs above zero
_CUSTOMER_STREAM = 2  # the customer's own random stream, apart from the subject's draws of the same seed
_PREFERENCE_STREAM = 3  # their taste in fit: its own stream, so that Customer and its scan caches stay as they were
# Personal taste (issue 14, "Customers differ"): SDs of the shifts of the comfort bands (simulator/comfort.py).
TOE_ROOM_SD_MM = 3.0  # preferred free length in front of the toes
FOREFOOT_GIRTH_SD_MM = 3.0  # snug to roomy at the ball; the breadth band follows at GIRTH_PER_BREADTH
HEEL_LOCK_SD_MM = 1.3  # the heel band (medial + lateral clearance): half a width fitting's breadth (2.6 mm)


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


def draw_customer(seed: int) -> Customer:
    """Sex in the ANSUR II mix, a category by CATEGORY_DEMAND; deterministic by seed."""
    rng = np.random.default_rng([seed, _CUSTOMER_STREAM])
    sex = "male" if rng.random() < ANSUR_MEN / (ANSUR_MEN + ANSUR_WOMEN) else "female"
    category = str(rng.choice(list(CATEGORY_DEMAND), p=list(CATEGORY_DEMAND.values())))
    return Customer(seed, sex, category)


def preferences_of(customer: Customer) -> Preferences:
    """The customer's own taste in fit, drawn from their seed on its own stream: the same person every season."""
    rng = np.random.default_rng([customer.seed, _PREFERENCE_STREAM])
    return Preferences(toe_room_mm=float(rng.normal(0.0, TOE_ROOM_SD_MM)),
                       forefoot_girth_mm=float(rng.normal(0.0, FOREFOOT_GIRTH_SD_MM)),
                       heel_width_mm=float(rng.normal(0.0, HEEL_LOCK_SD_MM)))


def subject_of(customer: Customer) -> Subject:
    """The customer's true feet."""
    return population_subject(customer.seed, customer.sex)


def render_calibration_stills(serial: str) -> list[Still]:
    """The calibration stills of simulated rig `serial`, rendered offline (no feet on the plate: they stay on the
    side pads)."""
    rig = rig_geometry(serial)
    scene = Scene(rig, *_feet_on_the_side_pads(), body_weight_kg=75.0, seed=0)
    return render_stills(scene, VirtualCamera(scene, seed=0))


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
