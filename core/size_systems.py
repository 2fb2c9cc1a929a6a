"""Size systems and width fittings: what a size label on a box means as a foot length (DESIGN.md section 5).

Every label maps to the nominal foot length it is made for, after ISO 19407 (an allowance of two size steps
is built into the EU and UK/US formulas): EU = 1.5 * foot_cm + 2; UK = 3 * foot_in - 23; US men =
3 * foot_in - 22; US women = 3 * foot_in - 21. Mondopoint (ISO 9407) is the foot length itself, in mm; ski
boots label it in cm (27.5) and two half sizes share one shell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from core.errors import CatalogError
from core.sizes import MM_PER_INCH, length_for_label

EU_STEP_MM = 20.0 / 3.0  # Paris point
UK_US_STEP_MM = MM_PER_INCH / 3.0  # barleycorn


@dataclass(frozen=True)
class SizeSystem:
    code: str
    name: str
    label_range: tuple[float, float]  # plausible adult and children's labels
    step_mm: float  # foot length between neighbouring whole sizes

    def foot_length_mm(self, label: float) -> float:
        """The nominal foot length (mm) the label is made for (ski boots label Mondopoint in cm)."""
        if self.code == "MP" and label < 100:
            label *= 10.0
        return length_for_label(self.code, label)


SIZE_SYSTEMS = {
    s.code: s
    for s in (
        SizeSystem("EU", "EU (Paris points)", (15.0, 56.0), EU_STEP_MM),
        SizeSystem("UK", "UK", (0.0, 16.0), UK_US_STEP_MM),
        SizeSystem("US-M", "US men", (1.0, 18.0), UK_US_STEP_MM),
        SizeSystem("US-W", "US women", (3.0, 16.0), UK_US_STEP_MM),
        SizeSystem("MP", "Mondopoint (mm, or cm below 100)", (10.0, 350.0), 5.0),
    )
}
_SYSTEM_ALIASES = {
    "eu": "EU", "eur": "EU", "uk": "UK", "us-m": "US-M", "usm": "US-M", "us men": "US-M", "us-men": "US-M",
    "us-w": "US-W", "usw": "US-W", "us women": "US-W", "us-women": "US-W", "mp": "MP", "mondopoint": "MP",
}

# Width fittings, narrowest first; each step is ~6.5 mm of ball girth (DESIGN.md section 5).
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
