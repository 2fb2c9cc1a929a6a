"""Plantar pressure metrics (DESIGN.md section 4) from the plate recording of a customer standing on both feet.

Plate grid: row r at plate x = (r - (rows - 1) / 2) * pitch, column c at y = (c - (cols - 1) / 2) * pitch (mm;
docs/frames.md); +y is the customer's left, so the left foot is the print at larger y. Pressures are zeroed by the
driver (exactly 0 below each sensel's noise threshold).

Per foot: contact area, peak pressure, centre-of-pressure sway, the arch index of Cavanagh & Rodgers (1987) and
its class. The footprints are separated at the emptiest band of columns between the feet; each footprint's own
axis is its principal axis, toes forward (+x). Toes are cut off where, in front of the ball (the widest slice of
the front half), the print first narrows below TOE_LINE_WIDTH of the ball's width: the toe sulcus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitcore.errors import MeasurementError

CONTACT_KPA = 3.0  # a sensel is in contact when its mean pressure over the recording exceeds this
MIN_FOOT_SENSELS = 40  # a footprint smaller than this (10 cm2 at 5 mm pitch) is not a foot standing
TOE_LINE_WIDTH = 0.6  # the toes begin where the print narrows below this fraction of the ball's width
HIGH_ARCH_MAX = 0.21  # Cavanagh & Rodgers: AI <= 0.21 high, 0.21 < AI < 0.26 normal, AI >= 0.26 flat
FLAT_ARCH_MIN = 0.26
ARCH_TYPES = ("high", "normal", "flat")


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


def plate_metrics(pressures_kpa: np.ndarray, pitch_mm: float) -> PlateMetrics:
    """All metrics from a recording (n, rows, cols) of zeroed pressures (kPa) with both feet on the plate."""
    p = np.asarray(pressures_kpa, dtype=np.float64)
    if p.ndim != 3 or len(p) == 0:
        raise MeasurementError(f"expected pressure frames (n, rows, cols), got shape {p.shape}: record the plate again")
    if not np.isfinite(p).all():
        raise MeasurementError("the plate recording holds NaN or infinite pressures: record the plate again")
    rows, cols = p.shape[1:]
    x_mm = (np.arange(rows) - (rows - 1) / 2) * pitch_mm
    y_mm = (np.arange(cols) - (cols - 1) / 2) * pitch_mm
    contact = p.mean(axis=0) > CONTACT_KPA
    left_cols, right_cols = _split_feet(contact)
    area_cm2 = (pitch_mm / 10.0) ** 2
    force_n = {}
    feet = {}
    cop = {}
    for side, in_cols in (("left", left_cols), ("right", right_cols)):
        mask = contact & in_cols[None, :]
        if mask.sum() < MIN_FOOT_SENSELS:
            raise MeasurementError(
                f"no {side} footprint on the plate ({int(mask.sum())} sensels in contact): ask the customer to "
                "stand on both feet, then record again"
            )
        frames = p * mask  # (n, rows, cols)
        force = frames.sum(axis=(1, 2)) * area_cm2 / 10.0  # kPa * cm2 = N / 10
        force_n[side] = force
        xs = (frames.sum(axis=2) @ x_mm) / np.maximum(frames.sum(axis=(1, 2)), 1e-9)
        ys = (frames.sum(axis=1) @ y_mm) / np.maximum(frames.sum(axis=(1, 2)), 1e-9)
        cop[side] = np.column_stack([xs, ys])
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
    body_cop = (cop["left"] * force_n["left"][:, None] + cop["right"] * force_n["right"][:, None]) / total[:, None]
    return PlateMetrics(
        left=feet["left"],
        right=feet["right"],
        load_left_percent=float(100.0 * (force_n["left"] / total).mean()),
        cop_sway_mm=_sway_mm(body_cop),
        frames=len(p),
    )


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
