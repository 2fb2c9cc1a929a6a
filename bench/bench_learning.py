"""Learning benchmark: seasons of simulated customers through the real service, and how the advice gets better with
their feedback (issue 14, section 3; docs/fit-quality.md, "Learning benchmark").

    .venv/bin/python bench/bench_learning.py [--quick] [--jobs 2] [--eval-customers 300] [--returning 200]
                                             [--seasons 500,1000,...] [--checkpoints 1000,3000,10000]

1. A real `footfit serve` process (testing/learning_world.py) on a SQLite database in a temporary folder, learning
   only when this script runs `footfit learn`; the synthetic catalogue (80 models, simulator/catalog.py) imported
   through the API as the operator's interiors and as one retailer's assortment, every size in stock in its store;
   a kiosk key of the store and a webshop key. The A/B holdout share is 0: every customer gets the learned advice
   once a state is adopted, and the geometry-only arm is measured beside it in this process (below).
2. Evaluation customers, NEW: `--eval-customers` customers of seeds 0.. scanned through the simulated rig by the
   product's pipeline (testing/scanned_customers.py, cached under var/bench/customers/light), registered and their
   passports uploaded. Their feedback is never posted.
3. Seasons of training customers (seeds from TRAINING_FIRST_SEED, disjoint from the evaluation's), each with a
   passport from the CHEAP path (the true foot meshes sampled and measured by the product's own code,
   testing.learning_world.cheap_scan: no rendering, no reconstruction). Each visit is in the store (STORE_SHARE)
   or the webshop: the customer sees the top three of their category and tries them in the store (every try, the
   choice and the purchase posted) or buys one online and returns it or keeps it (simulator/shoppers.py). In later
   seasons a share of earlier customers comes back (simulator.shoppers.returns_in_season) before new ones are
   drawn; a season ends once the events that say what became of a size (tries, returns, keeps: what the learner
   reads) reach the season's total. After each season `footfit learn` runs (it learns from the older 80% of the
   events and adopts the new state only if it predicts the most recent 20% better) and the script waits until the
   service answers with the version in use.
4. At checkpoint 0 and at each of `--checkpoints` (totals of those events), every recommender advises on every
   evaluation pair: the NEW customers on every model of their category (their gender and unisex), and RETURNING
   customers (the first `--returning` training customers, their own cheap passports and any preference learned
   from them) on the models of their category they have not tried or bought before the checkpoint.
   Recommenders: `label` (the longer foot's label size, bench_fit_quality.label_size), `geometry` (the matcher
   alone with the hand-set prior's keep chance: what the A/B holdout arm gets, fitcore.fit.advice.Advisor in this
   process), `learned` (the service's answer, GET /v1/passports/{id}/sizes/{model} with the kiosk key: the
   learned state in use), `latent` (the Amazon-style latent-size model, testing/latent_size.py, learned here from
   exactly the events posted up to the checkpoint, with the customers' scanned foot lengths), `oracle` (the
   catalogue oracle of bench_fit_ceiling.py: the customer's true feet judged by their own comfort rule against
   the catalogue's interiors as the product holds them, among the sizes the truth tried).
5. Truth (bench_fit_quality: the customer's true comfort of each size, the best and the kept sizes) and the
   catalogue oracle are cached per code version under var/bench/.
Figures per checkpoint, cohort and recommender: first size kept (a model in which the customer keeps no size counts
as right only when the recommender says it does not fit), strict best, within one size, the share too small / too
large, returns for size per 100 webshop purchases, comfort lost, and the keep chance's Brier score and 10-bin
reliability; per last family, per seed parity (nothing here is tuned; even and odd seeds are reported apart) and
for models with and without feedback of their own.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import bench_fit_ceiling as ceiling  # sibling scripts: Python puts a script's own folder first on sys.path
import bench_fit_quality as quality
import numpy as np
from sqlalchemy import select

import fitcore.fit.sections
import shoe_db
from api.db import open_service_db
from core.errors import FootfitError
from core.settings import get_settings
from device.profile import get_profile
from fitcore.fit.advice import Advisor, prior_state
from fitcore.fit.keep_model import Calibration, calibration
from fitcore.fit.learning import FitObservation
from fitcore.fit.matcher import Matcher, ScannedFeet
from fitcore.fit.profiles import MEASURES
from fitcore.scan.passport import Passport
from shoe_db.loading import load_matcher_catalogue
from shoe_db.models import ShoeModel
from simulator.catalog import SyntheticCatalogue, generate_catalogue, write_catalogue
from simulator.comfort import Cavity, PairComfort, preference, region_fit
from simulator.customers import Customer, draw_customer, preferences_of, subject_of
from simulator.shoppers import KEPT_ANYWAY_SHARE, returns_in_season
from testing.latent_size import LatentSizes, learn_latent_sizes
from testing.learning_world import (
    STORE_CHANNEL,
    WEBSHOP_CHANNEL,
    LearningService,
    Said,
    ServiceAddress,
    ShopClient,
    TrueCustomer,
    Visit,
    cheap_scan,
    learning_service,
    scan_files_in,
    shop,
)
from testing.scanned_customers import ScannedCustomer, rig_calibration

TRAINING_FIRST_SEED = 100_000  # training customers' seeds; the evaluation's are 0 ..
STORE_SHARE = 0.7  # visits in the store (the rest in the webshop): an assumption
EVENTS_PER_VISIT = 3  # a guess at the events said by a visit under way, so a season overshoots its total little
_CHANNEL_STREAM, _PURCHASE_STREAM = 11, 12  # random streams of a customer's seed and season (simulator uses 2-4)
SEASONS = (500, 1000, 2000, 3000, 5000, 7500, 10000)  # events said at each season's end
CHECKPOINTS = (1000, 3000, 10000)  # (and 0) where the recommenders are evaluated
QUICK = dict(seasons=(250, 500, 750), checkpoints=(250, 750), eval_customers=40, returning=20)
RECOMMENDERS = ("label", "geometry", "learned", "latent", "oracle")
COHORTS = ("new", "returning")
MIN_BIN = 10  # a reliability bin with fewer pairs is shown but not counted in the worst gap
FITS_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)  # keep chances the fits threshold is tried at
NO_READINGS = (0.0,) * len(MEASURES)  # the latent-size model reads no interiors: its observations carry no readings


# --- worker processes -------------------------------------------------------------------------------------------

_worker: dict = {}


def _init_worker(models: int, catalogue_seed: int, address: ServiceAddress, database_url: str,
                 passports: Path) -> None:
    quality._init_worker(models, catalogue_seed)  # the catalogue's truth and the truth's cache
    interiors = load_matcher_catalogue(open_service_db(database_url))  # the interiors as the service holds them
    _worker.update(client=ShopClient(address), passports=passports, interiors=interiors,
                   size_index={str(sku): i for i, sku in enumerate(interiors.sku)},
                   oracle_dir=oracle_dir(models, catalogue_seed))


@dataclass(frozen=True)
class Errand:
    """One customer's visit in one season."""

    seed: int
    season: int
    channel: str
    passport_id: str | None  # None: a new customer, registered on this visit


@dataclass(frozen=True)
class Shopped:
    errand: Errand
    passport_id: str
    foot_length_mm: float  # the passport's longer foot (the latent-size model starts each customer's size there)
    visit: Visit
    seconds: float


def loyalty_id(seed: int) -> str:
    return f"C{seed}"


def _shop(errand: Errand) -> Shopped:
    """A training customer's visit: registered with a cheap passport on their first, then shopping."""
    started = time.perf_counter()
    customer = draw_customer(errand.seed)
    truth = TrueCustomer(customer, quality._worker["catalogue"])
    passport_id, foot_mm = errand.passport_id, float("nan")
    client: ShopClient = _worker["client"]
    if passport_id is None:
        folder = passport_folder(_worker["passports"], errand.seed)
        passport_id = client.register(loyalty_id(errand.seed), cheap_scan(truth.subject, folder))
        foot_mm = longer_foot_mm(folder)
    visit = shop(client, passport_id, customer, errand.channel, truth.fitting,
                 [errand.seed, errand.season, _PURCHASE_STREAM])
    return Shopped(errand, passport_id, foot_mm, visit, time.perf_counter() - started)


def passport_folder(passports: Path, seed: int) -> Path:
    return passports / f"seed-{seed:06d}"


def longer_foot_mm(folder: Path) -> float:
    feet = Passport.load(folder / "passport.json").feet
    return max(feet.left.measurements.length_mm, feet.right.measurements.length_mm)


@dataclass(frozen=True)
class Judged:
    """An evaluation customer's truth on every model of their category, and the catalogue oracle's advice."""

    seed: int
    choices: list[quality.TrueChoice]  # every model of their category
    oracle: dict[str, quality.Advice]  # the models it was asked about
    seconds: float


def _judge(seed: int, codes: frozenset[str] | None = None) -> Judged:
    """The customer's truth (every model of their category) and the catalogue oracle on `codes` (None: all)."""
    started = time.perf_counter()
    customer = draw_customer(seed)
    choices, _ = quality._timed_truth(customer)
    asked = [c for c in choices if codes is None or c.model_code in codes]
    return Judged(seed, choices, catalogue_oracle(customer, asked), time.perf_counter() - started)


def catalogue_oracle(customer: Customer, choices: list[quality.TrueChoice]) -> dict[str, quality.Advice]:
    """Per model, bench_fit_ceiling's catalogue oracle: the customer's true feet in the catalogue's interiors (the
    imported sections, meshed as the ceiling benchmark meshes them), judged by the customer's own comfort and kept
    rule, among the sizes the truth tried. Cached per customer; models asked for later are added."""
    path = _worker["oracle_dir"] / f"seed-{customer.seed:06d}.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    missing = [c for c in choices if c.model_code not in cached]
    if missing:
        feet = quality.placed_feet(subject_of(customer))
        personal, models, interiors = preferences_of(customer), quality._worker["models"], _worker["interiors"]
        for choice in missing:
            model, fits = models[choice.model_code], {}
            for sku in choice.scores:
                i = _worker["size_index"][sku]
                cavity = Cavity(ceiling.sections_mesh(interiors.sections[i].astype(np.float64),
                                                      float(interiors.inner_length_mm[i])))
                fits[sku] = [region_fit(foot, cavity) for foot in feet.values()]
            advice = ceiling.oracle_advice(fits, preference(model.category, model.level, personal))
            cached[model.code] = [advice.sku, advice.fits]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(cached))
        partial.replace(path)
    return {c.model_code: quality.Advice(*cached[c.model_code]) for c in choices}


def oracle_dir(models: int, catalogue_seed: int) -> Path:
    """The catalogue oracle's cache: per catalogue, per version of the truth's code and of the code that makes and
    reads the catalogue's interiors (the shoe_db package, fitcore/fit/sections.py), meshes and judges them (the
    ceiling benchmark's functions)."""
    sources = [Path(fitcore.fit.sections.__file__), *sorted(Path(shoe_db.__file__).parent.glob("*.py"))]
    code = b"".join(path.read_bytes() for path in sources) + quality.truth_dir(models, catalogue_seed).name.encode()
    code += "".join(inspect.getsource(f) for f in (ceiling.sections_mesh, ceiling.pair_judged,
                                                   ceiling.oracle_advice)).encode()
    return (get_settings().data_dir / "bench" / f"learning-oracle-{models}-{catalogue_seed}"
            / hashlib.sha256(code).hexdigest()[:12])


# --- who is evaluated -------------------------------------------------------------------------------------------


@dataclass
class Subject:
    """An evaluation customer: their scan folder (the product's files), their passport in the service, their
    truth and the catalogue oracle's advice."""

    customer: Customer
    scan: ScannedCustomer
    passport_id: str
    judged: Judged

    @cached_property
    def feet(self) -> ScannedFeet:
        return ScannedFeet.load(self.scan.passport_path)

    @cached_property
    def foot_length_mm(self) -> float:
        return longer_foot_mm(self.scan.folder)


@dataclass(frozen=True)
class Pick:
    advice: quality.Advice
    keep_probability: float | None  # the recommender's chance that the size is kept (None: it gives none)


Recommend = Callable[[Subject, list[quality.Model]], dict[str, Pick]]


@dataclass(frozen=True)
class Scored:
    checkpoint: int  # events said before it
    cohort: str
    recommender: str
    model_code: str
    own_feedback: bool  # the model had events of its own before the checkpoint
    fits: bool  # the recommender says the model fits
    size_kept: bool  # the recommended size passes the customer's kept rule
    keep_probability: float | None
    outcome: quality.Outcome


# --- recommenders -----------------------------------------------------------------------------------------------


def label_recommender(subject: Subject, models: list[quality.Model]) -> dict[str, Pick]:
    return {code: Pick(a, None) for code, a in quality.label_size(subject.scan, models).items()}


def geometry_recommender(matcher: Matcher, model_ids: dict[str, int]) -> Recommend:
    """The matcher alone, with the hand-set prior's keep chance for a store customer: the A/B holdout's advice."""
    advisor = Advisor(matcher, prior_state(), learned=False, source=STORE_CHANNEL)

    def recommend(subject: Subject, models: list[quality.Model]) -> dict[str, Pick]:
        picks = {}
        for m in models:
            a = advisor.best_size(subject.feet, model_ids[m.code])
            picks[m.code] = Pick(quality.Advice(a.fit.sku, a.fit.fits), a.keep_probability)
        return picks

    return recommend


def learned_recommender(client: ShopClient, model_ids: dict[str, int]) -> Recommend:
    """The service's advice with the learned state in use, as a store's kiosk asks for it."""

    def recommend(subject: Subject, models: list[quality.Model]) -> dict[str, Pick]:
        picks = {}
        for m in models:
            fit = client.size(subject.passport_id, model_ids[m.code])
            picks[m.code] = Pick(quality.Advice(fit.sku, fit.fits), fit.keep_probability)
        return picks

    return recommend


def latent_recommender(latent: LatentSizes, brands: dict[str, str]) -> Recommend:
    """The latent-size model: per model, the size of any width fitting most likely to fit the customer (learned
    size for a customer with events, else their scanned foot length); it never says a model does not fit."""

    def recommend(subject: Subject, models: list[quality.Model]) -> dict[str, Pick]:
        picks = {}
        for m in models:
            best = (-1.0, "")
            for width in sorted({s.width for s in m.sizes}):
                run = [s for s in m.sizes if s.width == width]
                chances = latent.fit_probability(loyalty_id(subject.customer.seed), subject.foot_length_mm,
                                                 (brands[m.code], m.code, width), [s.nominal_mm for s in run])
                k = int(np.argmax(chances))
                best = max(best, (float(chances[k]), run[k].sku))
            picks[m.code] = Pick(quality.Advice(best[1], fits=True), best[0])
        return picks

    return recommend


def oracle_recommender(subject: Subject, models: list[quality.Model]) -> dict[str, Pick]:
    return {m.code: Pick(subject.judged.oracle[m.code], None) for m in models}


def latent_observations(said: list[tuple[str, Said]], models: dict[str, quality.Model],
                        brands: dict[str, str]) -> list[FitObservation]:
    """Every event posted that says what became of a size, as the latent-size model reads it."""
    sizes = {s.sku: s for m in models.values() for s in m.sizes}
    at = datetime.now(timezone.utc)
    return [FitObservation(customer=customer, brand=brands[s.model_code], model=s.model_code, width=sizes[s.sku].width,
                           category=models[s.model_code].category, level=models[s.model_code].level,
                           values_mm=NO_READINGS, nominal_length_mm=sizes[s.sku].nominal_mm, source=s.source, at=at,
                           kept=s.kept, complaint_region=s.complaint_region, complaint_direction=s.complaint_direction,
                           return_reason=s.return_reason)
            for customer, s in said]


# --- scoring ----------------------------------------------------------------------------------------------------


@dataclass
class Scorer:
    """Scores picks against the truth; a size the truth's walk did not try is tried now (and kept)."""

    models: dict[str, quality.Model]
    catalogue: SyntheticCatalogue
    extra: dict[tuple[int, str], PairComfort] = field(default_factory=dict)  # (seed, sku) -> comfort

    def score(self, checkpoint: int, cohort: str, name: str, subject: Subject, picks: dict[str, Pick],
              own: set[str]) -> list[Scored]:
        by_code = {c.model_code: c for c in subject.judged.choices}
        out = []
        for code, pick in picks.items():
            choice, model, tried = by_code[code], self.models[code], None
            sku = pick.advice.sku
            if sku not in choice.scores:
                key = (subject.customer.seed, sku)
                if key not in self.extra:
                    feet = quality.placed_feet(subject_of(subject.customer))
                    self.extra[key] = quality.true_pair_comfort(feet, model, sku, preferences_of(subject.customer),
                                                                self.catalogue)
                tried = self.extra[key]
            score = choice.scores[sku] if tried is None else tried.score
            size_kept = choice.keeps(sku, tried)
            outcome = quality.outcome(name, subject.customer.seed, model, choice, pick.advice, score, size_kept)
            out.append(Scored(checkpoint, cohort, name, code, code in own, pick.advice.fits, size_kept,
                              pick.keep_probability, outcome))
        return out

    def refused(self, checkpoint: int, cohort: str, name: str, subject: Subject, codes: list[str],
                own: set[str]) -> list[Scored]:
        by_code = {c.model_code: c for c in subject.judged.choices}
        return [Scored(checkpoint, cohort, name, code, code in own, False, False, None,
                       quality.refused(name, subject.customer.seed, self.models[code], by_code[code]))
                for code in codes]


def evaluate(checkpoint: int, cohort: str, subjects: list[tuple[Subject, list[str]]],
             recommenders: dict[str, Recommend], scorer: Scorer, own: set[str],
             seconds: dict[str, float]) -> list[Scored]:
    """Every recommender on every (subject, model) pair given."""
    scored = []
    for name, recommend in recommenders.items():
        started = time.perf_counter()
        for subject, codes in subjects:
            models = [scorer.models[code] for code in codes]
            try:
                picks = recommend(subject, models)
            except FootfitError as e:
                print(f"    {name} refused customer {subject.customer.seed}: {e}")
                scored += scorer.refused(checkpoint, cohort, name, subject, codes, own)
                continue
            scored += scorer.score(checkpoint, cohort, name, subject, picks, own)
        seconds[f"evaluate at {checkpoint}: {cohort}, {name}"] = time.perf_counter() - started
    return scored


# --- the report -------------------------------------------------------------------------------------------------


def _pct(flags) -> float:
    return quality._percent(list(flags))


def summary_row(rows: list[Scored]) -> str:
    o = [s.outcome for s in rows]
    steps = np.array([x.signed_steps for x in o])
    bought = [s for s in rows if s.fits]  # a webshop sells the recommended size where the advice says it fits
    returns = 100.0 * (1.0 - KEPT_ANYWAY_SHARE) * np.mean([not s.size_kept for s in bought]) if bought else np.nan
    chances = [s for s in rows if s.keep_probability is not None]
    cal = calibration(np.array([s.keep_probability for s in chances]), np.array([s.size_kept for s in chances])) \
        if chances else None
    parity = {p: [s.outcome.kept for s in rows if s.outcome.seed % 2 == p] for p in (0, 1)}
    return (f"{len(rows):6d} {_pct(x.kept for x in o):6.1f}% {_pct(parity[0]):6.1f}% {_pct(parity[1]):6.1f}% "
            f"{_pct(x.right for x in o):6.1f}% {_pct(x.within_one for x in o):6.1f}% "
            f"{100 * np.mean(steps < 0):6.1f}% {100 * np.mean(steps > 0):6.1f}% {_pct(s.fits for s in rows):6.1f}% "
            f"{returns:7.1f} "
            f"{np.nanmean([x.comfort_loss for x in o]):7.2f} "
            + (f"{cal.brier:6.3f} {100 * worst_gap(cal):6.1f}" if cal else f"{'-':>6} {'-':>6}"))


def worst_gap(cal: Calibration) -> float:
    """The largest |observed - predicted| over the reliability bins holding at least MIN_BIN pairs."""
    return max((abs(b.observed - b.predicted) for b in cal.bins if b.count >= MIN_BIN), default=float("nan"))


SUMMARY_HEAD = (f"  {'events':>6} {'cohort':9} {'recommender':11} {'pairs':>6} {'kept':>7} {'even':>7} {'odd':>7} "
                f"{'best':>7} {'within1':>7} {'small':>7} {'large':>7} {'fits':>7} {'ret/100':>7} {'comfort':>7} "
                f"{'Brier':>6} {'gap pt':>6}")


def learning_curve(scored: list[Scored]) -> list[str]:
    """Per checkpoint, cohort and recommender: the headline figures."""
    lines = [SUMMARY_HEAD]
    for checkpoint in sorted({s.checkpoint for s in scored}):
        for cohort in COHORTS:
            for name in RECOMMENDERS:
                rows = [s for s in scored if (s.checkpoint, s.cohort, s.recommender) == (checkpoint, cohort, name)]
                if rows:
                    lines.append(f"  {checkpoint:6d} {cohort:9} {name:11} " + summary_row(rows))
    return lines


def grouped(scored: list[Scored], key: Callable[[Scored], str], title: str) -> list[str]:
    """First size kept / best / within one per group (bench_fit_quality.table over these pairs)."""
    by_outcome = {id(s.outcome): s for s in scored}
    names = [n for n in RECOMMENDERS if any(s.recommender == n for s in scored)]
    return quality.table([s.outcome for s in scored], names, lambda o: key(by_outcome[id(o)]), title)


def reliability(scored: list[Scored]) -> list[str]:
    """The keep chance's 10-bin reliability per recommender that gives one: mean predicted, observed kept, count."""
    names = [n for n in RECOMMENDERS if any(s.recommender == n and s.keep_probability is not None for s in scored)]
    tables = {}
    for name in names:
        rows = [s for s in scored if s.recommender == name and s.keep_probability is not None]
        tables[name] = calibration(np.array([s.keep_probability for s in rows]), np.array([s.size_kept for s in rows]))
    lines = ["  bin       " + " ".join(f"{n + ': pred':>14} {'kept':>6} {'n':>5}" for n in names)]
    for b in range(len(tables[names[0]].bins)):
        cells = []
        for name in names:
            bin_ = tables[name].bins[b]
            cells.append(f"{100 * bin_.predicted:13.1f}% {100 * bin_.observed:5.1f}% {bin_.count:5d}"
                         if bin_.count else f"{'':>14} {'':>6} {0:5d}")
        low = tables[names[0]].bins[b].low
        lines.append(f"  {low:.1f}-{low + 0.1:.1f}   " + " ".join(cells))
    return lines


def fits_threshold(rows: list[Scored]) -> list[str]:
    """The learned advice says a model fits when its size's keep chance reaches settings.learning.fits_keep_chance:
    first size kept at each threshold of FITS_THRESHOLDS, the threshold best on even seeds and what it gives on odd
    ones (how the setting's default was chosen, docs/fit-quality.md)."""
    rows = [s for s in rows if s.recommender == "learned" and s.keep_probability is not None]
    if not rows:
        return []

    def right(threshold: float, parity: int) -> float:
        picked = [s for s in rows if s.outcome.seed % 2 == parity]
        return _pct(s.keep_probability < threshold if s.outcome.none_kept
                    else s.keep_probability >= threshold and s.size_kept for s in picked)

    best = max(FITS_THRESHOLDS, key=lambda t: (right(t, 0), -abs(t - 0.5)))
    lines = [f"  {'keep chance >=':>14} " + " ".join(f"{t:6.2f}" for t in FITS_THRESHOLDS)]
    for parity, name in enumerate(("even seeds", "odd seeds")):
        lines.append(f"  {name:>14} " + " ".join(f"{right(t, parity):5.1f}%" for t in FITS_THRESHOLDS))
    in_use = get_settings().learning.fits_keep_chance
    lines.append(f"  best on even seeds: {best:.2f} (odd seeds {right(best, 1):.1f}%); the setting in use "
                 f"{in_use:.2f} (odd seeds {right(in_use, 1):.1f}%)")
    return lines


def report_checkpoint(scored: list[Scored], checkpoint: int) -> None:
    here = [s for s in scored if s.checkpoint == checkpoint]
    for cohort in COHORTS:
        rows = [s for s in here if s.cohort == cohort]
        if not rows:
            continue
        print(f"\n  checkpoint {checkpoint} events, {cohort} customers: per last family, per seed parity, by the "
              f"model's own feedback")
        print("\n".join(grouped(rows, lambda s: s.outcome.family, "last family")))
        print("\n".join(grouped(rows, lambda s: ("even", "odd")[s.outcome.seed % 2] + " seeds", "customers")[2:]))
        print("\n".join(grouped(rows, lambda s: "with feedback" if s.own_feedback else "no feedback",
                                "model")[2:]))
        print(f"\n  keep chance reliability, {cohort} customers at {checkpoint} events (the recommended size kept)")
        print("\n".join(reliability(rows)))
        threshold = fits_threshold(rows)
        if threshold:
            print(f"\n  learned advice, {cohort} customers at {checkpoint} events: first size kept when a model "
                  f"fits from this keep chance of its size")
            print("\n".join(threshold))


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Training:
    """What the seasons did: every customer's passport, what they said, the models they tried or bought."""

    passports: dict[int, str] = field(default_factory=dict)  # seed -> passport id
    first_season: dict[int, int] = field(default_factory=dict)
    foot_length_mm: dict[str, float] = field(default_factory=dict)  # loyalty id -> passport's longer foot
    said: list[tuple[str, Said]] = field(default_factory=list)  # (loyalty id, event), in the order posted
    tried: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))  # seed -> model codes
    posted: int = 0
    visits: Counter = field(default_factory=Counter)  # channel -> visits
    seconds: list[float] = field(default_factory=list)
    next_seed: int = TRAINING_FIRST_SEED

    def add(self, done: Shopped) -> None:
        seed = done.errand.seed
        self.passports.setdefault(seed, done.passport_id)
        self.first_season.setdefault(seed, done.errand.season)
        if done.errand.passport_id is None:
            self.foot_length_mm[loyalty_id(seed)] = done.foot_length_mm
        self.said += [(loyalty_id(seed), s) for s in done.visit.said]
        self.tried[seed] |= {s.model_code for s in done.visit.said}
        self.posted += done.visit.posted
        self.visits[done.errand.channel] += 1
        self.seconds.append(done.seconds)


def channel_of(seed: int, season: int) -> str:
    rng = np.random.default_rng([seed, season, _CHANNEL_STREAM])
    return STORE_CHANNEL if rng.random() < STORE_SHARE else WEBSHOP_CHANNEL


def run_season(pool: ProcessPoolExecutor, training: Training, season: int, target: int, jobs: int) -> int:
    """Returning customers first, then new ones until the events said reach `target`; the visits made."""
    errands = [Errand(seed, season, channel_of(seed, season), training.passports[seed])
               for seed in sorted(training.passports)
               if season > training.first_season[seed]
               and returns_in_season(draw_customer(seed), season - training.first_season[seed])]
    pending: set[Future] = set()
    visits = 0
    while errands or pending or len(training.said) < target:
        in_flight = EVENTS_PER_VISIT * len(pending)
        while len(pending) < 2 * jobs and (errands or len(training.said) + in_flight < target):
            if errands:
                errand = errands.pop(0)
            else:
                errand = Errand(training.next_seed, season, channel_of(training.next_seed, season), None)
                training.next_seed += 1
            pending.add(pool.submit(_shop, errand))
            in_flight += EVENTS_PER_VISIT
        if not pending:
            break
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            training.add(future.result())
            visits += 1
    return visits


class Benchmark:
    """One run on a started service: the evaluation customers, the seasons of training and every checkpoint's
    scores."""

    def __init__(self, args: argparse.Namespace, service: LearningService, folder: Path,
                 catalogue: SyntheticCatalogue, pool: ProcessPoolExecutor, seconds: dict[str, float]):
        self.args, self.service, self.pool, self.seconds = args, service, pool, seconds
        self.catalogue, self.models = catalogue, quality.catalogue_models(catalogue)
        self.brands = {r["model_code"]: r["brand"] for r in catalogue.rows}
        self.passports = folder / "passports"
        engine = open_service_db(service.database_url)  # the catalogue exactly as the service holds it
        with engine.connect() as conn:
            self.model_ids = {code: i for i, code in conn.execute(select(ShoeModel.id, ShoeModel.code))}
        self.matcher = Matcher(load_matcher_catalogue(engine))
        self.client = ShopClient(service.address)
        self.scorer = Scorer(self.models, catalogue)
        self.training = Training()
        self.new: list[Subject] = []
        self.returning: list[Subject] = []
        self.scored: list[Scored] = []

    def timed(self, what: str, started: float) -> None:
        self.seconds[what] = time.perf_counter() - started

    def register_new(self, count: int) -> None:
        """The evaluation's new customers: scanned through the simulated rig (cached), judged, registered."""
        profile, calibration_ = get_profile(self.args.profile), rig_calibration()
        customers = [draw_customer(seed) for seed in range(count)]
        started = time.perf_counter()
        scans = [s for s, _ in self.pool.map(quality._timed_scan, customers, [calibration_] * count,
                                             [profile] * count)]
        self.timed("evaluation customers: scans (cached after the first run)", started)
        started = time.perf_counter()
        judged = {j.seed: j for j in self.pool.map(_judge, range(count))}
        self.timed("evaluation customers: truth + oracle (cached after the first run)", started)
        started = time.perf_counter()
        self.new = [Subject(s.customer, s, self.client.register(loyalty_id(s.customer.seed), scan_files_in(s.folder)),
                            judged[s.customer.seed]) for s in scans]
        self.timed("evaluation customers: register + upload", started)
        print(f"{count} new evaluation customers ({sum(c.sex == 'male' for c in customers)} men), scanned "
              f"({profile.name} profile); {sum(len(s.judged.choices) for s in self.new)} customer-model pairs; "
              f"training customers' passports from the cheap path (true meshes sampled and measured by the product's "
              f"code)", flush=True)

    def season(self, season: int, target: int) -> None:
        """Visits until the events said reach `target`, then `footfit learn` and the service using its result."""
        started = time.perf_counter()
        visits = run_season(self.pool, self.training, season, target, self.args.jobs)
        self.timed(f"season {season}: {visits} visits", started)
        started = time.perf_counter()
        learned = self.service.learn()
        probe = self.new[0]
        waited = self.service.wait_until_used(learned.in_use, probe.passport_id,
                                              self.model_ids[probe.judged.choices[0].model_code])
        self.timed(f"season {season}: footfit learn + the service using it ({waited:.0f} s)", started)
        t = self.training
        print(f"  season {season}: {visits} visits, {len(t.said)} events said ({t.posted} posted), "
              f"{len(t.passports)} customers so far; {learned.printed}", flush=True)

    def evaluate_at(self, events: int) -> None:
        """Every recommender on the new customers' pairs and the returning customers' untried models."""
        own = {s.model_code for _, s in self.training.said}
        started = time.perf_counter()
        latent = learn_latent_sizes(latent_observations(self.training.said, self.models, self.brands),
                                    self.training.foot_length_mm)
        self.timed(f"latent-size model at {events}", started)
        recommenders = {"label": label_recommender, "geometry": geometry_recommender(self.matcher, self.model_ids),
                        "learned": learned_recommender(self.client, self.model_ids),
                        "latent": latent_recommender(latent, self.brands), "oracle": oracle_recommender}
        pairs = [(s, [c.model_code for c in s.judged.choices]) for s in self.new]
        self.scored += evaluate(events, "new", pairs, recommenders, self.scorer, own, self.seconds)
        self.add_returning(events)
        pairs = [(s, sorted(self.untried(s.customer.seed))) for s in self.returning]
        if any(codes for _, codes in pairs):
            self.scored += evaluate(events, "returning", [(s, codes) for s, codes in pairs if codes], recommenders,
                                    self.scorer, own, self.seconds)
        print("\n".join(learning_curve([s for s in self.scored if s.checkpoint == events])[1:]), flush=True)

    def add_returning(self, events: int) -> None:
        """The first `--returning` training customers join the returning cohort once they have shopped."""
        known = {s.customer.seed for s in self.returning}
        joining = [seed for seed in sorted(self.training.passports)[:self.args.returning] if seed not in known]
        if not joining:
            return
        started = time.perf_counter()
        for j in self.pool.map(_judge, joining, [self.untried(seed) for seed in joining]):
            customer = draw_customer(j.seed)
            scan = ScannedCustomer(customer, passport_folder(self.passports, j.seed), "cheap path", 0)
            self.returning.append(Subject(customer, scan, self.training.passports[j.seed], j))
        self.timed(f"returning customers at {events}: truth + oracle", started)

    def untried(self, seed: int) -> frozenset[str]:
        """The models of the customer's category they have not tried or bought."""
        return (frozenset(m.code for m in quality.models_for(draw_customer(seed), self.models))
                - self.training.tried[seed])

    def report(self) -> None:
        print("\n\nlearning curve (events: said before the checkpoint; kept: first size kept, with even and odd "
              "seeds apart; fits: the share of pairs the recommender says fit, the only ones a webshop sells; "
              "ret/100: returns for size per 100 of those purchases; comfort: comfort lost; Brier and the worst "
              f"reliability bin's gap in points (bins of {MIN_BIN} pairs or more), of the recommended size being "
              "kept)")
        print("\n".join(learning_curve(self.scored)))
        for events in sorted({s.checkpoint for s in self.scored}):
            report_checkpoint(self.scored, events)
        t = self.training
        mean_visit = np.mean(t.seconds) if t.seconds else float("nan")
        print(f"\n  training: {sum(t.visits.values())} visits ({dict(t.visits)}), {len(t.passports)} customers, "
              f"{len(t.said)} events said, {t.posted} posted; {mean_visit:.2f} s per visit in a worker")
        out = get_settings().data_dir / "bench" / f"learning-{self.args.models}-{self.args.catalogue_seed}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([{**{k: v for k, v in asdict(s).items() if k != "outcome"}, **asdict(s.outcome)}
                                   for s in self.scored]))
        print(f"  per pair outcomes: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"a ~5 minute run: {QUICK}")
    parser.add_argument("--eval-customers", type=int, default=300)
    parser.add_argument("--returning", type=int, default=200, help="returning customers evaluated")
    parser.add_argument("--seasons", default=",".join(map(str, SEASONS)), help="events said at each season's end")
    parser.add_argument("--checkpoints", default=",".join(map(str, CHECKPOINTS)), help="season ends to evaluate at")
    parser.add_argument("--models", type=int, default=80)
    parser.add_argument("--catalogue-seed", type=int, default=2026)
    parser.add_argument("--profile", default="light", help="the evaluation customers' scan profile")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the service's folder (database, passports, log)")
    args = parser.parse_args()
    if args.quick:
        args.seasons, args.checkpoints = QUICK["seasons"], QUICK["checkpoints"]
        args.eval_customers, args.returning = QUICK["eval_customers"], QUICK["returning"]
    else:
        args.seasons = tuple(int(x) for x in args.seasons.split(","))
        args.checkpoints = tuple(int(x) for x in args.checkpoints.split(","))
    if not set(args.checkpoints) <= set(args.seasons):
        parser.error(f"every checkpoint must be a season's end ({args.seasons})")
    seconds: dict[str, float] = {}
    run_started = started = time.perf_counter()

    folder = Path(tempfile.mkdtemp(prefix="footfit-learning-"))
    catalogue = generate_catalogue(args.models, args.catalogue_seed)
    products = write_catalogue(catalogue, folder / "catalogue")
    seconds["catalogue: generate + write"] = time.perf_counter() - started
    print(f"learning benchmark in {folder}: catalogue {args.models} models, {len(catalogue.rows)} sizes "
          f"(seed {args.catalogue_seed})", flush=True)
    try:
        started = time.perf_counter()
        with learning_service(folder / "service", products, products.parent / "interiors") as service, \
                ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                                    initargs=(args.models, args.catalogue_seed, service.address, service.database_url,
                                              folder / "passports")) as pool:
            seconds["service: start + import the catalogue over the API"] = time.perf_counter() - started
            bench = Benchmark(args, service, folder, catalogue, pool, seconds)
            bench.register_new(args.eval_customers)
            print("\n" + SUMMARY_HEAD, flush=True)
            bench.evaluate_at(0)
            for season, target in enumerate(args.seasons, start=1):
                bench.season(season, target)
                if target in args.checkpoints:
                    bench.evaluate_at(target)
            bench.report()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n  timings")
    for what, s in seconds.items():
        print(f"  {what:58} {s:8.1f} s")
    print(f"  {'whole run':58} {time.perf_counter() - run_started:8.1f} s")


if __name__ == "__main__":
    main()
