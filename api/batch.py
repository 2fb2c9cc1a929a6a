"""Batch work on Dask distributed: a function mapped over chunks of passports, with what every chunk needs (the
products' layout) scattered to the workers once.

By default a LocalCluster on this machine (setting batch.local_workers worker processes, each given its share of
the cores for numba's threads), started on first use and kept for the process's life, its diagnostics page on a
free loopback port; with the setting
batch.scheduler_address, an existing cluster, whose workers need footfit installed (the functions they run are
footfit's: fitcore.fit.fit_index.chunk_columns). A worker that dies mid-task has its task run again elsewhere by
Dask; the caller receives one result per chunk, and writes it itself, so nothing is stored twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from core.errors import FootfitError
from core.settings import BatchSettings

log = logging.getLogger(__name__)
Item = TypeVar("Item")


class BatchCancelled(FootfitError):
    """The batch's caller asked it to stop: chunks not yet received were cancelled."""


class Batch:
    """The Dask client batch work goes through (one per process, made on first use)."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self._client = None
        self._cluster = None
        self._lock = threading.Lock()

    def client(self):
        """The connected Dask client (a LocalCluster's unless a scheduler address is set)."""
        from distributed import Client, LocalCluster  # imported on first batch work: the service starts without it

        with self._lock:
            if self._client is None:
                if self.settings.scheduler_address:
                    self._client = Client(self.settings.scheduler_address, timeout="30s")
                else:
                    workers = self.settings.local_workers
                    threads = str(self.settings.threads_per_local_worker
                                  or max(1, (os.cpu_count() or 1) // workers))
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING,
                                                 env={"NUMBA_NUM_THREADS": threads})
                    self._client = Client(self._cluster)
                log.info("batch work goes to the Dask scheduler at %s", self._client.scheduler.address)
            return self._client

    def map(self, fn: Callable[[Item, Any], Any], items: Sequence[Item], shared: Any,
            on_result: Callable[[int, Any], None], should_stop: Callable[[], bool] = lambda: False) -> None:
        """fn(item, shared) for every item on the cluster; on_result(index, result) here, in the order results
        arrive, once per item. Stops (BatchCancelled) when should_stop() says so after a result."""
        from distributed import as_completed

        if not items:
            return
        client = self.client()
        shared_future = client.scatter(shared, broadcast=True, hash=False)
        futures = {client.submit(fn, item, shared_future, pure=False): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                on_result(futures[future], future.result())
                if should_stop():
                    raise BatchCancelled("the batch job was cancelled: the chunks not yet matched were left")
        finally:
            client.cancel(list(futures) + [shared_future])

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for tests and benches that stop one)."""
        return sorted(self.client().run(os.getpid).values())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None
