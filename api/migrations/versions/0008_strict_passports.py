"""Stored passports keep only the fields a passport has. Uploads used to keep unknown fields (a blob, a name and an
e-mail address in `quality` were stored and shown to staff); passports are now refused with any unknown field, so
the ones stored before would no longer load. This removes every field the passport of this revision does not
declare (the field names below are that passport's, fitcore/scan/passport.py at revision 0008), and the text of the
reasons beyond its bounds. What is removed is not restored by a downgrade: it should never have been kept.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SIZES = {"mondopoint", "eu", "uk", "us_men", "us_women"}
_FOOT = {
    "measurements": {"length_mm", "ball_width_mm", "ball_girth_mm", "instep_girth_mm", "heel_width_mm",
                     "instep_height_mm"},
    "toe_shape": None, "sizes": _SIZES,
    "pressure": {"arch_index", "arch_type", "contact_area_cm2", "peak_kpa", "cop_sway_mm"},
    "rig_to_foot": None,
    "quality": {"points", "accepted", "reasons", "noise_mm", "laser_mismatch_mm", "sweep_closure_mm",
                "azimuth_gap_deg", "plate_rms_mm", "frames_with_line", "frames"},
}
_PASSPORT = {"version": None, "rig_serial": None, "calibration_id": None, "scanned_at": None, "finished_at": None,
             "measured_at": None, "feet": {"left": _FOOT, "right": _FOOT}, "pair_sizes": _SIZES,
             "load_left_percent": None, "cop_sway_mm": None}
_REASONS, _REASON_CHARS = 16, 500


def _declared(value, shape):
    """`value` with only the keys of `shape` (a dict of sub-shapes, a set of leaf names, or None: as it is)."""
    if shape is None or not isinstance(value, dict):
        return value
    if isinstance(shape, set):
        return {k: v for k, v in value.items() if k in shape}
    return {k: _declared(v, shape[k]) for k, v in value.items() if k in shape}


def _strict(passport: dict) -> dict:
    kept = _declared(passport, _PASSPORT)
    for foot in kept.get("feet", {}).values():
        quality = foot.get("quality", {})
        if isinstance(quality.get("reasons"), list):
            quality["reasons"] = [str(r)[:_REASON_CHARS] for r in quality["reasons"][:_REASONS]]
    return kept


def upgrade() -> None:
    passports = sa.table("passport", sa.column("id", sa.String), sa.column("passport_json", sa.Text))
    bind = op.get_bind()
    for row in bind.execute(sa.select(passports.c.id, passports.c.passport_json)).all():
        kept = json.dumps(_strict(json.loads(row.passport_json)))
        if kept != row.passport_json:
            bind.execute(passports.update().where(passports.c.id == row.id).values(passport_json=kept))


def downgrade() -> None:
    pass  # removed fields are not brought back
