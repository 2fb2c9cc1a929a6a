"""The latent-size baseline (testing/latent_size.py) finds hidden product offsets and customer sizes from outcomes
alone, and recommends the size a customer's latent size and the product's offset call for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from core.errors import InvalidInput
from fitcore.fit.learning import FitObservation
from testing.latent_size import STEP_MM, LatentSizes, learn_latent_sizes

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PRODUCTS, CUSTOMERS = 40, 1500
HALF_BAND, SLOPE = 0.6, 3.0  # the hidden rule: fits within 0.6 steps of the latent size, logistic noise


def hidden_sizes(seed: int = 3):
    """(events, true product offsets mm, scanned foot lengths, true latent sizes): customers try the label size of
    their foot and its neighbours; too small / too large said as store complaints or webshop return reasons."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0.0, 5.0, PRODUCTS)
    foot = rng.normal(258.0, 14.0, CUSTOMERS)
    size = foot + rng.normal(0.0, 3.0, CUSTOMERS)
    events = []
    for e in range(8000):
        c, p = int(rng.integers(CUSTOMERS)), int(rng.integers(PRODUCTS))
        nominal = STEP_MM * (np.round(foot[c] / STEP_MM) + rng.integers(-1, 2))
        felt = (nominal - size[c] - offset[p]) / STEP_MM + rng.logistic(0.0, 1.0) / SLOPE
        source = "store" if rng.random() < 0.5 else "webshop"
        kept = abs(felt) <= HALF_BAND or rng.random() < 0.03
        said = {}
        if not kept and source == "store":
            said = dict(complaint_region="toe", complaint_direction="tight" if felt < 0 else "loose")
        elif not kept and rng.random() < 0.75:
            said = dict(return_reason="too_small" if felt < 0 else "too_large")
        events.append(FitObservation(customer=f"c{c}", brand="B", model=f"M{p}", width="standard",
                                     category="walking", values_mm=(0.0,) * 5, nominal_length_mm=float(nominal),
                                     source=source, at=T0 + timedelta(minutes=e), kept=kept, **said))
    return events, offset, {f"c{c}": float(foot[c]) for c in range(CUSTOMERS)}, size


@pytest.fixture(scope="module")
def learned():
    events, offset, foot, size = hidden_sizes()
    return learn_latent_sizes(events, foot), offset, foot, size


def test_the_hidden_product_offsets_are_found(learned):
    model, offset, _, _ = learned
    found = np.array([model.product_offset_mm["B", f"M{p}", "standard"] for p in range(PRODUCTS)])
    assert np.sqrt(np.mean((found - offset) ** 2)) < 1.2  # measured 0.68 mm (offsets spread 5 mm)
    assert np.corrcoef(found, offset)[0, 1] > 0.98
    assert -0.8 < model.t_lo < -0.4 and 0.4 < model.t_hi < 0.8  # the hidden band: +-0.6 steps


def test_customer_sizes_move_from_their_foot_length_toward_the_truth(learned):
    model, _, foot, size = learned
    customers = [c for c in range(CUSTOMERS) if f"c{c}" in model.customer_size_mm]
    learned_size = np.array([model.size_mm(f"c{c}", foot[f"c{c}"]) for c in customers])
    start = np.array([foot[f"c{c}"] for c in customers])
    assert np.mean(np.abs(learned_size - size[customers])) < np.mean(np.abs(start - size[customers]))
    assert model.size_mm("someone new", 251.0) == 251.0


def test_the_recommended_size_is_the_one_nearest_latent_size_plus_offset():
    model = LatentSizes({"c": 262.0}, {("B", "M", "standard"): 5.0}, -0.5, 0.5, 3.0, (0.02, 0.08))
    run = STEP_MM * np.arange(36, 46)  # nominal lengths of a run's labels
    best = model.recommend("c", 250.0, ("B", "M", "standard"), run)
    assert best == int(np.argmin(np.abs(run - 267.0)))
    assert model.recommend("new", 250.0, ("B", "other", "standard"), run) == int(np.argmin(np.abs(run - 250.0)))
    chance = model.fit_probability("c", 250.0, ("B", "M", "standard"), run, source="webshop")
    assert chance.shape == run.shape and chance.max() == chance[best] and (chance >= 0.08).all()


def test_every_customer_needs_a_scanned_foot_length():
    events = hidden_sizes()[0]
    with pytest.raises(InvalidInput, match="no scanned foot length"):
        learn_latent_sizes(events[:50], {})
