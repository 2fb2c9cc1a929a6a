"""How well could any matcher do on this catalogue? The fit-quality benchmark's ceiling (issue 5, Quality).

    .venv/bin/python bench/bench_fit_ceiling.py [--customers 30] [--models 80] [--jobs 2]

The matcher knows a shoe only by the catalogue's interiors: the scanned sizes' own, and for every other size
one graded by the importer from its model's scanned size. The simulated customer feels the size's TRUE last.
This benchmark takes the simulator's own judgement of comfort (simulator/comfort.py) and the customer's TRUE feet,
i.e. a matcher that knows the feet exactly and judges exactly as the customer does, and lets it choose each
model's size from what the product can know: the catalogue's interiors (the imported sections, meshed as they
are read: 48 cross-sections of 36 radii between flat ends at the heel and the toe). Its first-size-right rate
is the most a matcher can reach with this catalogue; the gap to 100% is the catalogue's, not the matcher's.

Beside it, for the same customers and the same sizes: the oracle on the TRUE lasts (100% by construction: a
check of this script), the oracle on the true lasts cut into the catalogue's representation (48 x 36 sections:
what the representation alone loses, before any grading), the matcher and the label baseline
(bench/bench_fit_quality.py's recommenders), and how far the catalogue's interiors are from the true lasts
(ball girth and inner length of every size tried).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_fit_quality as quality  # noqa: E402
from device.profile import get_profile  # noqa: E402
from fitcore.mesh import Mesh  # noqa: E402
from shoe_db.matcher_catalogue import load_matcher_catalogue  # noqa: E402
from fitcore.clearance import outline_measures  # noqa: E402
from shoe_db.sections import STATIONS, section_outlines_mm, sections_from_mesh, station_x_mm  # noqa: E402
from simulator.catalog import last_interior, true_last  # noqa: E402
from simulator.comfort import Cavity, comfort, preference  # noqa: E402
from simulator.customers import draw_customer, rig_calibration, scanned_customer, subject_of  # noqa: E402

_worker: dict = {}


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
    """Per model: the truth's scores (true lasts) and the oracle's (catalogue interiors) of the sizes tried."""
    customer = draw_customer(seed)
    feet = quality.placed_feet(subject_of(customer))
    truth = {c.model_code: c for c in quality._timed_truth(customer)[0]}
    c = _worker["interiors"]
    out = []
    for model in quality.models_for(customer, _worker["models"]):
        wants = preference(model.category, model.level)
        catalogue_scores, sections_scores, gaps = {}, {}, []
        for sku in truth[model.code].scores:
            i = _worker["sizes"][sku]
            known, known_length = c.sections[i].astype(np.float64), float(c.inner_length_mm[i])
            true = last_interior(true_last(_worker["catalogue"], sku))
            true_length = float(np.ptp(true.vertices_mm[:, 0]))
            true_sections = sections_from_mesh(true.vertices_mm, true.triangles, true_length).astype(np.float64)
            for scores, sections, length in ((catalogue_scores, known, known_length),
                                             (sections_scores, true_sections, true_length)):
                cavity = Cavity(sections_mesh(sections, length))
                scores[sku] = sum(comfort(foot, cavity, wants).score for foot in feet.values())
            gaps.append(_interior_gap(known, known_length, true_sections, true_length))
        out.append(dict(model=model.code, truth=truth[model.code].scores, sections=sections_scores,
                        catalogue=catalogue_scores, gaps=gaps))
    return out


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
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(args.models, args.catalogue_seed)) as pool:
        per_customer = list(pool.map(oracle_choices, seeds))
    calibration, profile = rig_calibration(), get_profile("light")
    scans = [scanned_customer(draw_customer(s), calibration, profile) for s in seeds]
    recommenders = {"matcher": quality.matcher_recommender(engine), "label": quality.label_size}
    picks = {name: [recommend(scan, quality.models_for(scan.customer, models)) for scan in scans]
             for name, recommend in recommenders.items()}

    rows = {name: [] for name in ("oracle, true lasts", "oracle, true lasts as sections", "oracle, catalogue",
                                  *recommenders)}
    gaps = []
    for k, choices in enumerate(per_customer):
        for choice in choices:
            best = quality.TrueChoice(choice["model"], choice["truth"]).best
            sizes = {s.sku: s for s in models[choice["model"]].sizes}
            chosen = {"oracle, true lasts": max(choice["truth"], key=choice["truth"].get),
                      "oracle, true lasts as sections": max(choice["sections"], key=choice["sections"].get),
                      "oracle, catalogue": max(choice["catalogue"], key=choice["catalogue"].get),
                      **{name: picks[name][k][choice["model"]] for name in recommenders}}
            for name, sku in chosen.items():  # (right, within one size)
                rows[name].append((sku in best, min(sizes[sku].distance(sizes[b]) for b in best) <= 1 + 1e-6))
            gaps += choice["gaps"]
    gaps = np.array(gaps)
    print(f"\nfit-quality ceiling: {len(seeds)} customers, {len(rows['matcher'])} customer-model pairs, "
          f"catalogue {args.models} models (seed {args.catalogue_seed}); among the sizes the truth tried\n")
    print(f"  {'chooser':32} {'first size right':>17} {'within one size':>16}")
    for name, outcomes in rows.items():
        right, within = np.mean(outcomes, axis=0)
        print(f"  {name:32} {100 * right:16.1f}% {100 * within:15.1f}%")
    print(f"\n  catalogue interior minus true last over {len(gaps)} sizes tried: inner length "
          f"{gaps[:, 0].mean():+.1f} +- {gaps[:, 0].std():.1f} mm, girth at 71% {gaps[:, 1].mean():+.1f} +- "
          f"{gaps[:, 1].std():.1f} mm")
    print(f"  time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
