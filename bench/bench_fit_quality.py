"""Fit quality: do simulated customers keep the recommended size? (issue 5, Quality; issue 14, the kept rule)

    .venv/bin/python bench/bench_fit_quality.py [--customers 300] [--models 80] [--profile light] [--jobs 2]

1. A synthetic catalogue (seeded) is written and imported through the product's importer into a SQLite file
   under var/bench/; the importer grades the sizes that were not scanned.
2. One rig is calibrated from rendered stills with the product's calibration code (cached).
3. Simulated customers (simulator/customers.py: ANSUR II feet, men and women in the survey's mix, a category
   each) are scanned at a random placement and processed by the product's pipeline into passport + PLYs
   (cached under var/bench/customers/PROFILE/).
4. Truth: for every model of the customer's category and gender (unisex too), the TRUE comfort of the pair of
   feet in each size (simulator/comfort.py: true foot meshes in the true interiors, with the customer's own
   preferences, simulator.customers.preferences_of; docs/fit-quality.md), walked from the size made for the
   foot's length outward (simulator.shoppers.Fitting), the customer's best size (the lowest cost over the model's
   sizes, pinching or not: issue 14's rule as written) and the sizes they keep (within one perception threshold
   of it, no region tight by more than one).
5. Recommenders, side by side: the matcher (fitcore.fit.matcher on the imported catalogue and the scanned files)
   and the label baseline (sizes_for the longer measured foot in the model's size system, nearest size the
   model has, standard width). Headline: first size kept = the customer keeps the recommended size (a model in
   which they keep no size counts as right only when the recommender says it does not fit). Beside it: best
   size = the recommended size is a best one (ski shells: a whole and a half size share one shell, so both are
   best); within one size = at most one size step of the size system (EU 6.67 mm, UK/US 8.47 mm, Mondopoint 5 mm
   of nominal foot length) or one width fitting away from a best. Every figure per category, brand tendency,
   customer seed parity and last family; and the truth alone per last family: the pairs in which the customer
   keeps no size, all and with the foot inside the model's run, and the terms in which their best size pinches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

import simulator.catalog
import simulator.comfort
import simulator.customers
import simulator.lasts
import simulator.shoppers
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
from simulator.comfort import PairComfort, PlacedFoot, Preferences, kept, pair_comfort, place_foot, preference
from simulator.customers import Customer, draw_customer, preferences_of, subject_of
from simulator.shoppers import Fitting, SizeOption
from simulator.subjects import Subject
from testing.scanned_customers import ScannedCustomer, rig_calibration, scanned_customer

SAME_SCORE = simulator.shoppers.SAME_COST  # two sizes whose true comfort differs less are equally good (one shell)
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
    family: str  # the kind of last its interiors are made on (hidden truth, simulator.lasts.LAST_FAMILIES)
    sizes: tuple[Size, ...]


@dataclass(frozen=True)
class TrueChoice:
    """What the customer finds in one model: every size tried, its true comfort (pair), the sizes they keep, the
    cost of their best size (the lowest over the model's sizes) and where that size pinches."""

    model_code: str
    scores: dict[str, float]  # sku -> true comfort of the pair (higher is better)
    kept: frozenset[str]  # every size the customer keeps (simulator.shoppers.Fitting.kept_skus)
    best_cost: float
    best_pinches: tuple[str, ...]  # the terms (simulator.comfort.TERMS) in which the best size pinches; () if none
    in_run: bool  # the customer's longer foot lies within the nominal feet of the model's size run

    @property
    def best(self) -> set[str]:
        """The customer's best sizes (a ski shell's whole and half size are one)."""
        return {sku for sku, s in self.scores.items() if abs(s + self.best_cost) <= SAME_SCORE}

    def keeps(self, sku: str, tried: PairComfort | None = None) -> bool:
        """Whether the customer keeps this size; a size the walk did not try needs its comfort (`tried`)."""
        if sku in self.scores:
            return sku in self.kept
        return kept(tried, self.best_cost)


@dataclass(frozen=True)
class Advice:
    """A recommender's answer for one model: the size, and whether it says the model fits the customer at all."""

    sku: str
    fits: bool


Recommender = Callable[[ScannedCustomer, list[Model]], dict[str, Advice]]  # -> model code -> advice
# A recommender that cannot advise a customer raises FootfitError; every model of that customer counts as missed.


def catalogue_models(catalogue: SyntheticCatalogue) -> dict[str, Model]:
    tendency = {t.model_code: t.brand_tendency for t in catalogue.truth}
    family = {t.model_code: t.last_family for t in catalogue.truth}
    rows = defaultdict(list)
    for r in catalogue.rows:
        rows[r["model_code"]].append(r)
    models = {}
    for code, model_rows in rows.items():
        first = model_rows[0]
        sizes = tuple(Size(r["sku"], code, r["size_system"], float(r["size"]), r["width"],
                           SIZE_SYSTEMS[r["size_system"]].foot_length_mm(float(r["size"]))) for r in model_rows)
        models[code] = Model(code, first["category"], first["gender"], first["level"], tendency[code], family[code],
                             sizes)
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
    """The customer's sizes in every model they would look at: the best, and the ones they keep."""
    subject = subject_of(customer)
    feet = placed_feet(subject)
    foot_mm = max(subject.left_dims.length_mm, subject.right_dims.length_mm)
    choices = []
    for model in models_for(customer, _worker["models"]):
        fitting = model_fitting(model, feet, preferences_of(customer), foot_mm, _worker["catalogue"])
        kept_skus = fitting.kept_skus  # found by trying the sizes around the best
        tried = fitting.tried
        best = min(tried.values(), key=lambda c: c.cost)
        nominal = [s.nominal_mm for s in model.sizes]
        choices.append(TrueChoice(model.code, {sku: c.score for sku, c in tried.items()}, kept_skus,
                                  fitting.best_cost, best.pinches, min(nominal) <= foot_mm <= max(nominal)))
    return choices


def placed_feet(subject: Subject) -> dict[str, PlacedFoot]:
    return {side: place_foot(getattr(subject, side), side) for side in ("left", "right")}


def model_fitting(model: Model, feet: dict[str, PlacedFoot], personal: Preferences, foot_mm: float,
                  catalogue: SyntheticCatalogue) -> Fitting:
    """The customer (their true feet and preferences) and one model's true sizes."""
    return Fitting([SizeOption(s.sku, s.width, s.nominal_mm) for s in model.sizes],
                   lambda sku: true_pair_comfort(feet, model, sku, personal, catalogue), foot_mm)


def true_pair_comfort(feet: dict[str, PlacedFoot], model: Model, sku: str, personal: Preferences,
                      catalogue: SyntheticCatalogue) -> PairComfort:
    """The true comfort of the pair in one size, as this customer feels it."""
    wants = preference(model.category, model.level, personal)
    return pair_comfort(feet, last_interior(true_last(catalogue, sku)), wants)


def _timed_scan(customer: Customer, calibration, profile) -> tuple[ScannedCustomer, float]:
    started = time.perf_counter()
    return scanned_customer(customer, calibration, profile), time.perf_counter() - started


def _timed_truth(customer: Customer) -> tuple[list[TrueChoice], float]:
    """The customer's true choices, from the cache when the truth's code has not changed since."""
    started = time.perf_counter()
    path = _worker["truth_dir"] / f"seed-{customer.seed:05d}.json"
    if path.is_file():
        return [TrueChoice(c["model_code"], c["scores"], frozenset(c["kept"]), c["best_cost"],
                           tuple(c["best_pinches"]), c["in_run"]) for c in json.loads(path.read_text())], 0.0
    choices = true_choices(customer)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps([dict(model_code=c.model_code, scores=c.scores, kept=sorted(c.kept),
                                        best_cost=c.best_cost, best_pinches=c.best_pinches, in_run=c.in_run)
                                   for c in choices]))
    partial.replace(path)
    return choices, time.perf_counter() - started


def truth_dir(models: int, seed: int) -> Path:
    """Where true choices are cached: per catalogue, and per version of the code that makes the truth (the comfort,
    the catalogue and its lasts, the customers' preferences, the walk and the kept rule)."""
    code = b"".join(Path(m.__file__).read_bytes() for m in (simulator.comfort, simulator.catalog, simulator.lasts,
                                                             simulator.customers, simulator.shoppers))
    return (get_settings().data_dir / "bench" / f"fit-truth-{models}-{seed}"
            / hashlib.sha256(code).hexdigest()[:12])


# --- recommenders ----------------------------------------------------------------------------------------------


def label_size(scan: ScannedCustomer, models: list[Model]) -> dict[str, Advice]:
    """The usual way: the label of the longer measured foot (ISO 19407 / Mondopoint), nearest size in the run;
    it never says that a model does not fit."""
    sizes = Passport.load(scan.passport_path).pair_sizes
    chosen = {}
    for model in models:
        standard = [s for s in model.sizes if s.width == "standard"]
        system = standard[0].system
        label = sizes.mondopoint / (10.0 if standard[0].label < 100 else 1.0) if system == "MP" \
            else getattr(sizes, SIZE_COLUMNS[system])
        chosen[model.code] = Advice(min(standard, key=lambda s: (abs(s.label - label), -s.label)).sku, fits=True)
    return chosen


def matcher_recommender(engine, feet_of: Callable[[ScannedCustomer], ScannedFeet] | None = None) -> Recommender:
    """The matcher on the imported catalogue, given the customer's scanned files (or what `feet_of` gives)."""
    feet_of = feet_of or (lambda scan: ScannedFeet.load(scan.passport_path))
    matcher = Matcher(load_matcher_catalogue(engine))
    with engine.connect() as conn:
        ids = {code: i for i, code in conn.execute(select(ShoeModel.id, ShoeModel.code))}

    def recommend(scan: ScannedCustomer, models: list[Model]) -> dict[str, Advice]:
        code_of = {ids[m.code]: m.code for m in models}
        fits = matcher.best_sizes(feet_of(scan), model_ids=list(code_of))
        return {code_of[f.model_id]: Advice(f.sku, f.fits) for f in fits}

    return recommend


# --- the report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    recommender: str
    seed: int  # the customer's (even seeds tune the matcher's profile, odd ones check it: docs/fit-model.md)
    category: str
    tendency: str
    family: str
    kept: bool  # the recommender says it fits and the customer keeps its size; or they keep none and it says so
    none_kept: bool  # the customer keeps no size of this model
    right: bool  # the recommended size is a best one
    within_one: bool
    signed_steps: float  # recommended minus nearest best, in size steps (+: too large); NaN: refused
    comfort_loss: float  # the best size's true comfort (it may pinch) minus the recommended size's (squared
    # thresholds); NaN: refused


def outcome(name: str, seed: int, model: Model, choice: TrueChoice, advice: Advice, recommended_score: float,
            recommended_kept: bool) -> Outcome:
    sizes = {s.sku: s for s in model.sizes}
    rec = sizes[advice.sku]
    nearest = min((sizes[b] for b in choice.best), key=rec.distance)
    steps = (rec.nominal_mm - nearest.nominal_mm) / SIZE_SYSTEMS[rec.system].step_mm
    none_kept = not choice.kept
    return Outcome(name, seed, model.category, model.tendency, model.family,
                   not advice.fits if none_kept else advice.fits and recommended_kept, none_kept,
                   advice.sku in choice.best,
                   rec.distance(nearest) <= 1 + 1e-6, float(steps), max(choice.scores.values()) - recommended_score)


def refused(name: str, seed: int, model: Model, choice: TrueChoice) -> Outcome:
    return Outcome(name, seed, model.category, model.tendency, model.family, False, not choice.kept, False, False,
                   float("nan"), float("nan"))


def table(outcomes: list[Outcome], names: list[str], key: Callable[[Outcome], str], title: str) -> list[str]:
    groups = sorted({key(o) for o in outcomes})
    head = f"  {title:14} {'pairs':>6} " + " ".join(f"{n + ' kept':>14} {'best':>6} {'within 1':>9}" for n in names)
    lines = [head]
    for group in ["all", *groups]:
        row = f"  {group:14} "
        for i, name in enumerate(names):
            sel = [o for o in outcomes if o.recommender == name and (group == "all" or key(o) == group)]
            if i == 0:
                row += f"{len(sel):6d} "
            row += (f"{_percent([o.kept for o in sel]):13.1f}% {_percent([o.right for o in sel]):5.1f}% "
                    f"{_percent([o.within_one for o in sel]):8.1f}% ")
        lines.append(row)
    return lines


def _percent(flags: list[bool]) -> float:
    return 100.0 * float(np.mean(flags)) if flags else float("nan")


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
                outcomes += [refused(name, customer.seed, models[code], by_code[code]) for code in by_code]
                continue
            for code, advice in chosen.items():
                choice, tried = by_code[code], None
                if advice.sku not in choice.scores:  # a size the walk did not try: the customer tries it now
                    key = (customer.seed, advice.sku)
                    if key not in extra_tries:
                        feet = placed_feet(subject_of(customer))
                        extra_tries[key] = true_pair_comfort(feet, models[code], advice.sku, preferences_of(customer),
                                                             catalogue)
                    tried = extra_tries[key]
                score = choice.scores[advice.sku] if tried is None else tried.score
                outcomes.append(outcome(name, customer.seed, models[code], choice, advice, score,
                                        choice.keeps(advice.sku, tried)))
        seconds[f"recommend: {name}"] = time.perf_counter() - started
    return outcomes, refusals


def report(outcomes: list[Outcome], refusals: dict[str, list[str]], names: list[str]) -> None:
    print("\n".join(table(outcomes, names, lambda o: o.category, "category")))
    print("\n".join(table(outcomes, names, lambda o: o.family, "last family")[2:]))
    print("\n".join(table(outcomes, names, lambda o: o.tendency, "brand runs")[2:]))
    print("\n".join(table(outcomes, names, lambda o: ("even", "odd")[o.seed % 2] + " seeds", "customers")[2:]))
    print(f"\n  {'recommender':12} {'kept':>6} {'best':>6} {'within 1':>9} {'too small':>10} {'too large':>10} "
          f"{'mean steps':>11} {'comfort loss':>13} {'customers refused':>18}")
    for name in names:
        sel = [o for o in outcomes if o.recommender == name]
        steps = np.array([o.signed_steps for o in sel])
        print(f"  {name:12} {_percent([o.kept for o in sel]):5.1f}% {_percent([o.right for o in sel]):5.1f}% "
              f"{_percent([o.within_one for o in sel]):8.1f}%"
              f" {100 * np.mean(steps < 0):9.1f}% {100 * np.mean(steps > 0):9.1f}% {np.nanmean(steps):+11.2f}"
              f" {np.nanmean([o.comfort_loss for o in sel]):13.2f} {len(refusals[name]):18d}")
        for reason in refusals[name][:5]:
            print(f"    refused {reason}")
    pairs = [o for o in outcomes if o.recommender == names[0]]
    print(f"  pairs in which the customer keeps no size of the model: {sum(o.none_kept for o in pairs)} of "
          f"{len(pairs)}")
    if "matcher" in names and "label" in names:
        kept_rate = {n: np.mean([o.kept for o in outcomes if o.recommender == n]) for n in names}
        print(f"  ratio matcher / label (first size kept): {kept_rate['matcher'] / max(kept_rate['label'], 1e-9):.2f}x")


def truth_report(truths: list[list[TrueChoice]], models: dict[str, Model]) -> None:
    """The truth alone, per last family: the (customer, model) pairs in which the customer keeps no size, all of
    them and those whose foot lies inside the model's size run, and for those the terms in which the best size
    pinches (a best size that pinches, with no wearable size within one threshold of it, is why none is kept)."""
    choices = [c for per_customer in truths for c in per_customer]
    print(f"\n  {'truth':14} {'pairs':>6} {'none kept':>10} {'in run':>7} {'none kept':>10}   the best size pinches in "
          "(pairs in the run keeping none)")
    for family in ["all", *sorted({m.family for m in models.values()})]:
        sel = [c for c in choices if family == "all" or models[c.model_code].family == family]
        inside = [c for c in sel if c.in_run]
        none_inside = [c for c in inside if not c.kept]
        pinches = defaultdict(int)
        for c in none_inside:
            for term in c.best_pinches or ("nothing",):
                pinches[term] += 1
        print(f"  {family:14} {len(sel):6d} {_percent([not c.kept for c in sel]):9.1f}% {len(inside):7d} "
              f"{_percent([not c.kept for c in inside]):9.1f}%   "
              + ", ".join(f"{term} {n}" for term, n in sorted(pinches.items(), key=lambda item: -item[1])))


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
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=_init_worker,
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
    truth_report([c for c, _ in truths], models)
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
