"""Catalogue at field scale: generate N models (default 6,000) with all sizes, import into SQLite and PostgreSQL,
load the whole catalogue for the matcher; print one table.

    .venv/bin/python bench/bench_catalog.py [--models 6000] [--seed 0] [--workdir DIR]

PostgreSQL: a throwaway server as the tests start it (testing/postgres.py; needs `bash .ci/setup --test`).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from api.db import open_service_db
from fitcore.fit.clearance import IDENTITY_POSE, placed_clearance_mm
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import generate_catalogue, write_catalogue
from testing.postgres import PostgresServer


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep the generated files and SQLite database here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="footfit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    table: list[tuple[str, str]] = []

    catalogue, seconds = _timed(generate_catalogue, args.models, args.seed)
    table.append(("generate (in memory)", f"{seconds:.1f} s: {len(catalogue.truth)} models, {len(catalogue.rows)} "
                                          f"sizes, {len(catalogue.interiors)} scans"))
    products, seconds = _timed(write_catalogue, catalogue, work / "catalogue")
    table.append(("write import files", f"{seconds:.1f} s, {_folder_mb(work / 'catalogue'):.0f} MB "
                                        f"({_folder_mb(work / 'catalogue' / 'interiors'):.0f} MB interiors)"))
    interiors = work / "catalogue" / "interiors"
    del catalogue

    sqlite_path = work / "catalogue.sqlite"
    sqlite_path.unlink(missing_ok=True)
    server = PostgresServer()
    try:
        for name, url in (("SQLite", f"sqlite:///{sqlite_path}"), ("PostgreSQL", server.new_database())):
            engine = open_service_db(url)
            summary, seconds = _timed(import_products, products, interiors, engine=engine)
            assert summary.committed and not summary.errors, summary.report()
            table.append((f"{name}: import", f"{seconds:.1f} s ({summary.scanned} scanned, {summary.graded} graded)"))
            again, seconds = _timed(import_products, products, interiors, engine=engine)
            table.append((f"{name}: re-import, unchanged", f"{seconds:.1f} s ({again.unchanged} unchanged)"))
            table.append((f"{name}: database size", f"{_database_mb(engine, sqlite_path):.0f} MB"))
            loaded, seconds = _timed(load_matcher_catalogue, engine)
            table.append((f"{name}: load for the matcher", f"{seconds:.2f} s, {len(loaded.size_ids)} sizes"))
            engine.dispose()
    finally:
        server.stop()
    per_size = loaded.sections[0].nbytes
    table.append(("matcher representation", f"{loaded.nbytes / 1e6:.0f} MB ({per_size} bytes of sections per size)"))
    table.append(("peak RSS of this process", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB"))
    points = np.random.default_rng(0).uniform([0, -50, 0], [280, 50, 60], (20000, 3))
    placed_clearance_mm(points, loaded.sections[0], float(loaded.inner_length_mm[0]), IDENTITY_POSE)  # compile
    sizes = min(300, len(loaded.size_ids))
    start = time.perf_counter()
    for i in range(sizes):
        placed_clearance_mm(points, loaded.sections[i], float(loaded.inner_length_mm[i]), IDENTITY_POSE)
    rate = sizes * len(points) / (time.perf_counter() - start)
    table.append(("reference clearance kernel", f"{rate / 1e6:.1f} M point-size pairs per second"))

    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"{key:{width}s}  {value}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _database_mb(engine, sqlite_path: Path) -> float:
    if engine.dialect.name == "sqlite":
        return sqlite_path.stat().st_size / 1e6
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar() / 1e6


if __name__ == "__main__":
    sys.exit(main())
