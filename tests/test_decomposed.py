"""``pareto`` on instances whose offerings are independent: the per-offering knapsack and Pareto merge
(sweep.solve.decomposed) gives exactly the frontier of the ε-constraint MILP walk, point by point."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from benchmarks.instances import large_instance, small_instance
from sweep.fleet.layouts import Candidate
from sweep.solve.decomposed import decomposes, frontier
from sweep.solve.methods.common import Tally
from sweep.solve.methods.exact import pareto, pareto_walk
from sweep.solve.milp import Instance


def _independent(inst: Instance) -> Instance:
    return replace(inst, candidates=tuple(c for c in inst.candidates if len(c.uses) == 1), max_gpus=0)


def _cases() -> list[Instance]:
    rng = random.Random(1130)
    out = [_independent(small_instance(rng)) for _ in range(40)]
    out += [_independent(large_instance(rng)) for _ in range(20)]
    return out


CASES = _cases()


@pytest.mark.parametrize("i", range(len(CASES)))
def test_the_merge_equals_the_milp_walk(i: int) -> None:
    inst = CASES[i]
    assert decomposes(inst)
    tally = Tally(inst.solver)
    walk = pareto_walk(inst, tally)
    assert set(tally.statuses) <= {"optimal", "infeasible"}  # the walk ends where no fleet fits
    merged = frontier(inst, inst.budget_units or None)
    assert [(f.cost_units, f.throughput_exact) for f in merged] == [(f.cost_units, f.throughput_exact) for f in walk]


def test_the_cases_cover_budgets_demands_and_long_frontiers() -> None:
    assert sum(x.budget_units > 0 for x in CASES) >= 10 and sum(x.min_throughput_tok_s > 0 for x in CASES) >= 10
    assert max(len(frontier(x)) for x in CASES) >= 50


def test_coupled_instances_walk() -> None:
    rng = random.Random(5)
    inst = small_instance(rng, mixed=True)
    assert not decomposes(inst) and not decomposes(replace(_independent(inst), max_gpus=4))
    r = pareto(inst)
    assert r.solves > 0 and not r.path
    ind = _independent(inst)
    r = pareto(ind)
    assert r.solves == 0 and "Pareto merge" in r.path[0]["algorithm"]


def test_a_zero_price_or_unusable_offering_is_handled() -> None:
    inst = CASES[0]
    slot = inst.slots[0]
    lone = Candidate(slot.name, slot.gpu, 1, 1, slot.gpus_per_node * slot.max_nodes + 1, 10.5, 1, 1.0,
                     ((slot.name, slot.gpus_per_node * slot.max_nodes + 1),))
    bigger = replace(inst, candidates=(*inst.candidates, lone))  # a replica larger than the offering: never used
    assert [(f.cost_units, f.throughput_exact) for f in frontier(bigger)] == [
        (f.cost_units, f.throughput_exact) for f in frontier(inst)]


def test_ties_keep_the_cheaper_fleet_as_the_walk_does() -> None:
    """Two offerings of one GPU at different prices, and a second layout with exactly twice the tokens/s on
    twice the GPUs: many fleets tie on throughput; the frontier keeps the cheapest of each."""
    from sweep.solve.milp import Slot

    slots = (Slot("cheap", "g", 2, 10_000, 2), Slot("dear", "g", 2, 13_000, 2))
    cands = tuple(Candidate(s.name, "g", tp, 1, tp, 100.25 * tp, 1, 1.0, ((s.name, tp),)) for s in slots for tp in (1, 2))
    inst = Instance(slots, cands)
    tally = Tally("highs")
    walk = pareto_walk(inst, tally)
    merged = frontier(inst)
    assert [(f.cost_units, f.throughput_exact) for f in merged] == [(f.cost_units, f.throughput_exact) for f in walk]
    assert len({f.throughput_exact for f in merged}) == len(merged) == 4
