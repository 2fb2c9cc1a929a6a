"""The fit index: per chunk of passports and per product (shoe model), the mailing filter's outcomes packed for
scanning, so a mailing reads which customers a product fits instead of matching every passport again.

A chunk is up to a few thousand passports in a fixed order (their slots), each kept as its mailing descriptor
(fitcore.fit.mailing.DESCRIPTOR_FIELDS) and its advice arm (learning or holdout). Per product a column holds:

- `fits`: one bit per slot (numpy.packbits order), the decision of the passport's arm;
- `sizes` and `scores`: one byte each per slot that fits, in slot order: the best size by geometry (its place
  among the product's sizes) and its score (0-100).

So a column of n slots with k fitting is n / 8 + 2 k bytes; a mailing reads only the `fits` bits of its products.
What decides a column's outcomes is the product's sizes and the fit profiles (`product_versions` says when they
change), the chunk's descriptors and arms, and the learned state the learning arm decides with; the service
stores with each column a version of all these (api/fit_index.py).

`chunk_columns` is the unit of batch work: one chunk against a layout of products, on any process (api/batch.py
runs it on Dask workers, the products scattered to them once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from core.errors import CatalogError
from fitcore.fit.mailing import (
    DESCRIPTOR_FIELDS,
    LearnedMailing,
    MailingOutcomes,
    MailingProducts,
    NO_SIZE,
    mailing_outcomes,
)
from fitcore.fit.profiles import FitProfiles


@dataclass(frozen=True)
class IndexColumn:
    """One product's outcomes over one chunk's slots, packed (see the module's docstring)."""

    model_id: int
    fits: bytes
    sizes: bytes
    scores: bytes

    def fitting_slots(self, slots: int) -> np.ndarray:
        """The slots (of a chunk of `slots` passports) the product fits."""
        return np.flatnonzero(np.unpackbits(np.frombuffer(self.fits, dtype=np.uint8), count=slots))

    def outcomes(self, slots: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fits bool, size uint8, score uint8), each (slots,): NO_SIZE and 0 where the product does not fit."""
        fitting = self.fitting_slots(slots)
        if len(self.sizes) != len(fitting) or len(self.scores) != len(fitting):
            raise CatalogError(f"the fit index column of model {self.model_id} is damaged: {len(fitting)} fitting "
                               f"slots but {len(self.sizes)} sizes and {len(self.scores)} scores; rebuild the index "
                               f"(footfit fit-index refresh --rebuild)")
        fits = np.zeros(slots, dtype=bool)
        size = np.full(slots, NO_SIZE, dtype=np.uint8)
        score = np.zeros(slots, dtype=np.uint8)
        fits[fitting] = True
        size[fitting] = np.frombuffer(self.sizes, dtype=np.uint8)
        score[fitting] = np.frombuffer(self.scores, dtype=np.uint8)
        return fits, size, score

    def take(self, kept: np.ndarray, slots: int) -> IndexColumn:
        """The column of a chunk cut to the slots `kept` (indices into its `slots`, in their new order)."""
        fits, size, score = (values[kept] for values in self.outcomes(slots))
        return IndexColumn(self.model_id, np.packbits(fits).tobytes(), size[fits].tobytes(), score[fits].tobytes())


@dataclass(frozen=True)
class ChunkWork:
    """One chunk to match: its descriptors (slots, DESCRIPTOR_FIELDS) float32 and which slots are of the learning
    arm (decided with the learned state, when there is one)."""

    descriptors: np.ndarray
    learning_arm: np.ndarray


@dataclass(frozen=True)
class ProductLayout:
    """The products a batch matches chunks against, as the kernel reads them, and the learned decision for them
    (None while no learned state is in use)."""

    products: MailingProducts
    profiles: FitProfiles
    learned: LearnedMailing | None


def chunk_columns(work: ChunkWork, layout: ProductLayout) -> list[IndexColumn]:
    """The chunk's column of every product in the layout."""
    outcomes = _decided(work, layout)
    return [pack_column(outcomes, j, int(model_id)) for j, model_id in enumerate(layout.products.model_ids)]


def _decided(work: ChunkWork, layout: ProductLayout) -> MailingOutcomes:
    """The geometry's outcomes, with the learned decision for the learning arm's slots."""
    outcomes = mailing_outcomes(work.descriptors, layout.products, layout.profiles)
    arm = np.asarray(work.learning_arm, dtype=bool)
    if layout.learned is not None and arm.any():
        outcomes.fits[arm] = mailing_outcomes(work.descriptors[arm], layout.products, layout.profiles,
                                              layout.learned).fits
    return outcomes


def pack_column(outcomes: MailingOutcomes, j: int, model_id: int) -> IndexColumn:
    """Product j's column of `outcomes` (passports in slot order)."""
    fits = outcomes.fits[:, j]
    return IndexColumn(model_id, np.packbits(fits).tobytes(), outcomes.size[fits, j].tobytes(),
                       outcomes.score[fits, j].tobytes())


def product_versions(products: MailingProducts, profiles: FitProfiles) -> tuple[str, ...]:
    """Per product, a digest of everything the kernel reads of it (its sizes' tables and profiles, and the
    profiles' numbers): a column matched against another version is out of date."""
    common = hashlib.blake2b(digest_size=8)
    for table in (profiles.lo, profiles.ideal, profiles.unit, profiles.weight):
        common.update(np.ascontiguousarray(table, dtype=np.float64).tobytes())
    common.update(np.float64([profiles.tight_weight, profiles.score_scale, profiles.fits_min_score]).tobytes())
    per_size = (products.length_mm, products.centre_y_mm, products.perimeter_mm, products.breadth_mm,
                products.ball_breadth_mm, products.ball_girth_mm, products.profile)
    versions = []
    for j in range(len(products.model_ids)):
        runs = products.run_start[j:j + 2]
        sizes = slice(products.size_start[runs[0]], products.size_start[runs[1]])
        digest = common.copy()
        digest.update(np.diff(products.size_start[runs[0]:runs[1] + 1]).tobytes())  # the runs' lengths
        for table in per_size:
            digest.update(np.ascontiguousarray(table[sizes]).tobytes())
        versions.append(digest.hexdigest())
    return tuple(versions)


def descriptors_blob(descriptors: np.ndarray) -> bytes:
    return np.ascontiguousarray(descriptors, dtype=np.float32).tobytes()


def descriptors_from_blob(blob: bytes, slots: int) -> np.ndarray:
    values = np.frombuffer(blob, dtype=np.float32)
    if values.size != slots * len(DESCRIPTOR_FIELDS):
        raise CatalogError(f"a fit index chunk's descriptors are damaged: {values.size} values for {slots} "
                           f"passports; rebuild the index (footfit fit-index refresh --rebuild)")
    return values.reshape(slots, len(DESCRIPTOR_FIELDS))


def bits_blob(flags: np.ndarray) -> bytes:
    return np.packbits(np.asarray(flags, dtype=bool)).tobytes()


def bits_from_blob(blob: bytes, count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(blob, dtype=np.uint8), count=count).astype(bool)
