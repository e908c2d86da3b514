"""Planning (SPEC §1, §9): scenarios × methods → tasks with stable ids, grouped into batches
(running them is :mod:`sweep.engine.worker`).

A task is one result row: a method on a scenario, or one budget point of ``enumeration`` (so the
15 budget solves fan out and resume one by one). Tasks of one scenario travel together in a batch
so its candidates are computed once; a batch carries validated :class:`Scenario` objects (catalogs
included, shared by pickling), so workers never read the driver's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sweep.inputs.scenario import Scenario
from sweep.solve.methods import MethodParams, enumeration_budgets


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
        if m == "min_cost" and not (sc["workload.min_throughput"] or sc["workload.request_rate"]):
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
