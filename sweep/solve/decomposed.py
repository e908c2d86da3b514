"""The exact cost–throughput frontier of an instance that decomposes by offering — no MILP needed.

When every candidate uses one offering, there is no GPU cap and no request mix, offerings are
independent of each other: a fleet is a node count n_s per offering and replicas packed into each
offering's n_s·G_s GPUs. Per offering, the most tokens/s on n nodes is an integer knapsack over GPU
counts; the fleet frontier is the Pareto merge of those per-offering curves (cost n_s·price_s). Both
steps are exact: every tokens/s value is a binary float m·2^e, so all of them are written as integers
over the smallest 2^e among them, and sums and comparisons are integer arithmetic. Every point is then
rebuilt as a fleet (:func:`sweep.solve.milp.fleet_of`) and checked against the merge's own numbers.

The merge keeps, among fleets of equal cost, the most throughput, and among equal throughput the least
cost — the points of the lexicographic budget solves of SPEC §5, which ``pareto`` walks otherwise.
"""

from __future__ import annotations

from fractions import Fraction

from sweep.solve.milp import Fleet, Instance, fleet_of, node_bound


def decomposes(inst: Instance) -> bool:
    """Can the frontier be merged offering by offering (see the module's docstring)?"""
    return not inst.routed and not inst.max_gpus and all(len(c.uses) == 1 for c in inst.candidates)


def _as_integers(values: list[float]) -> tuple[list[int], int]:
    """Floats as exact integers over one common denominator (a power of 2)."""
    fr = [Fraction(v) for v in values]
    den = max((f.denominator for f in fr), default=1)
    return [int(f * den) for f in fr], den


def _knapsack(items: list[tuple[int, int, int]], capacity: int) -> tuple[list[int], list[int]]:
    """Unbounded integer knapsack over GPUs: best[k] = most value on k GPUs, and the item last added
    (-1: none, k-1 is as good). items: (candidate, gpus, value)."""
    best = [0] * (capacity + 1)
    pick = [-1] * (capacity + 1)
    for k in range(1, capacity + 1):
        best[k], pick[k] = best[k - 1], -1
        for i, (_, g, v) in enumerate(items):
            if g <= k and best[k - g] + v > best[k]:
                best[k], pick[k] = best[k - g] + v, i
    return best, pick


def _replicas(items: list[tuple[int, int, int]], pick: list[int], k: int) -> dict[int, int]:
    out: dict[int, int] = {}
    while k > 0:
        i = pick[k]
        if i < 0:
            k -= 1
            continue
        c, g, _ = items[i]
        out[c] = out.get(c, 0) + 1
        k -= g
    return out


def frontier(inst: Instance, budget_units: int | None = None) -> list[Fleet]:
    """Every non-dominated non-empty fleet within the budget that meets the demand, descending cost."""
    cap = inst.max_cost_units() if budget_units is None else min(budget_units, inst.max_cost_units())
    values, den = _as_integers([c.throughput_tok_s for c in inst.candidates])
    per_slot: list[list[tuple[int, int, int]]] = [[] for _ in inst.slots]
    for c, us in enumerate(inst.uses()):
        (s, g), = us
        per_slot[s].append((c, g, values[c]))
    # per offering: the node counts that add throughput, with their knapsack solutions
    curves: list[list[tuple[int, int, int]]] = []  # (nodes, cost, value) per slot
    solutions: list[tuple[list[tuple[int, int, int]], list[int]]] = []
    for s, slot in enumerate(inst.slots):
        n_max = node_bound(slot, cap)
        best, pick = _knapsack(per_slot[s], slot.gpus_per_node * n_max)
        curve, top = [(0, 0, 0)], 0
        for n in range(1, n_max + 1):
            v = best[slot.gpus_per_node * n]
            if v > top:
                curve.append((n, n * slot.price_units, v))
                top = v
        curves.append(curve)
        solutions.append((per_slot[s], pick))
    # Pareto merge, offering by offering; each point remembers where it came from
    stages: list[list[tuple[int, int, int, int]]] = []  # (cost, value, parent index, nodes)
    points: list[tuple[int, int, int, int]] = [(0, 0, -1, 0)]
    for curve in curves:
        merged = sorted(((c0 + c1, v0 + v1, i, n) for i, (c0, v0, _, _) in enumerate(points)
                         for n, c1, v1 in curve if c0 + c1 <= cap), key=lambda p: (p[0], -p[1]))
        points, top = [], -1
        for p in merged:
            if p[1] > top:
                points.append(p)
                top = p[1]
        stages.append(points)
    floor = max(Fraction(inst.min_throughput_tok_s), Fraction(inst.request_rate) * inst.per_request) * den
    out: list[Fleet] = []
    for j, (cost, value, _, _) in enumerate(points):
        if value == 0 or value < floor:
            continue
        counts: dict[int, int] = {}
        for s in range(len(curves) - 1, -1, -1):  # walk back through the offerings
            _, _, parent, n = stages[s][j]
            if n:
                items, pick = solutions[s]
                counts.update(_replicas(items, pick, inst.slots[s].gpus_per_node * n))
            j = parent
        f = fleet_of(inst, counts)
        if f.cost_units != cost or f.throughput_exact * den != value:
            raise ArithmeticError(f"frontier point rebuilt as ({f.cost_units}, {f.throughput_exact}), "
                                  f"merged as ({cost}, {Fraction(value, den)})")  # a bug, never a result
        out.append(f)
    return out[::-1]
