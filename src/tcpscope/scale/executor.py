"""Where tasks run: a local process pool or a Dask cluster, each task retried once.

`Executor.map(fn, items)` returns ``fn(item)`` for every item, in order. A task
that raises, or whose worker dies (SIGKILL, out of memory), is run once more;
a task that fails twice is reported with what it was (``item.describe()``:
its file and byte range, or its bucket) in a `ScaleError`: nothing is
dropped silently. `notes` collects one line per retry, for stderr.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["ATTEMPTS", "DaskExecutor", "Executor", "PoolExecutor", "ScaleError", "executor"]

#: Runs of a task before it is reported as failed (retried once).
ATTEMPTS = 2


class ScaleError(RuntimeError):
    """Units or buckets failed twice: the message names each and why."""


class Executor:
    """Runs tasks; subclasses say where."""

    workers = 1

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.progress: Callable[[int, int], None] | None = None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _failed(self, item: Any, exc: BaseException, attempt: int) -> bool:
        """Note a failure; True when the task is to run again."""
        what = item.describe() if hasattr(item, "describe") else repr(item)
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if attempt < ATTEMPTS:
            self.notes.append(f"{what} failed ({reason}); retried")
            return True
        return False

    @staticmethod
    def _raise(failures: list[tuple[Any, BaseException]]) -> None:
        if failures:
            lines = [f"{item.describe() if hasattr(item, 'describe') else item}: "
                     f"{type(e).__name__}: {e}" for item, e in failures]
            raise ScaleError(f"{len(failures)} task(s) failed twice, the result would miss "
                             "them: " + "; ".join(lines))

    def _tick(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


class PoolExecutor(Executor):
    """A local pool of `workers` processes (forked: the tasks' code is already loaded),
    kept between `map` calls. A worker that dies breaks the pool: it is replaced, and the
    tasks that were not done run again."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _open(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        results: list[Any] = [None] * len(items)
        attempts = [0] * len(items)
        pending = list(range(len(items)))
        failures: list[tuple[Any, BaseException]] = []
        done = 0
        while pending:
            retry = []
            pool = self._open()
            futures: dict[Future, int] = {pool.submit(fn, items[i]): i for i in pending}
            waiting = set(futures)
            while waiting:
                finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = futures[fut]
                    exc = fut.exception()
                    if exc is None:
                        results[i] = fut.result()
                        done += 1
                        self._tick(done, len(items))
                        continue
                    if isinstance(exc, BrokenProcessPool):
                        self.close()
                    attempts[i] += 1
                    if self._failed(items[i], exc, attempts[i]):
                        retry.append(i)
                    else:
                        failures.append((items[i], exc))
            pending = sorted(retry)
        self._raise(failures)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: a running scheduler (``tcp://HOST:PORT``) or, for
    ``local``, a `LocalCluster` of `workers` single-threaded processes started here.
    Dask itself moves a task off a worker that died; a task that raised runs once more
    (``retries=1``)."""

    def __init__(self, address: str, workers: int) -> None:
        super().__init__()
        try:
            import distributed
        except ImportError:
            raise ImportError("this needs dask.distributed: pip install 'tcpscope[dask]'") \
                from None
        self._cluster = None
        if address == "local":
            self._cluster = distributed.LocalCluster(
                n_workers=max(1, workers), threads_per_worker=1, processes=True,
                dashboard_address=None, host="127.0.0.1")
            address = self._cluster.scheduler_address
        self.client = distributed.Client(address, set_as_default=False)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        futures = self.client.map(fn, list(items), retries=ATTEMPTS - 1, pure=False)
        results: list[Any] = [None] * len(items)
        failures: list[tuple[Any, BaseException]] = []
        for i, fut in enumerate(futures):
            try:
                results[i] = fut.result()
            except Exception as exc:  # the task failed on its retry too (or its workers died)
                failures.append((items[i], exc))
            self._tick(i + 1, len(items))
        self._raise(failures)
        return results

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def executor(workers: int, dask: str | None) -> Executor:
    """The executor the options ask for: a pool of at most as many processes as this
    machine has cores."""
    if dask:
        return DaskExecutor(dask, workers)
    return PoolExecutor(max(1, min(workers, os.cpu_count() or 1)))
