"""The min-$/token methods of SPEC §6, each a function ``Instance -> MethodResult``.

Baselines, kept exactly as the design note describes them: ``weighted``, ``iterative`` and
``enumeration``. Exact methods: ``dinkelbach``, ``charnes_cooper`` (in :mod:`sweep.charnes_cooper`)
and ``pareto``. The empty fleet is never a $/token answer; ties on $/token go to the higher throughput.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sweep.catalog import units_to_dollars
from sweep.milp import (
    ERROR,
    INFEASIBLE,
    NO_CANDIDATE,
    NO_FLEET,
    OPTIMAL,
    TIME_LIMIT,
    BudgetSolver,
    Fleet,
    Instance,
    Outcome,
    budget_solve,
    build,
    fleet_of,
    optimise,
    solve_built,
    violations,
)
from sweep.result import MethodResult, better, budget_units, method_status

EXACT_METHODS = ("dinkelbach", "charnes_cooper", "pareto")
BASELINE_METHODS = ("weighted", "iterative", "enumeration")
ALL_METHODS = ("max_throughput", "min_cost", *BASELINE_METHODS, *EXACT_METHODS)


@dataclass(frozen=True)
class MethodParams:
    """The ``methods.*`` settings of a scenario."""

    weight: float = 0.5
    target_cpt: float = 1e-6
    tighten: float = 0.95
    max_iter: int = 10
    budget_min: float = 0.30
    budget_max: float = 34.65
    points: int = 15

    @classmethod
    def from_params(cls, p: dict) -> MethodParams:
        return cls(
            weight=p["methods.weighted.weight"],
            target_cpt=p["methods.iterative.target_cpt"],
            tighten=p["methods.iterative.tighten"],
            max_iter=p["methods.iterative.max_iter"],
            budget_min=p["methods.enumeration.budget_min"],
            budget_max=p["methods.enumeration.budget_max"],
            points=p["methods.enumeration.points"],
        )


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


def _dollars(units: int | None) -> float | None:
    return None if units is None else units_to_dollars(units)


def _cap(inst: Instance, units: int) -> int:
    """A method's budget never exceeds the scenario's ``limits.budget``."""
    return min(units, inst.budget_units) if inst.budget_units else units


# --------------------------------------------------------------------------- max_throughput


def max_throughput(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """One budget solve at ``limits.budget``: the most tokens/s, then the least $/h among those."""
    tally = Tally(inst.solver)
    out = tally.add(budget_solve(inst))
    return tally.result("max_throughput", inst, out.fleet, budget=_dollars(inst.budget_units or None))


# --------------------------------------------------------------------------- baselines (the note's)


def weighted(inst: Instance, mp: MethodParams) -> MethodResult:
    """The note's method 1: maximise T/T_ref − w·C/C_ref (T_ref = best T, C_ref its cost). Not exact."""
    tally = Tally(inst.solver)
    ref = tally.add(budget_solve(inst))
    if ref.fleet is None:
        return tally.result("weighted", inst, None, message=ref.message)
    t_ref, c_ref = ref.fleet.throughput_tok_s, max(ref.fleet.cost_units, 1)
    out = tally.add(optimise(inst, 1.0 / t_ref, mp.weight / c_ref, nonempty=True))
    fleet = out.fleet if out.fleet and not out.fleet.empty else None
    return tally.result("weighted", inst, fleet, path=({"t_ref": t_ref, "c_ref": _dollars(c_ref), "weight": mp.weight},))


def iterative(inst: Instance, mp: MethodParams) -> MethodResult:
    """The note's method 2 as written: budget = target·T_min·3600, then target·T_k·3600·tighten.

    Stops when the target is reached, when a step does not improve the best $/token, or after
    ``max_iter`` steps; returns the best seen. If the first budget admits no fleet it grows ×1.4
    until one fits (each growth is a ``grow`` step of the path). Not exact.
    """
    tally = Tally(inst.solver)
    if not inst.candidates:
        return tally.result("iterative", inst, None, message="no candidate can serve this model")
    t_min = min(c.throughput_tok_s for c in inst.candidates)
    ceiling = inst.max_cost_units()
    budget = mp.target_cpt * t_min * 3600
    path: list[dict] = []
    best: Fleet | None = None
    out = tally.add(budget_solve(inst, _cap(inst, budget_units(budget))))
    while out.fleet is None and out.status == INFEASIBLE and budget_units(budget) < ceiling:
        path.append({"step": "grow", "budget": round(budget, 4), "result": "no fleet"})
        budget *= 1.4
        out = tally.add(budget_solve(inst, _cap(inst, budget_units(budget))))
    stop = "max_iter"
    for k in range(mp.max_iter):
        f = out.fleet
        if f is None:
            path.append({"step": k + 1, "budget": round(budget, 4), "result": "no fleet"})
            stop = "budget admits no fleet" if out.status == INFEASIBLE else f"solver stopped: {out.status}"
            break
        path.append({"step": k + 1, "budget": round(budget, 4), "cost_per_hour": f.cost_per_hour,
                     "throughput_tok_s": f.throughput_tok_s, "cost_per_token": f.cost_per_token})
        improved = better(f, best)
        if improved:
            best = f
        if (f.cost_per_token or math.inf) <= mp.target_cpt:
            stop = "target reached"
            break
        if not improved and k > 0:
            stop = "no improvement"
            break
        if k + 1 == mp.max_iter:
            break
        budget = mp.target_cpt * f.throughput_tok_s * 3600 * mp.tighten
        out = tally.add(budget_solve(inst, _cap(inst, budget_units(budget))))
    path.append({"step": "stop", "reason": stop})
    return tally.result("iterative", inst, best, path=tuple(path))


def enumeration_budgets(mp: MethodParams) -> list[float]:
    """The note's log-spaced budgets ($/h), e.g. 0.30, 0.42, … 34.65 for 15 points."""
    if mp.points == 1:
        return [mp.budget_min]
    r = (mp.budget_max / mp.budget_min) ** (1 / (mp.points - 1))
    return [round(mp.budget_min * r**i, 4) for i in range(mp.points)]


def enumeration_point(inst: Instance, budget: float) -> MethodResult:
    """One budget solve of the enumeration (an independent task in a sweep)."""
    tally = Tally(inst.solver)
    out = tally.add(budget_solve(inst, _cap(inst, budget_units(budget))))
    return tally.result("enumeration", inst, out.fleet, budget=budget)


def enumeration_reduce(inst: Instance, points: list[MethodResult]) -> MethodResult:
    """The note's answer: the min-$/token point among the budget points (ties: higher throughput)."""
    best: MethodResult | None = None
    for p in points:
        if best is None or better(p.fleet, best.fleet):
            best = p
    fleet = best.fleet if best else None
    status = method_status([p.status for p in points], fleet)
    gaps = [p.mip_gap for p in points if p.mip_gap is not None]
    troubles = [f"budget ${p.budget:g}/h: {p.message}" for p in points if p.message and p.status in (TIME_LIMIT, ERROR)]
    return MethodResult(
        "enumeration", status, fleet, sum(p.solves for p in points), sum(p.seconds for p in points),
        inst.solver, budget=best.budget if best and best.fleet else None, points=tuple(points),
        mip_gap=max(gaps) if gaps else None, message="; ".join(troubles),
    )


def enumeration(inst: Instance, mp: MethodParams) -> MethodResult:
    """The note's method 3: budget solves at ``points`` log-spaced budgets; the best $/token wins. Not exact."""
    return enumeration_reduce(inst, [enumeration_point(inst, b) for b in enumeration_budgets(mp)])


# --------------------------------------------------------------------------- exact methods


def single_replica_start(inst: Instance) -> Fleet | None:
    """The best one-replica fleet that meets every limit (no solve), or None."""
    best = None
    for c in range(len(inst.candidates)):
        f = fleet_of(inst, {c: 1})
        if not violations(inst, f) and better(f, best):
            best = f
    return best


def _step(k: int | str, f: Fleet, **extra) -> dict:
    return {"step": k, "cost_per_hour": f.cost_per_hour, "throughput_tok_s": f.throughput_tok_s,
            "cost_per_token": f.cost_per_token, **extra}


def widest_at_ratio(inst: Instance, fleet: Fleet, tally: Tally) -> Fleet:
    """Among fleets with exactly fleet's $/token, the one with the most throughput (the tie rule).

    fleet's ratio ρ = C_f/T_f is optimal, so every fleet has C/C_f − T/T_f ≥ 0 and the ties are where it
    is 0: one solve maximising T under that row; the answer is kept only if its ratio is exactly ρ.
    """
    if fleet.cost_units == 0:
        return fleet
    m = build(inst, nonempty=True)
    t_f, c_f = float(fleet.throughput_exact), float(fleet.cost_units)
    m.prob += (m.c_scale / c_f) * m.C - (m.t_scale / t_f) * m.T <= 0, "same_ratio"
    m.prob.setObjective(m.T)
    out = tally.add(solve_built(inst, m), feasible=True)
    wide = out.fleet
    if wide is None or wide.ratio != fleet.ratio or not better(wide, fleet):
        return fleet
    return wide


def dinkelbach_from(inst: Instance, cur: Fleet, tally: Tally, path: list[dict]) -> Fleet:
    """Dinkelbach's iterations from a feasible fleet, then the tie rule.

    From (C_k, T_k), solve min C/C_k − T/T_k over non-empty fleets (0 at the current fleet; scaled so
    that its coefficients are about 1). A fleet with an exactly lower ratio continues the walk; when
    none is found, the subproblem's optimum (≥ 0 up to the solver's tolerances) certifies C_k/T_k:
    its value is recorded in the path as ``certificate``."""
    for k in range(len(path), 1000):
        if cur.cost_units == 0:
            break  # a free fleet: nothing is cheaper per token
        m = build(inst, nonempty=True)
        t_k, c_k = float(cur.throughput_exact), float(cur.cost_units)
        m.prob.setObjective(-((m.c_scale / c_k) * m.C - (m.t_scale / t_k) * m.T))
        out = tally.add(solve_built(inst, m), feasible=True)
        f = out.fleet
        if f is None or f.empty or not better(f, cur) or f.ratio == cur.ratio:
            if out.status == OPTIMAL and f is not None:
                value = f.cost_units / c_k - float(f.throughput_exact) / t_k
                path.append({"step": "certificate", "min_subproblem": value})
            break
        cur = f
        path.append(_step(k, f))
        if out.status != OPTIMAL:
            return cur
    return widest_at_ratio(inst, cur, tally) if tally.all_optimal else cur


def dinkelbach(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """Dinkelbach's parametric method on min C/T, every step checked in exact arithmetic.

    The start is the best single-replica fleet (no solve), else one budget solve; a final solve applies
    the tie rule (the most throughput at the optimal ratio)."""
    tally = Tally(inst.solver)
    cur = single_replica_start(inst)
    if cur is None:
        first = tally.add(budget_solve(inst))
        cur = first.fleet
        if cur is None:
            return tally.result("dinkelbach", inst, None, message=first.message)
    path = [_step(0, cur)]
    cur = dinkelbach_from(inst, cur, tally, path)
    return tally.result("dinkelbach", inst, cur, path=tuple(path))


def pareto(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """The complete cost–throughput frontier by ε-constraint: budget solve, then budget ← C − 1e-4 $/h.

    Each budget solve is lexicographic (max T, then min C), so every point is non-dominated; the
    loop ends when no non-empty fleet fits. The frontier must fall in both cost and throughput: a point
    that does not is a numerical failure (``error``), never part of the answer. The min-$/token
    frontier point is the exact optimum.
    """
    tally = Tally(inst.solver)
    solver = BudgetSolver(inst)
    frontier: list[Fleet] = []
    budget: int | None = inst.budget_units or None
    while budget is None or budget >= 0:
        out = tally.add(solver.solve(budget))
        if out.fleet is None or out.fleet.empty:
            break
        if frontier and out.fleet.throughput_exact >= frontier[-1].throughput_exact:
            tally.fail(f"{inst.solver}: frontier not monotone at ${out.fleet.cost_per_hour:,.4f}/h")
            break
        frontier.append(out.fleet)
        if out.status != OPTIMAL:
            break  # a point the solver did not prove cannot anchor the next step
        budget = out.fleet.cost_units - 1
    best = None
    for f in frontier:
        if better(f, best):
            best = f
    return tally.result("pareto", inst, best, frontier=tuple(frontier),
                        budget=_dollars(inst.budget_units or None))


def min_cost(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """The cheapest fleet that meets the demand (SPEC §5.1), ties to the higher throughput.

    Min C subject to the demand, then a budget solve at that cost (the most throughput for it); both
    checked in exact arithmetic."""
    tally = Tally(inst.solver)
    if inst.min_throughput_tok_s <= 0:
        tally.fail("min_cost needs a demand (workload.min_throughput)")
        return tally.result("min_cost", inst, None)
    if not inst.candidates:
        return tally.result("min_cost", inst, None, message=NO_CANDIDATE)
    m = build(inst, nonempty=True)
    m.prob.setObjective(-1 * m.C)
    first = tally.add(solve_built(inst, m))
    if first.fleet is None or first.status not in (OPTIMAL, TIME_LIMIT):
        return tally.result("min_cost", inst, None, message=first.message or NO_FLEET)
    cheapest = first.fleet
    if first.status == OPTIMAL:
        wide = tally.add(BudgetSolver(inst).solve(cheapest.cost_units), feasible=True)
        if wide.fleet is not None and not violations(inst, wide.fleet) and (
                wide.fleet.cost_units < cheapest.cost_units or (wide.fleet.cost_units == cheapest.cost_units
                                                                and wide.fleet.throughput_exact > cheapest.throughput_exact)):
            cheapest = wide.fleet
    return tally.result("min_cost", inst, cheapest)


def _charnes_cooper(inst: Instance, mp: MethodParams | None = None) -> MethodResult:
    from sweep.charnes_cooper import charnes_cooper

    return charnes_cooper(inst)


METHODS: dict[str, Callable[[Instance, MethodParams], MethodResult]] = {
    "max_throughput": max_throughput,
    "weighted": weighted,
    "iterative": iterative,
    "enumeration": enumeration,
    "dinkelbach": dinkelbach,
    "charnes_cooper": _charnes_cooper,
    "pareto": pareto,
    "min_cost": min_cost,
}


def run_method(name: str, inst: Instance, mp: MethodParams) -> MethodResult:
    """Run one method; a crash becomes an ``error`` result, never an exception."""
    t0 = time.perf_counter()
    try:
        return METHODS[name](inst, mp)
    except Exception as e:  # noqa: BLE001 - a failing method is a row, the sweep goes on
        return MethodResult(name, ERROR, None, 0, time.perf_counter() - t0, inst.solver,
                            message=f"{e.__class__.__name__}: {e}")


def gap_pct(fleet: Fleet | None, exact: Fleet | None) -> float | None:
    """How much worse a $/token is than the exact optimum, in percent."""
    if fleet is None or exact is None or not fleet.throughput_tok_s or not exact.throughput_tok_s:
        return None
    if fleet.ratio is None or exact.ratio is None:
        return None
    return float((fleet.ratio / exact.ratio - 1) * 100)


__all__ = ["ALL_METHODS", "METHODS", "MethodParams", "MethodResult", "run_method"]
