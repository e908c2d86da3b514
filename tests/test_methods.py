"""The min-$/token methods (SPEC §6) against an independent brute force, with real HiGHS and CBC.

* exact methods (dinkelbach, charnes_cooper, pareto) agree with each other and with brute force on
  random small instances: (throughput, cost) exactly, $/token to 1e-9 relative; pareto's frontier is
  the brute-force non-dominated set;
* the baselines behave as the design note writes them, and never beat the exact optimum;
* a hand-built instance on which the note's "guaranteed optimal" 15-budget enumeration misses;
* statuses are never overstated (time limits, infeasible scenarios).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from brute import best_at_budget, fleets, frontier, min_cost, min_ratio, random_instance

from sweep.fleet.candidates import Candidate
from sweep.solve.decomposed import decomposes
from sweep.solve.methods import (
    ALL_METHODS,
    METHODS,
    MethodParams,
    dinkelbach,
    enumeration,
    enumeration_budgets,
    gap_pct,
    iterative,
    max_throughput,
    pareto,
    weighted,
)
from sweep.solve.methods.charnes_cooper import charnes_cooper
from sweep.solve.milp import Fleet, Instance, Slot, violations
from sweep.solve.result import budget_units

REPO = Path(__file__).resolve().parents[1]
N_RANDOM = {"highs": 200, "cbc": 200}  # instances per solver for the exact methods, min_cost and the budget solve
N_BASELINE = {"highs": 60, "cbc": 25}  # instances per solver for the baselines' checks
SOLVERS = ("highs", "cbc")
EXACT = {"dinkelbach": dinkelbach, "charnes_cooper": charnes_cooper, "pareto": pareto}


def instance(i: int, solver: str) -> Instance:
    """Random instance number i (the same data for every solver); about a third have a mixed
    candidate drawing GPUs from two offerings."""
    rng = random.Random(1000 + i)
    return random_instance(rng, solver, mixed=rng.random() < 0.35)


def point(f: Fleet | None) -> tuple[Fraction, int] | None:
    """A fleet's exact (throughput, cost units)."""
    return None if f is None else (f.throughput_exact, f.cost_units)


def cpt(tc: tuple[Fraction, int]) -> float:
    t, c = tc
    return float(Fraction(c) / (10_000 * 3600 * t))


# --------------------------------------------------------------------------- exact methods


@pytest.mark.parametrize("solver,i", [(s, i) for s in SOLVERS for i in range(N_RANDOM[s])])
def test_exact_methods_equal_brute_force(solver: str, i: int) -> None:
    inst = instance(i, solver)
    want = min_ratio(inst)
    results = {name: fn(inst) for name, fn in EXACT.items()}
    for name, r in results.items():
        if want is None:
            assert r.status == "infeasible" and r.fleet is None, name
            continue
        assert r.status == "optimal", (name, r.status, r.message)
        assert point(r.fleet) == want, (name, point(r.fleet), want)
        assert r.fleet.cost_per_token == pytest.approx(cpt(want), rel=1e-9, abs=0)
        assert not violations(inst, r.fleet)
        assert r.solves >= 1 or (name == "pareto" and decomposes(inst))  # the merge needs no MILP
    # pareto: the whole frontier, not just its best point
    assert [(f.cost_units, f.throughput_exact) for f in results["pareto"].frontier] == frontier(inst)
    # the cheapest fleet for the demand, and the budget solve at the instance's budget
    cheapest = min_cost(inst if inst.min_throughput_tok_s else replace(inst, min_throughput_tok_s=1.5))
    r = METHODS["min_cost"](inst if inst.min_throughput_tok_s else replace(inst, min_throughput_tok_s=1.5),
                            MethodParams())
    assert (r.status, point(r.fleet)) == (("optimal", cheapest) if cheapest else ("infeasible", None))
    r = max_throughput(inst)
    want_b = best_at_budget(inst, inst.budget_units or None)
    assert (r.status, point(r.fleet)) == (("optimal", want_b) if want_b else ("infeasible", None))


def test_decimals_are_solved_as_given() -> None:
    """966.586 tok/s is that number: rounded down to whole tokens/s, two A replicas (1932) would serve
    less than one B (1933); as given they serve more (1933.172 > 1933.1715), so $2/h buys the two A's."""
    slots = (Slot("a", "A", 1, 10_000, 2), Slot("b", "B", 1, 19_999, 1))
    cands = (Candidate("a", "A", 1, 1, 1, 966.586, 1, 1.0, (("a", 1),)),
             Candidate("b", "B", 1, 1, 1, 1933.1715, 1, 1.0, (("b", 1),)))
    for solver in SOLVERS:
        inst = Instance(slots, cands, 0, 0, 0, solver, 60.0)
        want = min_ratio(inst)  # B: $1.9999/h for 1933.1715 tok/s, a lower $/token than A's
        assert want == (Fraction(1933.1715), 19_999)
        for name, fn in EXACT.items():
            assert point(fn(inst).fleet) == want, (solver, name)
        budget = replace(inst, budget_units=20_000)
        assert point(max_throughput(budget).fleet) == (2 * Fraction(966.586), 20_000) == best_at_budget(budget, 20_000)


def test_random_instances_cover_the_model() -> None:
    """The random instances exercise what the brief asks for (not a vacuous 'all equal')."""
    insts = [instance(i, "highs") for i in range(N_RANDOM["highs"])]
    assert sum(any(len(c.uses) > 1 for c in x.candidates) for x in insts) >= 20  # two-offering candidates
    assert sum(x.budget_units > 0 for x in insts) >= 20
    assert sum(x.min_throughput_tok_s > 0 for x in insts) >= 20
    assert sum(x.max_gpus > 0 for x in insts) >= 20
    assert sum(any(s.gpus_per_node > 1 for s in x.slots) for x in insts) >= 100  # node bundling
    assert sum(min_ratio(x) is None for x in insts) >= 3  # some infeasible ones


def test_ties_go_to_the_higher_throughput() -> None:
    """Two fleets at exactly the same $/token: every exact method returns the bigger one."""
    slots = (Slot("a", "A", 1, 1000, 4), Slot("b", "B", 1, 3000, 1))
    cands = (Candidate("a", "A", 1, 1, 1, 100, 1, 1.0, (("a", 1),)),
             Candidate("b", "B", 1, 1, 1, 300, 1, 1.0, (("b", 1),)))
    for solver in SOLVERS:
        inst = Instance(slots, cands, 0, 0, 0, solver, 60.0)
        assert min_ratio(inst) == (700, 7000)
        for name, fn in EXACT.items():
            assert point(fn(inst).fleet) == (700, 7000), (solver, name)


@pytest.mark.parametrize("solver", SOLVERS)
def test_exact_methods_agree_on_the_seed_scenario(solver: str) -> None:
    """The design note's own question on the built-in catalog (71 offerings, 161 candidates)."""
    from sweep import load_scenario, prepare

    prep = prepare(load_scenario(REPO / "jobs" / "seed.toml", {"solver.name": solver}))
    d, p = dinkelbach(prep.instance), pareto(prep.instance)
    assert d.status == p.status == "optimal"
    assert point(d.fleet) == point(p.fleet)
    c = charnes_cooper(prep.instance)
    if c.status == "optimal":  # its time is the solver's; when it proves an optimum it must be this one
        assert point(c.fleet) == point(d.fleet)
    else:
        assert c.status == "time_limit"
    # the frontier is non-dominated and in descending cost
    pts = [(f.cost_units, f.throughput_tok_s) for f in p.frontier]
    assert all(a[0] > b[0] and a[1] > b[1] for a, b in zip(pts, pts[1:], strict=False))


# --------------------------------------------------------------------------- baselines


def _best_at(all_fleets: list, budget: int) -> tuple[int, int] | None:
    best = None
    for _, t, c in all_fleets:
        if c <= budget and (best is None or t > best[0] or (t == best[0] and c < best[1])):
            best = (t, c)
    return best


@pytest.mark.parametrize("solver,i", [(s, i) for s in SOLVERS for i in range(N_BASELINE[s])])
def test_enumeration_is_the_best_of_its_own_budget_points(solver: str, i: int) -> None:
    inst = instance(i, solver)
    mp = MethodParams(budget_min=0.05, budget_max=8.0, points=9)
    r = enumeration(inst, mp)
    assert [p.budget for p in r.points] == enumeration_budgets(mp)
    assert r.solves >= len(r.points)
    everything = [f for f in fleets(inst) if not (inst.budget_units and f[2] > inst.budget_units)]
    for p in r.points:  # every point is the exact budget solve at its budget (capped by limits.budget)
        cap = budget_units(p.budget)
        cap = min(cap, inst.budget_units) if inst.budget_units else cap
        assert point(p.fleet) == _best_at(everything, cap), p.budget
    found = [p.fleet for p in r.points if p.fleet is not None]
    if not found:
        assert r.fleet is None and r.status == "infeasible"
        return
    best = min(found, key=lambda f: (f.ratio, -f.throughput_tok_s))
    assert point(r.fleet) == point(best)
    assert r.budget in [p.budget for p in r.points if p.fleet is not None and point(p.fleet) == point(best)]
    exact = min_ratio(inst)
    assert r.fleet.ratio >= Fraction(exact[1]) / exact[0]


@pytest.mark.parametrize("solver,i", [(s, i) for s in SOLVERS for i in range(N_BASELINE[s])])
def test_baselines_return_fleets_and_never_beat_the_optimum(solver: str, i: int) -> None:
    inst = instance(i, solver)
    exact = min_ratio(inst)
    mp = MethodParams(weight=0.5, target_cpt=1e-7)
    for fn in (max_throughput, weighted, iterative):
        r = fn(inst, mp)
        if exact is None:
            assert r.fleet is None and r.status == "infeasible", r.method
            continue
        assert r.status == "optimal", (r.method, r.status)
        assert r.fleet is not None and not r.fleet.empty and not violations(inst, r.fleet), r.method
        assert r.fleet.ratio >= Fraction(exact[1]) / exact[0], r.method
    if exact is not None:
        assert point(max_throughput(inst).fleet) == best_at_budget(inst, inst.budget_units or None)


@pytest.mark.parametrize("weight", [0.0, 0.5, 0.95, 100.0])
def test_weighted_returns_a_non_empty_fleet(weight: float) -> None:
    """With a heavy cost weight the empty fleet would maximise T/T_ref − w·C/C_ref; it is never returned."""
    for i in range(20):
        inst = instance(i, "highs")
        r = weighted(inst, MethodParams(weight=weight))
        if min_ratio(inst) is None:
            assert r.status == "infeasible"
            continue
        assert r.status == "optimal" and r.fleet is not None and r.fleet.throughput_tok_s > 0
        assert r.path[0]["weight"] == weight


@pytest.mark.parametrize("solver", SOLVERS)
def test_iterative_grows_its_first_budget_when_the_target_is_below_the_optimum(solver: str) -> None:
    """As the note writes it, a target at or below the optimum makes the first budget
    (target·T_min·3600) admit no fleet; the method then grows it ×1.4 and says so in its path."""
    checked = 0
    for i in range(40):
        inst = instance(i, solver)
        exact = min_ratio(inst)
        if exact is None:
            continue
        target = cpt(exact) * 0.8
        r = iterative(inst, MethodParams(target_cpt=target))
        grows = [p for p in r.path if p["step"] == "grow"]
        assert grows, r.path
        assert r.path[0]["step"] == "grow"
        assert [g["budget"] for g in grows] == pytest.approx(
            [round(target * min(c.throughput_tok_s for c in inst.candidates) * 3600 * 1.4**k, 4)
             for k in range(len(grows))], rel=1e-6)
        assert r.fleet is not None and r.status == "optimal"
        assert r.path[-1]["step"] == "stop"
        checked += 1
    assert checked >= 20


def test_iterative_stops_when_the_target_is_reached() -> None:
    inst = instance(3, "highs")
    r = iterative(inst, MethodParams(target_cpt=1.0))  # $1 per token: the first fleet meets it
    assert [p["step"] for p in r.path] == [1, "stop"]
    assert r.path[-1]["reason"] == "target reached" and r.solves <= 2  # one budget solve (max T, then min C)


# --------------------------------------------------------------------------- the note's proof is wrong


def counterexample(solver: str) -> Instance:
    """Two single-GPU offerings, one node each:

    A: $0.50/h, 1000 tokens/s  → $/token 1.389e-7  (the optimum)
    B: $0.58/h, 1100 tokens/s  → $/token 1.465e-7
    A+B: $1.08/h, 2100 tokens/s → $/token 1.429e-7

    The note's budgets are 0.30, 0.42, 0.59, 0.83, 1.17, …: $0.42 buys nothing, $0.59 and $0.83 buy
    the most throughput they can — B, not A — and from $1.17 up the answer is A+B. No budget point
    returns A, so the "guaranteed optimal" enumeration misses the optimum by 2.9 %.
    """
    slots = (Slot("a", "A", 1, 5000, 1), Slot("b", "B", 1, 5800, 1))
    cands = (Candidate("a", "A", 1, 1, 1, 1000, 1, 1.0, (("a", 1),)),
             Candidate("b", "B", 1, 1, 1, 1100, 1, 1.0, (("b", 1),)))
    return Instance(slots, cands, 0, 0, 0, solver, 60.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_15_point_enumeration_misses_the_optimum(solver: str) -> None:
    inst = counterexample(solver)
    note = MethodParams()  # the note's 15 budgets, 0.30 … 34.65 $/h
    assert [round(b, 2) for b in enumeration_budgets(note)][:4] == [0.30, 0.42, 0.59, 0.83]
    e, d = enumeration(inst, note), dinkelbach(inst)
    assert d.status == "optimal" and point(d.fleet) == (1000, 5000) == min_ratio(inst)
    assert e.status == "optimal" and point(e.fleet) == (2100, 10800)
    assert e.fleet.cost_per_token > d.fleet.cost_per_token
    assert (1000, 5000) not in [point(p.fleet) for p in e.points]
    assert gap_pct(e.fleet, d.fleet) == pytest.approx(2.857142857, rel=1e-6)
    for fn in (charnes_cooper, pareto):
        assert point(fn(inst).fleet) == (1000, 5000)


def test_the_shipped_counterexample_misses_too() -> None:
    """jobs/counterexample.toml (the README's example): real offerings, a pinned profile."""
    from sweep import load_scenario, prepare

    prep = prepare(load_scenario(REPO / "jobs" / "counterexample.toml"))
    e, d = enumeration(prep.instance, prep.params), dinkelbach(prep.instance)
    assert d.status == e.status == "optimal"
    assert gap_pct(e.fleet, d.fleet) > 5
    assert point(pareto(prep.instance).fleet) == point(charnes_cooper(prep.instance).fleet) == point(d.fleet)
    budgets = [p.budget for p in e.points]
    below = max(b for b in budgets if b < d.fleet.cost_per_hour)
    above = min(b for b in budgets if b >= d.fleet.cost_per_hour)
    nxt = next(p for p in e.points if p.budget == above)  # the next point spends more, for worse $/token
    assert nxt.fleet.throughput_tok_s > d.fleet.throughput_tok_s and gap_pct(nxt.fleet, d.fleet) > 0
    assert below < d.fleet.cost_per_hour < above


# --------------------------------------------------------------------------- statuses


def hard_instance(solver: str, time_limit_s: float) -> Instance:
    """40 eight-GPU offerings × 4 layouts under a budget: a knapsack HiGHS needs ~0.2 s for."""
    rng = random.Random(0)
    slots = tuple(Slot(f"o{i}", f"g{i}", 8, rng.randint(10_000, 99_999), 50) for i in range(40))
    cands = tuple(Candidate(s.name, s.gpu, tp, 1, tp, rng.randint(1000, 99_999), 1, 1.0, ((s.name, tp),))
                  for s in slots for tp in (1, 2, 4, 8))
    total = sum(s.price_units * s.max_nodes for s in slots)
    return Instance(slots, cands, total // 7, 0, 0, solver, time_limit_s)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_time_limited_solve_is_reported_as_time_limit(solver: str) -> None:
    inst = hard_instance(solver, 1e-6)
    for name in ("max_throughput", "weighted", "enumeration", "dinkelbach", "charnes_cooper", "pareto"):
        # pareto merges an instance of independent offerings without a MILP (no time limit to hit); a GPU
        # cap that binds nothing couples them, so that it walks
        r = METHODS[name](replace(inst, max_gpus=10**6) if name == "pareto" else inst, MethodParams())
        assert r.status == "time_limit", (name, r.status)
        if r.fleet is not None:  # an incumbent is kept, and it is a real fleet
            assert not violations(inst, r.fleet) and not r.fleet.empty


@pytest.mark.parametrize("solver", SOLVERS)
def test_optimal_is_never_claimed_without_proof(solver: str) -> None:
    """With a time limit too short to prove anything, 'optimal' may appear only where it is true."""
    for i in range(15):
        inst = replace(instance(i, solver), time_limit_s=1e-6)
        want = min_ratio(inst)
        for name, fn in EXACT.items():
            r = fn(inst)
            assert r.status in ("optimal", "time_limit", "infeasible"), (name, r.status)
            if r.status == "optimal":
                assert point(r.fleet) == want, name
            if r.status == "infeasible":
                assert want is None, name


def test_an_infeasible_scenario_is_a_result(run_cli, small_scenario) -> None:
    """Demand above what the catalog can serve: every method says infeasible; the CLI exits 0."""
    path = small_scenario({"workload.min_throughput": 10**9})
    res = run_cli("solve", path, "--method", "all", "--json")
    assert res.code == 0, res.err
    rows = [json.loads(line) for line in res.out.splitlines()]
    assert [r["method"] for r in rows] == list(ALL_METHODS)
    for r in rows:
        assert r["status"] == "infeasible", r
        assert r["allocation"] == [] and r["cost_per_token"] is None
    human = run_cli("solve", path, "--method", "all")
    assert human.code == 0 and "infeasible" in human.out


def test_json_rows_carry_each_methods_extras(run_cli) -> None:
    res = run_cli("solve", REPO / "jobs" / "counterexample.toml", "--method", "all", "--json")
    assert res.code == 0, res.err
    rows = {r["method"]: r for r in map(json.loads, res.out.splitlines())}
    assert len(rows["enumeration"]["points"]) == 15
    assert rows["pareto"]["frontier"] and all(
        a["cost_per_hour"] > b["cost_per_hour"] for a, b in zip(rows["pareto"]["frontier"], rows["pareto"]["frontier"][1:],
                                                                 strict=False))
    assert rows["iterative"]["path"][-1]["step"] == "stop"
    assert rows["dinkelbach"]["path"][0]["step"] == 0
    assert all(p["allocation"] and p["allocation"][0]["replicas"] >= 1 for p in rows["pareto"]["frontier"])
    assert rows["pareto"]["budget"] == rows["max_throughput"]["budget"]  # pareto echoes the budget it was given
    best = min(rows["pareto"]["frontier"], key=lambda p: (p["cost_per_token"], -p["throughput_tok_s"]))
    for m in ("dinkelbach", "charnes_cooper", "pareto"):
        assert rows[m]["status"] == "optimal"
        assert rows[m]["throughput_tok_s"] == best["throughput_tok_s"]
        assert rows[m]["cost_per_token"] == pytest.approx(best["cost_per_token"], rel=1e-12)
    for r in rows.values():
        assert {"scenario_id", "method", "status", "budget", "cost_per_hour", "throughput_tok_s", "cost_per_token",
                "gpus", "allocation", "solves", "seconds", "solver"} <= set(r)


def test_method_all_table_reads_gap_against_the_exact_optimum(run_cli) -> None:
    res = run_cli("solve", REPO / "jobs" / "counterexample.toml", "--method", "all")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("method "))
    assert lines[head].split() == ["method", "kind", "status", "$/token", "gap", "tok/s", "$/h", "solves", "seconds"]
    asked = [m for m in ALL_METHODS if m != "min_cost"]  # no demand in this scenario: `all` leaves min_cost out
    table = {ln.split()[0]: ln.split() for ln in lines[head + 2: head + 2 + len(asked)]}
    assert set(table) == set(asked)
    for m in ("dinkelbach", "charnes_cooper", "pareto"):
        assert table[m][1] == "exact" and table[m][4] == "0.00%"
    assert table["enumeration"][1] == "baseline" and table["enumeration"][4].startswith("+")
    assert any(ln.startswith("gap: % above the exact minimum") for ln in lines)


def test_min_cost_needs_a_demand_and_answers_the_cheapest_fleet(run_cli, small_scenario) -> None:
    """`--method min_cost` without a demand is bad input (one line, exit 2); with one it is the cheapest
    fleet serving it, equal to the cheapest frontier point that serves it."""
    res = run_cli("solve", REPO / "jobs" / "counterexample.toml", "--method", "min_cost")
    assert res.code == 2 and res.err.strip().splitlines() == [
        "error: workload.min_throughput: method min_cost needs a demand: set workload.min_throughput to the "
        "tokens/s the fleet must serve, or workload.request_rate to the requests/s"], res.err
    path = small_scenario({"workload.min_throughput": 2500.5})
    rows = {r["method"]: r for r in map(json.loads, run_cli("solve", path, "-m", "min_cost,pareto", "--json").out.splitlines())}
    serving = [p for p in rows["pareto"]["frontier"] if p["throughput_tok_s"] >= 2500.5]
    cheapest = min(serving, key=lambda p: p["cost_per_hour"])
    assert rows["min_cost"]["status"] == "optimal"
    assert rows["min_cost"]["cost_per_hour"] == cheapest["cost_per_hour"]
    assert rows["min_cost"]["throughput_tok_s"] == cheapest["throughput_tok_s"] >= 2500.5
