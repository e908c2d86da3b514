"""Request mixes (SPEC §5.2): the routed MILP under every exact method and ``min_cost`` against an
independent brute force (every replica vector, its routing LP solved by SciPy's ``linprog``), to 1e-9
relative; one-bucket mixes give exactly the plain answers; the exact routing of a fleet is checked row
by row in rational arithmetic."""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction

import pytest
from brute import replica_vectors
from scipy.optimize import linprog

from benchmarks.instances import small_instance
from sweep.fleet.candidates import mix_throughput
from sweep.fleet.layouts import Candidate
from sweep.inputs.mix import Bucket
from sweep.solve.methods import METHODS, MethodParams
from sweep.solve.milp import Instance, Slot, fleet_of

REL = 1e-9
N_INSTANCES = 100
N_CBC = 25  # the first instances again with CBC


def _dec(rng: random.Random, lo: float, hi: float) -> float:
    return round(rng.uniform(lo, hi), 3)


def mix_instance(rng: random.Random, solver: str = "highs") -> Instance:
    """2–3 offerings (1–2 GPUs a node, 1–3 nodes: node bundling and availability), 3–4 layouts, 2–3
    buckets with decimal shares; each layout serves each bucket at a decimal tokens/s, or not at all
    (every bucket is served by some layout); sometimes a budget, a GPU cap, a request-rate or a
    throughput demand."""
    slots = [Slot(f"o{i}", f"g{i}", rng.choice([1, 2]), rng.randint(5, 400) * 100 + rng.randint(0, 99),
                  rng.randint(1, 3)) for i in range(rng.randint(2, 3))]
    n_b = rng.randint(2, 3)
    cut = sorted(rng.sample(range(1, 20), n_b - 1))
    shares = [Fraction(b - a, 20) for a, b in zip([0, *cut], [*cut, 20], strict=True)]
    buckets = tuple(Bucket(rng.choice([128, 512, 2048]), rng.choice([32, 64, 128, 256, 512]), s) for s in shares)
    cands = []
    for _ in range(rng.randint(3, 4)):
        s = rng.choice(slots)
        tp = rng.choice([t for t in (1, 2) if t <= s.gpus_per_node])
        rates = tuple(0.0 if rng.random() < 0.25 else _dec(rng, 50, 3000) for _ in buckets)
        cands.append(Candidate(s.name, s.gpu, tp, 1, tp, mix_throughput(rates, buckets), 1, 1.0,
                               ((s.name, tp),), rates_tok_s=rates))
    for b in range(n_b):  # every bucket has a server
        if not any(c.rates_tok_s[b] > 0 for c in cands):
            c = cands[b % len(cands)]
            rates = tuple(_dec(rng, 50, 3000) if i == b else r for i, r in enumerate(c.rates_tok_s))
            cands[b % len(cands)] = replace(c, rates_tok_s=rates, throughput_tok_s=mix_throughput(rates, buckets))
    total = sum(s.price_units * s.max_nodes for s in slots)
    per_request = sum((b.share * b.output_tokens for b in buckets), Fraction(0))
    return Instance(
        tuple(slots), tuple(cands),
        budget_units=rng.choice([0, 0, rng.randint(total // 4, total)]),
        max_gpus=rng.choice([0, 0, rng.randint(2, 6)]),
        min_throughput_tok_s=rng.choice([0, 0, 0, _dec(rng, 20, 800)]),
        solver=solver,
        request_rate=rng.choice([0, 0, round(rng.uniform(0.05, 3), 2)]),
        per_request=per_request,
        shares=tuple(b.share for b in buckets),
        outputs=tuple(b.output_tokens for b in buckets),
    )


def routed_rate(inst: Instance, counts: tuple[int, ...]) -> float:
    """Max Λ of the routing LP, written from SPEC §5.2 and solved by SciPy (variables Λ, y_{c,b})."""
    B = len(inst.shares)
    pairs = [(c, b) for c, n in enumerate(counts) if n for b in range(B) if inst.candidates[c].rates_tok_s[b] > 0]
    n = 1 + len(pairs)
    a_eq = [[-float(inst.shares[b])] + [1.0 if pb == b else 0.0 for _, pb in pairs] for b in range(B)]
    a_ub, b_ub = [], []
    for c, k in enumerate(counts):
        if k:
            row = [0.0] * n
            for j, (pc, pb) in enumerate(pairs, start=1):
                if pc == c:
                    row[j] = inst.outputs[pb] / inst.candidates[c].rates_tok_s[pb]  # 1/μ = o_b / thr
            a_ub.append(row)
            b_ub.append(float(k))
    res = linprog([-1.0] + [0.0] * len(pairs), A_ub=a_ub or None, b_ub=b_ub or None, A_eq=a_eq, b_eq=[0.0] * B,
                  bounds=[(0, None)] * n, method="highs")
    assert res.status == 0, res.message
    return -res.fun


def fleets(inst: Instance) -> list[tuple[tuple[int, ...], float, int]]:
    """Every feasible non-empty replica vector with its (T, C); T = Λ·ō from the LP above."""
    out = []
    for counts, cost in replica_vectors(inst):
        if inst.budget_units and cost > inst.budget_units:
            continue
        T = routed_rate(inst, counts) * float(inst.per_request)
        floor = max(inst.min_throughput_tok_s, inst.request_rate * float(inst.per_request))
        if T <= 0 or floor * (1 - REL) > T:
            continue
        out.append((counts, T, cost))
    return out


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-12)


def _cases() -> list[Instance]:
    rng = random.Random(20261130)
    return [mix_instance(rng) for _ in range(N_INSTANCES)]


CASES = _cases()


@pytest.mark.parametrize(("solver", "i"), [("highs", i) for i in range(N_INSTANCES)] + [("cbc", i) for i in range(N_CBC)])
def test_every_exact_method_equals_the_brute_force(solver: str, i: int) -> None:
    inst = replace(CASES[i], solver=solver)
    fl = fleets(inst)
    mp = MethodParams()
    # max_throughput: the most T, then the least C among (near-)maximisers
    r = METHODS["max_throughput"](inst, mp)
    if not fl:
        assert r.fleet is None and r.status == "infeasible", (r.status, r.message)
        for m in ("dinkelbach", "charnes_cooper", "pareto"):
            assert METHODS[m](inst, mp).fleet is None
        return
    t_max = max(T for _, T, _ in fl)
    c_at = min(C for _, T, C in fl if close(T, t_max) or t_max < T)
    assert r.status == "optimal", r.message
    assert close(r.fleet.throughput_tok_s, t_max) and r.fleet.cost_units == c_at
    # min $/token: dinkelbach, charnes_cooper and pareto's best
    best = min(C / T for _, T, C in fl)
    for m in ("dinkelbach", "charnes_cooper", "pareto"):
        r = METHODS[m](inst, mp)
        assert r.status == "optimal", (m, r.message)
        assert close(r.fleet.cost_units / r.fleet.throughput_tok_s, best), (m, r.fleet, best)
        if m == "pareto":  # the frontier is the brute force's non-dominated set
            pts = sorted({(C, T) for _, T, C in fl})
            nd = [(C, T) for C, T in pts if not any(C2 <= C and T2 > T * (1 + REL) for C2, T2 in pts if (C2, T2) != (C, T))]
            nd_costs = sorted({C for C, T in nd if not any(C2 < C and close(T2, T) for C2, T2 in nd)})
            assert sorted(f.cost_units for f in r.frontier) == nd_costs, m
    # min_cost: the least C meeting the demand
    if inst.demand_tok_s > 0:
        r = METHODS["min_cost"](inst, mp)
        c_min = min(C for _, _, C in fl)
        t_at = max(T for _, T, C in fl if c_min == C)
        assert r.status == "optimal" and r.fleet.cost_units == c_min and close(r.fleet.throughput_tok_s, t_at)


def test_instances_cover_the_cases() -> None:
    assert sum(len(x.shares) == 3 for x in CASES) >= 20 and sum(len(x.shares) == 2 for x in CASES) >= 20
    assert sum(x.request_rate > 0 for x in CASES) >= 15 and sum(x.budget_units > 0 for x in CASES) >= 15
    assert sum(any(r == 0 for c in x.candidates for r in c.rates_tok_s) for x in CASES) >= 30
    assert sum(bool(fleets(x)) for x in CASES[:30]) >= 20


@pytest.mark.parametrize("seed", range(40))
def test_a_one_bucket_mix_gives_exactly_the_plain_answers(seed: int) -> None:
    plain = small_instance(random.Random(seed), mixed=False)
    out = 128
    routed = replace(plain, candidates=tuple(replace(c, rates_tok_s=(c.throughput_tok_s,)) for c in plain.candidates),
                     shares=(Fraction(1),), outputs=(out,), per_request=Fraction(out))
    for m in ("max_throughput", "min_cost", "dinkelbach", "charnes_cooper", "pareto", "enumeration"):
        if m == "min_cost" and plain.demand_tok_s <= 0:
            continue
        a, b = METHODS[m](plain, MethodParams()), METHODS[m](routed, MethodParams())
        assert a.status == b.status, m
        assert (a.fleet is None) == (b.fleet is None), m
        if a.fleet is not None:
            assert (a.fleet.cost_units, a.fleet.throughput_exact) == (b.fleet.cost_units, b.fleet.throughput_exact), m
        assert [(f.cost_units, f.throughput_exact) for f in a.frontier] == [
            (f.cost_units, f.throughput_exact) for f in b.frontier], m


@pytest.mark.parametrize("i", range(0, N_INSTANCES, 4))
def test_a_fleets_routing_is_exact_and_feasible(i: int) -> None:
    inst = CASES[i]
    rng = random.Random(i)
    for _ in range(5):
        counts = {c: rng.randint(0, 3) for c in range(len(inst.candidates))}
        f = fleet_of(inst, counts)
        if f.empty:
            continue
        lam = f.throughput_exact / inst.per_request
        assert close(float(lam), routed_rate(inst, tuple(counts[c] for c in range(len(inst.candidates)))))
        # routed rates, re-read from the reported floats, keep every row of SPEC §5.2
        for b, share in enumerate(inst.shares):
            assert close(sum(row[b] for row in f.routing), float(share * lam))
        for (c, n), row in zip(f.replicas, f.routing, strict=True):
            busy = sum(r * inst.outputs[b] / inst.candidates[c].rates_tok_s[b] for b, r in enumerate(row) if r)
            assert busy <= n * (1 + REL)
            assert all(r == 0 for b, r in enumerate(row) if inst.candidates[c].rates_tok_s[b] == 0)
