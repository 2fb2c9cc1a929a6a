"""The whole catalogue as the matcher holds it in memory: a few contiguous arrays, one row per size.

sections[i] is size i's (STATIONS, 2 + ANGLES) float32 block (layout in fitcore.fit.sections); the other arrays
give its ids, inner length, descriptors and labels, so filters (category, gender, price, stock) select rows by
index. `models` holds one row per shoe model (brand, names, category, price...) and `stock` the size ids each
store has on hand. shoe_db.loading fills it from the database; the matcher never sees SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ModelTable:
    """One row per shoe model, ordered by model id (columns as in shoe_db.models.ShoeModel)."""

    model_ids: np.ndarray  # (m,) int64
    brand: np.ndarray  # (m,) str
    code: np.ndarray
    name: np.ndarray
    category: np.ndarray
    gender: np.ndarray
    use: np.ndarray
    level: np.ndarray
    price: np.ndarray  # (m,) float64, in `currency`
    currency: np.ndarray

    def rows(self, model_ids: np.ndarray) -> np.ndarray:
        """Row index of each model id (ids must be present)."""
        return np.searchsorted(self.model_ids, model_ids)

    @classmethod
    def empty(cls) -> "ModelTable":
        return cls(np.zeros(0, np.int64), *(np.zeros(0, object) for _ in range(7)), np.zeros(0), np.zeros(0, object))


@dataclass(frozen=True)
class MatcherCatalogue:
    size_ids: np.ndarray  # (n,) int64, size_variant.id
    model_ids: np.ndarray  # (n,) int64
    inner_length_mm: np.ndarray  # (n,) float32
    ball_width_mm: np.ndarray  # (n,) float32
    ball_girth_mm: np.ndarray  # (n,) float32
    sections: np.ndarray  # (n, STATIONS, ROW) float32
    sku: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) str
    size_system: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) EU, UK, US-M, US-W, MP
    size_label: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) as printed
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) width fitting
    nominal_foot_length_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) what the label is for
    models: ModelTable = field(default_factory=ModelTable.empty)
    stock: dict[str, np.ndarray] = field(default_factory=dict)  # store code -> sorted size ids with quantity > 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.size_ids, self.model_ids, self.inner_length_mm, self.ball_width_mm,
                                      self.ball_girth_mm, self.sections))
