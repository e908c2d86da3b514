"""The budget solve (max tokens/s within the limits, then the least $/h) equals brute force.

Each instance is real files: its own gpus/offerings/models CSVs, a measured-throughput profile and a
scenario TOML with ``perf.source = "profile"``, loaded through ``sweep.load_scenario``. Two brute forces:

* ``tests/brute.py`` over the MILP data ``prepare(sc).instance`` (checks the solve, given the data);
* :func:`raw_best` below, which reads nothing of sweep: it enumerates fleets straight from the CSV rows
  and the scenario values (checks loading, price rounding, overrides, filters, candidate building and
  pruning as well).

Every instance is solved with HiGHS and with CBC; (throughput, cost) must match exactly.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path

import pytest
from brute import best_at_budget
from conftest import toml_text

from sweep import load_scenario, prepare
from sweep.solve.methods import max_throughput
from sweep.solve.milp import violations

N_INSTANCES = 60
POW2 = (1, 2, 4, 8)


@dataclass
class RawInstance:
    """An instance as its files state it (prices as the CSV text, throughputs as the profile's)."""

    offerings: dict[str, dict]  # name -> gpu, gpn, price, spot, max_nodes (price/spot: CSV strings)
    profile: list[tuple[str, int, int, int]]  # offering, tp, pp, throughput_tok_s
    values: dict = field(default_factory=dict)  # scenario keys other than the file paths
    budget_flag: str | None = None  # pass the budget as `--budget` instead of limits.budget


def _brute_size(offerings: dict[str, dict], profile: list[tuple[str, int, int, int]]) -> int:
    size = 1
    for o, tp, pp, _ in profile:
        size *= offerings[o]["gpn"] * offerings[o]["max_nodes"] // (tp * pp) + 1
    return size


def make_instance(seed: int) -> RawInstance:
    """2–4 offerings (1/2/4/8-GPU nodes, 1–3 nodes each; sometimes one is a clone of another at another
    price), 3–6 profile rows (plus the clone's), sometimes a demand floor,
    a budget (sometimes exactly a fleet's cost), a GPU cap, spot prices, an availability override or a
    ``catalog.only`` filter; small enough for brute force."""
    rng = random.Random(seed)
    offerings: dict[str, dict] = {}
    for i in range(rng.randint(2, 3)):
        price = rng.randint(2_000, 300_000)  # 1e-4 $/h
        offerings[f"off-{i}"] = {
            "gpu": rng.choice(["GA", "GB"]), "gpn": rng.choice(POW2), "max_nodes": rng.randint(1, 3),
            # prices as a user writes them; some have trailing zeros, some are whole dollars
            "price": rng.choice([f"{price / 1e4:.4f}", f"{price / 1e4:g}", str(price // 10_000 + 1)]),
            "spot": f"{rng.randint(1_000, price) / 1e4:.4f}",
        }
    rate = {o: rng.randint(50, 1500) for o in offerings}  # tokens/s per GPU, so that few rows dominate others
    # sometimes the best offering again at another price: with a GPU cap or a budget, fleets on the two
    # tie in throughput but not in cost, which is what the lexicographic cost step is for
    clone = max(offerings, key=rate.__getitem__) if rng.random() < 0.4 else None
    if clone:
        price = rng.randint(2_000, 300_000)
        offerings[f"{clone}-clone"] = {**offerings[clone], "max_nodes": rng.randint(1, 3),
                                       "price": f"{price / 1e4:.4f}", "spot": f"{rng.randint(1_000, price) / 1e4:.4f}"}
    while True:
        rows: dict[tuple[str, int, int], int] = {}
        for _ in range(rng.randint(3, 6)):
            o = rng.choice(sorted(o for o in offerings if not o.endswith("-clone")))
            gpn = offerings[o]["gpn"]
            tp = rng.choice([t for t in POW2 if t <= gpn]) if rng.random() > 0.1 else 2 * gpn  # too wide: dropped
            pp = rng.choice([1, 1, 2, 3])
            rows[(o, tp, pp)] = max(1, round(rate[o] * tp * pp * rng.uniform(0.6, 1.4)))
        profile = [(o, tp, pp, thr) for (o, tp, pp), thr in rows.items()]
        if clone:  # the same machines and measurements at another price: ties in throughput, not in cost
            profile += [(f"{o}-clone", tp, pp, thr) for o, tp, pp, thr in profile if o == clone]
        if _brute_size(offerings, profile) <= 4000:
            break
    values: dict = {}
    if rng.random() < 0.25:
        values["catalog.price"] = "spot"
    if rng.random() < 0.3:
        values["catalog.max_nodes"] = {rng.choice(sorted(offerings)): rng.randint(1, 3)}
    if rng.random() < 0.2:
        gpus_present = sorted({o["gpu"] for o in offerings.values()})  # an `only` that keeps nothing is bad input
        values["catalog.only"] = rng.sample(sorted(offerings), 2) if rng.random() < 0.5 else [rng.choice(gpus_present)]
    if rng.random() < 0.5:
        values["workload.min_throughput"] = rng.choice([rng.randint(1, 3000), rng.randint(1, 12000)])
    r = rng.random()
    if r < 0.25:  # a budget exactly at the cost of some nodes: the solve must treat C ≤ B inclusively
        o = rng.choice(sorted(offerings))
        units = int(Fraction(offerings[o]["price"]) * 10_000) * rng.randint(1, 2)
        values["limits.budget"] = units / 1e4
    elif r < 0.5:
        values["limits.budget"] = round(rng.uniform(0.1, 60), rng.choice([2, 4, 6]))
    if rng.random() < (0.7 if clone else 0.3):  # with a clone, a GPU cap makes ties in throughput likely
        values["limits.max_gpus"] = rng.randint(1, 12)
    budget_flag = None
    if "limits.budget" in values and rng.random() < 0.3:
        budget_flag = repr(values.pop("limits.budget"))
    return RawInstance(offerings, profile, values, budget_flag)


def write_instance(raw: RawInstance, folder: Path, solver: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpus.csv").write_text("gpu,mem_gb,bf16_tflops,mem_bw_gbps\nGA,80,300,2000\nGB,24,100,600\n")
    (folder / "models.csv").write_text("model,params_b,layers,hidden,heads\nm,7,32,4096,32\n")
    lines = ["offering,provider,gpu,gpus_per_node,price_per_hour,spot_price_per_hour,max_nodes"]
    lines += [f"{n},test,{o['gpu']},{o['gpn']},{o['price']},{o['spot']},{o['max_nodes']}"
              for n, o in raw.offerings.items()]
    (folder / "offerings.csv").write_text("\n".join(lines) + "\n")
    (folder / "profile.csv").write_text(
        "offering,tp,pp,throughput_tok_s\n" + "".join(f"{o},{tp},{pp},{thr}\n" for o, tp, pp, thr in raw.profile))
    values = {"model": "m", "catalog.gpus": "gpus.csv", "catalog.offerings": "offerings.csv",
              "catalog.models": "models.csv", "perf.source": "profile", "perf.profile": "profile.csv",
              "solver.name": solver, **raw.values}
    path = folder / "scenario.toml"
    path.write_text(toml_text(values))
    return path


def _units(text: str) -> int:
    """A $/h figure as written, in whole 1e-4 $/h (exact decimal arithmetic, no floats)."""
    return int(Fraction(text) * 10_000)


def raw_best(raw: RawInstance, cheapest: bool = True) -> tuple[int, int] | None:
    """(tokens/s, cost in 1e-4 $/h) of the best fleet, from the file contents alone (SPEC §3.2, §4, §5).

    A row is usable when its offering passes ``catalog.only`` and TP fits in one node. A fleet is replica
    counts per usable row; offering o needs ceil(GPUs on o / gpus_per_node) nodes, at most its max_nodes.
    Best = most tokens/s, then least cost (``cheapest=False``: the most), among non-empty fleets meeting
    budget, GPU cap and floor.
    """
    v = raw.values
    spot = v.get("catalog.price") == "spot"
    only = v.get("catalog.only")
    offs = {}
    for name, o in raw.offerings.items():
        if only and name not in only and o["gpu"] not in only:
            continue
        offs[name] = {"gpn": o["gpn"], "price": _units(o["spot"] if spot else o["price"]),
                      "max_nodes": v.get("catalog.max_nodes", {}).get(name, o["max_nodes"])}
    rows = [(o, tp * pp, thr) for o, tp, pp, thr in raw.profile if o in offs and tp <= offs[o]["gpn"]]
    budget_text = raw.budget_flag or (repr(v["limits.budget"]) if v.get("limits.budget") else None)
    budget = _units(budget_text) if budget_text and Fraction(budget_text) > 0 else None
    max_gpus = v.get("limits.max_gpus", 0)
    floor = math.ceil(v.get("workload.min_throughput", 0))
    cap = {o: offs[o]["gpn"] * offs[o]["max_nodes"] for o in offs}
    best: tuple[int, int] | None = None

    def visit(i: int, used: dict[str, int], thr: int, gpus: int) -> None:
        nonlocal best
        if i == len(rows):
            if thr == 0 or thr < floor or (max_gpus and gpus > max_gpus):
                return
            cost = sum(offs[o]["price"] * -(-g // offs[o]["gpn"]) for o, g in used.items())
            if budget is not None and cost > budget:
                return
            if best is None or thr > best[0] or (thr == best[0] and (cost < best[1] if cheapest else cost > best[1])):
                best = (thr, cost)
            return
        o, g, t = rows[i]
        k = 0
        while used.get(o, 0) + k * g <= cap[o]:
            visit(i + 1, {**used, o: used.get(o, 0) + k * g}, thr + k * t, gpus + k * g)
            k += 1

    visit(0, {}, 0, 0)
    return best


@cache
def instance(seed: int) -> tuple[RawInstance, tuple[int, int] | None]:
    raw = make_instance(seed)
    return raw, raw_best(raw)


def _check_allocation(raw: RawInstance, row: dict) -> None:
    """The reported deployment, re-priced from the files: its tokens/s, $/h and GPUs are what it says."""
    thr = {(o, tp, pp): t for o, tp, pp, t in raw.profile}
    spot = raw.values.get("catalog.price") == "spot"
    gpus_on: dict[str, int] = {}
    nodes_on: dict[str, int] = {}
    for a in row["allocation"]:
        assert set(a) == {"offering", "gpu", "tp", "pp", "replicas", "nodes"}
        o = raw.offerings[a["offering"]]
        assert a["gpu"] == o["gpu"] and a["tp"] <= o["gpn"] and a["replicas"] >= 1
        gpus_on[a["offering"]] = gpus_on.get(a["offering"], 0) + a["tp"] * a["pp"] * a["replicas"]
        nodes_on[a["offering"]] = nodes_on.get(a["offering"], 0) + a["nodes"]
    for name, g in gpus_on.items():
        o = raw.offerings[name]
        assert nodes_on[name] == -(-g // o["gpn"])  # the fewest nodes that hold the replicas
        assert nodes_on[name] <= raw.values.get("catalog.max_nodes", {}).get(name, o["max_nodes"])
    cost = sum(_units(raw.offerings[n]["spot" if spot else "price"]) * k for n, k in nodes_on.items())
    assert row["throughput_tok_s"] == sum(thr[(a["offering"], a["tp"], a["pp"])] * a["replicas"]
                                          for a in row["allocation"])
    assert row["cost_per_hour"] == pytest.approx(cost / 1e4, rel=1e-12)
    assert row["gpus"] == sum(gpus_on.values())
    assert row["cost_per_token"] == pytest.approx(cost / 1e4 / (3600 * row["throughput_tok_s"]), rel=1e-12)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
@pytest.mark.parametrize("seed", range(N_INSTANCES))
def test_budget_solve_equals_brute_force(seed, solver, tmp_path, run_cli):
    raw, expected = instance(seed)
    path = write_instance(raw, tmp_path, solver)
    overrides = {"limits.budget": float(raw.budget_flag)} if raw.budget_flag else None
    prep = prepare(load_scenario(path, overrides))
    inst = prep.instance
    assert inst.solver == solver

    # the MILP data against the raw files, and the solve against both brute forces
    assert best_at_budget(inst, inst.budget_units or None) == expected
    res = max_throughput(inst)
    got = None if res.fleet is None else (res.fleet.throughput_tok_s, res.fleet.cost_units)
    assert got == expected, f"seed {seed}: {raw}"
    assert res.status == ("infeasible" if expected is None else "optimal")
    if res.fleet is not None:
        assert violations(inst, res.fleet) == []

    # the same through the command line, every other instance
    if seed % 2 == 0:
        args = ["solve", path, "--method", "max_throughput", "--json"]
        if raw.budget_flag:
            args += ["--budget", raw.budget_flag]
        r = run_cli(*args)
        assert r.code == 0 and r.err == "", r.err
        (line,) = r.out.splitlines()
        row = json.loads(line)
        assert row["solver"] == solver and row["method"] == "max_throughput"
        if expected is None:
            assert row["status"] == "infeasible" and row["allocation"] == [] and row["throughput_tok_s"] is None
        else:
            assert row["status"] == "optimal"
            assert (row["throughput_tok_s"], round(row["cost_per_hour"] * 1e4)) == expected
            _check_allocation(raw, row)


def test_instances_cover_what_they_should():
    """The random instances exercise every feature, and both outcomes, not just the easy cases."""
    raws = [instance(s) for s in range(N_INSTANCES)]
    gpns = {o["gpn"] for raw, _ in raws for o in raw.offerings.values()}
    assert gpns == set(POW2)
    assert sum(best is None for _, best in raws) >= 3  # infeasible: floor above what availability allows
    assert sum(best is not None for _, best in raws) >= 40
    feats = ["workload.min_throughput", "limits.budget", "limits.max_gpus", "catalog.max_nodes", "catalog.only",
             "catalog.price"]
    for f in feats:
        assert sum(f in raw.values for raw, _ in raws) >= 3, f
    assert sum(raw.budget_flag is not None for raw, _ in raws) >= 3
    assert any(tp > raw.offerings[o]["gpn"] for raw, _ in raws for o, tp, _, _ in raw.profile)
    # the floor binds somewhere: a feasible instance whose best fleet is exactly at a positive floor is rare,
    # but a floor that removes every fleet of an otherwise feasible instance is not
    unfloored = [raw_best(RawInstance(raw.offerings, raw.profile,
                                      {k: v for k, v in raw.values.items() if k != "workload.min_throughput"},
                                      raw.budget_flag))
                 for raw, best in raws if best is None and "workload.min_throughput" in raw.values]
    assert any(b is not None for b in unfloored)
    # ties: at the most tokens/s some fleets cost more than others, so the least-cost step decides
    assert sum(best is not None and raw_best(raw, cheapest=False) != best for raw, best in raws) >= 5
