"""An independent brute force over every fleet of a small instance, and a random instance maker."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

from benchmarks.instances import small_instance
from sweep.solve.milp import Instance


def replica_vectors(inst: Instance):
    """Every non-empty replica vector that fits availability and the GPU cap, with its cost (the fewest
    nodes of each offering that hold it). Written from the SPEC §5 formulas directly (not through
    sweep.solve.milp.fleet_of)."""
    slots = {s.name: s for s in inst.slots}
    bounds = [min(slots[o].max_nodes * slots[o].gpus_per_node // g for o, g in c.uses) for c in inst.candidates]
    for counts in itertools.product(*(range(b + 1) for b in bounds)):
        if not any(counts):
            continue
        used = dict.fromkeys(slots, 0)
        for c, k in zip(inst.candidates, counts, strict=True):
            for o, g in c.uses:
                used[o] += g * k
        nodes = {o: -(-u // slots[o].gpus_per_node) for o, u in used.items()}
        if any(nodes[o] > slots[o].max_nodes for o in slots):
            continue
        if inst.max_gpus and inst.max_gpus < sum(c.gpus * k for c, k in zip(inst.candidates, counts, strict=True)):
            continue
        yield counts, sum(slots[o].price_units * nodes[o] for o in slots)


def fleets(inst: Instance):
    """Every non-empty feasible replica vector with its exact (T, C): T a Fraction of the given floats."""
    for counts, C in replica_vectors(inst):
        T = sum((Fraction(c.throughput_tok_s) * k for c, k in zip(inst.candidates, counts, strict=True)), Fraction(0))
        if Fraction(inst.min_throughput_tok_s) > T or Fraction(inst.request_rate) * inst.per_request > T:
            continue
        yield counts, T, C


def best_at_budget(inst: Instance, budget: int | None):
    """(T, C) of the lexicographic budget solve, or None."""
    best = None
    for _, T, C in fleets(inst):
        if budget is not None and budget < C:
            continue
        if best is None or best[0] < T or (best[0] == T and best[1] > C):
            best = (T, C)
    return best


def min_ratio(inst: Instance):
    """(T, C) with the least C/T, ties to the higher T; None if no fleet."""
    best = None
    for _, T, C in fleets(inst):
        if inst.budget_units and inst.budget_units < C:
            continue
        key = (Fraction(C) / T, -T)
        if best is None or key < best[0]:
            best = (key, (T, C))
    return best[1] if best else None


def frontier(inst: Instance):
    """The non-dominated (C, T) points, descending cost."""
    pts = {(C, T) for _, T, C in fleets(inst) if not (inst.budget_units and inst.budget_units < C)}
    nd = [(C, T) for C, T in pts if not any((C2 <= C and T2 >= T) and (C2, T2) != (C, T) for C2, T2 in pts)]
    return sorted(nd, reverse=True)


def random_instance(rng: random.Random, solver: str = "highs", mixed: bool = False) -> Instance:
    """A small random instance (benchmarks/instances.py makes them for the benchmarks too)."""
    return small_instance(rng, solver, mixed)


def min_cost(inst: Instance):
    """(T, C) of the cheapest fleet meeting the demand, ties to the higher T; None if no fleet."""
    best = None
    for _, T, C in fleets(inst):
        if inst.budget_units and inst.budget_units < C:
            continue
        if best is None or best[1] > C or (best[1] == C and best[0] < T):
            best = (T, C)
    return best
