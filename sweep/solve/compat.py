"""The design note's Python interface (SPEC §6), on top of :mod:`sweep.solve.methods`.

    solver = sweep.Solver("config.csv")            # or a TOML scenario, or a Scenario
    solver.solve_optimal_cost_per_token()          # the note's 15-budget enumeration, with its printout
    print(solver.solution["cost_per_token"])

The note's methods keep their names and behaviour: ``solve()`` is the weighted objective,
``solve_for_min_cost_per_token()`` the iterative heuristic, ``solve_optimal_cost_per_token()`` the
budget enumeration. None of them is guaranteed optimal — the enumeration's printout says so and
gives the exact optimum beside it. ``solve_exact()`` runs Dinkelbach's method, which is.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from sweep.inputs.load import load_scenario
from sweep.inputs.scenario import Scenario
from sweep.report import fmt_tok_s
from sweep.solve.methods import (
    MethodParams,
    dinkelbach,
    enumeration_budgets,
    enumeration_point,
    enumeration_reduce,
    gap_pct,
    iterative,
    weighted,
)
from sweep.solve.milp import Fleet
from sweep.solve.prepare import Prepared, prepare
from sweep.solve.result import MethodResult, allocation, better, to_row, tokens_per_request
from sweep.vocab import Status


def _cpt(fleet: Fleet) -> str:
    """$/token the way the note prints it: ``$0.000000085``."""
    return f"${fleet.cost_per_token or 0.0:.9f}"


def _point(fleet: Fleet) -> str:
    """``985 tokens/s, $0.30/h, $0.000000085/token`` (the note's result line)."""
    return f"{fmt_tok_s(fleet.throughput_tok_s, grouping=False)} tokens/s, ${fleet.cost_per_hour:.2f}/h, {_cpt(fleet)}/token"


class Solver:
    """The note's solver object for one scenario.

    ``config`` is a path to the note's ``config.csv`` or a TOML scenario, or a :class:`Scenario`.
    Candidates and MILP data are built once here. Each ``solve*`` call runs one method, stores its
    answer in :attr:`solution` (and the full :class:`MethodResult` in :attr:`result`) and returns
    the solution dict. Raises :class:`sweep.InputError` for a bad config.
    """

    def __init__(self, config: str | Path | Scenario, *, verbose: bool = True, out: TextIO | None = None) -> None:
        scenario = config if isinstance(config, Scenario) else load_scenario(config)
        self.prepared: Prepared = prepare(scenario)
        self.verbose = verbose
        self._out = out
        self.result: MethodResult | None = None  # the last solve's full result
        self.solution: dict[str, Any] = {}  # the last solve's answer (empty before any solve)

    @property
    def scenario(self) -> Scenario:
        return self.prepared.scenario

    @property
    def params(self) -> MethodParams:
        return self.prepared.params

    # ----------------------------------------------------------------- the note's methods

    def solve(self) -> dict[str, Any]:
        """The note's method 1: max T/T_ref − w·C/C_ref (w = ``cost_throughput_weight``). Not a $/token method."""
        r = weighted(self.prepared.instance, self.params)
        self._say(f"Weighted objective (w={self.params.weight:g}): " + (_point(r.fleet) if r.fleet else r.status))
        return self._keep(r)

    def solve_for_min_cost_per_token(self, target_cpt: float | None = None) -> dict[str, Any]:
        """The note's method 2 (iterative budget tightening) towards ``target_cpt`` $/token
        (default: the config's ``max_cost_per_token``). A heuristic: prints its path."""
        mp = self.params if target_cpt is None else replace(self.params, target_cpt=float(target_cpt))
        r = iterative(self.prepared.instance, mp)
        self._say(f"Iterative $/token search (target ${mp.target_cpt:.9f}/token)")
        for step in r.path:
            if step["step"] == "stop":
                self._say(f"  stopped: {step['reason']}")
            elif "throughput_tok_s" in step:
                self._say(f"  [{step['step']}] Budget: ${step['budget']:.2f}/hour -> {fmt_tok_s(step['throughput_tok_s'], grouping=False)} "
                          f"tokens/s, ${step['cost_per_hour']:.2f}/h, ${step['cost_per_token']:.9f}/token")
            else:
                self._say(f"  [{step['step']}] Budget: ${step['budget']:.2f}/hour -> no fleet")
        if r.fleet is not None:
            self._say(f"Best found: {_point(r.fleet)}")
        return self._keep(r)

    def solve_optimal_cost_per_token(self, budget_points: Sequence[float] | int | None = None,
                                     *, check_exact: bool = True) -> dict[str, Any]:
        """The note's method 3: a max-throughput solve at each budget; the least $/token wins.

        ``budget_points``: a list of $/hour budgets, or a count of log-spaced budgets between the
        config's ``budget_min`` and ``budget_max`` (default: its ``points``, the note's 15).
        Prints the note's progress lines, its "OPTIMAL $/TOKEN FOUND" block and Pareto summary —
        and, since the note's optimality proof is wrong, one line with the exact optimum
        (Dinkelbach, ``check_exact``) and the enumeration's gap to it.
        """
        budgets = self._budgets(budget_points)
        inst = self.prepared.instance
        self._say(f"Testing {len(budgets)} cost budgets...")
        points: list[MethodResult] = []
        best: Fleet | None = None
        for i, b in enumerate(budgets, start=1):
            p = enumeration_point(inst, b)
            points.append(p)
            self._say("")
            self._say(f"[{i}/{len(budgets)}] Budget: ${b:.2f}/hour")
            if p.fleet is None:
                self._say(f"  Result: no fleet within ${b:.2f}/h" + ("" if p.status == Status.INFEASIBLE else f" ({p.status})"))
                continue
            self._say(f"  Result: {_point(p.fleet)}")
            if better(p.fleet, best):
                best = p.fleet
                self._say("  ✓ New best $/token!")
        r = enumeration_reduce(inst, points)
        self._say("")
        if r.fleet is None:
            self._say(f"NO FLEET FOUND at any of the {len(budgets)} budgets ({r.status})")
        else:
            self._summary(r, r.fleet)
        exact = self._exact_line(r) if check_exact else None
        solution = self._keep(r)
        if exact is not None:
            solution["exact_cost_per_token"] = exact.fleet.cost_per_token if exact.fleet else None
            solution["gap_pct"] = gap_pct(r.fleet, exact.fleet)
        return solution

    # ----------------------------------------------------------------- beyond the note

    def solve_exact(self) -> dict[str, Any]:
        """The exact minimum $/token (Dinkelbach's method; ties go to the higher throughput)."""
        r = dinkelbach(self.prepared.instance)
        self._say("Exact min $/token (dinkelbach): " + (_point(r.fleet) if r.fleet else r.status)
                  + f" — {r.solves} MILP solves, {r.seconds:.2f} s")
        return self._keep(r)

    # ----------------------------------------------------------------- helpers

    def _budgets(self, budget_points: Sequence[float] | int | None) -> list[float]:
        if budget_points is None:
            return enumeration_budgets(self.params)
        if isinstance(budget_points, int) and not isinstance(budget_points, bool):
            if budget_points < 1:
                raise ValueError(f"budget_points: need at least 1 budget, got {budget_points}")
            return enumeration_budgets(replace(self.params, points=budget_points))
        budgets = [float(b) for b in budget_points]
        if not budgets or any(not b > 0 for b in budgets):
            raise ValueError(f"budget_points: need $/hour budgets > 0, got {list(budget_points)!r}")
        return budgets

    def _summary(self, r: MethodResult, f: Fleet) -> None:
        """The note's "OPTIMAL $/TOKEN FOUND" block and Pareto summary (its header kept verbatim)."""
        self._say("OPTIMAL $/TOKEN FOUND")
        self._say(f"Best $/token: {_cpt(f)}")
        self._say(f"  Throughput: {fmt_tok_s(f.throughput_tok_s, grouping=False)} tokens/sec")
        self._say(f"  Cost: ${f.cost_per_hour:.2f}/hour")
        self._say(f"  Pipeline stages: {self._stages(f)}")
        self._say("")
        self._say("Pareto Frontier (all solutions):")
        seen: dict[tuple[int, int], Fleet] = {}
        for p in r.points:
            if p.fleet is not None:
                seen.setdefault((p.fleet.cost_units, p.fleet.throughput_tok_s), p.fleet)
        for key in sorted(seen):
            g = seen[key]
            mark = "    ← OPTIMAL" if (g.cost_units, g.throughput_tok_s) == (f.cost_units, f.throughput_tok_s) else ""
            self._say(f"  {_cpt(g)}/token: {fmt_tok_s(g.throughput_tok_s, grouping=False)} tokens/s, ${g.cost_per_hour:.2f}/h{mark}")

    def _exact_line(self, r: MethodResult) -> MethodResult:
        """One honest line: the enumeration's answer beside the exact optimum (one Dinkelbach run)."""
        exact = dinkelbach(self.prepared.instance)
        self._say("")
        if exact.fleet is None:
            self._say(f"Note: the enumeration is a baseline, not guaranteed optimal; exact optimum (dinkelbach): "
                      f"{exact.status}")
            return exact
        g = gap_pct(r.fleet, exact.fleet)
        verdict = "-" if g is None else ("the enumeration found it" if g == 0 else f"the enumeration is {g:+.2f}% above it")
        status = "" if exact.status == Status.OPTIMAL else f" ({exact.status})"
        self._say(f"Note: the enumeration is a baseline, not guaranteed optimal; exact optimum (dinkelbach){status}: "
                  f"{_cpt(exact.fleet)}/token at {fmt_tok_s(exact.fleet.throughput_tok_s, grouping=False)} tokens/s, "
                  f"${exact.fleet.cost_per_hour:.2f}/h — {verdict}")
        return exact

    def _stages(self, fleet: Fleet) -> str:
        """Pipeline depth of the fleet's replicas (several values when it mixes layouts)."""
        depths = sorted({len(a["stages"]) if "stages" in a else a["pp"] for a in allocation(self.prepared.instance, fleet)})
        return ", ".join(str(d) for d in depths)

    def _keep(self, r: MethodResult) -> dict[str, Any]:
        self.result = r
        row = to_row(self.prepared.instance, r, self.prepared.scenario_id,
                     tokens_per_request(self.prepared.scenario))  # SPEC §7 fields
        self.solution = {**row, "throughput_tokens_per_sec": row["throughput_tok_s"]}  # the note's name too
        return self.solution

    def _say(self, line: str) -> None:
        if self.verbose:
            out = self._out or sys.stdout
            print(line, file=out, flush=True)


__all__ = ["Solver"]
