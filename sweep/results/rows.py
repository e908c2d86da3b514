"""What a finished task hands the store (one solutions row, and pareto's frontier rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskOutput:
    """What a finished task gives the store: one solutions row and, for pareto, frontier rows."""

    task_id: str
    scenario_id: str
    solution: dict
    frontier: tuple[dict, ...] = ()
