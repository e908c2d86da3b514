"""The note's method 4, made exact for integers: Charnes–Cooper in one MILP, then certified.

min C/T over integer fleets. With the scaling variable y = T_lo/T ∈ [T_lo/T_hi, 1], the ratio becomes
the linear ``min C·y`` subject to ``T·y = T_lo``. The products of integers and y are made linear
exactly: every integer is written in binary (x = Σ 2^k b_k) and each product b_k·y is a variable w_k
with Glover's four inequalities on the interval of y. The original constraints (capacity,
availability, budget, demand, GPU cap, a non-empty fleet) stay on the binaries; their images under
the scaling (the same rows multiplied by y) are added too, which tightens the LP relaxation.

What keeps the MILP small and its relaxation tight (every step is exact, none cuts off an optimum):

- the scaled rows above — without them HiGHS cannot close the gap on jobs/seed.toml in 60 s; with
  them it proves the optimum in about half a second;
- candidates dominated by k replicas of a smaller one on the same offering (k·GPUs ≤ its GPUs,
  k·tokens/s ≥ its tokens/s) are left out: such a replica can always be swapped for the k smaller
  ones at no more nodes, cost or GPUs and no less throughput;
- integers get only the bits their bounds need, bounds taken from availability, the budget and the
  GPU cap;
- the interval of y comes from bounds on the optimum's T: T ≤ the fractional-knapsack bound of the
  budget, and T ≥ C_min/ρ₀ where C_min is the cheapest non-empty fleet and ρ₀ the $/token of the
  best single-replica fleet (no solve needed).

The ratio MILP compares fractions in floating point, so its answer is then certified by Dinkelbach's
subproblem (one solve when it is optimal; further steps if it is not, recorded in the path) and the
tie rule (the most throughput at the optimal $/token) is applied on the full candidate set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulp

from sweep.solve.methods.common import Tally
from sweep.solve.methods.exact import dinkelbach_from, single_replica_start
from sweep.solve.milp import (
    ERROR,
    Fleet,
    Instance,
    Outcome,
    budget_solve,
    effective_budget,
    fleet_of,
    peak_tok_s,
    routed_throughput,
    run_solver,
    scales,
    violations,
)
from sweep.solve.result import MethodResult


def _bits(ub: int) -> int:
    return max(1, ub.bit_length())


def undominated(inst: Instance) -> list[int]:
    """Candidates not dominated by k ≥ 1 replicas of a smaller candidate on the same single offering."""
    keep = []
    for b, cb in enumerate(inst.candidates):
        dominated = False
        if len(cb.uses) == 1:
            (ob, gb), = cb.uses
            for a, ca in enumerate(inst.candidates):
                if a == b or len(ca.uses) != 1 or ca.uses[0][0] != ob:
                    continue
                k = gb // ca.uses[0][1]
                ra, rb = ca.bucket_rates, cb.bucket_rates
                if k >= 1 and all(k * x >= y for x, y in zip(ra, rb, strict=True)) and (
                        any(k * x > y for x, y in zip(ra, rb, strict=True)) or ca.uses[0][1] < gb or a < b):
                    dominated = True  # (equal pairs: keep the lower index only)
                    break
        if not dominated:
            keep.append(b)
    return keep


def _throughput_bound(inst: Instance, cands: list[int], n_ub: list[int], x_ub: dict[int, int],
                      budget: int | None) -> float:
    """An upper bound on any fleet's T: each node of offering o yields at most gpus_per_node × the best
    tokens/s per GPU of a candidate using o; the budget is then a fractional knapsack over nodes."""
    uses = inst.uses()
    rate = [0.0] * len(inst.slots)
    for c in cands:
        per_gpu = peak_tok_s(inst, c) / inst.candidates[c].gpus
        for s, _ in uses[c]:
            rate[s] = max(rate[s], per_gpu)
    items = sorted(((rate[s] * sl.gpus_per_node, sl.price_units, n_ub[s]) for s, sl in enumerate(inst.slots)
                    if rate[s] > 0 and n_ub[s] > 0), key=lambda v: -v[0] / max(v[1], 1e-12))
    left = math.inf if budget is None else budget
    bound = 0.0
    for value, price, count in items:
        take = count if price == 0 else min(count, left / price)
        bound += value * take
        left -= price * take
        if left <= 0:
            break
    if inst.max_gpus:
        bound = min(bound, max(rate) * inst.max_gpus)
    direct = sum(peak_tok_s(inst, c) * x_ub[c] for c in cands)
    return min(bound, direct) * (1 + 1e-9) + 1e-9


@dataclass(frozen=True)
class _Bounds:
    """The ratio MILP's integers: the candidates in play and upper bounds on replicas and nodes."""

    cands: list[int]
    x_ub: dict[int, int]  # replicas of each candidate
    n_ub: list[int]  # nodes of each offering
    slots: list[int]  # offerings with n_ub > 0


def _integer_bounds(inst: Instance, budget: int | None, uses: list) -> _Bounds | None:
    """Bounds from availability, the budget and the GPU cap; None when no candidate fits them."""
    cands = undominated(inst)
    n_ub = [min(s.max_nodes, budget // s.price_units) if budget is not None and s.price_units else s.max_nodes
            for s in inst.slots]
    x_ub: dict[int, int] = {}
    for c in cands:
        u = min(n_ub[s] * inst.slots[s].gpus_per_node // g for s, g in uses[c])
        if inst.max_gpus:
            u = min(u, inst.max_gpus // inst.candidates[c].gpus)
        x_ub[c] = u
    cands = [c for c in cands if x_ub[c] > 0]
    if not cands:
        return None
    gpus_needed = [0] * len(inst.slots)
    for c in cands:
        for s, g in uses[c]:
            gpus_needed[s] += g * x_ub[c]
    n_ub = [min(n_ub[s], -(-gpus_needed[s] // sl.gpus_per_node)) for s, sl in enumerate(inst.slots)]
    return _Bounds(cands, x_ub, n_ub, [s for s in range(len(inst.slots)) if n_ub[s] > 0])


def _throughput_interval(inst: Instance, tally: Tally, b: _Bounds, uses: list,
                         budget: int | None) -> tuple[float, float, Fleet | None] | None:
    """(T_lo, T_hi, a known fleet or None): bounds on the optimum's T, which give the interval of y;
    None when no fleet fits the limits."""
    thr = [inst.candidates[c].throughput_tok_s for c in b.cands]
    # any non-empty fleet has a replica's T, except with a request mix (a replica may serve some buckets only)
    t_lo = max(0.0 if inst.routed else min(thr), inst.demand_tok_s)
    start = single_replica_start(inst)
    if start is None and inst.routed:  # a known fleet bounds the optimum's T from below (see below)
        start = tally.add(budget_solve(inst)).fleet
    if start is None and t_lo <= 0:
        return None
    if start is not None:
        cheapest = min(sum(inst.slots[s].price_units * -(-g // inst.slots[s].gpus_per_node) for s, g in uses[c])
                       for c in b.cands)
        # T* ≥ C*/ρ* ≥ C_min/ρ₀
        if start.cost_units > 0:
            t_lo = max(t_lo, cheapest * start.throughput_tok_s / start.cost_units)
    t_hi = max(_throughput_bound(inst, b.cands, b.n_ub, b.x_ub, budget), t_lo)
    return t_lo, t_hi, start


def _product(prob: pulp.LpProblem, bits: list[pulp.LpVariable], y: pulp.LpVariable, y_lo: float, y_hi: float,
             name: str) -> pulp.LpAffineExpression:
    """Σ 2^k (b_k·y), each product linearised exactly (Glover)."""
    terms = []
    for k, b in enumerate(bits):
        w = pulp.LpVariable(f"{name}_{k}", 0, y_hi)
        prob.addConstraint(w <= y_hi * b)
        prob.addConstraint(w >= y_lo * b)
        prob.addConstraint(w <= y - y_lo * (1 - b))
        prob.addConstraint(w >= y - y_hi * (1 - b))
        terms.append((1 << k) * w)
    return pulp.lpSum(terms)


def _fleet_rows(prob: pulp.LpProblem, inst: Instance, b: _Bounds, uses: list, budget: int | None, v: dict, nv: dict,
                scale: float | pulp.LpVariable, c_scale: float) -> None:
    """The SPEC §5 constraints on (x, n), or on their images (x·y, n·y) with right-hand sides × y."""
    cands, slots = b.cands, b.slots
    for c in cands:
        prob.addConstraint(v[c] <= b.x_ub[c] * scale)
    for s in slots:
        prob.addConstraint(nv[s] <= b.n_ub[s] * scale)
    for s in range(len(inst.slots)):
        lhs = pulp.lpSum(g * v[c] for c in cands for so, g in uses[c] if so == s)
        if s in nv:
            prob.addConstraint(lhs <= inst.slots[s].gpus_per_node * nv[s])
        elif any(so == s for c in cands for so, _ in uses[c]):
            prob.addConstraint(lhs <= 0)
    cost = pulp.lpSum((inst.slots[s].price_units / c_scale) * nv[s] for s in slots)
    if budget is not None:
        prob.addConstraint(cost <= (budget + 0.5) / c_scale * scale)
    if inst.max_gpus:
        prob.addConstraint(pulp.lpSum(inst.candidates[c].gpus * v[c] for c in cands) <= inst.max_gpus * scale)


def _ratio_milp(inst: Instance, b: _Bounds, uses: list, budget: int | None, t_lo: float, t_hi: float
                ) -> tuple[pulp.LpProblem, dict[int, list[pulp.LpVariable]], dict[int, list[pulp.LpVariable]]]:
    """min C·y subject to T·y = T_lo, in binaries (replicas ``xb``, nodes ``nb``) and their exact products with y.

    The order in which variables and rows are created is the model the solver sees (and so its search path
    and timings); the rows and their scaled images are written once, by :func:`_fleet_rows`."""
    cands, x_ub, n_ub, slots = b.cands, b.x_ub, b.n_ub, b.slots
    thr = {c: inst.candidates[c].throughput_tok_s for c in cands}
    y_lo, y_hi = t_lo / t_hi, 1.0
    t_scale, c_scale = scales(inst)  # coefficients of about 1 (see sweep.solve.milp)
    prob = pulp.LpProblem("charnes_cooper", pulp.LpMinimize)
    y = pulp.LpVariable("y", y_lo, y_hi)
    xb = {c: [pulp.LpVariable(f"b{c}_{k}", cat="Binary") for k in range(_bits(x_ub[c]))] for c in cands}
    nb = {s: [pulp.LpVariable(f"z{s}_{k}", cat="Binary") for k in range(_bits(n_ub[s]))] for s in slots}

    def integer(bits: list[pulp.LpVariable]) -> pulp.LpAffineExpression:
        return pulp.lpSum((1 << k) * b for k, b in enumerate(bits))

    x = {c: integer(bits) for c, bits in xb.items()}
    n = {s: integer(bits) for s, bits in nb.items()}
    xy = {c: _product(prob, bits, y, y_lo, y_hi, f"w{c}") for c, bits in xb.items()}
    ny = {s: _product(prob, bits, y, y_lo, y_hi, f"v{s}") for s, bits in nb.items()}
    _fleet_rows(prob, inst, b, uses, budget, x, n, 1, c_scale)
    _fleet_rows(prob, inst, b, uses, budget, xy, ny, y, c_scale)
    T = routed_throughput(prob, inst, x, t_scale) if inst.routed else pulp.lpSum(
        (thr[c] / t_scale) * x[c] for c in cands)
    if inst.demand_tok_s:
        prob.addConstraint(inst.demand_tok_s / t_scale <= T)
    prob.addConstraint(pulp.lpSum(b for bits in xb.values() for b in bits) >= 1)  # no empty fleet
    # T·y: the routed rates of the scaled fleet (the routing rows are homogeneous: their image under
    # the scaling is the same rows on x·y)
    Ty = routed_throughput(prob, inst, xy, t_scale, prefix="u") if inst.routed else pulp.lpSum(
        (thr[c] / t_scale) * xy[c] for c in cands)
    Cy = pulp.lpSum((inst.slots[s].price_units / c_scale) * ny[s] for s in slots)
    prob.addConstraint(Ty == t_lo / t_scale)  # T·y = T_lo
    prob.setObjective(Cy)  # = C·T_lo/T
    return prob, xb, nb


def charnes_cooper(inst: Instance) -> MethodResult:
    """One ratio MILP (Charnes–Cooper with binary expansion + Glover), then the tie-break solve."""

    tally = Tally(inst.solver)
    if not inst.candidates:
        return tally.result("charnes_cooper", inst, None, message="no candidate can serve this model")
    budget = effective_budget(inst, None)
    uses = inst.uses()
    bounds = _integer_bounds(inst, budget, uses)
    interval = None if bounds is None else _throughput_interval(inst, tally, bounds, uses, budget)
    if bounds is None or interval is None:
        return tally.result("charnes_cooper", inst, None, message="no fleet fits the limits")
    t_lo, t_hi, start = interval
    prob, xb, nb = _ratio_milp(inst, bounds, uses, budget, t_lo, t_hi)

    rep = run_solver(prob, inst.solver, inst.time_limit_s)
    fleet: Fleet | None = None
    if rep.has_solution:
        counts = {c: sum((1 << k) * int(round(b.varValue or 0)) for k, b in enumerate(bits)) for c, bits in xb.items()}
        fleet = fleet_of(inst, counts)
        if fleet.empty or violations(inst, fleet):
            fleet = None
    message = ""
    if rep.has_solution and fleet is None:
        tally.statuses.append(ERROR)
        message = "the ratio MILP returned no valid fleet (solver tolerances)"
    # with a feasible single replica in hand the ratio MILP has a solution: "infeasible" is a solver failure
    tally.add(Outcome(rep.status, fleet, rep.seconds, rep.mip_gap, rep.message), feasible=start is not None)
    path: list[dict] = []
    if fleet is not None:
        # the ratio MILP compares fractions in floating point: certify its answer with Dinkelbach's
        # subproblem (which continues the walk if it is not optimal), then apply the tie rule
        path.append({"step": 0, "cost_per_hour": fleet.cost_per_hour, "throughput_tok_s": fleet.throughput_tok_s,
                     "cost_per_token": fleet.cost_per_token, "from": "ratio MILP"})
        fleet = dinkelbach_from(inst, fleet, tally, path)
    size = {"candidates": len(bounds.cands), "of": len(inst.candidates), "t_lo": t_lo, "t_hi": t_hi,
            "binaries": sum(len(b) for b in xb.values()) + sum(len(b) for b in nb.values())}
    return tally.result("charnes_cooper", inst, fleet, message=message, path=(size, *path))
