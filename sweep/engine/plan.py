"""Planning (SPEC §1, §9): a job's scenarios × methods → tasks with stable ids, described compactly.

A task is one result row: a method on a scenario, or one budget point of ``enumeration`` (so the
15 budget solves fan out and resume one by one). The driver never builds a scenario: it hands out
:class:`Chunk`\\ s — a range of scenario *indices* of the job (the job itself, with its data files'
contents, travels once per worker: :mod:`sweep.engine.worker`), or one task of one scenario — and
workers expand, validate, solve and write them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sweep.inputs.job import Job
from sweep.inputs.scenario import Scenario


@dataclass(frozen=True)
class Task:
    task_id: str
    scenario_id: str
    method: str
    budget: float | None = None  # an enumeration budget point, $/h


@dataclass(frozen=True)
class Chunk:
    """Scenarios ``lo`` … ``hi`` - 1 of a job (their unfinished tasks), or with ``task`` ≥ 0 only the
    ``task``-th task of scenario ``lo`` (sweeps with fewer scenarios than workers; a suspect's split)."""

    chunk_id: int
    lo: int
    hi: int
    task: int = -1

    @property
    def scenarios(self) -> int:
        return self.hi - self.lo


def task_id(scenario_id: str, method: str, budget: float | None = None) -> str:
    return f"{scenario_id}/{method}" + (f"@{budget:g}" if budget is not None else "")


def scenario_number(scenario_id: str) -> int:
    """A scenario id (16 hex digits) as the 64-bit number it is: how a driver holds millions of them.
    ValueError if it is not one."""
    return int(scenario_id, 16)


def tasks_for(sc: Scenario, methods: Iterable[str]) -> list[Task]:
    """The tasks of one scenario; ``min_cost`` only where the scenario has a demand (SPEC §5.1)."""
    from sweep.solve.methods import MethodParams, enumeration_budgets

    sid = sc.scenario_id
    out: list[Task] = []
    for m in methods:
        if m == "min_cost" and not (sc.workload.min_throughput or sc.workload.request_rate):
            continue
        if m == "enumeration":
            for b in enumeration_budgets(MethodParams.from_settings(sc.methods)):
                out.append(Task(task_id(sid, m, b), sid, m, b))
        else:
            out.append(Task(task_id(sid, m), sid, m))
    return out


def raw_at(job: Job, i: int) -> dict[str, Any]:
    """Scenario ``i``'s dotted-key values, as ``job.raw_scenarios()`` yields it at index ``i`` (explicit
    tables outermost, then the grid's axes, the last one varying fastest) — without generating the others."""
    keys = list(job.grid)
    n_grid = 1
    for k in keys:
        n_grid *= len(job.grid[k])
    ex_i, rest = divmod(i, n_grid)
    combo: dict[str, Any] = {}
    for k in reversed(keys):
        rest, j = divmod(rest, len(job.grid[k]))
        combo[k] = job.grid[k][j]
    ex = job.explicit[ex_i] if job.explicit else {}
    return {**job.base, **ex, **{k: combo[k] for k in keys}}


def raw_range(job: Job, lo: int, hi: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, values) of scenarios ``lo`` … ``hi`` - 1, in order (one product walk, not one per index)."""
    if lo >= hi:
        return
    keys = list(job.grid)
    n_grid = 1
    for k in keys:
        n_grid *= len(job.grid[k])
    i = lo
    ex_i, start = divmod(lo, n_grid)
    explicit = job.explicit or ({},)
    while i < hi and ex_i < len(explicit):
        ex = explicit[ex_i]
        combos = itertools.islice(itertools.product(*(job.grid[k] for k in keys)), start, None)
        for combo in combos:
            if i >= hi:
                return
            yield i, {**job.base, **ex, **dict(zip(keys, combo, strict=True))}
            i += 1
        ex_i, start = ex_i + 1, 0


def chunks(todo: Sequence[tuple[int, int]], per: int, tasks: Sequence[int] | None = None) -> Iterator[Chunk]:
    """Chunks of at most ``per`` scenarios over the index ranges ``todo`` ((lo, hi) pairs); with ``tasks``
    (each scenario's task count, by index) one chunk per task instead."""
    cid = 0
    for lo, hi in todo:
        if tasks is not None:
            for i in range(lo, hi):
                for k in range(tasks[i]):
                    yield Chunk(cid, i, i + 1, k)
                    cid += 1
            continue
        for a in range(lo, hi, per):
            yield Chunk(cid, a, min(hi, a + per))
            cid += 1
