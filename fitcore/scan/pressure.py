"""Plantar pressure metrics (docs/measurements.md) from the plate recording of a customer standing on both feet.

Plate grid: row r at plate x = (r - (rows - 1) / 2) * pitch, column c at y = (c - (cols - 1) / 2) * pitch (mm;
docs/frames.md); +y is the customer's left, so the left foot is the print at larger y. Pressures are zeroed by the
driver (exactly 0 below each sensel's noise threshold).

Per foot: contact area, peak pressure, centre-of-pressure sway, the arch index of Cavanagh & Rodgers (1987) and
its class. The footprints are separated at the emptiest band of columns between the feet; each footprint's own
axis is its principal axis, toes forward (+x). Toes are cut off where, in front of the ball (the widest slice of
the front half), the print first narrows below TOE_LINE_WIDTH of the ball's width: the toe sulcus.

`pressure_map` keeps the recording's picture for people (the kiosk's heat map): the mean pressure around the feet,
the centre-of-pressure paths and the footprints' outlines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.errors import MeasurementError

CONTACT_KPA = 3.0  # a sensel is in contact when its mean pressure over the recording exceeds this
MIN_FOOT_SENSELS = 40  # a footprint smaller than this (10 cm2 at 5 mm pitch) is not a foot standing
TOE_LINE_WIDTH = 0.6  # the toes begin where the print narrows below this fraction of the ball's width
HIGH_ARCH_MAX = 0.21  # Cavanagh & Rodgers: AI <= 0.21 high, 0.21 < AI < 0.26 normal, AI >= 0.26 flat
FLAT_ARCH_MIN = 0.26
ARCH_TYPES = ("high", "normal", "flat")
COP_PATH_MAX_POINTS = 300  # a pressure map's centre-of-pressure paths are averaged down to this many points
MAP_MARGIN_SENSELS = 2  # sensels kept around the contact area in a pressure map


@dataclass(frozen=True)
class FootPressure:
    contact_area_cm2: float  # mean over frames of pitch^2 * #(p > 0) within the footprint
    peak_kpa: float  # highest sensel pressure of the recording
    mean_force_n: float
    arch_index: float  # midfoot third / whole footprint without toes (areas)
    arch_type: str  # "high", "normal" or "flat"
    cop_sway_mm: float  # RMS distance of the foot's centre of pressure from its mean position
    axis_deg: float  # footprint axis, degrees from plate +x toward +y


@dataclass(frozen=True)
class PlateMetrics:
    left: FootPressure
    right: FootPressure
    load_left_percent: float  # left foot's share of the total force, mean over frames
    cop_sway_mm: float  # RMS distance of the whole body's centre of pressure from its mean
    frames: int


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FootPrintMap(_Frozen):
    """One foot on the pressure map (plate frame, mm)."""

    arch_index: float = Field(ge=0, le=1)
    arch_type: Literal[ARCH_TYPES]
    cop_path_mm: list[tuple[float, float]] = Field(description="the foot's centre of pressure over the recording, "
                                                               "(x, y) in the plate frame")
    outlines_mm: list[list[tuple[float, float]]] = Field(
        description="closed polygons around the footprint's parts (heel, forefoot, toes where they are apart) "
                    "through their edge sensels' centres, largest first; (x, y) in the plate frame")


class PressureMap(_Frozen):
    """The standing pressure of a scan as a picture: the mean pressure per sensel over the window of the plate
    around the contact area (row i at plate x = x0_mm + i * pitch_mm, column j at y = y0_mm + j * pitch_mm; +x
    toward the toes, +y to the customer's left) and the centre-of-pressure paths."""

    pitch_mm: float = Field(gt=0)
    x0_mm: float = Field(description="plate x of the centres of row 0's sensels")
    y0_mm: float = Field(description="plate y of the centres of column 0's sensels")
    mean_kpa: list[list[float]] = Field(description="rows (along plate x) of columns (along plate y), kPa")
    max_kpa: float = Field(ge=0)
    frames: int = Field(gt=0, description="pressure frames averaged (100 per second)")
    cop_path_mm: list[tuple[float, float]] = Field(description="the whole body's centre of pressure, (x, y) mm")
    left: FootPrintMap
    right: FootPrintMap


def plate_metrics(pressures_kpa: np.ndarray, pitch_mm: float) -> PlateMetrics:
    """All metrics from a recording (n, rows, cols) of zeroed pressures (kPa) with both feet on the plate."""
    p = _checked_recording(pressures_kpa)
    x_mm, y_mm = sensel_axes_mm(*p.shape[1:], pitch_mm)
    masks = _foot_masks(p)
    area_cm2 = (pitch_mm / 10.0) ** 2
    force_n = {}
    feet = {}
    cop = {}
    for side, mask in masks.items():
        frames = p * mask  # (n, rows, cols)
        force = frames.sum(axis=(1, 2)) * area_cm2 / 10.0  # kPa * cm2 = N / 10
        force_n[side] = force
        cop[side] = _cop_path_mm(frames, x_mm, y_mm)
        r, c = np.nonzero(mask)
        axis = _footprint_axis(np.column_stack([x_mm[r], y_mm[c]]))
        index = arch_index(np.column_stack([x_mm[r], y_mm[c]]), axis, pitch_mm)
        feet[side] = FootPressure(
            contact_area_cm2=float((frames > 0).sum(axis=(1, 2)).mean() * area_cm2),
            peak_kpa=float(frames.max()),
            mean_force_n=float(force.mean()),
            arch_index=index,
            arch_type=arch_type(index),
            cop_sway_mm=_sway_mm(cop[side]),
            axis_deg=float(np.degrees(np.arctan2(axis[1], axis[0]))),
        )
    total = force_n["left"] + force_n["right"]
    return PlateMetrics(
        left=feet["left"],
        right=feet["right"],
        load_left_percent=float(100.0 * (force_n["left"] / total).mean()),
        cop_sway_mm=_sway_mm(_body_cop_mm(cop, force_n)),
        frames=len(p),
    )


def pressure_map(pressures_kpa: np.ndarray, pitch_mm: float, metrics: PlateMetrics) -> PressureMap:
    """The picture of a recording for people: the mean pressure around the feet's contact area, the centre of
    pressure paths (body and each foot, at most COP_PATH_MAX_POINTS points each) and each footprint's outline,
    with the arch classes of `metrics` (plate_metrics of the same recording)."""
    p = _checked_recording(pressures_kpa)
    x_mm, y_mm = sensel_axes_mm(*p.shape[1:], pitch_mm)
    mean_kpa = p.mean(axis=0)
    rows, cols = _contact_window(mean_kpa > CONTACT_KPA)
    cop, force, prints = {}, {}, {}
    for side, mask in _foot_masks(p).items():
        frames = p * mask
        cop[side], force[side] = _cop_path_mm(frames, x_mm, y_mm), frames.sum(axis=(1, 2))
        foot = getattr(metrics, side)
        prints[side] = FootPrintMap(arch_index=round(foot.arch_index, 4), arch_type=foot.arch_type,
                                    cop_path_mm=_map_path(cop[side]),
                                    outlines_mm=[_map_path(o) for o in _outlines_mm(mask, x_mm, y_mm)])
    return PressureMap(
        pitch_mm=pitch_mm, x0_mm=float(x_mm[rows.start]), y0_mm=float(y_mm[cols.start]),
        mean_kpa=np.round(mean_kpa[rows, cols], 1).tolist(), max_kpa=round(float(mean_kpa.max()), 1), frames=len(p),
        cop_path_mm=_map_path(_body_cop_mm(cop, force)), left=prints["left"], right=prints["right"],
    )


def _contact_window(contact: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of the sensels in contact with a margin of MAP_MARGIN_SENSELS (the
    map's window: a stray noisy sensel far from the feet does not widen it)."""
    r, c = np.nonzero(contact)
    rows, cols = contact.shape
    return (slice(max(r.min() - MAP_MARGIN_SENSELS, 0), min(r.max() + MAP_MARGIN_SENSELS + 1, rows)),
            slice(max(c.min() - MAP_MARGIN_SENSELS, 0), min(c.max() + MAP_MARGIN_SENSELS + 1, cols)))


def _outlines_mm(mask: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray) -> list[np.ndarray]:
    """(k, 2) boundaries of the footprint's parts (heel and forefoot are apart under a high arch; toes often are)
    through their edge sensels' centres (plate x, y), largest first; parts too small for a polygon are left out."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = sorted((c.reshape(-1, 2) for c in contours if len(c) >= 3), key=cv2.contourArea, reverse=True)
    return [np.column_stack([x_mm[col_row[:, 1]], y_mm[col_row[:, 0]]]) for col_row in parts]


def _body_cop_mm(cop: dict[str, np.ndarray], force: dict[str, np.ndarray]) -> np.ndarray:
    """The whole body's centre of pressure per frame: the feet's, weighted by their forces."""
    total = force["left"] + force["right"]
    return (cop["left"] * force["left"][:, None] + cop["right"] * force["right"][:, None]) / total[:, None]


def _map_path(path_mm: np.ndarray) -> list[tuple[float, float]]:
    """A path of at most COP_PATH_MAX_POINTS points (means of consecutive runs), rounded to 0.01 mm."""
    chunks = np.array_split(path_mm, min(len(path_mm), COP_PATH_MAX_POINTS))
    return [(round(float(x), 2), round(float(y), 2)) for x, y in (chunk.mean(axis=0) for chunk in chunks)]


def _checked_recording(pressures_kpa: np.ndarray) -> np.ndarray:
    p = np.asarray(pressures_kpa, dtype=np.float64)
    if p.ndim != 3 or len(p) == 0:
        raise MeasurementError(f"expected pressure frames (n, rows, cols), got shape {p.shape}: record the plate again")
    if not np.isfinite(p).all():
        raise MeasurementError("the plate recording holds NaN or infinite pressures: record the plate again")
    return p


def sensel_axes_mm(rows: int, cols: int, pitch_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Plate x of each row's sensel centres and plate y of each column's (mm, centred on the plate)."""
    return (np.arange(rows) - (rows - 1) / 2) * pitch_mm, (np.arange(cols) - (cols - 1) / 2) * pitch_mm


def _foot_masks(p: np.ndarray) -> dict[str, np.ndarray]:
    """Each foot's sensels in contact (rows, cols), left then right; refused unless both feet stand."""
    contact = p.mean(axis=0) > CONTACT_KPA
    masks = {}
    for side, in_cols in zip(("left", "right"), _split_feet(contact)):
        masks[side] = contact & in_cols[None, :]
        if masks[side].sum() < MIN_FOOT_SENSELS:
            raise MeasurementError(
                f"no {side} footprint on the plate ({int(masks[side].sum())} sensels in contact): ask the customer "
                "to stand on both feet, then record again"
            )
    return masks


def _cop_path_mm(frames: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """(n, 2) centre of pressure per frame (plate x, y in mm) of frames (n, rows, cols) masked to one foot."""
    total = np.maximum(frames.sum(axis=(1, 2)), 1e-9)
    return np.column_stack([(frames.sum(axis=2) @ x_mm) / total, (frames.sum(axis=1) @ y_mm) / total])


def _split_feet(contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) column masks: split in the gap of empty columns between the feet (in the middle half of the
    columns in contact)."""
    used = np.flatnonzero(contact.any(axis=0))
    if len(used) == 0:
        raise MeasurementError("nobody stands on the plate: ask the customer to stand on both feet, then record again")
    profile = contact.sum(axis=0).astype(float)
    lo, hi = used[0], used[-1]
    middle = np.arange(lo + (hi - lo) // 4, hi - (hi - lo) // 4 + 1)
    gap = middle[profile[middle] == 0]
    if len(gap) == 0:
        raise MeasurementError(
            "cannot tell the two feet apart (no gap between the footprints): ask the customer to stand on both "
            "feet, a little apart, then record again"
        )
    split = int(np.round(gap.mean()))  # the middle of the gap between the feet
    columns = np.arange(contact.shape[1])
    return columns > split, columns < split


def _footprint_axis(points_mm: np.ndarray) -> np.ndarray:
    """Unit principal axis of the footprint in the plate's xy, toward the toes (+x: customers face +x)."""
    centred = points_mm - points_mm.mean(axis=0)
    axis = np.linalg.eigh(centred.T @ centred)[1][:, -1]
    return axis if axis[0] >= 0 else -axis


def arch_index(points_mm: np.ndarray, axis: np.ndarray, pitch_mm: float) -> float:
    """Cavanagh & Rodgers arch index of a footprint (contact sensel centres, mm): toes cut off, the rest split in
    thirds along the axis, AI = area of the middle third / area of all three."""
    along = points_mm @ axis
    start = along.min() - pitch_mm / 2  # the print's rear edge (sensel centres are half a pitch in)
    width = np.bincount(np.floor((along - start) / pitch_mm).astype(int)).astype(float)  # sensels per slice
    ball = int(np.argmax(np.where(np.arange(len(width)) >= len(width) // 2, width, -1.0)))
    narrow = np.flatnonzero((np.arange(len(width)) > ball) & (width < TOE_LINE_WIDTH * width[ball]))
    toe_line = start + (narrow[0] if len(narrow) else len(width)) * pitch_mm
    sole = along[along < toe_line]
    third = (toe_line - start) / 3.0
    middle = (sole >= start + third) & (sole < start + 2 * third)
    return float(middle.sum() / len(sole))


def arch_type(index: float) -> str:
    """Cavanagh & Rodgers class: high <= 0.21 < normal < 0.26 <= flat."""
    if index <= HIGH_ARCH_MAX:
        return "high"
    return "flat" if index >= FLAT_ARCH_MIN else "normal"


def _sway_mm(path_mm: np.ndarray) -> float:
    return float(np.sqrt(((path_mm - path_mm.mean(axis=0)) ** 2).sum(axis=1).mean()))
