"""Shoe sizes from foot length (DESIGN.md section 5).

Mondopoint (ISO 9407) is the foot length in mm. The others follow ISO 19407, which builds in an allowance of two
size steps: EU = 1.5 * foot_cm + 2 (Paris point, 6.67 mm); UK = 3 * foot_in - 23, US men = 3 * foot_in - 22,
US women = 3 * foot_in - 21 (barleycorn, 8.47 mm). Rounding: Mondopoint to the nearest 5 mm (the usual labelled
interval), EU to the nearest whole size, UK and US to the nearest half size; halves are rounded up (toward the
larger shoe) so a foot on a boundary is never given the shorter size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import MeasurementError

MM_PER_INCH = 25.4
MONDOPOINT_STEP_MM = 5.0
EU_STEP = 1.0
UK_US_STEP = 0.5
FOOT_LENGTH_RANGE_MM = (100.0, 400.0)


# label = per_mm * foot length (mm) + offset, per size system (the ISO 19407 formulas above; Mondopoint in mm).
LABEL_FORMULAS: dict[str, tuple[float, float]] = {
    "MP": (1.0, 0.0),
    "EU": (0.15, 2.0),
    "UK": (3.0 / MM_PER_INCH, -23.0),
    "US-M": (3.0 / MM_PER_INCH, -22.0),
    "US-W": (3.0 / MM_PER_INCH, -21.0),
}


def label_for_length(system: str, length_mm: float) -> float:
    """The exact (unrounded) size label of a foot length in a size system."""
    per_mm, offset = LABEL_FORMULAS[system]
    return per_mm * length_mm + offset


def length_for_label(system: str, label: float) -> float:
    """The nominal foot length (mm) a size label is made for: the inverse of `label_for_length`."""
    per_mm, offset = LABEL_FORMULAS[system]
    return (label - offset) / per_mm


@dataclass(frozen=True)
class Sizes:
    mondopoint: int  # mm
    eu: float
    uk: float
    us_men: float
    us_women: float


def sizes_for(length_mm: float) -> Sizes:
    """The sizes of a foot of this length (mm), rounded as the module docstring says."""
    lo, hi = FOOT_LENGTH_RANGE_MM
    if not (math.isfinite(length_mm) and lo <= length_mm <= hi):
        raise MeasurementError(f"foot length {length_mm} mm is not a foot's ({lo:.0f}-{hi:.0f} mm): measure again")
    return Sizes(
        mondopoint=int(_round_half_up(length_mm, MONDOPOINT_STEP_MM)),
        eu=_round_half_up(label_for_length("EU", length_mm), EU_STEP),
        uk=_round_half_up(label_for_length("UK", length_mm), UK_US_STEP),
        us_men=_round_half_up(label_for_length("US-M", length_mm), UK_US_STEP),
        us_women=_round_half_up(label_for_length("US-W", length_mm), UK_US_STEP),
    )


def pair_sizes(left_length_mm: float, right_length_mm: float) -> Sizes:
    """Sizes of a pair of shoes: the longer foot decides."""
    return sizes_for(max(left_length_mm, right_length_mm))


def _round_half_up(value: float, step: float) -> float:
    return math.floor(value / step + 0.5) * step
