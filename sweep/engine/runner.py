"""The sweep driver: job → chunks of scenario indices → workers (which solve and write) → compaction, with progress, resume and a summary."""

from __future__ import annotations

import os
import signal
import sys
import threading
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sweep.engine.backends import Backend, make_backend
from sweep.engine.plan import Chunk, chunks, raw_range, scenario_number, tasks_for
from sweep.engine.progress import Progress, fmt_duration
from sweep.engine.worker import (
    ChunkDone,
    SurveyPart,
    WorkContext,
    bundle,
    error_output,
    run_chunk,
    survey_chunk,
)
from sweep.errors import InputError, Problem
from sweep.inputs.job import Job, load_job
from sweep.inputs.scenario import build_scenario
from sweep.results.failures import StoreError, redact
from sweep.results.keeper import StoreProcess
from sweep.vocab import Status

if TYPE_CHECKING:
    from sweep.results.store import Store


@dataclass
class RunSummary:
    sweep: str
    out: str
    scenarios: int
    tasks_total: int
    tasks_skipped: int  # already finished in an earlier run
    tasks_run: int = 0
    failures: int = 0
    lost: int = 0  # failures whose worker died: a re-run retries them
    elapsed_s: float = 0.0
    interrupted: bool = False
    exit_code: int = 0  # what `sweep run` exits with: 0, or 130 (Ctrl-C) / 143 (SIGTERM) when interrupted
    best: dict = field(default_factory=dict)  # best exact $/token found
    keeper_cpu_s: float | None = None  # CPU seconds of the dataset's keeper process (none: serial backend)

    def text(self) -> str:
        lines = [
            f"sweep {self.sweep}: {self.scenarios} scenarios, {self.tasks_total} tasks "
            f"({self.tasks_run} run now, {self.tasks_skipped} already done), {self.failures} failed, "
            f"{fmt_duration(self.elapsed_s)}",
            f"dataset: {redact(self.out)}",
        ]
        if self.best:
            b = self.best
            lines.append(f"best $/token: ${b['cost_per_token']:.3e} ({b['throughput_tok_s']:,.0f} tok/s at "
                         f"${b['cost_per_hour']:,.2f}/h, scenario {b['scenario_id']}, {b['method']})")
        if self.lost:
            lines.append(f"{self.lost} tasks failed because their worker died repeatedly: run the same command "
                         "again to retry them")
        if self.interrupted:
            lines.append(f"interrupted: {self.tasks_skipped + self.tasks_run} of {self.tasks_total} tasks are saved; "
                         "run the same command again to resume")
        return "\n".join(lines)


def default_out(job: Job) -> str:
    return job.out or str(Path("results") / job.name)


@dataclass
class Survey:
    """What one pass over a job's scenarios learns before anything is written — in the workers, a chunk of
    indices each: every scenario is validated (InputError otherwise), counted, and its scenarios.parquet row
    built. The driver keeps per-index task counts and ids, and the rows as the workers' IPC bytes."""

    scenarios: int
    tasks: int
    ids: set[int]  # every scenario id of the job, as the 64-bit number its 16 hex digits are
    parts: list[tuple[bytes, list[bool]]]  # scenarios.parquet rows (zstd IPC), which to keep (a repeat is not)
    counts: array  # tasks of the scenario at each index (0 for an index that repeats an earlier scenario)
    index_ids: array  # the scenario id (as a number) at each index of ``counts`` (0 for an index in ``skip``)
    skip: frozenset[int]  # indices whose scenario repeats an earlier index's

    def _finished_by_id(self, done: set[str], methods: tuple[str, ...]) -> dict[int, int]:
        """This job's finished tasks per scenario id (task ids are ``<scenario_id>/<method>[@budget]``; the
        folder may also hold rows of an earlier version of the job)."""
        finished: dict[int, int] = {}
        for t in done:
            sid, _, rest = t.partition("/")
            try:
                key = scenario_number(sid)
            except ValueError:
                continue
            if key in self.ids and rest.partition("@")[0] in methods:
                finished[key] = finished.get(key, 0) + 1
        return finished

    def finished(self, done: set[str], methods: tuple[str, ...]) -> int:
        """How many of this job's tasks are among ``done``."""
        return sum(self._finished_by_id(done, methods).values())

    def todo(self, done: set[str], methods: tuple[str, ...]) -> list[tuple[int, int]]:
        """Index ranges (lo, hi) holding every scenario with an unfinished task."""
        n = len(self.counts)
        if not done:
            return [(0, n)] if n else []
        finished = self._finished_by_id(done, methods)
        ranges: list[tuple[int, int]] = []
        for i, key in enumerate(self.index_ids):
            if i in self.skip or finished.get(key, 0) >= self.counts[i]:
                continue
            if ranges and ranges[-1][1] == i:
                ranges[-1] = (ranges[-1][0], i + 1)
            else:
                ranges.append((i, i + 1))
        return ranges


def context(job: Job, **kw: object) -> WorkContext:
    """The job as workers get it: its data files' contents travel with it (SPEC §9)."""
    bjob, files, given, resolved = bundle(job)
    return WorkContext(os.urandom(16).hex(), job.name, bjob, files, given, resolved, **kw)  # type: ignore[arg-type]


def survey(job: Job, be: Backend, ctx: WorkContext) -> Survey:
    """Every scenario of ``job`` validated and counted by the workers; InputError (listing each distinct
    problem, as :meth:`Job.scenarios` words it) if any is bad."""
    n = job.size
    per = max(1, min(2000, -(-n // (be.workers * 4))))

    def lost(c: Chunk, why: str) -> SurveyPart:
        raise RuntimeError(f"reading scenarios {c.lo}-{c.hi - 1} of the job: worker lost: {why}")

    parts: list[SurveyPart] = []
    for part in be.run(survey_chunk, ctx, chunks([(0, n)], per), lambda c: [c], lost):
        if part.problems:  # the driver words them as it always has (every distinct problem, once)
            for _ in job.scenarios():
                pass
            raise InputError(list(part.problems))
        parts.append(part)
    parts.sort(key=lambda p: p.chunk.lo)
    counts = array("q", bytes(8 * n))
    index_ids = array("Q", bytes(8 * n))
    seen: set[int] = set()
    kept: list[tuple[bytes, list[bool]]] = []
    skip: set[int] = set()
    tasks = 0
    demand = False
    for p in parts:  # identical scenarios in a grid are one scenario: the first index keeps it
        keep = []
        for i, key, k, d in zip(p.index, p.ids, p.tasks, p.demand, strict=True):
            keep.append(key not in seen)
            if key in seen:
                skip.add(i)
                continue
            seen.add(key)
            counts[i], index_ids[i] = k, key
            tasks += k
            demand = demand or d
        if p.ids:
            kept.append((p.table, keep))
    if not seen:
        raise InputError([Problem(job.path, "no scenarios")])
    if "min_cost" in job.methods and not demand:  # SPEC §5.1: bad input
        raise InputError([Problem(f"{job.path}: sweep.methods", "min_cost needs a demand, and no scenario of this "
                                  "sweep sets workload.min_throughput or workload.request_rate")])
    return Survey(len(seen), tasks, seen, kept, counts, index_ids, frozenset(skip))


def run_sweep(
    job: Job | str | Path,
    *,
    backend: str | Backend = "processes",
    workers: int | None = None,
    address: str | None = None,
    out: str | None = None,
    fresh: bool = False,
    retry_errors: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    rows_per_part: int = 5000,
    flush_s: float = 5.0,
) -> RunSummary:
    """Run a sweep to completion, or until Ctrl-C (then ``interrupted`` is set: finished tasks are saved
    and a re-run resumes). Raises InputError on bad input before writing anything, and StoreError
    (an InputError) if the output location is busy, unwritable or full — also mid-run, after saving
    what it can; the dataset stays readable and resumable either way."""
    job = _plain(job if isinstance(job, Job) else load_job(job))
    next(job.scenarios(), None)  # the first scenario here: most bad input is one error before any worker starts
    out = out or default_out(job)
    be = backend if isinstance(backend, Backend) else make_backend(backend, workers, address)
    # the dataset's keeper starts now (it loads pyarrow while the workers survey); the serial backend,
    # all in one process, holds the dataset itself
    keeper = None if be.in_driver else StoreProcess()
    with _sigterm_as_interrupt():
        try:
            ctx = context(job, rows_per_part=rows_per_part, flush_s=flush_s)
            sv = survey(job, be, ctx)  # validates everything before any file is touched
            summary = _run(job, be, sv, ctx, out, keeper, fresh=fresh, retry_errors=retry_errors,
                           progress=progress, stream=stream or sys.stderr)
        finally:
            be.close()  # also when the store could not be opened (busy, unwritable)
            if keeper is not None:
                keeper.close()
    summary.keeper_cpu_s = keeper.cpu_s if keeper is not None else None
    return summary


def _plain(job: Job) -> Job:
    """A :class:`Job` as workers expand it (base, grid and explicit scenarios, by index). A subclass that
    generates its scenarios otherwise (e.g. a sample of a grid) becomes its list of scenarios."""
    if type(job) is Job:
        return job
    from dataclasses import fields

    kw = {f.name: getattr(job, f.name) for f in fields(Job)}
    kw.update(base={}, grid={}, explicit=tuple(raw for _, raw in job.raw_scenarios()))
    return Job(**kw)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C; the command exits 143 (128 + SIGTERM) instead of 130."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's time limit, ``kill``, a container stopping) stops the sweep as Ctrl-C
    does — workers stopped, finished results saved, resumable — instead of killing it mid-write.
    Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)


@dataclass
class Counts:
    errors: int = 0  # failed tasks of this run (lost ones included)
    lost: int = 0  # of which their worker kept dying (a re-run retries them)


def _open_store(keeper: StoreProcess | None, out: str, sweep: str, **kw: object) -> StoreProcess | Store:
    """The dataset, locked for this run: held by the keeper process, or here (the serial backend)."""
    if keeper is not None:
        keeper.open(out, sweep, **kw)
        return keeper
    from sweep.results.store import Store

    store = Store(out, sweep, **kw)  # type: ignore[arg-type]
    store.open()
    return store


def _run(job: Job, be: Backend, sv: Survey, ctx: WorkContext, out: str, keeper: StoreProcess | None, *,
         fresh: bool, retry_errors: bool, progress: bool, stream: TextIO) -> RunSummary:
    n_sc, n_tasks = sv.scenarios, sv.tasks
    store = _open_store(keeper, out, job.name, fresh=fresh, rows_per_part=ctx.rows_per_part, flush_s=ctx.flush_s)
    try:
        summary = RunSummary(job.name, out, n_sc, n_tasks, 0)
        manifest = {"spec": job.spec, "backend": be.describe(), "status": "running",
                    "scenarios": n_sc, "tasks": {"total": n_tasks}}
        prog = Progress(n_tasks, stream=stream, enabled=False)
        counts = Counts()
        failed = False
        try:
            done = set() if fresh else store.finished_task_ids(include_errors=not retry_errors)
            skipped = sv.finished(done, job.methods)
            summary.tasks_skipped = skipped
            store.write_scenarios(sv.parts)
            store.write_manifest(manifest)
            if progress:
                print(f"sweep {job.name}: {n_sc} scenarios × {', '.join(job.methods)} = {n_tasks} tasks "
                      f"({skipped} already done) on {be.describe()} → {out}", file=stream, flush=True)
            prog = Progress(n_tasks, stream=stream, enabled=progress, initial=skipped)
            _dispatch(job, be, sv, ctx, out, done, store, prog, counts)
            store.compact()
        except KeyboardInterrupt as e:
            summary.interrupted = True
            summary.exit_code = 143 if isinstance(e, Terminated) else 130
        except BaseException:  # a store or internal failure: never recorded as complete
            failed = True
            raise
        finally:
            be.close()  # first: no worker outlives the run, whatever ended it
            _finish(job, sv, store, prog, counts, summary, manifest, failed)
    finally:
        store.close()
    return summary


def _dispatch(job: Job, be: Backend, sv: Survey, ctx: WorkContext, out: str, done: set[str],
              store: StoreProcess | Store, prog: Progress, counts: Counts) -> None:
    """Hand the unfinished scenario ranges to the backend; count what comes back (workers write their own
    parts; rows come back only where they cannot reach the output)."""
    n_sc = sv.scenarios
    run_ctx = replace(ctx, key=os.urandom(16).hex(), done=frozenset(done), skip=sv.skip,
                      out=out if be.writes_to(out) else None)
    todo = sv.todo(done, job.methods)
    split = n_sc < 2 * be.workers  # fewer scenarios than workers: one task per chunk
    per = max(1, min(1000, n_sc // (be.workers * 8)))  # ≥ 8 chunks a worker
    work = chunks(todo, per, sv.counts if split else None)

    def one_task_chunks(c: Chunk) -> list[Chunk]:
        return list(chunks([(c.lo, c.hi)], 1, sv.counts))

    def lost(c: Chunk, why: str) -> ChunkDone:
        return _lost(job, run_ctx, c, why)

    for res in be.run(run_chunk, run_ctx, work, one_task_chunks, lost):
        if res.store_error:
            raise StoreError(list(res.store_error))
        if res.tables:
            store.add_tables(res.tables)
        counts.errors += res.errors
        counts.lost += res.lost
        prog.update(res.tasks, res.errors)


def _finish(job: Job, sv: Survey, store: StoreProcess | Store, prog: Progress, counts: Counts,
            summary: RunSummary, manifest: dict, failed: bool) -> None:
    """However the run ended (workers already stopped): what is saved, the summary and the manifest."""
    n_tasks = sv.tasks
    store.sweep_temp_files()  # a stopped worker's half-written part
    prog.close()
    run_now = prog.new
    if summary.interrupted:  # workers write their own parts: what is saved is what is on disk
        try:
            store.flush()
            run_now = max(0, sv.finished(store.finished_task_ids(), job.methods) - summary.tasks_skipped)
        except StoreError:
            pass
    summary.tasks_run = run_now
    summary.failures = counts.errors
    summary.lost = counts.lost
    summary.elapsed_s = prog.elapsed_s
    manifest["status"] = "failed" if failed else "interrupted" if summary.interrupted else "complete"
    manifest["tasks"] = {"total": n_tasks, "done": min(n_tasks, summary.tasks_skipped + run_now),
                         "run_now": run_now, "failed_now": counts.errors}
    manifest["elapsed_s"] = round(prog.elapsed_s, 3)
    try:
        store.flush()
        store.write_manifest(manifest)
        if not failed:
            summary.best = store.best_exact()
    except StoreError:
        if not failed:  # else the first failure is the one to report
            raise


def _lost(job: Job, ctx: WorkContext, c: Chunk, message: str) -> ChunkDone:
    """``lost`` rows for a chunk's unfinished tasks (its worker kept dying): the driver expands the
    chunk itself — a rare path — and a re-run retries them."""
    from sweep.results.rows import rows_ipc

    rows = []
    for i, raw in raw_range(job, c.lo, c.hi):
        if i in ctx.skip:
            continue
        tasks = tasks_for(build_scenario(raw, job.base_dir, f"{job.path}#{i}"), job.methods)
        if c.task >= 0:
            tasks = tasks[c.task:c.task + 1]
        rows += [error_output(job.name, t, message, status=Status.LOST).solution
                 for t in tasks if t.task_id not in ctx.done]
    return ChunkDone(c, len(rows), len(rows), rows_ipc({"solutions": rows}), lost=len(rows))
