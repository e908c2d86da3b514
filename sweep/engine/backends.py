r"""Backends (SPEC §9): one small interface, ``Backend.run(fn, ctx, chunks) -> iterator of results``.

- ``serial``: in this process, for debugging and tests.
- ``processes`` (default; alias ``multiprocessing``): local worker processes, no server.
- ``ray``: a Ray cluster (``address`` or ``RAY_ADDRESS``; in-flight work sized by its CPUs), else a
  local Ray with ``workers`` CPUs. ``ray`` is imported only here (and in :mod:`sweep.engine.cluster`), only
  when this backend is used.

What travels: the :class:`~sweep.engine.worker.WorkContext` once per worker (a file the local processes
read once; one Ray object), then only :class:`~sweep.engine.plan.Chunk`\ s (a few integers) out and small
results back. Every backend keeps a bounded number of chunks in flight (memory stays flat), yields results
as they finish, and retries the chunks of a lost worker (``max_retries`` times) before handing them to
``lost``. A task's exception never escapes a worker.
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sweep.engine.plan import Chunk

BACKENDS = ("serial", "processes", "ray")
ALIASES = {"multiprocessing": "processes", "local": "processes"}

# fn(handle, chunk) -> a result with ``.chunk``; split(chunk) -> its one-task chunks; lost(chunk, why) -> a result
Fn = Callable[[tuple, Chunk], Any]
Split = Callable[[Chunk], list[Chunk]]
Lost = Callable[[Chunk, str], Any]


class Backend(ABC):
    """Runs chunks of a sweep (SPEC §9); subclasses implement :meth:`run`, yielding ``fn``'s result for each
    chunk as it finishes."""

    name = "base"
    in_driver = False  # whether chunks run in the driver's own process

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_retries = max_retries

    @abstractmethod
    def run(self, fn: Fn, ctx: Any, chunks: Iterable[Chunk], split: Split, lost: Lost) -> Iterator[Any]:
        """``fn(handle, chunk)`` of every chunk, in the order they finish (``handle`` names ``ctx``, shipped once
        per worker). A chunk whose worker keeps dying is split (``split``) and then given up (``lost``)."""

    def writes_to(self, out: str) -> bool:
        """Whether workers can write parts to ``out`` themselves (else they send rows back)."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook: a backend without workers has nothing to release
        """Release workers (also on interrupt)."""

    def describe(self) -> str:
        return f"{self.name} ×{self.workers}"


class SerialBackend(Backend):
    name = "serial"
    in_driver = True

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        super().__init__(1, max_retries)

    def run(self, fn: Fn, ctx: Any, chunks: Iterable[Chunk], split: Split, lost: Lost) -> Iterator[Any]:
        handle = ("obj", ctx.key, ctx)
        for c in chunks:
            yield fn(handle, c)


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

    def run(self, fn: Fn, ctx: Any, chunks: Iterable[Chunk], split: Split, lost: Lost) -> Iterator[Any]:
        """Chunks on ``workers`` processes (the context in a private file each worker reads once). When a
        worker dies, the pool breaks and every chunk in flight is lost with it, the culprit among them
        unknown: those chunks become *suspects*, re-run one at a time, so that a death then points at its
        chunk. A suspect chunk of several tasks that kills its worker alone is split into one-task chunks
        (its other tasks still finish); a one-task chunk is retried ``max_retries`` times alone, then
        handed to ``lost``."""
        folder = _shm()
        _remove_orphans(folder)
        fd, path = tempfile.mkstemp(prefix=f".sweep-ctx-{os.getpid()}-", suffix=".pickle", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(ctx, f, protocol=pickle.HIGHEST_PROTOCOL)
            yield from self._run(fn, ("file", ctx.key, path), chunks, split, lost)
        finally:
            os.unlink(path)

    def _run(self, fn: Fn, handle: tuple, chunks: Iterable[Chunk], split: Split, lost: Lost) -> Iterator[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._pool = self._new_pool()
        it = iter(chunks)
        inflight: dict = {}  # future -> (chunk, deaths alone)
        suspects: deque[tuple[Chunk, int]] = deque()
        limit = self.workers * 3
        exhausted = False
        while True:
            if suspects:
                if not inflight:
                    c, tries = suspects.popleft()
                    inflight[self._pool.submit(fn, handle, c)] = (c, tries)
            else:
                while len(inflight) < limit and not exhausted:
                    c = next(it, None)
                    if c is None:
                        exhausted = True
                        break
                    inflight[self._pool.submit(fn, handle, c)] = (c, 0)
            if not inflight:
                return
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    broken = True  # handled below, with everything else in flight
                    continue
                inflight.pop(fut)
                if exc is not None:  # a bug in the worker's own code, not a task's failure
                    raise exc
                yield fut.result()
            if broken:
                yield from self._recover(inflight, suspects, split, lost)

    def _recover(self, inflight: dict, suspects: deque[tuple[Chunk, int]], split: Split,
                 lost: Lost) -> Iterator[Any]:
        """A worker died: the pool is broken and everything in flight fails with it. A new pool; chunks
        that finished first are yielded; the others become suspects (re-run one at a time), or, when
        the dead worker ran one chunk alone, that chunk is split, retried alone, or handed to ``lost``."""
        alone = len(inflight) == 1
        hit: list[tuple[Chunk, int]] = []
        finished: list[Any] = []
        for fut, (c, tries) in list(inflight.items()):
            if fut.done() and fut.exception() is None:
                finished.append(fut.result())
            else:
                hit.append((c, tries))
        inflight.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        yield from finished
        if not alone:
            suspects.extend(hit)
            return
        if not hit:
            return
        (c, tries), = hit
        parts = split(c) if c.task < 0 else [c]
        if len(parts) > 1:
            suspects.extendleft(reversed([(p, 0) for p in parts]))
        elif tries + 1 > self.max_retries:
            yield lost(c, f"its worker process died {tries + 1} times running this task alone")
        else:
            suspects.appendleft((parts[0] if parts else c, tries + 1))

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
    # stopped by close() (SIGTERM): write the rows of the tasks already finished, then exit
    from sweep.engine.worker import stop_on_sigterm

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for k in [k for k in os.environ if k.startswith("SWEEP_")]:
        del os.environ[k]
    os.environ.update(env)


def _shm() -> str:
    """A memory-backed folder for the context file when there is one (it is read once per worker)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _remove_orphans(folder: str) -> None:
    """Context files of drivers that were killed (SIGKILL leaves them): removed by the next run."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".sweep-ctx-")]
    except OSError:
        return
    for name in names:
        try:
            pid = int(name.split("-")[2])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
        except PermissionError:
            continue


def _ray_call(fn: Fn, handle: tuple, chunk: Chunk) -> Any:
    return fn(handle, chunk)


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

    def writes_to(self, out: str) -> bool:
        """Workers of a local Ray share this machine's files; a cluster's reach only an object store."""
        return not self.address or ("://" in out and not out.startswith("file://"))

    def run(self, fn: Fn, ctx: Any, chunks: Iterable[Chunk], split: Split, lost: Lost) -> Iterator[Any]:
        ray = self._init()
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_call)
        handle = ("ray", ctx.key, [ray.put(ctx)])  # in a list: Ray passes the reference, workers get it once
        it = iter(chunks)
        inflight: dict = {}
        exhausted = False
        refresh_at = time.monotonic() + self.refresh_s
        while True:
            if self.address and time.monotonic() >= refresh_at:
                self.workers = self._capacity()
                refresh_at = time.monotonic() + self.refresh_s
            while not exhausted and len(inflight) < self.workers * 3:
                c = next(it, None)
                if c is None:
                    exhausted = True
                    break
                inflight[remote.remote(fn, handle, c)] = c
            if not inflight:
                return
            # a timeout, so that a cluster that grew while every task waited gets more of them
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=self.refresh_s if self.address else None)
            for ref in done:
                c = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # a bug in the worker's own code
                    raise e.as_instanceof_cause() from None
                except ray.exceptions.RayError as e:  # worker/node lost beyond max_retries, object lost, …
                    yield lost(c, f"ray: {e.__class__.__name__} after {self.max_retries} retries")
                    continue
                yield result

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
