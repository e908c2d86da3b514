"""What every method shares: its settings (:class:`MethodParams`) and the tally of its solves."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from sweep.inputs.catalog import units_to_dollars
from sweep.inputs.settings import DEFAULTS, MethodsSettings, settings_of
from sweep.solve.milp import (
    ERROR,
    INFEASIBLE,
    OPTIMAL,
    TIME_LIMIT,
    Fleet,
    Instance,
    Outcome,
)
from sweep.solve.result import MethodResult, method_status


@dataclass(frozen=True)
class MethodParams:
    """The ``methods.*`` settings of a scenario, flat; defaults are the schema's
    (:data:`sweep.inputs.scenario.SCHEMA`)."""

    weight: float = DEFAULTS.methods.weighted.weight
    target_cpt: float = DEFAULTS.methods.iterative.target_cpt
    tighten: float = DEFAULTS.methods.iterative.tighten
    max_iter: int = DEFAULTS.methods.iterative.max_iter
    budget_min: float = DEFAULTS.methods.enumeration.budget_min
    budget_max: float = DEFAULTS.methods.enumeration.budget_max
    points: int = DEFAULTS.methods.enumeration.points

    @classmethod
    def from_settings(cls, m: MethodsSettings) -> MethodParams:
        return cls(
            weight=m.weighted.weight,
            target_cpt=m.iterative.target_cpt,
            tighten=m.iterative.tighten,
            max_iter=m.iterative.max_iter,
            budget_min=m.enumeration.budget_min,
            budget_max=m.enumeration.budget_max,
            points=m.enumeration.points,
        )

    @classmethod
    def from_params(cls, p: Mapping) -> MethodParams:
        """The same from resolved dotted-key values (every key of the schema)."""
        return cls.from_settings(settings_of(p).methods)


class Tally:
    """Counts solves, time and statuses across the solves of one method run."""

    def __init__(self, solver_name: str = "") -> None:
        self.t0 = time.perf_counter()
        self.solver_name = solver_name or "solver"
        self.solves = 0
        self.statuses: list[str] = []
        self.messages: list[str] = []
        self.gap: float | None = None

    def add(self, out: Outcome, *, feasible: bool = False) -> Outcome:
        """Record a solve. ``feasible``: the model is known to have a solution (a fleet in hand
        satisfies it), so an ``infeasible`` answer is a solver failure, recorded as ``error``."""
        self.solves += out.solves
        if out.status == INFEASIBLE and feasible:
            self.statuses.append(ERROR)
            self.messages.append(f"{self.solver_name}: a model with a known solution was reported infeasible")
            return Outcome(ERROR, None, out.seconds, message=self.messages[-1], solves=0)
        self.statuses.append(out.status)
        if out.message and out.status in (TIME_LIMIT, ERROR):
            self.messages.append(out.message)
        if out.status == TIME_LIMIT and out.mip_gap is not None:
            self.gap = max(self.gap or 0.0, out.mip_gap)
        return out

    @property
    def all_optimal(self) -> bool:
        return all(s == OPTIMAL for s in self.statuses)

    def fail(self, message: str) -> None:
        """Record a failure that is not one solve's status (a check that did not hold)."""
        self.statuses.append(ERROR)
        self.messages.append(message)

    def result(self, method: str, inst: Instance, fleet: Fleet | None, **kw) -> MethodResult:
        status = method_status(self.statuses, fleet)
        msg = kw.pop("message", "") or "; ".join(dict.fromkeys(self.messages))
        return MethodResult(method, status, fleet, self.solves, time.perf_counter() - self.t0, inst.solver,
                            mip_gap=self.gap, message=msg, **kw)


def dollars(units: int | None) -> float | None:
    return None if units is None else units_to_dollars(units)


def cap_budget(inst: Instance, units: int) -> int:
    """A method's budget never exceeds the scenario's ``limits.budget``."""
    return min(units, inst.budget_units) if inst.budget_units else units
