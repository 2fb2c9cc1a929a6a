"""The webshop latent-size model (Amazon-style: Sembium et al., RecSys 2017), the learning benchmark's baseline:
sizes learned from the same feedback events as footfit's learner, without any interiors (docs/learning.md,
baseline).

Each customer has a latent true size s and each product (model + width fitting) a latent offset o, both in mm of
nominal foot length (what a label means, core.sizes). A size labelled for the nominal foot length n fits as

    d = (n - s - o) / step     (step: one EU size, 6.67 mm; d > 0: the size is large for the customer)

and the outcome is ordinal in d (fitcore.fit.keep_model with one measure): too small below a threshold, fits
between, too large above; a try or a purchase is kept when it fits (or anyway, the lapse). Every complaint that
says tight (toes hit, ball pinches, ...) or a return "too small" counts as too small, every loose one or "too
large" as too large: this model knows no regions. A customer's size starts from their scanned foot length (the
label size's baseline knows it too), a product's offset from 0; both Gaussian, fitted by MAP with L-BFGS.
Recommend: the size of the run most likely to fit (nearest to s + o when the fit band is symmetric).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize
from scipy.special import expit, logit

from core.errors import InvalidInput
from core.sizes import EU_STEP_MM
from core.vocabulary import FEEDBACK_SOURCES
from fitcore.fit.keep_model import OUTCOME_KINDS, Outcomes, keep_chance, log_likelihood, measure_chances
from fitcore.fit.learning import FitObservation

STEP_MM = EU_STEP_MM


@dataclass(frozen=True)
class LatentSizePriors:
    customer_sd_mm: float = 5.0  # a customer's latent size around their scanned foot length
    product_sd_mm: float = 6.0  # a product's offset around 0
    half_band: float = 0.5  # the fit band's half width, in steps (prior)
    band_scale_sd: float = 1.0  # of the log of its scale on each side
    slope: float = 2.0  # per step
    slope_sd: float = 1.0  # of its log
    lapse: tuple[float, ...] = (0.02, 0.08)  # per FEEDBACK_SOURCES
    lapse_sd: float = 1.0  # of its logit


@dataclass(frozen=True)
class LatentSizes:
    """The learned sizes: per customer (who had events) a latent size, per (brand, model, width) an offset."""

    customer_size_mm: dict[str, float]
    product_offset_mm: dict[tuple[str, str, str], float]
    t_lo: float  # thresholds of the fit band, in steps
    t_hi: float
    slope: float
    lapse: tuple[float, ...]  # per FEEDBACK_SOURCES

    def size_mm(self, customer: str, foot_length_mm: float) -> float:
        """The customer's latent size: learned, or (a new customer) their scanned foot length."""
        return self.customer_size_mm.get(customer, float(foot_length_mm))

    def fit_probability(self, customer: str, foot_length_mm: float, product: tuple[str, str, str],
                        nominal_length_mm: np.ndarray, source: str | None = None) -> np.ndarray:
        """The chance each size (nominal foot lengths) of the product is kept by the customer."""
        n = np.asarray(nominal_length_mm, dtype=np.float64).reshape(-1, 1)
        d = (n - self.size_mm(customer, foot_length_mm) - self.product_offset_mm.get(product, 0.0)) / STEP_MM
        chances = measure_chances(d, np.full_like(d, self.t_lo), np.full_like(d, self.t_hi),
                                  np.full_like(d, self.slope))
        return keep_chance(chances, 0.0 if source is None else self.lapse[FEEDBACK_SOURCES.index(source)])

    def recommend(self, customer: str, foot_length_mm: float, product: tuple[str, str, str],
                  nominal_length_mm: np.ndarray) -> int:
        """The index of the run's size most likely to fit (the smaller one on a tie)."""
        return int(np.argmax(self.fit_probability(customer, foot_length_mm, product, nominal_length_mm)))


def learn_latent_sizes(observations: Sequence[FitObservation], foot_length_mm: Mapping[str, float],
                       priors: LatentSizePriors = LatentSizePriors()) -> LatentSizes:
    """MAP latent sizes from the events (their labels and outcomes only) and each customer's scanned foot length."""
    missing = sorted({o.customer for o in observations} - set(foot_length_mm))
    if missing:
        raise InvalidInput(f"no scanned foot length for customers {missing[:5]}: the latent-size model starts each "
                           f"customer's size from it; pass foot_length_mm for every customer with events")
    customers = sorted({o.customer for o in observations})
    products = sorted({(o.brand, o.model, o.width) for o in observations})
    customer_at = {c: i for i, c in enumerate(customers)}
    product_at = {p: i for i, p in enumerate(products)}
    customer = np.array([customer_at[o.customer] for o in observations], dtype=np.int64)
    product = np.array([product_at[o.brand, o.model, o.width] for o in observations], dtype=np.int64)
    nominal = np.array([o.nominal_length_mm for o in observations], dtype=np.float64)
    source = np.array([FEEDBACK_SOURCES.index(o.source) for o in observations], dtype=np.int64)
    outcomes = Outcomes.of(np.array([_kind(o) for o in observations], dtype=np.int64),
                           np.ones((len(observations), 1), dtype=bool))
    foot = np.array([foot_length_mm[c] for c in customers], dtype=np.float64)
    n_c, n_p, n_s = len(customers), len(products), len(FEEDBACK_SOURCES)
    mean = np.concatenate([foot, np.zeros(n_p), [0.0, 0.0, math.log(priors.slope)],
                           logit(np.asarray(priors.lapse, dtype=np.float64))])
    sd = np.concatenate([np.full(n_c, priors.customer_sd_mm), np.full(n_p, priors.product_sd_mm),
                         [priors.band_scale_sd, priors.band_scale_sd, priors.slope_sd], np.full(n_s, priors.lapse_sd)])

    def unpack(z: np.ndarray):
        theta = mean + sd * z
        return (theta[:n_c], theta[n_c:n_c + n_p], theta[n_c + n_p], theta[n_c + n_p + 1], theta[n_c + n_p + 2],
                theta[n_c + n_p + 3:])

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        size, offset, band_lo, band_hi, log_k, lapse = unpack(z)
        d = ((nominal - size[customer] - offset[product]) / STEP_MM)[:, None]
        t_lo = np.full_like(d, -priors.half_band * math.exp(band_lo))
        t_hi = np.full_like(d, priors.half_band * math.exp(band_hi))
        terms = log_likelihood(d, t_lo, t_hi, np.full_like(d, log_k), lapse[source], outcomes)
        by_size = -terms.d[:, 0] / STEP_MM
        gradient = np.concatenate([
            np.bincount(customer, by_size, minlength=n_c), np.bincount(product, by_size, minlength=n_p),
            [(terms.t_lo * t_lo).sum(), (terms.t_hi * t_hi).sum(), terms.log_k.sum()],
            np.bincount(source, terms.lapse_logit, minlength=n_s)])
        return float(-terms.value.sum() + 0.5 * z @ z), -gradient * sd + z

    result = optimize.minimize(objective, np.zeros(len(mean)), jac=True, method="L-BFGS-B",
                               options=dict(maxiter=5000, ftol=1e-10, gtol=1e-6))
    size, offset, band_lo, band_hi, log_k, lapse = unpack(result.x)
    return LatentSizes(dict(zip(customers, map(float, size))), dict(zip(products, map(float, offset))),
                       -priors.half_band * math.exp(band_lo), priors.half_band * math.exp(band_hi),
                       math.exp(log_k), tuple(float(v) for v in expit(lapse)))


def _kind(o: FitObservation) -> int:
    """The outcome as this model sees it: kept, too small (any tight complaint), too large, or just not kept."""
    if o.kept:
        return OUTCOME_KINDS.index("kept")
    if o.complaint_direction is not None:
        return OUTCOME_KINDS.index(o.complaint_direction)
    if o.return_reason is not None:
        return OUTCOME_KINDS.index("tight" if o.return_reason == "too_small" else "loose")
    return OUTCOME_KINDS.index("not_kept")
