"""Backends (SPEC §9): one small interface, ``Backend.run(batches) -> iterator of results``.

- ``serial``: in this process, for debugging and tests.
- ``processes`` (default; alias ``multiprocessing``): local worker processes, no server.
- ``ray``: a Ray cluster (``address`` or ``RAY_ADDRESS``; in-flight work sized by its CPUs), else a
  local Ray with ``workers`` CPUs. ``ray`` is imported only here (and in :mod:`sweep.engine.cluster`), only
  when this backend is used.

Every backend keeps a bounded number of batches in flight (memory stays flat), yields results as
they finish, and retries the batches of a lost worker (``max_retries`` times) before turning their
tasks into ``error`` rows. Results are data; a task's exception never escapes a worker.
"""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sweep.engine.plan import Batch, Work
from sweep.engine.worker import error_output, run_batch
from sweep.results.rows import TaskOutput
from sweep.vocab import LOST

BACKENDS = ("serial", "processes", "ray")
ALIASES = {"multiprocessing": "processes", "local": "processes"}


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    outputs: list[TaskOutput]


def _lost(sweep: str, batch: Batch, why: str) -> BatchResult:
    """Error rows for a batch whose worker kept dying; marked :data:`LOST`, so a re-run retries them."""
    return BatchResult(batch, [error_output(sweep, t, LOST + why) for w in batch.items for t in w.tasks])


class Backend(ABC):
    """Runs batches of a sweep (SPEC §9); subclasses implement :meth:`run`, yielding one
    :class:`BatchResult` per batch as it finishes. A task's failure is an ``error`` row, never an exception."""

    name = "base"

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_retries = max_retries

    @abstractmethod
    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        """Every batch's result, in the order they finish."""

    def close(self) -> None:  # noqa: B027 - optional hook: a backend without workers has nothing to release
        """Release workers (also on interrupt)."""

    def describe(self) -> str:
        return f"{self.name} ×{self.workers}"


class SerialBackend(Backend):
    name = "serial"

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        super().__init__(1, max_retries)

    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        for b in batches:
            yield BatchResult(b, run_batch(sweep, b))


class ProcessBackend(Backend):
    """Local worker processes (forkserver: no inherited threads or locks)."""

    name = "processes"

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        super().__init__(workers, max_retries)
        self._pool = None

    def _new_pool(self):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("forkserver")
        # workers fork from a long-lived server process: hand them this process's SWEEP_* settings
        env = {k: v for k, v in os.environ.items() if k.startswith("SWEEP_")}
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_env, initargs=(env,))

    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        """Batches on ``workers`` processes. When a worker dies, the pool breaks and every batch in
        flight is lost with it, the culprit among them unknown: those batches become *suspects*, re-run
        one at a time, so that a death then points at its batch. A suspect batch of several tasks
        that kills its worker alone is split into one-task batches (its other tasks still finish); a
        one-task batch is retried ``max_retries`` times alone, then becomes ``worker lost`` rows."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        self._pool = self._new_pool()
        it = iter(batches)
        inflight: dict = {}  # future -> (batch, deaths alone)
        suspects: deque[tuple[Batch, int]] = deque()
        limit = self.workers * 3
        exhausted = False
        while True:
            if suspects:
                if not inflight:
                    b, tries = suspects.popleft()
                    inflight[self._pool.submit(run_batch, sweep, b)] = (b, tries)
            else:
                while len(inflight) < limit and not exhausted:
                    b = next(it, None)
                    if b is None:
                        exhausted = True
                        break
                    inflight[self._pool.submit(run_batch, sweep, b)] = (b, 0)
            if not inflight:
                return
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    broken = True  # handled below, with everything else in flight
                    continue
                b, tries = inflight.pop(fut)
                if exc is None:
                    yield BatchResult(b, fut.result())
                else:  # the batch ran but its result could not come back (e.g. not picklable)
                    msg = f"worker failed: {exc.__class__.__name__}: {exc}"
                    yield BatchResult(b, [error_output(sweep, t, msg) for w in b.items for t in w.tasks])
            if not broken:
                continue
            # a worker died: the pool is broken and everything in flight fails with it
            alone = len(inflight) == 1
            hit: list[tuple[Batch, int]] = []
            finished: list[BatchResult] = []
            for fut, (b, tries) in list(inflight.items()):
                if fut.done() and fut.exception() is None:
                    finished.append(BatchResult(b, fut.result()))
                else:
                    hit.append((b, tries))
            inflight.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            yield from finished
            if not alone:
                suspects.extend(hit)
                continue
            if not hit:
                continue
            (b, tries), = hit
            if b.size > 1:
                suspects.extendleft(reversed([
                    (Batch(b.batch_id, (Work(w.scenario, (t,)),)), 0) for w in b.items for t in w.tasks]))
            elif tries + 1 > self.max_retries:
                yield _lost(sweep, b, f"its worker process died {tries + 1} times running this task alone")
            else:
                suspects.appendleft((b, tries + 1))

    def close(self) -> None:
        """Stop every worker now, busy or not (on Ctrl-C a worker may be mid-solve): none outlives the run."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def _worker_env(env: dict[str, str]) -> None:
    # Ctrl-C in a terminal signals the whole process group: the driver stops the workers, so a
    # worker ignores SIGINT rather than dying with a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for k in [k for k in os.environ if k.startswith("SWEEP_")]:
        del os.environ[k]
    os.environ.update(env)


def _ray_run_batch(sweep: str, batch: Batch) -> list[TaskOutput]:
    return run_batch(sweep, batch)


class RayBackend(Backend):
    """Ray tasks, one per batch; Ray itself retries tasks whose worker or node died.

    With an ``address`` (or ``RAY_ADDRESS``) the constructor joins that cluster at once, so an
    unreachable cluster or a refused token is one InputError before any output is written. Work in
    flight is then sized by the cluster's CPUs (``workers``, if given, caps it), re-read every
    ``refresh_s`` while the sweep runs: an autoscaling cluster grows as tasks wait, and more are
    queued as it does. Without an address, a local Ray with ``workers`` CPUs starts with the sweep.
    """

    name = "ray"
    refresh_s = 10.0

    def __init__(self, workers: int | None = None, max_retries: int = 2, address: str | None = None):
        super().__init__(workers, max_retries)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self._cap = workers
        self._started = False
        if self.address:
            import ray

            from sweep.engine.cluster import join

            if not ray.is_initialized():
                join(self.address)
                self._started = True
            self.workers = self._capacity()

    def _capacity(self) -> int:
        from sweep.engine.cluster import cluster_cpus

        cpus = max(1, cluster_cpus())
        return min(cpus, self._cap) if self._cap else cpus

    def _init(self):
        import ray

        if not ray.is_initialized():
            # "local": a new private Ray, never a cluster found through Ray's leftover address file
            # (/tmp/ray/ray_current_cluster may name a stale or foreign one; SPEC §9)
            ray.init(address="local", num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self._started = True
        return ray

    def describe(self) -> str:
        return f"ray ({self.address or 'local'}) ×{self.workers}"

    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        ray = self._init()
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_run_batch)
        it = iter(batches)
        inflight: dict = {}
        exhausted = False
        refresh_at = time.monotonic() + self.refresh_s
        while True:
            if self.address and time.monotonic() >= refresh_at:
                self.workers = self._capacity()
                refresh_at = time.monotonic() + self.refresh_s
            while not exhausted and len(inflight) < self.workers * 3:
                b = next(it, None)
                if b is None:
                    exhausted = True
                    break
                inflight[remote.remote(sweep, b)] = b
            if not inflight:
                return
            # a timeout, so that a cluster that grew while every task waited gets more of them
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=self.refresh_s if self.address else None)
            for ref in done:
                b = inflight.pop(ref)
                try:
                    outputs = ray.get(ref)
                except ray.exceptions.RayError as e:  # worker/node lost beyond max_retries, object lost, …
                    yield _lost(sweep, b, f"ray: {e.__class__.__name__} after {self.max_retries} retries")
                    continue
                yield BatchResult(b, outputs)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()  # disconnects this driver; a cluster it joined keeps running
            self._started = False


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    name = ALIASES.get(name, name)
    factories: dict[str, Callable[[], Backend]] = {
        "serial": lambda: SerialBackend(workers),
        "processes": lambda: ProcessBackend(workers),
        "ray": lambda: RayBackend(workers, address=address),
    }
    return factories[name]()
