"""Workers (SPEC §9): a chunk of a job's scenario indices in, finished rows written to the dataset.

The driver ships a :class:`WorkContext` once per worker — the job (its grid, not its scenarios), the
contents of every data file it names (so any node runs any chunk, whatever its file system), the
finished task ids to skip and where to write — and then only :class:`~sweep.engine.plan.Chunk`\\ s.
A worker expands its chunk's scenarios itself (validating them: :func:`survey_chunk`), prepares each
once, solves its tasks (:func:`run_chunk`) and writes their rows as atomic Parquet parts
(:class:`~sweep.results.store.PartWriter`), or sends them back as Arrow tables where it cannot reach the
output location. A task's failure is an ``error`` row, never an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep import faults
from sweep.engine.plan import Chunk, Task, raw_range, scenario_number, tasks_for
from sweep.errors import InputError, Problem
from sweep.inputs.job import Job
from sweep.results.rows import TaskOutput
from sweep.vocab import FAILED, Status

if TYPE_CHECKING:
    from sweep.inputs.scenario import Scenario
    from sweep.solve.prepare import Prepared
    from sweep.solve.result import MethodResult

# scenario keys that name data files, and the catalog kind each resolves ``builtin`` to
FILE_KINDS = {"catalog.gpus": "gpus", "catalog.offerings": "offerings", "catalog.models": "models",
              "perf.profile": "profile", "perf.calibration": "calibration", "workload.trace": "trace"}
BUILTIN_KEYS = ("catalog.gpus", "catalog.offerings", "catalog.models")  # "builtin" by default


@dataclass(frozen=True)
class WorkContext:
    """Everything a chunk needs besides its indices; shipped once per worker (see the backends)."""

    key: str  # unique per context: workers cache one by its key
    sweep: str
    job: Job  # data-file values renamed to bundle names (``files``)
    files: dict[str, bytes] = field(default_factory=dict)  # bundle name -> the file's content
    given: dict[str, str] = field(default_factory=dict)  # bundle name -> the value as the job gave it
    resolved: dict[str, str] = field(default_factory=dict)  # bundle name -> the path the driver resolved
    out: str | None = None  # where workers write parts; None: they send rows back
    rows_per_part: int = 5000
    flush_s: float = 5.0
    done: frozenset[str] = frozenset()  # finished task ids: skipped
    skip: frozenset[int] = frozenset()  # scenario indices that repeat an earlier index's scenario

    @property
    def bundle_id(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()[:20]


def bundle(job: Job) -> tuple[Job, dict[str, bytes], dict[str, str], dict[str, str]]:
    """The job with every data-file value (base, grid, explicit scenarios; the built-in catalogs too) renamed
    to a bundle name, and the bundle: (job, name -> content, name -> value as given, name -> path as resolved
    here). Scenario ids hash files' contents, not their paths: they do not change. A file that cannot be read
    stays as it is (validation then reports it, as without a bundle)."""
    from sweep.inputs.catalog import resolve_path

    files: dict[str, bytes] = {}
    given: dict[str, str] = {}
    resolved: dict[str, str] = {}
    names: dict[tuple[str, str], str] = {}

    def rename(key: str, value: Any) -> Any:
        kind = FILE_KINDS.get(key)
        if kind is None or not isinstance(value, str) or value == "":
            return value
        if (key, value) not in names:
            path = resolve_path(value, kind, job.base_dir)
            try:
                data = path.read_bytes()
            except (OSError, ValueError):
                names[(key, value)] = value
                return value
            name = f"f{len(files)}-{kind}-{os.path.basename(str(path))}"
            files[name], given[name], resolved[name] = data, value, str(path)
            names[(key, value)] = name
        return names[(key, value)]

    base = {k: rename(k, v) for k, v in job.base.items()}
    for key in BUILTIN_KEYS:  # the default, "builtin": its content travels too (one version on every node)
        if key not in base:
            base[key] = rename(key, "builtin")
    grid = {k: [rename(k, v) for v in vs] for k, vs in job.grid.items()}
    explicit = tuple({k: rename(k, v) for k, v in ex.items()} for ex in job.explicit)
    return replace(job, base=base, grid=grid, explicit=explicit), files, given, resolved


# ------------------------------------------------------------------------------- in the worker

_contexts: dict[str, WorkContext] = {}


def resolve(handle: tuple) -> WorkContext:
    """The context a handle names (``("obj", key, ctx)``, ``("file", key, path)``, ``("ray", key, [ref])``),
    loaded once per worker process and kept while chunks of it arrive."""
    kind, key, where = handle
    ctx = _contexts.get(key)
    if ctx is not None:
        return ctx
    if kind == "obj":
        ctx = where
    elif kind == "file":
        import pickle

        with open(where, "rb") as f:
            ctx = pickle.load(f)
    else:
        import ray

        ctx = ray.get(where[0])
    _contexts.clear()  # one sweep phase at a time
    _contexts[key] = ctx
    return ctx


def _base_dir(ctx: WorkContext) -> Path:
    """A folder holding the bundle's files under their bundle names (content-addressed, shared by the
    worker processes of a machine, written atomically); the job's own folder when there are none."""
    if not ctx.files:
        return ctx.job.base_dir
    d = Path(tempfile.gettempdir()) / f"sweep-files-{ctx.bundle_id}"
    if not d.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".sweep-files-", dir=d.parent))
        for name, data in ctx.files.items():
            (tmp / name).write_bytes(data)
        try:
            os.rename(tmp, d)
        except OSError:  # another worker was first: use its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return d


def _scenarios(ctx: WorkContext, chunk: Chunk) -> list[tuple[int, Scenario]]:
    from sweep.inputs.scenario import build_scenario

    base = _base_dir(ctx)
    return [(i, build_scenario(raw, base, f"{ctx.job.path}#{i}"))
            for i, raw in raw_range(ctx.job, chunk.lo, chunk.hi) if i not in ctx.skip]


def _as_given(ctx: WorkContext, sc: Scenario, base: Path) -> Scenario:
    """The scenario with its data-file values as the job gave them (bundle names are the worker's own)."""
    params = dict(sc.params)
    prefix = str(base) + os.sep
    for k in FILE_KINDS:
        v = params.get(k)
        if not isinstance(v, str):
            continue
        if v in ctx.given:
            params[k] = ctx.given[v]
        elif v.startswith(prefix) and v[len(prefix):] in ctx.resolved:  # made absolute (perf.calibration)
            params[k] = ctx.resolved[v[len(prefix):]]
    return replace(sc, params=params)


@dataclass(frozen=True)
class SurveyPart:
    """One chunk's scenarios validated: for each, its index, id, task count and whether it sets a demand,
    plus their scenarios.parquet rows (an IPC stream the driver passes on); or ``problems`` (the driver then
    validates the job itself, to report them)."""

    chunk: Chunk
    index: tuple[int, ...] = ()
    ids: tuple[int, ...] = ()  # scenario ids as numbers (:func:`~sweep.engine.plan.scenario_number`)
    tasks: tuple[int, ...] = ()
    demand: tuple[bool, ...] = ()
    table: bytes = b""
    problems: tuple[Problem, ...] = ()


def survey_chunk(handle: tuple, chunk: Chunk) -> SurveyPart:
    from sweep.results.rows import scenarios_table, to_ipc

    ctx = resolve(handle)
    try:
        scs = _scenarios(ctx, chunk)
    except InputError as e:
        return SurveyPart(chunk, problems=tuple(e.problems))
    base = _base_dir(ctx)
    table = scenarios_table(ctx.sweep, (_as_given(ctx, sc, base) for _, sc in scs))
    return SurveyPart(chunk, tuple(i for i, _ in scs), tuple(scenario_number(sc.scenario_id) for _, sc in scs),
                      tuple(len(tasks_for(sc, ctx.job.methods)) for _, sc in scs),
                      tuple(bool(sc.workload.min_throughput or sc.workload.request_rate) for _, sc in scs),
                      to_ipc(table))


@dataclass(frozen=True)
class ChunkDone:
    """What the driver learns of a finished chunk: counts, and the rows only if the worker could not write them."""

    chunk: Chunk
    tasks: int = 0
    errors: int = 0
    tables: dict[str, bytes] | None = None  # IPC streams (:func:`sweep.results.rows.rows_ipc`)
    lost: int = 0  # tasks given up because their worker kept dying (rows written by the driver)
    store_error: tuple[Problem, ...] = ()


class WorkerStop(BaseException):
    """SIGTERM in a worker process while it runs a chunk (the driver stopping it): save, then exit."""


_writer = None  # the PartWriter of the chunk this worker process is running, if any
_flushing = False


def stop_on_sigterm(signum: int, frame: object) -> None:
    """A local worker process's SIGTERM handler (the driver's close(): Ctrl-C, SIGTERM, an error): an idle
    worker exits at once; a busy one first writes the rows of the tasks it has finished (nothing finished
    is lost), at the next Python instruction — a solve in progress is not waited for beyond the driver's grace."""
    if _writer is None:
        os._exit(0)
    if not _flushing:
        raise WorkerStop


def _save_and_exit(writer) -> None:
    global _flushing
    _flushing = True
    try:
        if writer.writes:
            writer.flush()
    except BaseException:  # noqa: BLE001 - exiting either way; a half-written part is removed or hidden
        pass
    os._exit(0)


def run_chunk(handle: tuple, chunk: Chunk) -> ChunkDone:
    """Every unfinished task of a chunk: each scenario prepared once, then its tasks solved and written."""
    global _writer
    from sweep.results.store import PartWriter, StoreError

    ctx = resolve(handle)
    writer = PartWriter(ctx.out, ctx.rows_per_part, ctx.flush_s)
    n = errors = 0
    _writer = writer
    try:
        for _, sc in _scenarios(ctx, chunk):
            todo = tasks_for(sc, ctx.job.methods)
            if chunk.task >= 0:
                todo = todo[chunk.task:chunk.task + 1]
            todo = [t for t in todo if t.task_id not in ctx.done]
            for o in run_tasks(ctx.sweep, sc, todo):
                writer.add(o)
                n += 1
                errors += o.solution["status"] in FAILED
        if not writer.writes:
            return ChunkDone(chunk, n, errors, writer.tables())
        writer.flush()
    except StoreError as e:
        return ChunkDone(chunk, store_error=tuple(e.problems))
    except WorkerStop:
        _save_and_exit(writer)
    except KeyboardInterrupt:  # the serial backend, in the driver's process: save what is finished
        if writer.writes:
            writer.flush()
        raise
    finally:
        _writer = None
    return ChunkDone(chunk, n, errors)


def run_tasks(sweep: str, sc: Scenario, tasks: list[Task]) -> Iterator[TaskOutput]:
    """The tasks of one scenario, each output as it finishes: candidates once, then each task. Never raises
    for a task's or the scenario's failure: those become ``error`` rows."""
    if not tasks:
        return
    from sweep.solve.prepare import prepare

    try:
        prep = prepare(sc)
    except Exception as e:  # noqa: BLE001 - a scenario that cannot be prepared fails its tasks, not the sweep
        msg = f"preparing scenario failed: {e.__class__.__name__}: {e}"
        yield from (error_output(sweep, t, msg, sc.solver.name) for t in tasks)
        return
    for t in tasks:
        try:
            out = run_task(sweep, t, prep)
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exception_only(e)[-1].strip()
            out = error_output(sweep, t, tb, prep.instance.solver)
        yield out


# ------------------------------------------------------------------------------- one task


def _solution_row(sweep: str, task: Task, prep: Prepared | None, r: MethodResult, is_best: bool) -> dict:
    from sweep.solve.result import fleet_fields, tokens_per_request

    return {
        "sweep": sweep,
        "task_id": task.task_id,
        "scenario_id": task.scenario_id,
        "method": task.method,
        "budget": task.budget if task.budget is not None else r.budget,
        "status": r.status,
        **fleet_fields(prep.instance if prep else None, r.fleet, tokens_per_request(prep.scenario) if prep else 0),
        "solves": r.solves,
        "seconds": r.seconds,
        "solver": r.solver,
        "error": r.message or None,
        "is_best": is_best,
        "mip_gap": r.mip_gap,
        "path": json.dumps(list(r.path)) if r.path else None,
    }


def run_task(sweep: str, task: Task, prep: Prepared) -> TaskOutput:
    """One task; a method that raises is an ``error`` row (run_method never raises)."""
    from sweep.solve.methods import enumeration_point, run_method
    from sweep.solve.milp import ERROR
    from sweep.solve.result import MethodResult, fleet_fields

    faults.check(task.task_id)
    if task.method == "enumeration":
        t0 = time.perf_counter()
        try:
            r = enumeration_point(prep.instance, task.budget or 0.0, prep.budget_solver)
        except Exception as e:  # noqa: BLE001 - a failing point is a row
            r = MethodResult("enumeration", ERROR, None, 0, time.perf_counter() - t0, prep.instance.solver,
                             budget=task.budget, message=f"{e.__class__.__name__}: {e}")
        # which point wins is decided when all points are in (store compaction)
        return TaskOutput(task.task_id, task.scenario_id, _solution_row(sweep, task, prep, r, False))
    r = run_method(task.method, prep.instance, prep.params)
    frontier: tuple[dict, ...] = ()
    if task.method == "pareto":
        frontier = tuple(
            {"sweep": sweep, "scenario_id": task.scenario_id, "rank": i,
             **{k: v for k, v in fleet_fields(prep.instance, f).items() if k != "gpus"}}
            for i, f in enumerate(reversed(r.frontier))
        )
    return TaskOutput(task.task_id, task.scenario_id, _solution_row(sweep, task, prep, r, r.fleet is not None),
                      frontier)


def error_output(sweep: str, task: Task, message: str, solver: str = "", status: Status = Status.ERROR) -> TaskOutput:
    """The row of a task that raised (``error``) or whose worker kept dying (``lost``)."""
    from sweep.solve.result import MethodResult

    r = MethodResult(task.method, status, None, 0, 0.0, solver, budget=task.budget, message=message)
    return TaskOutput(task.task_id, task.scenario_id, _solution_row(sweep, task, None, r, False))
