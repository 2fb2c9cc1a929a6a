"""Fit quality: does the recommended size match the size simulated customers find best? (issue 5, Quality)

    .venv/bin/python bench/bench_fit_quality.py [--customers 300] [--models 300] [--profile light] [--jobs 2]

1. A synthetic catalogue (seeded) is written and imported through the product's importer into a SQLite file
   under var/bench/; the importer grades the sizes that were not scanned.
2. One rig is calibrated from rendered stills with the product's calibration code (cached).
3. Simulated customers (simulator/customers.py: ANSUR II feet, men and women in the survey's mix, a category
   each) are scanned at a random placement and processed by the product's pipeline into passport + PLYs
   (cached under var/bench/customers/PROFILE/).
4. Truth: for every model of the customer's category and gender (unisex too), the size (and width fitting)
   with the highest TRUE comfort of the pair of feet (simulator/comfort.py: true foot meshes in the true
   interiors; docs/fit-quality.md), found by walking each size run from the size made for the foot's length
   outward until the comfort falls on both sides.
5. Recommenders, side by side: the matcher (fitcore.fit.matcher on the imported catalogue and the scanned files)
   and the label baseline (sizes_for the longer measured foot in the model's size system, nearest size the
   model has, standard width). First size right = the recommended size is a best one (ski shells: a whole and
   a half size share one shell, so both are best); within one size = at most one size step of the size system
   (EU 6.67 mm, UK/US 8.47 mm, Mondopoint 5 mm of nominal foot length) or one width fitting away from a best.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

import simulator.catalog
import simulator.comfort
from api.db import open_service_db
from core.errors import FootfitError
from core.settings import get_settings
from core.sizes import SIZE_SYSTEMS, WIDTH_FITTINGS
from device.profile import get_profile
from fitcore.fit.matcher import Matcher, ScannedFeet
from fitcore.scan.passport import Passport
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from shoe_db.models import ShoeModel
from simulator.catalog import SyntheticCatalogue, generate_catalogue, last_interior, true_last, write_catalogue
from simulator.comfort import Cavity, PlacedFoot, comfort, place_foot, preference
from simulator.customers import Customer, draw_customer, subject_of
from simulator.subjects import Subject
from testing.scanned_customers import ScannedCustomer, rig_calibration, scanned_customer

SAME_SCORE = 1e-9  # two sizes whose true comfort differs less than this are equally good (one shell)
SIZE_COLUMNS = {"EU": "eu", "UK": "uk", "US-M": "us_men", "US-W": "us_women"}


@dataclass(frozen=True)
class Size:
    sku: str
    model_code: str
    system: str
    label: float
    width: str
    nominal_mm: float  # nominal foot length of the label

    def distance(self, other: "Size") -> float:
        """Size steps of length plus width fittings between two sizes of one model."""
        steps = abs(self.nominal_mm - other.nominal_mm) / SIZE_SYSTEMS[self.system].step_mm
        return steps + abs(WIDTH_FITTINGS.index(self.width) - WIDTH_FITTINGS.index(other.width))


@dataclass(frozen=True)
class Model:
    code: str
    category: str
    gender: str
    level: str
    tendency: str  # the brand runs small, true or large (hidden truth)
    sizes: tuple[Size, ...]


@dataclass(frozen=True)
class TrueChoice:
    """What the customer finds best in one model: every size tried and its true comfort (pair)."""

    model_code: str
    scores: dict[str, float]  # sku -> true comfort of the pair (higher is better)

    @property
    def best(self) -> set[str]:
        top = max(self.scores.values())
        return {sku for sku, s in self.scores.items() if s >= top - SAME_SCORE}


Recommender = Callable[[ScannedCustomer, list[Model]], dict[str, str]]  # -> model code -> recommended sku
# A recommender that cannot advise a customer raises FootfitError; every model of that customer counts as missed.


def catalogue_models(catalogue: SyntheticCatalogue) -> dict[str, Model]:
    tendency = {t.model_code: t.brand_tendency for t in catalogue.truth}
    rows = defaultdict(list)
    for r in catalogue.rows:
        rows[r["model_code"]].append(r)
    models = {}
    for code, model_rows in rows.items():
        first = model_rows[0]
        sizes = tuple(Size(r["sku"], code, r["size_system"], float(r["size"]), r["width"],
                           SIZE_SYSTEMS[r["size_system"]].foot_length_mm(float(r["size"]))) for r in model_rows)
        models[code] = Model(code, first["category"], first["gender"], first["level"], tendency[code], sizes)
    return models


def models_for(customer: Customer, models: dict[str, Model]) -> list[Model]:
    """The customer's category, in their gender or unisex."""
    return [m for m in models.values()
            if m.category == customer.category and m.gender in (customer.gender, "unisex")]


# --- truth (worker processes) -----------------------------------------------------------------------------------

_worker: dict = {}


def _init_worker(models: int, seed: int) -> None:
    catalogue = generate_catalogue(models, seed)
    _worker.update(catalogue=catalogue, models=catalogue_models(catalogue), truth_dir=truth_dir(models, seed))


def true_choices(customer: Customer) -> list[TrueChoice]:
    """The customer's best sizes in every model they would look at."""
    subject = subject_of(customer)
    feet = placed_feet(subject)
    foot_mm = max(subject.left_dims.length_mm, subject.right_dims.length_mm)
    choices = []
    for model in models_for(customer, _worker["models"]):
        scores = {}
        for width in sorted({s.width for s in model.sizes}):
            run = sorted((s for s in model.sizes if s.width == width), key=lambda s: s.nominal_mm)
            scores.update(_walk(run, foot_mm, lambda sku: pair_comfort(feet, model, sku, _worker["catalogue"])))
        choices.append(TrueChoice(model.code, scores))
    return choices


def placed_feet(subject: Subject) -> dict[str, PlacedFoot]:
    return {side: place_foot(getattr(subject, side), side) for side in ("left", "right")}


def pair_comfort(feet: dict[str, PlacedFoot], model: Model, sku: str, catalogue: SyntheticCatalogue) -> float:
    """The true comfort of the pair in one size: the costs of both feet add up."""
    cavity = Cavity(last_interior(true_last(catalogue, sku)))
    wants = preference(model.category, model.level)
    return sum(comfort(foot, cavity, wants).score for foot in feet.values())


def _walk(run: list[Size], foot_mm: float, pair_comfort: Callable[[str], float]) -> dict[str, float]:
    """Try sizes from the one made for the foot's length outward, each way until the comfort falls
    (it has one peak along a size run; equal comfort, as in a ski boot's shared shell, walks on)."""
    start = int(np.argmin([abs(s.nominal_mm - foot_mm) for s in run]))
    scores = {run[start].sku: pair_comfort(run[start].sku)}
    for direction in (-1, 1):
        best, k = scores[run[start].sku], start + direction
        while 0 <= k < len(run):
            score = scores[run[k].sku] = pair_comfort(run[k].sku)
            if score < best - SAME_SCORE:
                break
            best = max(best, score)
            k += direction
    return scores


def _timed_scan(customer: Customer, calibration, profile) -> tuple[ScannedCustomer, float]:
    started = time.perf_counter()
    return scanned_customer(customer, calibration, profile), time.perf_counter() - started


def _timed_truth(customer: Customer) -> tuple[list[TrueChoice], float]:
    """The customer's true choices, from the cache when the truth's code has not changed since."""
    started = time.perf_counter()
    path = _worker["truth_dir"] / f"seed-{customer.seed:05d}.json"
    if path.is_file():
        return [TrueChoice(c["model_code"], c["scores"]) for c in json.loads(path.read_text())], 0.0
    choices = true_choices(customer)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps([c.__dict__ for c in choices]))
    partial.replace(path)
    return choices, time.perf_counter() - started


def truth_dir(models: int, seed: int) -> Path:
    """Where true choices are cached: per catalogue, and per version of the code that makes the truth."""
    code = b"".join(Path(m.__file__).read_bytes() for m in (simulator.comfort, simulator.catalog))
    return (get_settings().data_dir / "bench" / f"fit-truth-{models}-{seed}"
            / hashlib.sha256(code).hexdigest()[:12])


# --- recommenders ----------------------------------------------------------------------------------------------


def label_size(scan: ScannedCustomer, models: list[Model]) -> dict[str, str]:
    """The usual way: the label of the longer measured foot (ISO 19407 / Mondopoint), nearest size in the run."""
    sizes = Passport.load(scan.passport_path).pair_sizes
    chosen = {}
    for model in models:
        standard = [s for s in model.sizes if s.width == "standard"]
        system = standard[0].system
        label = sizes.mondopoint / (10.0 if standard[0].label < 100 else 1.0) if system == "MP" \
            else getattr(sizes, SIZE_COLUMNS[system])
        chosen[model.code] = min(standard, key=lambda s: (abs(s.label - label), -s.label)).sku
    return chosen


def matcher_recommender(engine, feet_of: Callable[[ScannedCustomer], ScannedFeet] | None = None) -> Recommender:
    """The matcher on the imported catalogue, given the customer's scanned files (or what `feet_of` gives)."""
    feet_of = feet_of or (lambda scan: ScannedFeet.load(scan.passport_path))
    matcher = Matcher(load_matcher_catalogue(engine))
    with engine.connect() as conn:
        ids = {code: i for i, code in conn.execute(select(ShoeModel.id, ShoeModel.code))}

    def recommend(scan: ScannedCustomer, models: list[Model]) -> dict[str, str]:
        code_of = {ids[m.code]: m.code for m in models}
        fits = matcher.best_sizes(feet_of(scan), model_ids=list(code_of))
        return {code_of[f.model_id]: f.sku for f in fits}

    return recommend


# --- the report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    recommender: str
    seed: int  # the customer's (even seeds tune the matcher's profile, odd ones check it: docs/fit-model.md)
    category: str
    tendency: str
    right: bool
    within_one: bool
    signed_steps: float  # recommended minus nearest best, in size steps (+: too large); NaN: refused
    comfort_loss: float  # best true comfort minus the recommended size's (squared thresholds); NaN: refused


def outcome(name: str, seed: int, model: Model, choice: TrueChoice, sku: str, recommended_score: float) -> Outcome:
    sizes = {s.sku: s for s in model.sizes}
    rec = sizes[sku]
    nearest = min((sizes[b] for b in choice.best), key=rec.distance)
    steps = (rec.nominal_mm - nearest.nominal_mm) / SIZE_SYSTEMS[rec.system].step_mm
    return Outcome(name, seed, model.category, model.tendency, sku in choice.best, rec.distance(nearest) <= 1 + 1e-6,
                   float(steps), max(choice.scores.values()) - recommended_score)


def refused(name: str, seed: int, model: Model) -> Outcome:
    return Outcome(name, seed, model.category, model.tendency, False, False, float("nan"), float("nan"))


def table(outcomes: list[Outcome], names: list[str], key: Callable[[Outcome], str], title: str) -> list[str]:
    groups = sorted({key(o) for o in outcomes})
    head = f"  {title:14} {'pairs':>6} " + " ".join(f"{n + ' right':>15} {'within 1':>9}" for n in names)
    lines = [head]
    for group in ["all", *groups]:
        row = f"  {group:14} "
        for i, name in enumerate(names):
            sel = [o for o in outcomes if o.recommender == name and (group == "all" or key(o) == group)]
            if i == 0:
                row += f"{len(sel):6d} "
            row += f"{100 * np.mean([o.right for o in sel]):14.1f}% {100 * np.mean([o.within_one for o in sel]):8.1f}%"
            row += " "
        lines.append(row)
    return lines


def imported_catalogue(models: int, seed: int):
    """Generate the catalogue, write its files and import them with the product's importer (SQLite under
    var/bench/; importing the same files again changes nothing)."""
    catalogue = generate_catalogue(models, seed)
    folder = get_settings().data_dir / "bench" / f"fit-catalogue-{models}-{seed}"
    products = write_catalogue(catalogue, folder)
    engine = open_service_db(f"sqlite:///{(folder / 'catalog.sqlite').resolve()}")
    summary = import_products(products, folder / "interiors", engine=engine)
    return catalogue, engine, folder, summary


def recommend_all(recommenders: dict[str, Recommender], customers: list[Customer], scans: list[ScannedCustomer],
                  truths: list[list[TrueChoice]], models: dict[str, Model], catalogue: SyntheticCatalogue,
                  seconds: dict[str, float]) -> tuple[list[Outcome], dict[str, list[str]]]:
    """Every recommender's size for every customer-model pair against the customer's true best."""
    outcomes, extra_tries, refusals = [], {}, defaultdict(list)
    for name, recommend in recommenders.items():
        started = time.perf_counter()
        for customer, scan, choices in zip(customers, scans, truths):
            by_code = {c.model_code: c for c in choices}
            try:
                chosen = recommend(scan, models_for(customer, models))
            except FootfitError as e:
                refusals[name].append(f"seed {customer.seed}: {e}")
                outcomes += [refused(name, customer.seed, models[code]) for code in by_code]
                continue
            for code, sku in chosen.items():
                score = by_code[code].scores.get(sku)
                if score is None:  # a size the walk did not try: the customer tries it now
                    key = (customer.seed, sku)
                    if key not in extra_tries:
                        feet = placed_feet(subject_of(customer))
                        extra_tries[key] = pair_comfort(feet, models[code], sku, catalogue)
                    score = extra_tries[key]
                outcomes.append(outcome(name, customer.seed, models[code], by_code[code], sku, score))
        seconds[f"recommend: {name}"] = time.perf_counter() - started
    return outcomes, refusals


def report(outcomes: list[Outcome], refusals: dict[str, list[str]], names: list[str]) -> None:
    print("\n".join(table(outcomes, names, lambda o: o.category, "category")))
    print("\n".join(table(outcomes, names, lambda o: o.tendency, "brand runs")[2:]))
    print("\n".join(table(outcomes, names, lambda o: ("even", "odd")[o.seed % 2] + " seeds", "customers")[2:]))
    print(f"\n  {'recommender':12} {'right':>7} {'within 1':>9} {'too small':>10} {'too large':>10} "
          f"{'mean steps':>11} {'comfort loss':>13} {'customers refused':>18}")
    for name in names:
        sel = [o for o in outcomes if o.recommender == name]
        steps = np.array([o.signed_steps for o in sel])
        right, within = 100 * np.mean([o.right for o in sel]), 100 * np.mean([o.within_one for o in sel])
        print(f"  {name:12} {right:6.1f}% {within:8.1f}%"
              f" {100 * np.mean(steps < 0):9.1f}% {100 * np.mean(steps > 0):9.1f}% {np.nanmean(steps):+11.2f}"
              f" {np.nanmean([o.comfort_loss for o in sel]):13.2f} {len(refusals[name]):18d}")
        for reason in refusals[name][:5]:
            print(f"    refused {reason}")
    if "matcher" in names and "label" in names:
        right = {n: np.mean([o.right for o in outcomes if o.recommender == n]) for n in names}
        print(f"  ratio matcher / label (first size right): {right['matcher'] / max(right['label'], 1e-9):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--models", type=int, default=80)
    parser.add_argument("--catalogue-seed", type=int, default=2026)
    parser.add_argument("--profile", default="light")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-matcher", action="store_true", help="only the label baseline (no fitcore.fit.matcher)")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    seconds = {}

    started = time.perf_counter()
    catalogue, engine, folder, summary = imported_catalogue(args.models, args.catalogue_seed)
    models = catalogue_models(catalogue)
    seconds["catalogue: generate + import"] = time.perf_counter() - started
    print(f"catalogue: {len(models)} models, {len(catalogue.rows)} sizes; {summary.report()}", flush=True)

    started = time.perf_counter()
    calibration = rig_calibration()
    seconds["rig calibration (cached after the first run)"] = time.perf_counter() - started

    customers = [draw_customer(seed) for seed in range(args.first_seed, args.first_seed + args.customers)]
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker,
                             initargs=(args.models, args.catalogue_seed)) as pool:
        started = time.perf_counter()
        scanned = list(pool.map(_timed_scan, customers, [calibration] * len(customers),
                                [profile] * len(customers)))
        seconds["scan customers (wall)"] = time.perf_counter() - started
        started = time.perf_counter()
        truths = list(pool.map(_timed_truth, customers))
        seconds["true comfort (wall)"] = time.perf_counter() - started
    scans = [s for s, _ in scanned]

    recommenders: dict[str, Recommender] = {}
    if not args.no_matcher:
        started = time.perf_counter()
        recommenders["matcher"] = matcher_recommender(engine)
        seconds["matcher: load catalogue"] = time.perf_counter() - started
    recommenders["label"] = label_size
    outcomes, refusals = recommend_all(recommenders, customers, scans, [c for c, _ in truths], models, catalogue,
                                       seconds)

    attempts = [s.scan_attempts for s in scans]
    print(f"\n{len(customers)} customers ({sum(c.sex == 'male' for c in customers)} men), profile {profile.name}, "
          f"{sum(a > 1 for a in attempts)} needed a second scan; {len(outcomes) // len(recommenders)} customer-model "
          f"pairs; catalogue {args.models} models (seed {args.catalogue_seed}); each customer sees the models of "
          f"their category in their gender and unisex")
    report(outcomes, refusals, list(recommenders))
    print("\n  timings")
    for what, s in seconds.items():
        print(f"  {what:46} {s:8.1f} s")
    scan_s, truth_s = [t for _, t in scanned], [t for _, t in truths]
    tried = np.mean([len(c.scores) for choices, _ in truths for c in choices])
    print(f"  {'per customer: scan (a cache hit ~0 s)':46} {np.mean(scan_s):8.1f} s mean, {np.max(scan_s):.1f} s max")
    print(f"  {'per customer: true comfort (a cache hit 0 s)':46} {np.mean(truth_s):8.1f} s mean, "
          f"{tried:.1f} sizes tried per model")
    out = folder / "fit_quality.json"
    out.write_text(json.dumps([o.__dict__ for o in outcomes]))
    print(f"  per pair outcomes: {out}")


if __name__ == "__main__":
    main()
