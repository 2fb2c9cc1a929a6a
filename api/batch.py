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

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.errors import FootfitError
from core.settings import BatchSettings

log = logging.getLogger(__name__)
Item = TypeVar("Item")


class BatchCancelled(FootfitError):
    """The batch's caller asked it to stop: chunks not yet received were cancelled."""


@dataclass(frozen=True)
class _WithThreads:
    """A task's function run with `threads` numba threads (0: the worker's own setting). Numba's thread count is
    per calling thread and fixed at numba's import: a spawned worker imports numba (with its parent's main module)
    before the cluster's environment reaches it, so the task sets it where it runs."""

    fn: Callable[[Any, Any], Any]
    threads: int

    def __call__(self, item: Any, shared: Any) -> Any:
        if self.threads:
            import numba

            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        return self.fn(item, shared)


class Batch:
    """The Dask client batch work goes through (one per process, made on first use)."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self._threads = 0  # numba threads per task: a LocalCluster's share of the cores; 0 for a cluster's own
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
                    self._threads = (self.settings.threads_per_local_worker
                                     or max(1, (os.cpu_count() or 1) // workers))
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING)
                    self._client = Client(self._cluster)
                log.info("batch work goes to the Dask scheduler at %s", self._client.scheduler.address)
            return self._client

    def map(self, fn: Callable[[Item, Any], Any], items: Iterable[Item], shared: Any,
            on_result: Callable[[int, Any], None], should_stop: Callable[[], bool] = lambda: False) -> None:
        """fn(item, shared) for every item on the cluster; on_result(index, result) here, in the order results
        arrive, once per item. Items are taken from `items` as tasks finish, a few per worker thread in flight,
        so a caller may read them lazily (bounded memory). Stops (BatchCancelled) when should_stop() says so
        after a result."""
        from distributed import as_completed

        items = iter(enumerate(items))
        first = next(items, None)
        if first is None:
            return
        client = self.client()
        task = _WithThreads(fn, self._threads)
        in_flight = 2 * max(1, sum(client.nthreads().values()))
        shared_future = client.scatter(shared, broadcast=True, hash=False)
        pending: dict[Any, int] = {}
        arriving = as_completed()

        def submit(entry: tuple[int, Item] | None) -> None:
            if entry is not None:
                future = client.submit(task, entry[1], shared_future, pure=False)
                pending[future] = entry[0]
                arriving.add(future)

        submit(first)
        for entry in itertools.islice(items, in_flight - 1):
            submit(entry)
        try:
            for future in arriving:
                on_result(pending.pop(future), future.result())
                if should_stop():
                    raise BatchCancelled("the batch job was cancelled: the chunks not yet matched were left")
                submit(next(items, None))
        finally:
            client.cancel(list(pending) + [shared_future])

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
