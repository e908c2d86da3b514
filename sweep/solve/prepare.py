"""One scenario, start to finish: candidates → MILP instance → the asked methods."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sweep.fleet.candidates import CandidateTable, build_candidates
from sweep.inputs.scenario import Scenario
from sweep.solve.methods import ALL_METHODS, MethodParams, run_method
from sweep.solve.milp import BudgetSolver, Instance, instance_of
from sweep.solve.result import MethodResult


@dataclass(frozen=True)
class Prepared:
    """A scenario ready to solve: its candidates and MILP data, computed once."""

    scenario: Scenario
    table: CandidateTable
    instance: Instance
    params: MethodParams

    @cached_property
    def budget_solver(self) -> BudgetSolver:
        """One built budget-solve model of this instance, shared by the scenario's enumeration points."""
        return BudgetSolver(self.instance)

    @property
    def scenario_id(self) -> str:
        return self.scenario.scenario_id


def prepare(sc: Scenario) -> Prepared:
    table = build_candidates(sc)
    return Prepared(sc, table, instance_of(sc, table), MethodParams.from_settings(sc.methods))


def solve_scenario(sc: Scenario | Prepared, methods: list[str] | tuple[str, ...] = ALL_METHODS) -> list[MethodResult]:
    """Run each method on the scenario; a failing method gives an ``error`` result, not an exception."""
    prep = sc if isinstance(sc, Prepared) else prepare(sc)
    return [run_method(m, prep.instance, prep.params) for m in methods]
