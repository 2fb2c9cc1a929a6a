"""The foot passport: a versioned JSON record of one scan's measured feet (docs/measurements.md lists every field).

Pydantic models validate on the way in and out, so a passport read back from JSON is checked as strictly as one
built from a scan: unknown fields, missing feet, impossible values or a non-rigid rig_to_foot are refused.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import MeasurementError
from core.sizes import Sizes, pair_sizes, sizes_for
from fitcore.scan.measure import FootMeasurements
from fitcore.scan.pressure import FootPressure, PlateMetrics

PASSPORT_VERSION = 1
RIGID_TOLERANCE = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasurementsModel(_Strict):
    length_mm: float = Field(gt=0)
    ball_width_mm: float = Field(gt=0)
    ball_girth_mm: float = Field(gt=0)
    instep_girth_mm: float = Field(gt=0)
    heel_width_mm: float = Field(gt=0)
    instep_height_mm: float = Field(gt=0)


class SizesModel(_Strict):
    mondopoint: int = Field(gt=0)
    eu: float
    uk: float
    us_men: float
    us_women: float


class PressureModel(_Strict):
    arch_index: float = Field(ge=0, le=1)
    arch_type: Literal["high", "normal", "flat"]
    contact_area_cm2: float = Field(ge=0)
    peak_kpa: float = Field(ge=0)
    cop_sway_mm: float = Field(ge=0)


class QualityModel(_Strict):
    """How trustworthy the foot's surface was: the reconstruction's figures (fitcore/scan/reconstruct.py,
    ScanQuality), which a passport measured from a mesh or uploaded without them lacks (None; NaN is written as
    null). Nothing else: what a scan did not measure is not stored."""

    points: int = Field(ge=0)
    accepted: bool = True
    reasons: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=16)
    noise_mm: float | None = None
    laser_mismatch_mm: float | None = None
    sweep_closure_mm: float | None = None
    azimuth_gap_deg: float | None = None
    plate_rms_mm: float | None = None
    frames_with_line: int | None = Field(default=None, ge=0)
    frames: int | None = Field(default=None, ge=0)


class FootModel(_Strict):
    measurements: MeasurementsModel
    toe_shape: Literal["egyptian", "greek", "square"]
    sizes: SizesModel
    pressure: PressureModel
    rig_to_foot: list[Annotated[list[float], Field(max_length=4)]] = Field(max_length=4)  # 4x4, plate -> foot, mm
    quality: QualityModel

    @field_validator("rig_to_foot")
    @classmethod
    def _rigid(cls, m: list[list[float]]) -> list[list[float]]:
        a = np.asarray(m, dtype=float)
        if a.shape != (4, 4) or not np.isfinite(a).all():
            raise ValueError("rig_to_foot must be a 4x4 matrix of finite numbers")
        r = a[:3, :3]
        if (np.abs(r @ r.T - np.eye(3)).max() > RIGID_TOLERANCE or np.linalg.det(r) < 0
                or np.abs(a[3] - [0, 0, 0, 1]).max() > RIGID_TOLERANCE):
            raise ValueError("rig_to_foot must be a rigid transform (rotation + translation, last row 0 0 0 1)")
        return m


class FeetModel(_Strict):
    left: FootModel
    right: FootModel


class Passport(_Strict):
    version: Literal[1] = PASSPORT_VERSION
    rig_serial: str = Field(min_length=1, max_length=64)
    calibration_id: str = Field(min_length=1, max_length=128)  # the rig serial and a time
    scanned_at: datetime  # scan start, UTC
    finished_at: datetime  # scan end, UTC
    measured_at: datetime  # when this passport was computed, UTC
    feet: FeetModel
    pair_sizes: SizesModel  # the longer foot decides
    load_left_percent: float = Field(ge=0, le=100)
    cop_sway_mm: float = Field(ge=0)

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Passport":
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            raise MeasurementError(f"not a valid foot passport (version {PASSPORT_VERSION}): {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Passport":
        path = Path(path)
        if not path.is_file():
            raise MeasurementError(f"no passport at {path}: check the path or scan again")
        return cls.from_json(path.read_text())


def foot_model(measured: FootMeasurements, pressure: FootPressure, quality: QualityModel) -> FootModel:
    return FootModel(
        measurements=MeasurementsModel(**{k: getattr(measured, k) for k in MeasurementsModel.model_fields}),
        toe_shape=measured.toe_shape,
        sizes=_sizes_model(sizes_for(measured.length_mm)),
        pressure=PressureModel(**{k: getattr(pressure, k) for k in PressureModel.model_fields}),
        rig_to_foot=np.asarray(measured.foot_from_plate, dtype=float).tolist(),
        quality=quality,
    )


def build_passport(
    left: FootMeasurements,
    right: FootMeasurements,
    plate: PlateMetrics,
    *,
    rig_serial: str,
    calibration_id: str,
    scanned_at: datetime,
    finished_at: datetime,
    measured_at: datetime,
    quality: dict[str, QualityModel] | None = None,
) -> Passport:
    """The passport of one scan from both feet's measurements and the plate's metrics."""
    quality = quality or {s: QualityModel(points=m.points) for s, m in (("left", left), ("right", right))}
    return Passport(
        rig_serial=rig_serial,
        calibration_id=calibration_id,
        scanned_at=scanned_at,
        finished_at=finished_at,
        measured_at=measured_at,
        feet=FeetModel(
            left=foot_model(left, plate.left, quality["left"]),
            right=foot_model(right, plate.right, quality["right"]),
        ),
        pair_sizes=_sizes_model(pair_sizes(left.length_mm, right.length_mm)),
        load_left_percent=plate.load_left_percent,
        cop_sway_mm=plate.cop_sway_mm,
    )


def _sizes_model(sizes: Sizes) -> SizesModel:
    return SizesModel(**sizes.__dict__)
