"""Batch work at field scale: the fit index and Dask, each figure beside its baseline in one run.

    .venv/bin/python bench/bench_batch.py [--catalogue PATH] [--passports 700000] [--products 500]
        [--new-models 100] [--sample-passports 8192] [--retailers 500] [--passports-per-retailer 100000]

1. A mailing of `--products` products over `--passports` passports: today's recomputing filter (the numba kernel
   over every passport's descriptor, fitcore.fit.mailing.mailing_outcomes, in this process; descriptors already at
   hand, so the baseline leaves out reading passports' points) beside reading the fit index (api.fit_index.matches:
   the products' packed bits from the embedded default's SQLite database, joined with an audience of every
   passport). The index for the products is filled from the kernel's own outcomes, chunked and stored as a refresh
   stores them (api/repository/fit_index.py).
2. A re-match of every passport against `--new-models` new models (a new season) on a Dask LocalCluster
   (api.batch.Batch.map of fitcore.fit.fit_index.chunk_columns, the models scattered once): 1 worker with 1 numba
   thread (the per-chunk cost), 1 worker with every core, 2 workers with 1 thread each; ratios against the first.
3. The fit index's size at field scale: a sample of passports against every model of the catalogue, packed as
   the index packs; bytes per passport, extrapolated to `--passports` x every model.
4. A projection (not a measurement) for `--retailers` retailers of `--passports-per-retailer` passports on N
   machines of this machine's cores, from the measured costs.

Catalogue and passports as bench/bench_match.py: the importer's 6,000-model catalogue, descriptors spread around
population subjects' (bench_match._population_descriptors).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_match import CUSTOMER_SEEDS, DEFAULT_CATALOGUE, _catalogue, _population_descriptors  # noqa: E402

from api import fit_index_rows as rows  # noqa: E402
from api import tenancy  # noqa: E402
from api.auth import Principal  # noqa: E402
from api.batch import Batch  # noqa: E402
from api.db import open_service_db  # noqa: E402
from api.fit_index import matches  # noqa: E402
from api.repository import Repository  # noqa: E402
from core.settings import BatchSettings  # noqa: E402
from fitcore.fit.fit_index import ChunkWork, ProductLayout, chunk_columns, pack_column, product_versions  # noqa: E402
from fitcore.fit.mailing import DESCRIPTOR_FIELDS, MailingOutcomes, mailing_outcomes  # noqa: E402
from fitcore.fit.matcher import Matcher  # noqa: E402
from testing.fit_subjects import subject_feet  # noqa: E402

CHUNK = BatchSettings().chunk_passports
ID_BYTES = 35  # a passport id in a chunk's JSON list: 32 hex digits, quotes and a separator


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]


def _stored_index(descriptors: np.ndarray, outcomes: MailingOutcomes, matcher: Matcher, products: np.ndarray,
                  folder: Path):
    """A SQLite service database holding one tenant's fit index of these passports for these products, from the
    kernel's outcomes: (repository, passport ids, seconds to store)."""
    engine = open_service_db(f"sqlite:///{folder / 'index.sqlite'}")
    session = Session(engine)
    tenant = tenancy.create_tenant(session, "bench", retention_days=730)
    repo = Repository(session, Principal("bench", tenant.id, None, frozenset()))
    layout = matcher.mailing_products(products)
    versions = dict(zip(products.tolist(), product_versions(layout, matcher.profiles)))
    ids = [uuid.uuid4().hex for _ in range(len(descriptors))]
    stored_s = 0.0
    for part in _chunks(len(descriptors)):
        start = time.perf_counter()
        chunk = rows.add_chunk(session, tenant.id, ids[part], descriptors[part],
                                 np.zeros(part.stop - part.start, dtype=bool), "", datetime.now(timezone.utc))
        of_chunk = MailingOutcomes(outcomes.fits[part], outcomes.size[part], outcomes.score[part])
        rows.put_columns(session, chunk.id, [pack_column(of_chunk, j, int(m)) for j, m in enumerate(products)],
                           versions)
        session.commit()
        stored_s += time.perf_counter() - start
    return repo, ids, stored_s


def _rematch(works: list[ChunkWork], layout: ProductLayout, workers: int, threads: int) -> tuple[float, int]:
    """Wall seconds of a re-match of every chunk on a LocalCluster (started before the clock), columns made."""
    batch = Batch(BatchSettings(local_workers=workers, threads_per_local_worker=threads))
    try:
        batch.client()
        batch.map(chunk_columns, works[:workers * 2], layout, lambda i, c: None)  # warm: each worker's compile
        columns = 0

        def count(i: int, made: list) -> None:
            nonlocal columns
            columns += len(made)

        start = time.perf_counter()
        batch.map(chunk_columns, works, layout, count)
        return time.perf_counter() - start, columns
    finally:
        batch.close()


def _index_bytes(matcher: Matcher, descriptors: np.ndarray) -> tuple[float, float]:
    """(bytes per passport of the index against every model: descriptor, id and packed columns; share fitting)."""
    models = np.unique(matcher.catalogue.model_ids)
    layout = matcher.mailing_products(models)
    payload, fitting = 0, 0
    for part in _chunks(len(descriptors)):
        outcomes = mailing_outcomes(descriptors[part], layout, matcher.profiles)
        fitting += int(outcomes.fits.sum())
        payload += sum(len(c.fits) + len(c.sizes) + len(c.scores)
                       for c in (pack_column(outcomes, j, int(m)) for j, m in enumerate(models)))
    per_passport = payload / len(descriptors) + len(DESCRIPTOR_FIELDS) * 4 + ID_BYTES
    return per_passport, fitting / (len(descriptors) * len(models))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    parser.add_argument("--passports", type=int, default=700_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--new-models", type=int, default=100)
    parser.add_argument("--sample-passports", type=int, default=8192)
    parser.add_argument("--retailers", type=int, default=500)
    parser.add_argument("--passports-per-retailer", type=int, default=100_000)
    args = parser.parse_args()

    catalogue, _ = _catalogue(args.catalogue)
    matcher = Matcher(catalogue)
    models = np.unique(catalogue.model_ids)
    base = np.stack([matcher.mailing_descriptor(subject_feet(seed)) for seed in CUSTOMER_SEEDS])
    many = _population_descriptors(base, args.passports)
    products = models[np.linspace(0, len(models) - 1, args.products).round().astype(int)]
    layout = matcher.mailing_products(products)
    rows = []

    # 1. the mailing: recompute vs read the index
    mailing_outcomes(many[:1000], layout, matcher.profiles)  # compile / warm
    start = time.perf_counter()
    outcomes = mailing_outcomes(many, layout, matcher.profiles)  # what mailing_filter computes, sizes and scores too
    recompute_s = time.perf_counter() - start
    fits = outcomes.fits
    with tempfile.TemporaryDirectory(prefix="footfit-bench-batch-") as folder:
        repo, ids, store_s = _stored_index(many, outcomes, matcher, products, Path(folder))
        audience = set(ids)
        start = time.perf_counter()
        found = matches(repo, products.tolist(), audience)
        lookup_s = time.perf_counter() - start
        pairs = sum(len(p) for p in found.fits.values())
        assert pairs == int(fits.sum()), "the index says what the filter says"
        database_mb = (Path(folder) / "index.sqlite").stat().st_size / 1e6
        repo.session.close()
    rows.append((f"mailing {args.passports:,} passports x {args.products} products ({pairs:,} fitting pairs): "
                 f"read the fit index (SQLite, {database_mb:,.0f} MB)", lookup_s, recompute_s,
                 "today's recomputing filter (numba, this process)"))

    # 2. a new season: every passport against new models on a LocalCluster
    new = models[np.linspace(0, len(models) - 1, args.new_models).round().astype(int)]  # any models cost alike
    season = ProductLayout(matcher.mailing_products(new), matcher.profiles, None)
    works = [ChunkWork(many[part], np.zeros(part.stop - part.start, dtype=bool)) for part in _chunks(len(many))]
    cores = os.cpu_count() or 1
    one_thread_s, columns = _rematch(works, season, 1, 1)
    per_chunk_s = one_thread_s / len(works)
    rows.append((f"re-match {args.passports:,} passports x {args.new_models} new models, LocalCluster 1 worker x 1 "
                 f"thread ({len(works)} chunks of {CHUNK}, {columns:,} columns)", one_thread_s, one_thread_s,
                 "itself (the per-chunk cost below)"))
    for workers, threads in ((1, cores), (2, max(1, cores // 2))):
        wall_s, _ = _rematch(works, season, workers, threads)
        rows.append((f"  same, {workers} worker{'s' * (workers > 1)} x {threads} thread{'s' * (threads > 1)}",
                     wall_s, one_thread_s, "1 worker x 1 thread"))

    # 3. the index's size against every model
    sample = _population_descriptors(base, args.sample_passports, seed=1)
    per_passport_bytes, fit_share = _index_bytes(matcher, sample)

    print(f"\nbatch benchmark: {len(models):,} models, {cores} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"chunks of {CHUNK} passports\n")
    print(f"| {'what':<118} | {'wall':>9} | {'baseline':>9} | {'ratio':>7} | baseline is |")
    print(f"|{'-' * 120}|{'-' * 11}|{'-' * 11}|{'-' * 9}|-------------|")
    for what, wall, baseline, how in rows:
        print(f"| {what:<118} | {wall:8.2f}s | {baseline:8.2f}s | {baseline / wall:6.2f}x | {how} |")
    print(f"\nstoring the index of {args.products} products took {store_s:.1f} s (SQLite, one commit per chunk); "
          f"per-chunk cost of {args.new_models} models on one core: {per_chunk_s:.3f} s "
          f"({per_chunk_s / CHUNK / args.new_models * 1e6:.2f} us per passport-model pair)")
    total_gb = per_passport_bytes * args.passports / 1e9
    print(f"fit index against all {len(models):,} models: {per_passport_bytes:,.0f} bytes per passport "
          f"({fit_share:.1%} of pairs fit; measured on {args.sample_passports:,} passports) -> {total_gb:.2f} GB for "
          f"{args.passports:,} passports, plus {len(models) * -(-args.passports // CHUNK):,} column rows' overhead")

    passports = args.retailers * args.passports_per_retailer
    season_cpu_s = passports / CHUNK * per_chunk_s
    full_cpu_s = season_cpu_s * len(models) / args.new_models
    print(f"\nprojection (from the costs above, not measured): {args.retailers} retailers x "
          f"{args.passports_per_retailer:,} passports = {passports / 1e6:,.0f} M passports; index "
          f"{per_passport_bytes * passports / 1e9:,.0f} GB in the database")
    print(f"| machines ({cores} cores) | new season of {args.new_models} models | "
          f"full re-match of {len(models):,} models |")
    print("|---|---|---|")
    for machines in (1, 4, 16, 64):
        print(f"| {machines} | {season_cpu_s / (machines * cores) / 60:,.1f} min | "
              f"{full_cpu_s / (machines * cores) / 3600:,.1f} h |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
