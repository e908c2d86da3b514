"""Backends (SPEC §9): one small interface, ``Backend.run(batches) -> iterator of results``.

- ``serial``: in this process, for debugging and tests.
- ``processes`` (default; alias ``multiprocessing``): local worker processes, no server.
- ``ray``: a Ray cluster (``address`` or ``RAY_ADDRESS``), else a local Ray with ``workers`` CPUs.
  ``ray`` is imported only here, only when this backend is used.

Every backend keeps a bounded number of batches in flight (memory stays flat), yields results as
they finish, and retries the batches of a lost worker (``max_retries`` times) before turning their
tasks into ``error`` rows. Results are data; a task's exception never escapes a worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sweep.plan import Batch, TaskOutput, error_output, run_batch

BACKENDS = ("serial", "processes", "ray")
ALIASES = {"multiprocessing": "processes", "local": "processes"}


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    outputs: list[TaskOutput]
    retries: int = 0


def _lost(sweep: str, batch: Batch, why: str) -> BatchResult:
    return BatchResult(batch, [error_output(sweep, t, why) for w in batch.items for t in w.tasks])


class Backend:
    """Runs batches of a sweep; subclasses implement :meth:`run`."""

    name = "base"

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_retries = max_retries

    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        raise NotImplementedError

    def close(self) -> None:
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
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        self._pool = self._new_pool()
        it = iter(batches)
        inflight: dict = {}  # future -> (batch, tries)
        retry: list[tuple[Batch, int]] = []
        limit = self.workers * 3
        exhausted = False
        while True:
            while len(inflight) < limit and (retry or not exhausted):
                if retry:
                    b, tries = retry.pop()
                else:
                    b = next(it, None)
                    if b is None:
                        exhausted = True
                        break
                    tries = 0
                inflight[self._pool.submit(run_batch, sweep, b)] = (b, tries)
            if not inflight:
                return
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                b, tries = inflight.pop(fut)
                try:
                    yield BatchResult(b, fut.result(), tries)
                except BrokenProcessPool:
                    broken = True
                    retry.append((b, tries + 1))
            if broken:
                # a worker died: every batch in flight is lost with the pool; run them again
                retry.extend((b, t + 1) for b, t in inflight.values())
                inflight.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                keep = []
                for b, t in retry:
                    if t > self.max_retries:
                        yield _lost(sweep, b, f"worker lost {t} times running this batch")
                    else:
                        keep.append((b, t))
                retry = keep

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _worker_env(env: dict[str, str]) -> None:
    for k in [k for k in os.environ if k.startswith("SWEEP_")]:
        del os.environ[k]
    os.environ.update(env)


def _ray_run_batch(sweep: str, batch: Batch) -> list[TaskOutput]:
    return run_batch(sweep, batch)


class RayBackend(Backend):
    """Ray tasks, one per batch; Ray itself retries tasks whose worker or node died."""

    name = "ray"

    def __init__(self, workers: int | None = None, max_retries: int = 2, address: str | None = None):
        super().__init__(workers, max_retries)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False

    def _init(self):
        import ray

        if not ray.is_initialized():
            kwargs: dict = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.workers, **kwargs)
            self._started = True
        return ray

    def describe(self) -> str:
        return f"ray ({self.address or 'local'}) ×{self.workers}"

    def run(self, sweep: str, batches: Iterable[Batch]) -> Iterator[BatchResult]:
        ray = self._init()
        if self.address:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_run_batch)
        it = iter(batches)
        inflight: dict = {}
        limit = self.workers * 3
        exhausted = False
        while True:
            while not exhausted and len(inflight) < limit:
                b = next(it, None)
                if b is None:
                    exhausted = True
                    break
                inflight[remote.remote(sweep, b)] = b
            if not inflight:
                return
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                b = inflight.pop(ref)
                try:
                    yield BatchResult(b, ray.get(ref))
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.RayTaskError, ray.exceptions.ObjectLostError) as e:
                    yield _lost(sweep, b, f"ray: {e.__class__.__name__} after {self.max_retries} retries")

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    name = ALIASES.get(name, name)
    factories: dict[str, Callable[[], Backend]] = {
        "serial": lambda: SerialBackend(workers),
        "processes": lambda: ProcessBackend(workers),
        "ray": lambda: RayBackend(workers, address=address),
    }
    return factories[name]()
