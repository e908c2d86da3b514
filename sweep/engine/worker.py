"""Running tasks (SPEC §9): a batch's scenarios prepared once, each task solved into its result row.
Never raises for a task's failure: it becomes an ``error`` row."""

from __future__ import annotations

import json
import time
import traceback

from sweep import faults
from sweep.engine.plan import Batch, Task
from sweep.results.rows import TaskOutput
from sweep.solve.methods import enumeration_point, run_method
from sweep.solve.milp import ERROR
from sweep.solve.prepare import Prepared, prepare
from sweep.solve.result import MethodResult, fleet_fields, tokens_per_request


def _solution_row(sweep: str, task: Task, prep: Prepared | None, r: MethodResult, is_best: bool) -> dict:
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
