"""The keep model: how the fit a customer perceives, measure by measure, turns into what they do with a size
(docs/learning.md). Pure numpy; the learner (fitcore.fit.learning) fits its parameters.

Per measure the customer perceives a deviation `d` from the ideal, in the profile's units (0: ideal, +1: one
perceived step roomier). An ordinal (cumulative-logit) model gives the chance it feels tight, good or loose:

    P(tight) = s(k (t_lo - d)),   P(loose) = s(k (d - t_hi)),   P(good) = the rest,

s the logistic function, t_lo < t_hi thresholds around the profile's good band, k a slope. A customer keeps a size
when every measure feels good, or anyway with a small chance `lapse` (some keep a shoe that is not right).

Everything feedback records is a statement about the measures, a polynomial in their chances over the measures S
it names (`Outcomes`):

| outcome | says | chance (before the lapse) |
| --- | --- | --- |
| kept | every measure good | prod_all P(good) |
| not kept, nothing said | not every measure good | 1 - prod_all P(good) |
| tight in S (a return "too small") | some measure of S tight | 1 - prod_S (1 - P(tight)) |
| loose in S (a return "too large") | none of S tight, some loose | prod_S (1 - P(tight)) - prod_S P(good) |

so the likelihood of an outcome is  lapse [kept] + (1 - lapse) Q  with  Q = a0 + a1 prod_S (1 - P(tight)) +
a2 prod_S P(good). A complaint after a try ("ball pinches") names one region when several may be wrong: its chance
is that of a tight (loose) region S times the chance the customer names that region, taken as proportional to how
likely each region is wrong: (1 - prod_all P(good)) / sum over regions R of (1 - prod_R P(good)). Without that
share the complaints' chances would add up to more than one, and a fit could raise them all at once (narrow bands
that make every region "wrong", with the keeps left to the lapse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

OUTCOME_KINDS = ("kept", "not_kept", "tight", "loose")
# Q = a0 + a1 prod_S (1 - P(tight)) + a2 prod_S P(good), per kind (the table above); kept and not_kept name all
_COEFFICIENTS = np.array([(0.0, 0.0, 1.0), (1.0, 0.0, -1.0), (1.0, -1.0, 0.0), (0.0, 1.0, -1.0)])
_TINY = 1e-12  # a probability is never taken as exactly 0 (its log would be -inf)
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class Outcomes:
    """What E events say, as the coefficients of their chance (module docstring)."""

    kept: np.ndarray  # (E,) bool: the size was kept (a lapse can explain it)
    coefficients: np.ndarray  # (E, 3): a0, a1, a2
    named: np.ndarray  # (E, M) bool: the measures S the outcome speaks of
    complaint: np.ndarray  # (E,) bool: the outcome names one region of `regions` (a customer's complaint)
    regions: np.ndarray  # (R, M) bool: which measures each region a complaint can name holds

    @classmethod
    def of(cls, kind: np.ndarray, named: np.ndarray, complaint: np.ndarray | None = None,
           regions: np.ndarray | None = None) -> "Outcomes":
        """Outcomes from kind codes (indices into OUTCOME_KINDS) and the measures each names (kept and not_kept
        always name every measure); `complaint` marks those that name one of `regions` (default: each measure its
        own region)."""
        kind = np.asarray(kind, dtype=np.int64)
        named = np.asarray(named, dtype=bool).copy()
        named[kind <= OUTCOME_KINDS.index("not_kept")] = True
        complaint = np.zeros(len(kind), dtype=bool) if complaint is None else np.asarray(complaint, dtype=bool)
        regions = np.eye(named.shape[1], dtype=bool) if regions is None else np.asarray(regions, dtype=bool)
        return cls(kind == OUTCOME_KINDS.index("kept"), _COEFFICIENTS[kind], named, complaint, regions)


@dataclass(frozen=True)
class MeasureChances:
    tight: np.ndarray  # (E, M)
    good: np.ndarray
    loose: np.ndarray


def measure_chances(d: np.ndarray, t_lo: np.ndarray, t_hi: np.ndarray, k: np.ndarray) -> MeasureChances:
    """P(tight), P(good), P(loose) per measure. P(good) = (1 - P(tight)) (1 - P(loose)) (1 - exp(-k (t_hi - t_lo)))
    is the difference of two logistics written without cancellation, so it stays accurate far outside the band."""
    a, b = k * (t_lo - d), k * (d - t_hi)
    good = expit(-a) * expit(-b) * -np.expm1(-k * (t_hi - t_lo))
    return MeasureChances(expit(a), good, expit(b))


def keep_chance(chances: MeasureChances, lapse: np.ndarray | float = 0.0) -> np.ndarray:
    """(E,) the chance the size is kept: every measure good, or a lapse."""
    good = chances.good.prod(axis=1)
    return lapse + (1.0 - lapse) * good


@dataclass(frozen=True)
class LogLikelihood:
    """Per event: the log-likelihood and its derivatives by each input of `log_likelihood`."""

    value: np.ndarray  # (E,)
    d: np.ndarray  # (E, M)
    t_lo: np.ndarray  # (E, M)
    t_hi: np.ndarray  # (E, M)
    log_k: np.ndarray  # (E, M)
    lapse_logit: np.ndarray  # (E,)


def log_likelihood(d: np.ndarray, t_lo: np.ndarray, t_hi: np.ndarray, log_k: np.ndarray, lapse_logit: np.ndarray,
                   outcomes: Outcomes) -> LogLikelihood:
    """The log-likelihood of each event's outcome and its gradient (analytic: the learner's L-BFGS needs it for
    thousands of parameters). d, t_lo, t_hi: (E, M) deviations and thresholds in units; log_k: (M,) or (E, M) the
    slopes' logs; lapse_logit: (E,) the logit of each event's lapse."""
    k = np.exp(log_k) * np.ones_like(d)
    p = measure_chances(d, t_lo, t_hi, k)
    named = outcomes.named
    not_tight = np.where(named, 1.0 - p.tight, 1.0)
    good = np.where(named, p.good, 1.0)
    a0, a1, a2 = outcomes.coefficients.T
    all_not_tight, not_tight_but = _products(not_tight)
    all_good, good_but = _products(good)
    q = np.clip(a0 + a1 * all_not_tight + a2 * all_good, _TINY, 1.0)
    lapse = expit(lapse_logit)
    kept = outcomes.kept.astype(float)
    likelihood = np.maximum(lapse * kept + (1.0 - lapse) * q, _TINY)
    # d log L / dQ, then dQ / dP(tight) and dQ / dP(loose) (P(good) = 1 - P(tight) - P(loose)), then the logistics
    by_q = (1.0 - lapse) / likelihood
    by_good = np.where(named, a2[:, None] * good_but, 0.0) * by_q[:, None]
    by_tight = np.where(named, -a1[:, None] * not_tight_but, 0.0) * by_q[:, None] - by_good
    by_loose = -by_good
    naming, by_good_naming = _naming(p.good, outcomes)
    by_tight, by_loose = by_tight - by_good_naming, by_loose - by_good_naming
    by_a = by_tight * p.tight * (1.0 - p.tight)  # a = k (t_lo - d)
    by_b = by_loose * p.loose * (1.0 - p.loose)  # b = k (d - t_hi)
    return LogLikelihood(
        value=np.log(likelihood) + naming, d=k * (by_b - by_a), t_lo=k * by_a, t_hi=-k * by_b,
        log_k=by_a * k * (t_lo - d) + by_b * k * (d - t_hi),
        lapse_logit=(kept - q) / likelihood * lapse * (1.0 - lapse))


def _naming(good: np.ndarray, outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """(E,) log of the chance a complaint names the region it names, given its region is wrong: (1 - prod_all
    P(good)) / sum_R (1 - prod_R P(good)) (0 for other outcomes), and (E, M) its derivative by P(good)."""
    which = outcomes.complaint
    value, by_good = np.zeros(len(good)), np.zeros_like(good)
    if not which.any():
        return value, by_good
    g = good[which]
    all_good, good_but = _products(g)
    wrong = np.maximum(1.0 - all_good, _TINY)
    total, others = np.zeros(len(g)), np.empty_like(g)  # sum_R (1 - prod_R P(good)); per measure, its region's
    for member in outcomes.regions:                       # product without it (minus the sum's derivative)
        region_good, others[:, member] = _products(g[:, member])
        total += 1.0 - region_good
    total = np.maximum(total, _TINY)
    value[which] = np.log(wrong) - np.log(total)
    by_good[which] = -good_but / wrong[:, None] + others / total[:, None]
    return value, by_good


def _products(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E,) the product of each row, and (E, M) the product of each row without column m (prefix x suffix, so a
    zero factor does no harm). Column by column: M is small and E large."""
    m = factors.shape[1]
    before, after = np.ones_like(factors), np.ones_like(factors)
    for j in range(1, m):
        before[:, j] = before[:, j - 1] * factors[:, j - 1]
        after[:, m - 1 - j] = after[:, m - j] * factors[:, m - j]
    return before[:, -1] * factors[:, -1], before * after


def softened(log_k: np.ndarray, variance_units2: np.ndarray) -> np.ndarray:
    """The slope's log after averaging the logistic over a Gaussian uncertainty of d (MacKay's probit
    approximation: k / sqrt(1 + pi k^2 var / 8)), so an uncertain deviation gives less certain chances."""
    k = np.exp(log_k)
    return log_k - 0.5 * np.log1p(np.pi * k ** 2 * variance_units2 / 8.0)


# --- how good the chances are ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBin:
    low: float  # predicted chance in [low, high)
    high: float
    predicted: float  # mean predicted chance of the events in the bin (NaN when empty)
    observed: float  # share of them kept (NaN when empty)
    count: int


@dataclass(frozen=True)
class Calibration:
    """How well predicted keep chances match what happened: lower Brier score and log loss are better; in a
    calibrated model each bin's observed share is near its predicted mean."""

    count: int
    brier: float
    log_loss: float
    bins: tuple[ReliabilityBin, ...]

    @property
    def worst_gap(self) -> float:
        """The largest |observed - predicted| over bins with events."""
        gaps = [abs(b.observed - b.predicted) for b in self.bins if b.count]
        return max(gaps, default=0.0)


def calibration(predicted: np.ndarray, kept: np.ndarray, bins: int = RELIABILITY_BINS) -> Calibration:
    """Brier score, log loss and a reliability table (equal-width bins of the predicted chance)."""
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(kept, dtype=np.float64)
    clipped = np.clip(p, _TINY, 1.0 - _TINY)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        member = which == b
        n = int(member.sum())
        table.append(ReliabilityBin(b / bins, (b + 1) / bins, float(p[member].mean()) if n else float("nan"),
                                    float(y[member].mean()) if n else float("nan"), n))
    if len(p) == 0:
        return Calibration(0, float("nan"), float("nan"), tuple(table))
    return Calibration(len(p), float(np.mean((p - y) ** 2)),
                       float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))), tuple(table))
