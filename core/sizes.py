"""Shoe sizes (docs/reference.md, sizes): the size systems, what a label on a box means as a foot length, width
fittings, and the sizes of a measured foot.

Every label maps to the nominal foot length it is made for. Mondopoint (ISO 9407) is the foot length in mm; ski
boots label it in cm (27.5) and two half sizes share one shell. The others follow ISO 19407, which builds in an
allowance of two size steps: EU = 1.5 * foot_cm + 2 (Paris point, 6.67 mm); UK = 3 * foot_in - 23, US men =
3 * foot_in - 22, US women = 3 * foot_in - 21 (barleycorn, 8.47 mm).

A measured foot's sizes are rounded: Mondopoint to the nearest 5 mm (the usual labelled interval), EU to the
nearest whole size, UK and US to the nearest half size; halves are rounded up (toward the larger shoe) so a foot
on a boundary is never given the shorter size.

Size systems are spelt one way, SIZE_SYSTEMS' codes (EU, UK, US-M, US-W, MP). A store says which sizes its staff
and customers speak with the names of STORE_SIZE_SYSTEMS (eu, uk, us, mondopoint: what the API stores and the
kiosk shows); that table alone maps them to the codes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from core.errors import CatalogError, MeasurementError
from core.vocabulary import FOOT_LENGTH_RANGE_MM

MM_PER_INCH = 25.4
EU_STEP_MM = 20.0 / 3.0  # Paris point
UK_US_STEP_MM = MM_PER_INCH / 3.0  # barleycorn


@dataclass(frozen=True)
class SizeSystem:
    code: str
    name: str
    per_mm: float  # label = per_mm * foot length (mm) + offset: the formulas above
    offset: float
    step_mm: float  # foot length between neighbouring whole sizes
    rounding: float  # a measured foot's label is rounded to a multiple of this
    label_range: tuple[float, float]  # plausible adult and children's labels

    def label_for_length(self, length_mm: float) -> float:
        """The exact (unrounded) label of a foot length."""
        return self.per_mm * length_mm + self.offset

    def foot_length_mm(self, label: float) -> float:
        """The nominal foot length (mm) the label is made for (ski boots label Mondopoint in cm)."""
        if self.code == "MP" and label < 100:
            label *= 10.0
        return (label - self.offset) / self.per_mm


SIZE_SYSTEMS = {
    s.code: s
    for s in (
        SizeSystem("EU", "EU (Paris points)", 0.15, 2.0, EU_STEP_MM, 1.0, (15.0, 56.0)),
        SizeSystem("UK", "UK", 3.0 / MM_PER_INCH, -23.0, UK_US_STEP_MM, 0.5, (0.0, 16.0)),
        SizeSystem("US-M", "US men", 3.0 / MM_PER_INCH, -22.0, UK_US_STEP_MM, 0.5, (1.0, 18.0)),
        SizeSystem("US-W", "US women", 3.0 / MM_PER_INCH, -21.0, UK_US_STEP_MM, 0.5, (3.0, 16.0)),
        SizeSystem("MP", "Mondopoint (mm, or cm below 100)", 1.0, 0.0, 5.0, 5.0, (10.0, 350.0)),
    )
}
_SYSTEM_ALIASES = {
    "eu": "EU", "eur": "EU", "uk": "UK", "us-m": "US-M", "usm": "US-M", "us men": "US-M", "us-men": "US-M",
    "us-w": "US-W", "usw": "US-W", "us women": "US-W", "us-women": "US-W", "mp": "MP", "mondopoint": "MP",
}
# The sizes a store shows its customers, by the names the API stores (tenant_store.size_system) and the kiosk
# shows, each with the size systems it means: "us" is US men's and women's sizes side by side.
STORE_SIZE_SYSTEMS = {"eu": ("EU",), "uk": ("UK",), "us": ("US-M", "US-W"), "mondopoint": ("MP",)}

# Width fittings, narrowest first; each step is ~6.5 mm of ball girth (docs/reference.md, sizes).
WIDTH_FITTINGS = ("narrow", "standard", "wide", "extra-wide")
GIRTH_PER_WIDTH_FITTING_MM = 6.5

_LABEL = re.compile(r"^\s*(\d+(?:\.\d+)?)(?:\s+(\d)/(\d))?\s*$")
_UNICODE_FRACTIONS = {"½": " 1/2", "⅓": " 1/3", "⅔": " 2/3"}


def size_system(text: str) -> SizeSystem:
    """The size system named by `text` (EU, UK, US-M, US-W, MP and common spellings)."""
    code = _SYSTEM_ALIASES.get(" ".join(str(text).lower().split()))
    if code is None:
        allowed = ", ".join(SIZE_SYSTEMS)
        raise CatalogError(f"unknown size system {text!r}: use one of {allowed}" if str(text).strip()
                           else f"the size system is missing: give one of {allowed}")
    return SIZE_SYSTEMS[code]


def parse_size_label(system: SizeSystem, text: str) -> float:
    """The numeric size of a label such as '42', '42.5', '42 2/3', '42⅔' or '8 1/2', checked against the system."""
    raw = str(text)
    for symbol, replacement in _UNICODE_FRACTIONS.items():
        raw = raw.replace(symbol, replacement)
    match = _LABEL.match(raw)
    if not match:
        raise CatalogError(f"size {text!r} is not a size label: write e.g. 42, 42.5, 42 2/3 or 8 1/2")
    value = float(match.group(1))
    if match.group(2):
        value += float(Fraction(int(match.group(2)), int(match.group(3))))
    low, high = system.label_range
    if not low <= value <= high:
        raise CatalogError(f"size {text!r} is outside {system.name} sizes {low:g}-{high:g}: "
                           f"check the size and the size_system column")
    return value


def width_fitting(text: str) -> str:
    """The width fitting named by `text`; empty means standard."""
    value = str(text or "standard").strip().lower()
    if value not in WIDTH_FITTINGS:
        raise CatalogError(f"unknown width fitting {text!r}: use one of {', '.join(WIDTH_FITTINGS)}")
    return value


def width_steps(from_fitting: str, to_fitting: str) -> int:
    """How many width fittings `to_fitting` is wider than `from_fitting` (negative: narrower)."""
    return WIDTH_FITTINGS.index(to_fitting) - WIDTH_FITTINGS.index(from_fitting)


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
    return Sizes(mondopoint=int(_measured_label("MP", length_mm)), eu=_measured_label("EU", length_mm),
                 uk=_measured_label("UK", length_mm), us_men=_measured_label("US-M", length_mm),
                 us_women=_measured_label("US-W", length_mm))


def pair_sizes(left_length_mm: float, right_length_mm: float) -> Sizes:
    """Sizes of a pair of shoes: the longer foot decides."""
    return sizes_for(max(left_length_mm, right_length_mm))


def _measured_label(code: str, length_mm: float) -> float:
    """A foot's label in a size system, halves rounded up."""
    system = SIZE_SYSTEMS[code]
    return math.floor(system.label_for_length(length_mm) / system.rounding + 0.5) * system.rounding
