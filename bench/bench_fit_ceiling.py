"""How well could any matcher do on this catalogue? The fit-quality benchmark's ceiling (issue 5, Quality).

    .venv/bin/python bench/bench_fit_ceiling.py [--customers 30] [--models 80] [--jobs 2]

The matcher knows a shoe only by the catalogue's interiors: the scanned sizes' own, and for every other size
one graded by the importer from its model's scanned size. The simulated customer feels the size's TRUE last.
This benchmark takes the simulator's own judgement of comfort (simulator/comfort.py) and the customer's TRUE feet,
i.e. a matcher that knows the feet exactly and judges exactly as the customer does, and lets it choose each
model's size from what the product can know: the catalogue's interiors (the imported sections, meshed as they
are read: 48 cross-sections of 36 radii between flat ends at the heel and the toe), by the customer's own kept
rule on what it reads (the cheapest size it reads as kept, or "does not fit" when it reads none as kept). Its
first-size-kept rate is the most a matcher can reach with this catalogue; the gap to 100% is the catalogue's, not
the matcher's.

Beside it, for the same customers and the same sizes:
- the oracle on the TRUE lasts (100% by construction: a check of this script);
- the oracle on the true lasts cut into the catalogue's representation (48 x 36 sections): what the
  representation loses before any grading;
- both oracles again with the representation's systematic bias taken off every region value (the mean of
  sections-minus-true over the run, e.g. the outline's polygon reads the girth ~0.9 mm small): a matcher could
  learn such an offset, so the ceiling should not charge it;
- the matcher on the customer's scan, the matcher on a PERFECT scan (the true foot meshes sampled densely and
  measured by the product's code: what a flawless scanner would give it) and the label baseline;
- per chooser, the comfort lost against the best size, and how often the chosen size is within a margin of the
  best (a customer who cannot tell sizes that close apart would call it right);
- how far the catalogue's interiors are from the true lasts (inner length and girth of every size tried).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from dataclasses import replace

import bench_fit_quality as quality  # the sibling script: Python puts a script's own folder first on sys.path
import numpy as np

from core.mesh import Mesh
from device.profile import get_profile
from fitcore.fit.clearance import outline_measures
from fitcore.fit.matcher import ScannedFeet
from fitcore.fit.sections import STATIONS, section_outlines_mm, sections_from_mesh, station_x_mm
from fitcore.scan.measure import measure_mesh, sample_surface
from fitcore.scan.passport import Passport, foot_model
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import last_interior, true_last
from simulator.comfort import Cavity, PairComfort, RegionFit, judged, kept, preference, region_fit
from simulator.customers import draw_customer, preferences_of, subject_of
from testing.scanned_customers import rig_calibration, scanned_customer

_worker: dict = {}
VALUES = ("toe_room_mm", "toe_box_pressure_mm", "forefoot_girth_mm", "forefoot_width_mm", "forefoot_pressure_mm",
          "instep_pressure_mm", "heel_width_mm")  # the region values the customer's costs are made of
MARGINS = (0.0, 0.5, 1.0, 2.0)  # comfort margins (squared perception thresholds) of the "could not tell" columns
PERFECT_SCAN_PER_MM2 = 0.5  # ~40,000 points per foot, over the whole skin (sole included)


def sections_mesh(sections: np.ndarray, length_mm: float) -> Mesh:
    """The interior as the catalogue holds it, as a closed mesh: the outline at each station, the first and last
    repeated at x = 0 and x = length (flat ends, as the radial clearance's end caps), and a centre at each end."""
    x = np.r_[0.0, station_x_mm(length_mm), length_mm]
    outlines = section_outlines_mm(sections, length_mm, x)  # (K, ANGLES, 2); the ends take the end stations
    k_count, n_ang = outlines.shape[:2]
    rings = np.concatenate([np.repeat(x, n_ang)[:, None], outlines.reshape(-1, 2)], axis=1)
    ends = np.array([[0.0, *outlines[0].mean(axis=0)], [length_mm, *outlines[-1].mean(axis=0)]])
    vertices = np.concatenate([rings, ends])
    triangles = []
    for k in range(k_count - 1):
        for j in range(n_ang):
            a, b = k * n_ang + j, k * n_ang + (j + 1) % n_ang
            triangles += [(a, b, a + n_ang), (b, b + n_ang, a + n_ang)]
    heel, toe = len(rings), len(rings) + 1
    last = (k_count - 1) * n_ang
    for j in range(n_ang):
        triangles += [(heel, (j + 1) % n_ang, j), (toe, last + j, last + (j + 1) % n_ang)]
    return Mesh(vertices, np.asarray(triangles, dtype=np.int32))


def _init(models: int, seed: int) -> None:
    quality._init_worker(models, seed)  # the truth's cache, as the quality benchmark keeps it
    _, engine, _, _ = quality.imported_catalogue(models, seed)
    interiors = load_matcher_catalogue(engine)
    _worker.update(quality._worker, sizes={str(s): i for i, s in enumerate(interiors.sku)}, interiors=interiors)


def oracle_choices(seed: int) -> list[dict]:
    """Per model: the truth (quality.TrueChoice), and per size it tried each foot's region fit in the true last, in
    the true last cut into sections and in the catalogue's interior (judged later, once the representation's bias
    is known)."""
    customer = draw_customer(seed)
    feet = quality.placed_feet(subject_of(customer))
    truth = {c.model_code: c for c in quality._timed_truth(customer)[0]}
    c = _worker["interiors"]
    out = []
    for model in quality.models_for(customer, _worker["models"]):
        fits, gaps = {"true": {}, "sections": {}, "catalogue": {}}, []
        for sku in truth[model.code].scores:
            i = _worker["sizes"][sku]
            known, known_length = c.sections[i].astype(np.float64), float(c.inner_length_mm[i])
            true = last_interior(true_last(_worker["catalogue"], sku))
            true_length = float(np.ptp(true.vertices_mm[:, 0]))
            true_sections = sections_from_mesh(true.vertices_mm, true.triangles, true_length).astype(np.float64)
            for name, cavity in (("true", Cavity(true)),
                                 ("sections", Cavity(sections_mesh(true_sections, true_length))),
                                 ("catalogue", Cavity(sections_mesh(known, known_length)))):
                fits[name][sku] = [region_fit(foot, cavity) for foot in feet.values()]
            gaps.append(_interior_gap(known, known_length, true_sections, true_length))
        out.append(dict(model=model.code, truth=truth[model.code], fits=fits, gaps=gaps))
    return out


def representation_bias(per_customer: list[list[dict]]) -> np.ndarray:
    """Per region value (VALUES): the mean of what the true last cut into 48 x 36 sections reads minus what the
    true last itself reads, over every foot and size of this run. A systematic offset of the representation
    (e.g. a polygon's outline inside the curve it samples) that any matcher could learn and take off."""
    differences = [[getattr(a, k) - getattr(b, k) for k in VALUES]
                   for choices in per_customer for choice in choices for sku in choice["fits"]["true"]
                   for a, b in zip(choice["fits"]["sections"][sku], choice["fits"]["true"][sku])]
    return np.mean(differences, axis=0)


def pair_judged(fits: list[RegionFit], wants, bias: np.ndarray | None = None) -> PairComfort:
    """The customer's comfort of the pair from the feet's region fits (simulator.comfort's judgement), optionally
    with the representation's bias taken off every value first."""
    if bias is not None:
        fits = [replace(f, **{k: getattr(f, k) - d for k, d in zip(VALUES, bias)}) for f in fits]
    return PairComfort(*(judged(f, wants) for f in fits))


def oracle_advice(fits: dict[str, list[RegionFit]], wants, bias: np.ndarray | None = None) -> quality.Advice:
    """What an oracle that reads the pair as `fits` says, by the customer's own kept rule: the cheapest size it
    reads as kept, or, when it reads none as kept, the cheapest size and that the model does not fit."""
    pairs = {sku: pair_judged(f, wants, bias) for sku, f in fits.items()}
    best_cost = min(p.cost for p in pairs.values())
    keepable = [sku for sku, p in pairs.items() if kept(p, best_cost)]
    cheapest = min(keepable or pairs, key=lambda sku: pairs[sku].cost)
    return quality.Advice(cheapest, fits=bool(keepable))


def perfect_scan(scan) -> ScannedFeet:
    """The customer's feet as a flawless scanner would deliver them: the true foot meshes, densely sampled,
    measured into the foot frame by the product's own code (fitcore.scan.measure), in the scanned passport's place."""
    passport = Passport.load(scan.passport_path)
    subject, feet, points = subject_of(scan.customer), {}, {}
    for side in ("left", "right"):
        mesh = getattr(subject, side)
        measured = measure_mesh(mesh, side)
        t = measured.foot_from_plate
        points[side] = sample_surface(mesh, per_mm2=PERFECT_SCAN_PER_MM2)[0] @ t[:3, :3].T + t[:3, 3]
        scanned = getattr(passport.feet, side)
        feet[side] = foot_model(measured, scanned.pressure, scanned.quality)
    passport = passport.model_copy(update={"feet": passport.feet.model_copy(update=feet)})
    return ScannedFeet.from_arrays(passport, points["left"], points["right"])


def _interior_gap(known: np.ndarray, known_length_mm: float, true: np.ndarray, true_length_mm: float):
    """(inner length, girth at 71% of the length) of the catalogue's interior minus the true last's, mm."""
    perimeters, _ = outline_measures(np.stack([known, true]).astype(np.float64), 0.0)
    at = int(0.71 * STATIONS)
    return known_length_mm - true_length_mm, float(perimeters[0, at] - perimeters[1, at])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=30)
    parser.add_argument("--models", type=int, default=80)
    parser.add_argument("--catalogue-seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    catalogue, engine, _, _ = quality.imported_catalogue(args.models, args.catalogue_seed)
    models = quality.catalogue_models(catalogue)
    seeds = list(range(args.customers))
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(args.models, args.catalogue_seed)) as pool:
        per_customer = list(pool.map(oracle_choices, seeds))
    calibration, profile = rig_calibration(), get_profile("light")
    scans = [scanned_customer(draw_customer(s), calibration, profile) for s in seeds]
    recommenders = {"matcher": quality.matcher_recommender(engine),
                    "matcher, perfect scan": quality.matcher_recommender(engine, perfect_scan),
                    "label": quality.label_size}
    picks = {name: [recommend(scan, quality.models_for(scan.customer, models)) for scan in scans]
             for name, recommend in recommenders.items()}
    bias = representation_bias(per_customer)

    rows = {name: [] for name in ("oracle, true lasts", "oracle, true lasts as sections",
                                  "oracle, sections, bias taken off", "oracle, catalogue",
                                  "oracle, catalogue, bias taken off", *recommenders)}
    gaps = []
    for k, choices in enumerate(per_customer):
        customer = draw_customer(seeds[k])
        personal, feet = preferences_of(customer), None
        for choice in choices:
            model, truth = models[choice["model"]], choice["truth"]
            wants = preference(model.category, model.level, personal)
            sizes = {s.sku: s for s in model.sizes}
            advice = {"oracle, true lasts": oracle_advice(choice["fits"]["true"], wants),
                      "oracle, true lasts as sections": oracle_advice(choice["fits"]["sections"], wants),
                      "oracle, sections, bias taken off": oracle_advice(choice["fits"]["sections"], wants, bias),
                      "oracle, catalogue": oracle_advice(choice["fits"]["catalogue"], wants),
                      "oracle, catalogue, bias taken off": oracle_advice(choice["fits"]["catalogue"], wants, bias),
                      **{name: picks[name][k][choice["model"]] for name in recommenders}}
            for name, said in advice.items():  # (first size kept, best, within one size, comfort lost)
                tried = None
                if said.sku not in truth.scores:  # a size the truth did not try (a recommender's pick far off)
                    feet = feet or quality.placed_feet(subject_of(customer))
                    tried = quality.true_pair_comfort(feet, model, said.sku, personal, catalogue)
                score = truth.scores[said.sku] if tried is None else tried.score
                first_kept = not said.fits if not truth.kept else said.fits and truth.keeps(said.sku, tried)
                rows[name].append((first_kept, said.sku in truth.best,
                                   min(sizes[said.sku].distance(sizes[b]) for b in truth.best) <= 1 + 1e-6,
                                   max(truth.scores.values()) - score))
            gaps += choice["gaps"]
    gaps = np.array(gaps)
    print(f"\nfit-quality ceiling: {len(seeds)} customers, {len(rows['matcher'])} customer-model pairs, "
          f"catalogue {args.models} models (seed {args.catalogue_seed}); among the sizes the truth tried\n")
    print(f"  {'chooser':34} {'first size kept':>16} {'best size':>10} {'within one size':>16} {'comfort lost':>13}"
          "   " + "  ".join(f"{f'<= {m:g}':>6}" for m in MARGINS))
    for name, outcomes in rows.items():
        first_kept, right, within, lost = np.mean(outcomes, axis=0)
        lost_each = np.array([o[3] for o in outcomes])
        print(f"  {name:34} {100 * first_kept:15.1f}% {100 * right:9.1f}% {100 * within:15.1f}% {lost:13.2f}   "
              + "  ".join(f"{100 * np.mean(lost_each <= m + 1e-9):5.1f}%" for m in MARGINS))
    print("  (first size kept: as bench_fit_quality.py counts it, a model in which no size is kept right only when "
          "the chooser says it does not fit; <= m: the chosen size's true comfort within m squared perception "
          "thresholds of the best)")
    print(f"\n  catalogue interior minus true last over {len(gaps)} sizes tried: inner length "
          f"{gaps[:, 0].mean():+.1f} +- {gaps[:, 0].std():.1f} mm, girth at 71% {gaps[:, 1].mean():+.1f} +- "
          f"{gaps[:, 1].std():.1f} mm")
    print("  representation bias (true last as sections minus true last), per foot: "
          + ", ".join(f"{k} {d:+.2f}" for k, d in zip(VALUES, bias)))
    print(f"  time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
