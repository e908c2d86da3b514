"""Planning (SPEC §1, §9): scenarios × methods → tasks with stable ids, grouped into batches.

A task is one result row: a method on a scenario, or one budget point of ``enumeration`` (so the
15 budget solves fan out and resume one by one). Tasks of one scenario travel together in a batch
so its candidates are computed once; a batch carries validated :class:`Scenario` objects (catalogs
included, shared by pickling), so workers never read the driver's files.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sweep import faults
from sweep.inputs.scenario import Scenario
from sweep.results.rows import TaskOutput
from sweep.solve.methods import (
    MethodParams,
    enumeration_budgets,
    enumeration_point,
    run_method,
)
from sweep.solve.milp import ERROR
from sweep.solve.prepare import Prepared, prepare
from sweep.solve.result import MethodResult, fleet_fields
from sweep.vocab import LOST  # noqa: F401  (re-exported for the backends)


@dataclass(frozen=True)
class Task:
    task_id: str
    scenario_id: str
    method: str
    budget: float | None = None  # an enumeration budget point, $/h


@dataclass(frozen=True)
class Work:
    """The tasks of one scenario in a batch."""

    scenario: Scenario
    tasks: tuple[Task, ...]


@dataclass(frozen=True)
class Batch:
    batch_id: int
    items: tuple[Work, ...]

    @property
    def size(self) -> int:
        return sum(len(w.tasks) for w in self.items)


def task_id(scenario_id: str, method: str, budget: float | None = None) -> str:
    return f"{scenario_id}/{method}" + (f"@{budget:g}" if budget is not None else "")


def tasks_for(sc: Scenario, methods: Iterable[str]) -> list[Task]:
    """The tasks of one scenario; ``min_cost`` only where the scenario has a demand (SPEC §5.1)."""
    sid = sc.scenario_id
    out: list[Task] = []
    for m in methods:
        if m == "min_cost" and not sc["workload.min_throughput"]:
            continue
        if m == "enumeration":
            for b in enumeration_budgets(MethodParams.from_params(sc.params)):
                out.append(Task(task_id(sid, m, b), sid, m, b))
        else:
            out.append(Task(task_id(sid, m), sid, m))
    return out


def plan(
    scenarios: Iterable[Scenario],
    methods: Iterable[str],
    done: set[str] | frozenset[str] = frozenset(),
    scenarios_per_batch: int = 4,
    split_tasks: bool = False,
) -> Iterator[Batch]:
    """Batches of unfinished tasks, lazily. ``split_tasks`` gives every task its own batch
    (for sweeps with fewer scenarios than workers)."""
    methods = tuple(methods)
    bid = 0
    pending: list[Work] = []
    seen: set[str] = set()
    for sc in scenarios:
        if sc.scenario_id in seen:  # identical scenarios in a grid are one scenario
            continue
        seen.add(sc.scenario_id)
        todo = tuple(t for t in tasks_for(sc, methods) if t.task_id not in done)
        if not todo:
            continue
        if split_tasks:
            for t in todo:
                yield Batch(bid, (Work(sc, (t,)),))
                bid += 1
            continue
        pending.append(Work(sc, todo))
        if len(pending) >= scenarios_per_batch:
            yield Batch(bid, tuple(pending))
            bid += 1
            pending = []
    if pending:
        yield Batch(bid, tuple(pending))


# --------------------------------------------------------------------------- running (in workers)


def _solution_row(sweep: str, task: Task, prep: Prepared | None, r: MethodResult, is_best: bool) -> dict:
    return {
        "sweep": sweep,
        "task_id": task.task_id,
        "scenario_id": task.scenario_id,
        "method": task.method,
        "budget": task.budget if task.budget is not None else r.budget,
        "status": r.status,
        **fleet_fields(prep.instance if prep else None, r.fleet),
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
    faults.check(task.task_id)
    if task.method == "enumeration":
        t0 = time.perf_counter()
        try:
            r = enumeration_point(prep.instance, task.budget or 0.0)
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




def error_output(sweep: str, task: Task, message: str, solver: str = "") -> TaskOutput:
    r = MethodResult(task.method, ERROR, None, 0, 0.0, solver, budget=task.budget, message=message)
    return TaskOutput(task.task_id, task.scenario_id, _solution_row(sweep, task, None, r, False))


def run_batch(sweep: str, batch: Batch) -> list[TaskOutput]:
    """Run every task of a batch: candidates once per scenario, then each task. Never raises for a
    task's or a scenario's failure: those become ``error`` rows."""
    outputs: list[TaskOutput] = []
    for work in batch.items:
        try:
            prep = prepare(work.scenario)
        except Exception as e:  # noqa: BLE001 - a scenario that cannot be prepared fails its tasks, not the sweep
            msg = f"preparing scenario failed: {e.__class__.__name__}: {e}"
            outputs.extend(error_output(sweep, t, msg, work.scenario["solver.name"]) for t in work.tasks)
            continue
        for t in work.tasks:
            try:
                outputs.append(run_task(sweep, t, prep))
            except Exception as e:  # noqa: BLE001
                tb = traceback.format_exception_only(e)[-1].strip()
                outputs.append(error_output(sweep, t, tb, prep.instance.solver))
    return outputs
