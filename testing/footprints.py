"""Schematic footprints on the plate's sensel grid, with known arch indices (for pressure tests)."""

from __future__ import annotations

import numpy as np

from device.plate import sensel_centres_mm

X_MM, Y_MM = sensel_centres_mm()


def footprint(centre_y_mm: float, midfoot_width_mm: float, kpa: float = 100.0) -> np.ndarray:
    """A schematic print (rows x cols): heel 60 mm wide, midfoot of the given width, ball 90 mm, four toes."""
    x, y = np.meshgrid(X_MM, Y_MM - centre_y_mm, indexing="ij")
    heel = (x >= -120) & (x < -50) & (np.abs(y) < 30)
    midfoot = (x >= -50) & (x < 20) & (y > 30 - midfoot_width_mm) & (y < 30)
    ball = (x >= 20) & (x < 85) & (np.abs(y) < 45)
    toes = (x >= 95) & (x < 115) & ((np.abs(y) < 40) & (np.abs(y) % 20 < 12))
    return np.where(heel | midfoot | ball | toes, kpa, 0.0)
