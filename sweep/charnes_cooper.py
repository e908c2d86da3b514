"""The note's method 4, made exact for integers: Charnes–Cooper in one MILP.

min C/T over integer fleets. With the scaling variable y = T_lo/T ∈ [T_lo/T_hi, 1], the ratio becomes
the linear ``min C·y / T_lo`` subject to ``T·y = T_lo``. The products of integers and y are made
linear exactly: every integer is written in binary (x = Σ 2^k b_k) and each product b_k·y is a
variable w_k with Glover's four inequalities on the tight interval of y. The original constraints
(capacity, availability, budget, demand, GPU cap, a non-empty fleet) stay on the binaries.
A second solve applies the tie rule (the most throughput at the optimal $/token).
"""

from __future__ import annotations

import pulp

from sweep.milp import Fleet, Instance, Outcome, effective_budget, fleet_of, run_solver
from sweep.result import MethodResult


def _bits(ub: int) -> int:
    return max(1, ub.bit_length())


def throughput_bound(inst: Instance) -> int:
    """An upper bound on any fleet's T: each offering's GPUs at the best tokens/s per GPU of any
    candidate using it (also capped by the GPU cap and by Σ thr·replica bound). Tight bounds on y
    keep the linearisation strong."""
    cap = [s.max_nodes * s.gpus_per_node for s in inst.slots]
    best_per_gpu = [0.0] * len(inst.slots)
    for c, us in enumerate(inst.uses()):
        rate = inst.candidates[c].throughput_tok_s / inst.candidates[c].gpus
        for s, _ in us:
            best_per_gpu[s] = max(best_per_gpu[s], rate)
    bound = sum(r * g for r, g in zip(best_per_gpu, cap, strict=True))
    if inst.max_gpus:
        bound = min(bound, max(best_per_gpu) * inst.max_gpus)
    direct = sum(c.throughput_tok_s * inst.replica_bound(i) for i, c in enumerate(inst.candidates))
    return int(min(bound, direct)) + 1


def charnes_cooper(inst: Instance) -> MethodResult:
    from sweep.methods import _Tally, _widest_at_ratio

    tally = _Tally()
    if not inst.candidates:
        return tally.result("charnes_cooper", inst, None, message="no candidate can serve this model")
    budget = effective_budget(inst, None)
    x_ub = [inst.replica_bound(c) for c in range(len(inst.candidates))]
    n_ub = [min(s.max_nodes, budget // s.price_units) if budget is not None and s.price_units else s.max_nodes
            for s in inst.slots]
    thr = [c.throughput_tok_s for c in inst.candidates]
    t_lo = max(min(t for t, u in zip(thr, x_ub, strict=True) if u > 0) if any(x_ub) else 1,
               inst.min_throughput_tok_s, 1)
    t_hi = max(throughput_bound(inst), t_lo)
    y_lo, y_hi = t_lo / t_hi, 1.0

    prob = pulp.LpProblem("charnes_cooper", pulp.LpMinimize)
    y = pulp.LpVariable("y", y_lo, y_hi)
    xb = [[pulp.LpVariable(f"b{c}_{k}", cat="Binary") for k in range(_bits(u))] for c, u in enumerate(x_ub)]
    nb = [[pulp.LpVariable(f"z{o}_{k}", cat="Binary") for k in range(_bits(u))] for o, u in enumerate(n_ub)]

    def integer(bits: list[pulp.LpVariable]) -> pulp.LpAffineExpression:
        return pulp.lpSum((1 << k) * b for k, b in enumerate(bits))

    def product(bits: list[pulp.LpVariable], name: str) -> pulp.LpAffineExpression:
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

    x = [integer(bits) for bits in xb]
    n = [integer(bits) for bits in nb]
    for c, u in enumerate(x_ub):
        prob.addConstraint(x[c] <= u)
    for o, u in enumerate(n_ub):
        prob.addConstraint(n[o] <= u)
    uses = inst.uses()
    for s, slot in enumerate(inst.slots):
        prob.addConstraint(pulp.lpSum(g * x[c] for c, us in enumerate(uses) for so, g in us if so == s)
                           <= slot.gpus_per_node * n[s])
    C = pulp.lpSum(s.price_units * n[o] for o, s in enumerate(inst.slots))
    T = pulp.lpSum(t * x[c] for c, t in enumerate(thr))
    if budget is not None:
        prob.addConstraint(budget >= C)
    if inst.max_gpus:
        prob.addConstraint(pulp.lpSum(cand.gpus * x[c] for c, cand in enumerate(inst.candidates)) <= inst.max_gpus)
    if inst.min_throughput_tok_s:
        prob.addConstraint(inst.min_throughput_tok_s <= T)
    prob.addConstraint(pulp.lpSum(b for bits in xb for b in bits) >= 1)  # no empty fleet
    Ty = pulp.lpSum(t * product(xb[c], f"w{c}") for c, t in enumerate(thr))
    Cy = pulp.lpSum(s.price_units * product(nb[o], f"v{o}") for o, s in enumerate(inst.slots))
    prob.addConstraint(Ty == t_lo)  # T·y = T_lo
    prob.setObjective(Cy)  # = C·T_lo/T

    rep = run_solver(prob, inst.solver, inst.time_limit_s)
    fleet: Fleet | None = None
    if rep.has_solution:
        counts = {c: sum((1 << k) * int(round(b.varValue or 0)) for k, b in enumerate(bits)) for c, bits in enumerate(xb)}
        fleet = fleet_of(inst, counts)
        if fleet.empty:
            fleet = None
    tally.add(Outcome(rep.status, fleet, rep.seconds, rep.mip_gap, rep.message))
    if fleet is not None:
        fleet = _widest_at_ratio(inst, fleet, tally)
    return tally.result("charnes_cooper", inst, fleet)
