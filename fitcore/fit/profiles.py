"""Category fit profiles: what a good fit is per kind of shoe, kept as data in profiles.toml.

A profile gives, per measure (MEASURES: the fit regions of core.vocabulary.REGIONS, then the ball's width), the
good band [lo, hi], the ideal value, the deviation perceived as one step (`unit`) and the measure's weight. Shoe
models choose a profile by category (and ski boots by level). The arrays `lo`, `ideal`, `hi`, `unit`, `weight`
(profiles x measures) let the matcher score thousands of sizes at once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.vocabulary import REGIONS

DEFAULT_PATH = Path(__file__).with_name("profiles.toml")
_FIELDS = ("lo", "ideal", "hi", "unit", "weight")
MEASURES = (*REGIONS, "ball_width")  # what a profile scores: each region's value, and the ball's width too


@dataclass(frozen=True)
class FitProfiles:
    names: tuple[str, ...]
    lo: np.ndarray  # (profiles, MEASURES) mm
    ideal: np.ndarray
    hi: np.ndarray
    unit: np.ndarray
    weight: np.ndarray
    score_scale: float
    tight_weight: float
    negative_weight: float
    fits_min_score: float
    by_category: dict[str, str]
    ski_by_level: dict[str, str]
    fallback: str

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "FitProfiles":
        """Read and check a profiles file; a ConfigError names what is wrong in it."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
            defaults = data["defaults"]
            profiles = data["profiles"]
            use = dict(data["use"])
            ski_by_level = dict(use.pop("ski_level", {}))
            fallback = use.pop("fallback")
            table = {f: np.array([[float({**defaults[r], **p.get(r, {})}[f]) for r in MEASURES]
                                  for p in profiles.values()]) for f in _FIELDS}
            loaded = cls(names=tuple(profiles), **table, score_scale=float(data["score_scale"]),
                         tight_weight=float(data["tight_weight"]), negative_weight=float(data["negative_weight"]),
                         fits_min_score=float(data["fits_min_score"]), by_category=use, ski_by_level=ski_by_level,
                         fallback=fallback)
        except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"fit profiles {path}: cannot read ({type(e).__name__}: {e}): every measure "
                              f"({', '.join(MEASURES)}) needs {', '.join(_FIELDS)} in [defaults.<measure>], and "
                              f"[use] needs a fallback") from None
        loaded._check(path)
        return loaded

    def _check(self, path: Path) -> None:
        unknown = {*self.by_category.values(), *self.ski_by_level.values(), self.fallback} - set(self.names)
        if unknown:
            raise ConfigError(f"fit profiles {path}: [use] names unknown profiles {sorted(unknown)}")
        if not ((self.lo <= self.ideal) & (self.ideal <= self.hi)).all() or (self.unit <= 0).any():
            raise ConfigError(f"fit profiles {path}: every measure needs lo <= ideal <= hi and unit > 0")

    def index_for(self, category: str, level: str = "") -> int:
        """The profile row a model of this category (and level, for ski boots) uses."""
        name = self.ski_by_level.get(level) if category == "ski" else None
        return self.names.index(name or self.by_category.get(category, self.fallback))
