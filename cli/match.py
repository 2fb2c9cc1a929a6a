"""`footfit match` and `footfit tryon`: the matcher on a scanned passport and the catalogue of the settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.errors import CatalogError
from fitcore.fit.fit_model import FootFit
from fitcore.fit.matcher import Matcher, MatchFilters, ScannedFeet, SizeFit
from shoe_db.loading import load_matcher_catalogue


def add_match_commands(sub) -> None:
    """Register `match` and `tryon` on the `footfit` sub-command parser."""
    match = sub.add_parser("match", help="the best shoes and sizes for a scanned passport",
                           description="Match a passport (with left.ply/right.ply beside it) against the catalogue "
                                       "of the settings: the best models after the filters, each in its best size "
                                       "(docs/fit-model.md).")
    match.add_argument("passport", type=Path, metavar="PASSPORT", help="passport.json written by `footfit scan`")
    match.add_argument("--top", type=int, default=3, metavar="N", help="how many models (default 3)")
    match.add_argument("--category", help="walking, running, trail, hiking, ski, cycling, casual")
    match.add_argument("--gender", help="men, women or kids (unisex models match men and women)")
    match.add_argument("--store", metavar="CODE", help="only models in stock there in the recommended size")
    match.add_argument("--json", action="store_true", help="machine-readable output")
    match.set_defaults(func=match_command)
    tryon = sub.add_parser("tryon", help="how a passport's feet fit one size of one model",
                           description="Virtual try-on: both feet's region verdicts in one size of one model, and "
                                       "(with --json) the clearance at every foot point.")
    tryon.add_argument("passport", type=Path, metavar="PASSPORT")
    tryon.add_argument("--model", required=True, metavar="ID", help="model id or model code")
    tryon.add_argument("--size", required=True, metavar="S", help="size label as printed (42, '8 1/2') or a SKU")
    tryon.add_argument("--json", action="store_true", help="machine-readable output, with per-point clearance")
    tryon.set_defaults(func=tryon_command)


def _matcher() -> Matcher:
    from api.db import open_service_db

    return Matcher(load_matcher_catalogue(open_service_db()))


def match_command(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise CatalogError(f"--top {args.top}: ask for at least one model")
    feet = ScannedFeet.load(args.passport)
    matcher = _matcher()
    recommendations = matcher.top(feet, args.top, MatchFilters(category=args.category, gender=args.gender,
                                                               store=args.store))
    if args.json:
        print(json.dumps([r.to_dict() for r in recommendations], indent=1))
        return 0
    if not recommendations:
        print("no model passes the filters: widen them (category, gender, store)")
    for rank, r in enumerate(recommendations, 1):
        f = r.fit
        print(f"{rank}. {r.brand} {r.model_name} ({r.category}, {r.model_code}, model {f.model_id}): "
              f"{f.size_system} {f.size_label}{_width(f.width)}, score {f.score:.0f}, {r.price:.2f} {r.currency}: "
              f"{r.reason}")
        neighbours = [f"{name} {s.size_label}: {s.score:.0f}" for name, s in (("down", f.size_down), ("up", f.size_up))
                      if s is not None]
        print(f"   {f.deciding_foot} foot decides; " + "; ".join(neighbours))
    return 0


def tryon_command(args: argparse.Namespace) -> int:
    feet = ScannedFeet.load(args.passport)
    matcher = _matcher()
    model_id = resolve_model(matcher, args.model)
    tried = matcher.tryon(feet, model_id, resolve_size(matcher, model_id, args.size))
    if args.json:
        print(json.dumps(tried.to_dict()))
        return 0
    size: SizeFit = tried.size
    print(f"model {model_id}, {size.size_system} {size.size_label}{_width(size.width)} ({size.sku}): score "
          f"{size.score:.0f}")
    for foot in (tried.left, tried.right):
        inside = foot.clearance_mm[foot.in_shoe]
        print(f"  {_foot_line(foot.fit)}; clearance over {len(inside)} points in the shoe: min {inside.min():.1f}, "
              f"median {np.median(inside):.1f} mm")
    return 0


def _foot_line(fit: FootFit) -> str:
    regions = ", ".join(f"{r.region} {r.verdict} ({r.value_mm:+.1f} mm"
                        + ("" if r.width_mm is None else f", across {r.width_mm:+.1f} mm") + ")" for r in fit.regions)
    return f"{fit.side:5}: {fit.verdict}, score {fit.score:.0f}: {regions}"


def _width(width: str) -> str:
    return "" if width == "standard" else f" {width}"


def resolve_model(matcher: Matcher, key: str) -> int:
    """A model id from an id or a model code."""
    models = matcher.catalogue.models
    if key.strip().isdigit() and int(key) in set(matcher.catalogue.model_ids.tolist()):
        return int(key)
    hits = models.model_ids[models.code == key.strip()]
    if len(hits) == 1:
        return int(hits[0])
    raise CatalogError(f"unknown model {key!r}" + (f" ({len(hits)} brands use that code: give the model id)"
                                                     if len(hits) > 1 else "")
                       + ": `footfit catalog list` shows the models and ids")


def resolve_size(matcher: Matcher, model_id: int, key: str) -> int:
    """The size id of a size label of the model (standard width preferred) or of a SKU."""
    c = matcher.catalogue
    of_model = c.model_ids == model_id
    by_sku = of_model & (c.sku == key.strip())
    if by_sku.any():
        return int(c.size_ids[np.flatnonzero(by_sku)[0]])
    wanted = " ".join(key.split())
    rows = np.flatnonzero(of_model & (c.size_label == wanted))
    if len(rows):
        standard = rows[c.width[rows] == "standard"]
        return int(c.size_ids[(standard if len(standard) else rows)[0]])
    labels = sorted(set(c.size_label[of_model].tolist()), key=lambda s: float(s.split()[0]))
    raise CatalogError(f"model {model_id} has no size {key!r}: its sizes are {', '.join(labels)} (or give a SKU)")
