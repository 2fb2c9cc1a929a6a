"""The catalogue as the matcher holds it in memory: a few contiguous arrays, one row per size.

sections[i] is size i's (STATIONS, 2 + ANGLES) float32 block (layout in fitcore.fit.sections); the other arrays
give its ids, inner length, descriptors and labels, so filters (category, gender, stock) select rows by index;
`models` holds one row per shoe model (brand, names, category...) and `stock` the size ids each store has on hand.
The sizes and interiors are the operator's, shared by every retailer and loaded once per process; a store is one
retailer's. What a retailer sells, under which SKU and at what price is its `Assortment`: small arrays aligned with
the same rows, loaded per retailer. shoe_db.loading fills the catalogue from the database; the matcher never sees
SQL.
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

    def rows(self, model_ids: np.ndarray) -> np.ndarray:
        """Row index of each model id (ids must be present)."""
        return np.searchsorted(self.model_ids, model_ids)

    @classmethod
    def empty(cls) -> "ModelTable":
        return cls(np.zeros(0, np.int64), *(np.zeros(0, object) for _ in range(7)))


@dataclass(frozen=True)
class Assortment:
    """What one retailer sells of the catalogue, aligned with the catalogue's size rows: its SKU, price and
    currency of each size ("", NaN and "" where it does not sell the size)."""

    sku: np.ndarray  # (n,) str
    price: np.ndarray  # (n,) float64, in `currency`
    currency: np.ndarray  # (n,) str

    @property
    def sold(self) -> np.ndarray:
        """(n,) bool: the retailer sells this size."""
        return self.sku != ""

    @classmethod
    def aligned(cls, size_ids: np.ndarray, sold_size_ids, skus, prices, currencies) -> "Assortment":
        """The assortment over a catalogue's rows (`size_ids`, sorted) from the retailer's sizes (any order) with
        their SKUs, prices and currencies; a size the catalogue lacks (no interior to fit) is left out."""
        n = len(size_ids)
        sku, price, currency = np.full(n, "", dtype=object), np.full(n, np.nan), np.full(n, "", dtype=object)
        sold = np.asarray(sold_size_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(size_ids, sold), max(n - 1, 0))
        known = size_ids[at] == sold if n else np.zeros(len(sold), dtype=bool)
        sku[at[known]] = np.asarray(skus, dtype=object)[known]
        price[at[known]] = np.asarray(prices, dtype=np.float64)[known]
        currency[at[known]] = np.asarray(currencies, dtype=object)[known]
        return cls(sku, price, currency)


@dataclass(frozen=True)
class MatcherCatalogue:
    size_ids: np.ndarray  # (n,) int64, size_variant.id
    model_ids: np.ndarray  # (n,) int64
    inner_length_mm: np.ndarray  # (n,) float32
    ball_width_mm: np.ndarray  # (n,) float32
    ball_girth_mm: np.ndarray  # (n,) float32
    sections: np.ndarray  # (n, STATIONS, ROW) float32
    sku: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) str, the operator's SKU
    size_system: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) EU, UK, US-M, US-W, MP
    size_label: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) as printed
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # (n,) width fitting
    nominal_foot_length_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) what the label is for
    models: ModelTable = field(default_factory=ModelTable.empty)
    stock: dict[str, np.ndarray] = field(default_factory=dict)  # store code -> sorted size ids with quantity > 0
    # (n, STATIONS, angles) float64, fitcore.fit.ball_line: stored with the interiors; None: computed by the matcher
    ball_girths_mm: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        arrays = (self.size_ids, self.model_ids, self.inner_length_mm, self.ball_width_mm, self.ball_girth_mm,
                  self.sections, *(() if self.ball_girths_mm is None else (self.ball_girths_mm,)))
        return sum(a.nbytes for a in arrays)
