"""The sweep driver: job → scenarios → tasks → backend → store, with progress, resume and a summary."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TextIO

import pyarrow as pa

from sweep.engine.backends import Backend, make_backend
from sweep.engine.plan import plan, tasks_for
from sweep.engine.progress import Progress, fmt_duration
from sweep.errors import InputError, Problem
from sweep.inputs.job import Job, load_job
from sweep.inputs.scenario import Scenario
from sweep.results.store import Store, StoreError, redact, scenarios_table
from sweep.vocab import EXACT_METHODS, Status


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


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("sweep", "pulp", "highspy", "pyarrow", "pandas", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class Survey:
    """What one pass over a job's scenarios learns before anything is written: every scenario is
    validated (InputError otherwise), counted, and its scenarios.parquet row built."""

    scenarios: int
    tasks: int
    ids: set[str]
    table: pa.Table

    def finished(self, done: set[str], methods: tuple[str, ...]) -> int:
        """How many of this job's tasks are among ``done`` (task ids are ``<scenario_id>/<method>[@budget]``;
        the folder may also hold rows of an earlier version of the job)."""
        n = 0
        for t in done:
            sid, _, rest = t.partition("/")
            n += sid in self.ids and rest.partition("@")[0] in methods
        return n


def survey(job: Job) -> Survey:
    seen: set[str] = set()
    n_tasks = 0

    def unique() -> Iterator[Scenario]:
        nonlocal n_tasks
        for sc in job.scenarios():
            if sc.scenario_id not in seen:
                seen.add(sc.scenario_id)
                n_tasks += len(tasks_for(sc, job.methods))
                yield sc

    demand = False

    def with_demand(scs: Iterator[Scenario]) -> Iterator[Scenario]:
        nonlocal demand
        for sc in scs:
            demand = demand or bool(sc["workload.min_throughput"] or sc["workload.request_rate"])
            yield sc

    table = scenarios_table(job.name, with_demand(unique()))
    if "min_cost" in job.methods and not demand:  # SPEC §5.1: min_cost without a demand is bad input
        raise InputError([Problem(f"{job.path}: sweep.methods", "min_cost needs a demand, and no scenario of this "
                                  "sweep sets workload.min_throughput or workload.request_rate")])
    return Survey(len(seen), n_tasks, seen, table)


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
    job = job if isinstance(job, Job) else load_job(job)
    sv = survey(job)  # validates everything before any file is touched
    out = out or default_out(job)
    be = backend if isinstance(backend, Backend) else make_backend(backend, workers, address)
    with _sigterm_as_interrupt():
        try:
            return _run(job, be, sv, out, fresh=fresh, retry_errors=retry_errors, progress=progress,
                        stream=stream or sys.stderr, rows_per_part=rows_per_part, flush_s=flush_s)
        finally:
            be.close()  # also when the store could not be opened (busy, unwritable)


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


def _run(job: Job, be: Backend, sv: Survey, out: str, *, fresh: bool, retry_errors: bool,
         progress: bool, stream: TextIO, rows_per_part: int, flush_s: float) -> RunSummary:
    n_sc, n_tasks = sv.scenarios, sv.tasks
    with Store(out, job.name, fresh=fresh, rows_per_part=rows_per_part, flush_s=flush_s) as store:
        summary = RunSummary(job.name, out, n_sc, n_tasks, 0)
        manifest = {"spec": job.spec, "versions": versions(), "backend": be.describe(), "status": "running",
                    "scenarios": n_sc, "tasks": {"total": n_tasks}}
        prog = Progress(n_tasks, stream=stream, enabled=False)
        failed = False
        try:
            done = set() if fresh else store.finished_task_ids(include_errors=not retry_errors)
            skipped = sv.finished(done, job.methods)
            summary.tasks_skipped = skipped
            store.write_scenarios(sv.table)
            store.write_manifest(manifest)
            if progress:
                print(f"sweep {job.name}: {n_sc} scenarios × {', '.join(job.methods)} = {n_tasks} tasks "
                      f"({skipped} already done) on {be.describe()} → {out}", file=stream, flush=True)
            prog = Progress(n_tasks, stream=stream, enabled=progress, initial=skipped)
            split = n_sc < 2 * be.workers
            per_batch = max(1, min(8, n_sc // (be.workers * 8)))
            batches = plan(job.scenarios(), job.methods, done, scenarios_per_batch=per_batch, split_tasks=split)
            for res in be.run(job.name, batches):
                store.add(res.outputs)
                prog.update(len(res.outputs), sum(o.solution["status"] == Status.ERROR for o in res.outputs))
            store.compact()
        except KeyboardInterrupt as e:
            summary.interrupted = True
            summary.exit_code = 143 if isinstance(e, Terminated) else 130
        except BaseException:  # a store or internal failure: never recorded as complete
            failed = True
            raise
        finally:
            be.close()  # first: no worker outlives the run, whatever ended it
            prog.close()
            summary.tasks_run = prog.new
            summary.failures = store.counts.errors
            summary.lost = store.counts.lost
            summary.elapsed_s = prog.elapsed_s
            manifest["status"] = "failed" if failed else "interrupted" if summary.interrupted else "complete"
            manifest["tasks"] = {"total": n_tasks, "done": min(n_tasks, summary.tasks_skipped + prog.new),
                                 "run_now": prog.new, "failed_now": store.counts.errors}
            manifest["elapsed_s"] = round(prog.elapsed_s, 3)
            try:
                store.flush()
                store.write_manifest(manifest)
                if not failed:
                    summary.best = best_exact(store)
            except StoreError:
                if not failed:  # else the first failure is the one to report
                    raise
    return summary


def best_exact(store: Store) -> dict:
    """The least $/token among exact methods' optimal rows in the dataset (empty if none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    best: dict = {}
    cols = ["scenario_id", "method", "status", "cost_per_token", "throughput_tok_s", "cost_per_hour"]
    for f in store.part_files("solutions"):
        t = store.read_table(f, columns=cols)
        exact = pc.is_in(t["method"], value_set=pa.array(list(EXACT_METHODS)))
        t = t.filter(pc.and_(exact, pc.and_(pc.equal(t["status"], "optimal"), pc.is_valid(t["cost_per_token"]))))
        if t.num_rows == 0:
            continue
        i = pc.index(t["cost_per_token"], pc.min(t["cost_per_token"])).as_py()
        row = {c: t[c][i].as_py() for c in cols}
        if not best or row["cost_per_token"] < best["cost_per_token"]:
            best = row
    return best
