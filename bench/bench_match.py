"""Matcher speed at field scale, each figure beside the plain way of doing the same work, in one run.

    .venv/bin/python bench/bench_match.py [--catalogue PATH] [--passports 700000] [--products 500]
                                          [--plain-models 300] [--plain-passports 100] [--repeats 7]

Catalogue: an imported SQLite file (default var/bench/catalogue-6000-seed6000.sqlite: `footfit catalog
generate --models 6000 --seed 6000` into that file, the importer's own path; made on first use, ~4 min).
Customers: population subjects' true feet, sampled and measured with the product's code (testing/fit_subjects.py).
Plain ways: the same search with the numpy references of the matcher's kernels (fitcore.fit.fit_model
pair_measures_reference, fitcore.fit.clearance summarise_pairs_reference) and with scipy cKDTree distances per
candidate size, on a subset of models,
extrapolated per evaluated (foot, size) pair; the mailing filter's per-pair reference on a subset of passports,
extrapolated per pair; its learned decision (docs/learning.md) beside its geometry's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from api.db import open_service_db
from fitcore.fit.clearance import clearance_reference_mm
from fitcore.fit.fit_model import evaluate_pairs, poses
from core.settings import get_settings
from fitcore.fit.advice import prior_state
from fitcore.fit.mailing import DESCRIPTOR_FIELDS, LearnedMailing, mailing_filter, mailing_filter_reference
from fitcore.fit.matcher import Matcher
from fitcore.fit.sections import section_outlines_mm, station_x_mm
from shoe_db.loading import load_matcher_catalogue
from testing.fit_subjects import subject_feet

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = ROOT / "var" / "bench" / "catalogue-6000-seed6000.sqlite"
CUSTOMER_SEEDS = (6, 1, 12, 17, 23, 31, 40, 44)


class PlainMatcher(Matcher):
    """The same search, with the clearance summed by the numpy reference instead of the numba kernel."""

    def _values(self, shapes, foot_of_pair, sizes, scoring_only=False):
        return evaluate_pairs(shapes, foot_of_pair, sizes, self._tables, self.profiles.negative_weight, scoring_only,
                              plain=True)


class PairCounter(Matcher):
    """Counts the (foot, size) pairs a search evaluates."""

    pairs = 0

    def _values(self, shapes, foot_of_pair, sizes, scoring_only=False):
        self.pairs += len(sizes)
        return super()._values(shapes, foot_of_pair, sizes, scoring_only)


CPU_SECONDS: dict[str, float] = {}  # the last timed call's process CPU seconds (all threads), by function name


def _timed(fn, *args, repeats: int = 1, **kwargs):
    """(result, median wall seconds over `repeats` runs); the median CPU seconds go to CPU_SECONDS. On a loaded
    machine the CPU seconds (divided by the threads used) say what the wall time would be on an idle one."""
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_SECONDS[getattr(fn, "__name__", "call")] = float(np.median(cpu))
    return result, float(np.median(times))


def _catalogue(path: Path):
    if not path.exists():
        print(f"building {path} (6,000 models through the importer; a few minutes)...", file=sys.stderr)
        partial = path.with_suffix(".partial.sqlite")
        partial.unlink(missing_ok=True)
        env = dict(os.environ, FOOTFIT_DATABASE_URL=f"sqlite:///{partial}")
        subprocess.run([sys.executable, "-m", "cli.main", "catalog", "generate", "--models", "6000", "--seed", "6000"],
                       env=env, check=True, cwd=ROOT)
        partial.rename(path)
    return _timed(load_matcher_catalogue, open_service_db(f"sqlite:///{path}"))


def _kdtree_heel_distances(matcher: Matcher, shape, sizes: np.ndarray) -> float:
    """The plain way per candidate: a KD-tree of the cavity's wall points, queried with the placed heel points
    (unsigned distances: the sign would need the normals on top). Returns the seconds per pair."""
    points = shape.eval_points_mm[:shape.scoring_points]
    start = time.perf_counter()
    for size in sizes:
        length = float(matcher._lengths[size])
        xs = station_x_mm(length)
        outline = section_outlines_mm(matcher.catalogue.sections[size], length, xs)
        wall = np.concatenate([np.repeat(xs, outline.shape[1])[:, None], outline.reshape(-1, 2)], axis=1)
        pose = poses(shape, matcher._sections[[size], :, 0], matcher._lengths[[size]])[0]
        c, s, dx, dy = pose
        placed = np.stack([c * points[:, 0] - s * points[:, 1] + dx, s * points[:, 0] + c * points[:, 1] + dy,
                           points[:, 2]], axis=1)
        cKDTree(wall).query(placed)
    return (time.perf_counter() - start) / len(sizes)


def _plain_tryon(plain: PlainMatcher, feet, size_id: int) -> None:
    """Try-on the plain way: regions with the numpy reference, every point's clearance with numpy."""
    size = int(np.searchsorted(plain.catalogue.size_ids, size_id))
    plain._size_fits(feet, np.array([size]))
    for shape in (feet.left.shape, feet.right.shape):
        pose = poses(shape, plain._sections[[size], :, 0], plain._lengths[[size]])[0]
        clearance_reference_mm(shape.points_mm, plain._sections[size], float(plain._lengths[size]), pose)


def _population_descriptors(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n descriptors around real ones: lengths and girths spread like a population (ANSUR SDs), heels scaled."""
    rng = np.random.default_rng(seed)
    out = base[rng.integers(len(base), size=n)].astype(np.float64)
    scale = 1.0 + rng.normal(0.0, 0.045, n)  # ~12 mm of length
    out[:, 0] *= scale
    out[:, 1] = out[:, 1] * scale + rng.normal(0.0, 6.0, n)
    out[:, 2] = out[:, 2] * scale + rng.normal(0.0, 6.0, n)
    out[:, 8:] *= scale[:, None]
    return out.astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    parser.add_argument("--passports", type=int, default=700_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--plain-models", type=int, default=300)
    parser.add_argument("--plain-passports", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    catalogue, load_s = _catalogue(args.catalogue)
    matcher, init_s = _timed(Matcher, catalogue)
    models = np.unique(catalogue.model_ids)
    customers = [subject_feet(seed) for seed in CUSTOMER_SEEDS]
    feet = customers[0]
    rows = []

    # full search: best size of every model, top three (warm)
    matcher.top(feet, 3)
    top, top_s = _timed(matcher.top, feet, 3, repeats=args.repeats)
    top_cpu = CPU_SECONDS["top"]
    counter = PairCounter(catalogue)
    counter.top(feet, 3)
    pairs = counter.pairs
    plain_ids = models[np.linspace(0, len(models) - 1, args.plain_models).round().astype(int)]
    plain = PlainMatcher(catalogue)
    plain_counter = PairCounter(catalogue)
    plain_counter.best_sizes(feet, plain_ids)
    _, plain_subset_s = _timed(plain.best_sizes, feet, plain_ids)
    plain_full_s = plain_subset_s / plain_counter.pairs * pairs
    kd_pair_s = _kdtree_heel_distances(matcher, feet.foot(feet.deciding_side).shape,
                                       matcher._order[np.linspace(0, len(matcher._order) - 1, 200).astype(int)])
    rows.append((f"full search + top 3, {len(models):,} models / {len(catalogue.size_ids):,} sizes "
                 f"({pairs:,} foot-size pairs scored)", top_s, top_cpu, plain_full_s, "numpy reference, extrapolated"))
    rows.append(("  same, plain way 2: scipy cKDTree per candidate size (unsigned)", top_s, top_cpu, kd_pair_s * pairs,
                 "cKDTree per pair, extrapolated"))
    all_fits, all_s = _timed(matcher.best_sizes, feet)
    rows.append((f"best_sizes as {len(all_fits):,} typed ModelFits (both feet, sizes around)", all_s,
                 CPU_SECONDS["best_sizes"], None, ""))

    # try-on: one model, one size, every foot point
    pick = top[0].fit
    matcher.tryon(feet, pick.model_id, pick.size_id)
    tried, tryon_s = _timed(matcher.tryon, feet, pick.model_id, pick.size_id, repeats=args.repeats * 3)
    tryon_cpu = CPU_SECONDS["tryon"]
    points = len(tried.left.clearance_mm) + len(tried.right.clearance_mm)
    _, plain_tryon_s = _timed(_plain_tryon, plain, feet, pick.size_id, repeats=args.repeats)
    rows.append((f"try-on one model and size ({points:,} foot points)", tryon_s, tryon_cpu, plain_tryon_s,
                 "numpy references"))

    # mailing filter
    products = models[np.linspace(0, len(models) - 1, args.products).round().astype(int)]
    layout = matcher.mailing_products(products)
    base = np.stack([matcher.mailing_descriptor(c) for c in customers])
    agreement = (mailing_filter(base, layout, matcher.profiles)
                 == np.stack([matcher.fits(c, products) for c in customers])).mean()
    many = _population_descriptors(base, args.passports)
    mailing_filter(many[:1000], layout, matcher.profiles)  # compile / warm
    fits, mailing_s = _timed(mailing_filter, many, layout, matcher.profiles)
    _, ref_s = _timed(mailing_filter_reference, many[:args.plain_passports], layout, matcher.profiles)
    rows.append((f"mailing filter {args.passports:,} passports x {args.products} products "
                 f"({fits.mean():.1%} fit)", mailing_s, CPU_SECONDS["mailing_filter"],
                 ref_s / args.plain_passports * args.passports, "per-pair loop, extrapolated"))
    # the learned decision does the same work whatever the state: the prior's stands in for a learned one
    learned = LearnedMailing.of(prior_state(), matcher.catalogue, layout, matcher.profiles,
                                get_settings().learning.fits_keep_chance)
    mailing_filter(many[:1000], layout, matcher.profiles, learned)  # compile / warm
    learned_fits, learned_s = _timed(mailing_filter, many, layout, matcher.profiles, learned)
    rows.append((f"  same, the learned decision (keep chance >= {learned.fits_keep_chance}; "
                 f"{learned_fits.mean():.1%} fit)", learned_s, CPU_SECONDS["mailing_filter"],
                 mailing_s, "the geometry's decision"))

    print(f"\nmatcher benchmark: catalogue {args.catalogue.name} loaded in {load_s:.2f} s, matcher ready in "
          f"{init_s:.2f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"| {'what':<86} | {'numba wall':>10} | {'CPU':>9} | {'plain way':>10} | {'ratio':>7} | plain way is |")
    print(f"|{'-' * 88}|{'-' * 12}|{'-' * 11}|{'-' * 12}|{'-' * 9}|--------------|")
    for what, fast, cpu, slow, how in rows:
        ratio = "" if not slow else f"{slow / fast:6.2f}x" if slow / fast < 10 else f"{slow / fast:6.0f}x"
        slow_text = f"{slow:9.3f}s" if slow else ""
        print(f"| {what:<86} | {fast:9.4f}s | {cpu:8.3f}s | {slow_text:>10} | {ratio:>7} | {how} |")
    print(f"\nmailing filter vs the matcher's own decision on {len(customers)} customers x {args.products} products: "
          f"{agreement:.1%} agree; descriptor {len(DESCRIPTOR_FIELDS)} float32 "
          f"({len(DESCRIPTOR_FIELDS) * 4 * args.passports / 1e6:.0f} MB for {args.passports:,} passports)")
    print(f"top pick for customer {CUSTOMER_SEEDS[0]}: model {pick.model_id} {pick.size_system} {pick.size_label}, "
          f"score {pick.score}, {top[0].reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
