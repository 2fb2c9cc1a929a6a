"""The words every layer shares, each defined once: a foot's sides, where on a foot it is measured and judged, the
fit verdicts, and what can be a foot at all. Sizes and size systems: core/sizes.py.

The places measures are taken (heel zone, instep) hold for a foot and for a shoe interior alike, so that a shoe's
measures and a foot's compare (docs/measurements.md); the plausibility limits hold for a scan, a mesh and a size.
"""

from __future__ import annotations

SIDES = ("left", "right")

# The fit regions a shoe is judged in, toe to heel (fitcore.fit: region codes are indices into this).
REGIONS = ("toe", "ball", "instep", "heel")
VERDICTS = ("tight", "good", "roomy")  # per region and per foot: verdict codes are indices into this

# What a customer says about a size they tried (docs/learning.md): kept it, or where it was wrong and which way.
# A complaint names one region of REGIONS and a direction: toe tight = the toes hit (too short), toe loose = too
# long, ball tight = pinches, heel loose = slips, instep tight = presses.
FIT_DIRECTIONS = ("tight", "loose")
RETURN_REASONS = ("too_small", "too_large")  # a webshop return's reason: a tight complaint, a loose one (or none)
FEEDBACK_SOURCES = ("store", "webshop")  # a try in a store (staff bring sizes), a purchase in the webshop

# Where measures are taken, as fractions of the length from the heel (foot or shoe interior).
HEEL_ZONE_FRACTION = 0.2  # pternion and heel width: the rear 20% of the length...
HEEL_ZONE_HEIGHT_MM = 50.0  # ... below this height (under the malleoli)
INSTEP_AT = 0.5  # instep girth and height: the section at half the length

# What can be a foot (an adult's or a child's, standing, in mm): anything else was scanned, exported or scaled
# wrongly, and is refused with a message that says so.
FOOT_LENGTH_RANGE_MM = (150.0, 380.0)
FOOT_HEIGHT_RANGE_MM = (25.0, 450.0)  # sole to where a scan or mesh ends on the leg
MIN_FOOT_LENGTH_TO_WIDTH = 1.8  # a foot is at least this much longer than wide (not two feet, not a box)


def foot_extent_problem(length_mm: float, width_mm: float, height_mm: float) -> str | None:
    """Why an object of this extent (along the foot, across it, up) cannot be a foot, or None when it can be.
    Callers name the object and say what to fix."""
    lo, hi = FOOT_LENGTH_RANGE_MM
    if not lo <= length_mm <= hi:
        return f"{length_mm:.0f} mm long, not a foot ({lo:.0f}-{hi:.0f} mm)"
    if length_mm < MIN_FOOT_LENGTH_TO_WIDTH * width_mm:
        return (f"{length_mm:.0f} mm long but {width_mm:.0f} mm wide: a foot is at least {MIN_FOOT_LENGTH_TO_WIDTH} "
                f"times longer than wide")
    lo, hi = FOOT_HEIGHT_RANGE_MM
    if not lo <= height_mm <= hi:
        return f"{height_mm:.0f} mm high, not a foot ({lo:.0f}-{hi:.0f} mm)"
    return None
