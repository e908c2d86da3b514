"""Exact methods: ``max_throughput`` (one budget solve), ``min_cost`` (SPEC §5.1), ``dinkelbach`` and
``pareto`` (min $/token), and the pieces ``charnes_cooper`` shares (the start, the Dinkelbach walk
that certifies an answer, the tie rule). The empty fleet is never a $/token answer; ties on $/token go
to the higher throughput."""

from __future__ import annotations

from sweep.solve.decomposed import decomposes
from sweep.solve.decomposed import frontier as decomposed_frontier
from sweep.solve.methods.common import MethodParams, Tally, dollars
from sweep.solve.milp import (
    NO_CANDIDATE,
    NO_FLEET,
    OPTIMAL,
    TIME_LIMIT,
    BudgetSolver,
    Fleet,
    Instance,
    budget_solve,
    build,
    fleet_of,
    solve_built,
    solve_known,
    violations,
)
from sweep.solve.result import MethodResult, better


def max_throughput(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """One budget solve at ``limits.budget``: the most tokens/s, then the least $/h among those."""
    tally = Tally(inst.solver)
    out = tally.add(budget_solve(inst))
    return tally.result("max_throughput", inst, out.fleet, budget=dollars(inst.budget_units or None))


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
    out = tally.add(solve_known(inst, m, fleet), feasible=True)
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
        out = tally.add(solve_known(inst, m, cur), feasible=True)
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
    """The complete cost–throughput frontier; its min-$/token point is the exact optimum.

    When offerings are independent (:func:`sweep.solve.decomposed.decomposes`) the frontier is merged
    exactly offering by offering, without a MILP; otherwise by ε-constraint (:func:`pareto_walk`)."""
    tally = Tally(inst.solver)
    if decomposes(inst):
        frontier = decomposed_frontier(inst, inst.budget_units or None)
        path: tuple[dict, ...] = ({"algorithm": "per-offering knapsack and Pareto merge (offerings are "
                                                "independent)", "offerings": len(inst.slots)},)
    else:
        frontier, path = pareto_walk(inst, tally), ()
    best = None
    for f in frontier:
        if better(f, best):
            best = f
    return tally.result("pareto", inst, best, frontier=tuple(frontier), path=path,
                        budget=dollars(inst.budget_units or None))


def pareto_walk(inst: Instance, tally: Tally) -> list[Fleet]:
    """The frontier by ε-constraint: budget solve, then budget ← C − 1e-4 $/h, descending cost.

    Each budget solve is lexicographic (max T, then min C), so every point is non-dominated; the
    loop ends when no non-empty fleet fits. The frontier must fall in both cost and throughput: a point
    that does not is a numerical failure (``error``), never part of the answer."""
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
    return frontier


def min_cost(inst: Instance, _: MethodParams | None = None) -> MethodResult:
    """The cheapest fleet that meets the demand (SPEC §5.1), ties to the higher throughput.

    Min C subject to the demand, then a budget solve at that cost (the most throughput for it); both
    checked in exact arithmetic."""
    tally = Tally(inst.solver)
    if inst.demand_tok_s <= 0:
        tally.fail("min_cost needs a demand (workload.min_throughput or workload.request_rate)")
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
