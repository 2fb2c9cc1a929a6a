"""Batch work on a real Dask LocalCluster (api/batch.py): one and two worker processes give the fit index's columns
computed in this process; a worker killed mid-batch has its chunks run again elsewhere, and each chunk's result
arrives once."""

from __future__ import annotations

import os
import signal
from collections import Counter

import numpy as np
import pytest

from api.batch import Batch, BatchCancelled
from api.db import open_service_db
from core.settings import BatchSettings
from fitcore.fit.fit_index import ChunkWork, ProductLayout, chunk_columns
from fitcore.fit.matcher import Matcher
from shoe_db.importer import import_products
from shoe_db.loading import load_matcher_catalogue
from simulator.catalog import generate_catalogue, write_catalogue
from testing.fit_subjects import subject_feet

CHUNKS, PASSPORTS_PER_CHUNK = 16, 1500  # each chunk a few tenths of a second of one core's work


@pytest.fixture(scope="module")
def batch_work(tmp_path_factory) -> tuple[list[ChunkWork], ProductLayout, list]:
    """Chunks of descriptors spread around a few customers' against 30 products, and their columns computed here."""
    folder = tmp_path_factory.mktemp("batch")
    products = write_catalogue(generate_catalogue(30, 8, stores=2), folder)
    engine = open_service_db(f"sqlite:///{folder / 'c.sqlite'}")
    assert import_products(products, folder / "interiors", engine=engine).committed
    matcher = Matcher(load_matcher_catalogue(engine))
    base = np.stack([matcher.mailing_descriptor(subject_feet(seed)) for seed in (1, 6, 12)])
    rng = np.random.default_rng(3)
    works = []
    for _ in range(CHUNKS):
        many = base[rng.integers(0, len(base), PASSPORTS_PER_CHUNK)].copy()
        many[:, 0] += rng.normal(0.0, 8.0, len(many))
        many[:, 1] += rng.normal(0.0, 6.0, len(many))
        works.append(ChunkWork(many, rng.random(len(many)) < 0.5))
    layout = ProductLayout(matcher.mailing_products(np.unique(matcher.catalogue.model_ids)), matcher.profiles, None)
    return works, layout, [chunk_columns(w, layout) for w in works]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_one_and_two_workers_give_the_columns_computed_here(batch_work, workers):
    works, layout, expected = batch_work
    batch = Batch(BatchSettings(local_workers=workers))
    try:
        arrived: dict[int, list] = {}
        batch.map(chunk_columns, works, layout, lambda i, columns: arrived.setdefault(i, columns))
        assert len(batch.worker_pids()) == workers
    finally:
        batch.close()
    assert arrived == dict(enumerate(expected))
    assert 0 < sum(len(c.sizes) for columns in expected for c in columns) < CHUNKS * PASSPORTS_PER_CHUNK * 30


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_retried_and_each_result_arrives_once(batch_work):
    works, layout, expected = batch_work
    batch = Batch(BatchSettings(local_workers=2))
    try:
        before = batch.worker_pids()
        arrivals, arrived = Counter(), {}

        def on_result(i: int, columns: list) -> None:
            if not arrivals:
                os.kill(before[0], signal.SIGKILL)  # mid-batch: the other chunks are queued or running
            arrivals[i] += 1
            arrived[i] = columns

        batch.map(chunk_columns, works, layout, on_result)
        batch.client().wait_for_workers(2, timeout=120)  # the nanny starts a new worker for the killed one
        after = batch.worker_pids()
    finally:
        batch.close()
    assert before[0] not in after and len(after) == 2, "the killed worker was replaced"
    assert arrivals == Counter(range(CHUNKS)), "every chunk once"
    assert arrived == dict(enumerate(expected))


@pytest.mark.slow
def test_a_cancelled_batch_stops_after_the_result_at_hand(batch_work):
    works, layout, _ = batch_work
    batch = Batch(BatchSettings(local_workers=1))
    try:
        arrived = []
        with pytest.raises(BatchCancelled, match="cancelled"):
            batch.map(chunk_columns, works, layout, lambda i, columns: arrived.append(i), lambda: len(arrived) >= 2)
        assert len(arrived) == 2
    finally:
        batch.close()


@pytest.mark.slow
def test_a_scheduler_address_sends_the_work_to_that_cluster(batch_work):
    """The setting batch.scheduler_address: an existing cluster (here one started apart) does the work."""
    from distributed import LocalCluster

    works, layout, expected = batch_work
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
        batch = Batch(BatchSettings(scheduler_address=cluster.scheduler_address))
        try:
            arrived: dict[int, list] = {}
            batch.map(chunk_columns, works[:4], layout, lambda i, columns: arrived.setdefault(i, columns))
            assert batch.client().scheduler.address == cluster.scheduler_address
        finally:
            batch.close()
        assert len(cluster.workers) == 1, "the cluster is not the batch's to close"
    assert arrived == dict(enumerate(expected[:4]))
