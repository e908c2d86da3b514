"""The design note's methods, kept exactly as it describes them (baselines, not exact): ``weighted``,
``iterative`` and ``enumeration``."""

from __future__ import annotations

import math

from sweep.solve.methods.common import MethodParams, Tally, cap_budget, dollars
from sweep.solve.milp import (
    ERROR,
    INFEASIBLE,
    TIME_LIMIT,
    BudgetSolver,
    Fleet,
    Instance,
    budget_solve,
    optimise,
    peak_tok_s,
)
from sweep.solve.result import MethodResult, better, budget_units, method_status


def weighted(inst: Instance, mp: MethodParams) -> MethodResult:
    """The note's method 1: maximise T/T_ref − w·C/C_ref (T_ref = best T, C_ref its cost). Not exact."""
    tally = Tally(inst.solver)
    ref = tally.add(budget_solve(inst))
    if ref.fleet is None:
        return tally.result("weighted", inst, None, message=ref.message)
    t_ref, c_ref = ref.fleet.throughput_tok_s, max(ref.fleet.cost_units, 1)
    out = tally.add(optimise(inst, 1.0 / t_ref, mp.weight / c_ref, nonempty=True))
    fleet = out.fleet if out.fleet and not out.fleet.empty else None
    return tally.result("weighted", inst, fleet, path=({"t_ref": t_ref, "c_ref": dollars(c_ref), "weight": mp.weight},))


def iterative(inst: Instance, mp: MethodParams) -> MethodResult:
    """The note's method 2 as written: budget = target·T_min·3600, then target·T_k·3600·tighten.

    Stops when the target is reached, when a step does not improve the best $/token, or after
    ``max_iter`` steps; returns the best seen. If the first budget admits no fleet it grows ×1.4
    until one fits (each growth is a ``grow`` step of the path). Not exact.
    """
    tally = Tally(inst.solver)
    if not inst.candidates:
        return tally.result("iterative", inst, None, message="no candidate can serve this model")
    # (with a request mix a replica that cannot serve every bucket has no throughput of its own)
    t_min = min((c.throughput_tok_s for c in inst.candidates if c.throughput_tok_s > 0),
                default=min(peak_tok_s(inst, c) for c in range(len(inst.candidates))))
    ceiling = inst.max_cost_units()
    budget = mp.target_cpt * t_min * 3600
    path: list[dict] = []
    best: Fleet | None = None
    solver = BudgetSolver(inst)  # one built model for every budget of the walk
    out = tally.add(solver.solve(cap_budget(inst, budget_units(budget))))
    while out.fleet is None and out.status == INFEASIBLE and budget_units(budget) < ceiling:
        path.append({"step": "grow", "budget": round(budget, 4), "result": "no fleet"})
        budget *= 1.4
        out = tally.add(solver.solve(cap_budget(inst, budget_units(budget))))
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
        out = tally.add(solver.solve(cap_budget(inst, budget_units(budget))))
    path.append({"step": "stop", "reason": stop})
    return tally.result("iterative", inst, best, path=tuple(path))


def enumeration_budgets(mp: MethodParams) -> list[float]:
    """The note's log-spaced budgets ($/h), e.g. 0.30, 0.42, … 34.65 for 15 points."""
    if mp.points == 1:
        return [mp.budget_min]
    r = (mp.budget_max / mp.budget_min) ** (1 / (mp.points - 1))
    return [round(mp.budget_min * r**i, 4) for i in range(mp.points)]


def enumeration_point(inst: Instance, budget: float, solver: BudgetSolver | None = None) -> MethodResult:
    """One budget solve of the enumeration (an independent task in a sweep); ``solver``: a
    :class:`BudgetSolver` of this instance to reuse across points (one model built once)."""
    tally = Tally(inst.solver)
    out = tally.add((solver or BudgetSolver(inst)).solve(cap_budget(inst, budget_units(budget))))
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
    solver = BudgetSolver(inst)
    return enumeration_reduce(inst, [enumeration_point(inst, b, solver) for b in enumeration_budgets(mp)])
