"""The fixed instance sets of the method and solver benchmarks: seeded random MILP instances of two
sizes, and the shipped jobs' scenarios (``jobs/seed.toml`` and every scenario of ``jobs/quickstart.toml``)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from benchmarks.common import JOBS
from sweep.fleet.candidates import Candidate
from sweep.solve.methods import MethodParams
from sweep.solve.milp import Instance, Slot


@dataclass(frozen=True)
class Case:
    """One benchmark instance: a label, its MILP data and the method settings to use."""

    name: str
    kind: str  # "small" | "large" | "seed" | "quickstart"
    instance: Instance
    params: MethodParams


def _decimal(rng: random.Random, lo: float, hi: float) -> float:
    """A measurement-like value with three decimals (tokens/s as profiles give them, e.g. 966.586)."""
    return round(rng.uniform(lo, hi), 3)


def small_instance(rng: random.Random, solver: str = "highs", mixed: bool | None = None) -> Instance:
    """2–3 offerings, 3–5 candidates, 1–3 nodes each (node bundling, availability), sometimes a demand
    floor, a budget or a GPU cap; decimal throughputs and prices (e.g. 966.586 tok/s, $3.4014/h); plus one mixed two-offering pipeline when ``mixed`` (None: in half of
    the instances, drawn from ``rng``). Also the instance maker of the exactness tests (tests/brute.py)."""
    n_slots = rng.randint(2, 3)
    slots = []
    for i in range(n_slots):
        gpn = rng.choice([1, 2, 4, 8])
        slots.append(Slot(f"o{i}", f"g{i}", gpn, rng.randint(5, 400) * 100 + rng.randint(0, 99), rng.randint(1, 3)))
    cands = []
    for _ in range(rng.randint(3, 5)):
        s = rng.choice(slots)
        tp = rng.choice([t for t in (1, 2, 4, 8) if t <= s.gpus_per_node])
        pp = rng.choice([1, 2])
        if tp * pp > s.gpus_per_node * s.max_nodes:
            pp = 1
        cands.append(Candidate(s.name, s.gpu, tp, pp, tp * pp, _decimal(rng, 50, 5000), 1, 1.0, ((s.name, tp * pp),)))
    if rng.random() < 0.5 if mixed is None else mixed:
        a, b = rng.sample(slots, 2)
        cands.append(Candidate(a.name, a.gpu, 1, 2, 2, _decimal(rng, 50, 5000), 1, 1.0, ((a.name, 1), (b.name, 1))))
    total_cost = sum(s.price_units * s.max_nodes for s in slots)
    budget = rng.choice([0, 0, rng.randint(total_cost // 4, total_cost)])
    floor = rng.choice([0, 0, _decimal(rng, 50, 3000)])
    max_gpus = rng.choice([0, 0, rng.randint(2, 12)])
    return Instance(tuple(slots), tuple(cands), budget, max_gpus, floor, solver, 60.0)


def large_instance(rng: random.Random, solver: str = "highs") -> Instance:
    """4–8 offerings (1/2/4/8 GPUs a node, $0.20–$6 per GPU-hour), 8–20 candidates whose tokens/s grow
    sub-linearly with their GPUs, availability 1–8 nodes, a few mixed pipelines; sometimes a floor,
    a budget or a GPU cap."""
    slots = []
    for i in range(rng.randint(4, 8)):
        gpn = rng.choice([1, 2, 4, 8])
        per_gpu = rng.randint(2_000, 60_000)  # 1e-4 $/GPU-h
        slots.append(Slot(f"o{i}", f"g{i}", gpn, per_gpu * gpn + rng.randint(0, 99), rng.randint(1, 8)))
    speed = {s.name: rng.uniform(0.3, 3.0) for s in slots}
    cands: list[Candidate] = []
    seen = set()
    for _ in range(200):
        if len(cands) >= rng.randint(8, 20):
            break
        s = rng.choice(slots)
        tp = rng.choice([t for t in (1, 2, 4, 8) if t <= s.gpus_per_node])
        pp = rng.choice([p for p in (1, 2, 4) if tp * p <= s.gpus_per_node * s.max_nodes] or [1])
        if (s.name, tp, pp) in seen:
            continue
        seen.add((s.name, tp, pp))
        g = tp * pp
        thr = max(1.0, round(rng.randint(200, 1500) * speed[s.name] * g ** rng.uniform(0.7, 1.0), 3))
        cands.append(Candidate(s.name, s.gpu, tp, pp, g, thr, 1, 1.0, ((s.name, g),)))
    for _ in range(rng.choice([0, 0, 1, 2])):
        a, b = rng.sample(slots, 2)
        thr = max(1.0, round(rng.randint(200, 1500) * min(speed[a.name], speed[b.name]) * 2 ** 0.8, 3))
        cands.append(Candidate(a.name, a.gpu, 1, 2, 2, thr, 1, 1.0, ((a.name, 1), (b.name, 1))))
    total_cost = sum(s.price_units * s.max_nodes for s in slots)
    budget = rng.choice([0, 0, rng.randint(total_cost // 5, total_cost)])
    best_single = max(c.throughput_tok_s for c in cands)
    floor = rng.choice([0, 0, _decimal(rng, best_single / 2, 3 * best_single)])
    max_gpus = rng.choice([0, 0, rng.randint(8, 48)])
    return Instance(tuple(slots), tuple(cands), budget, max_gpus, floor, solver, 60.0)


def random_cases(n_small: int, n_large: int, seed: int = 20240601, solver: str = "highs") -> list[Case]:
    """``n_small`` + ``n_large`` seeded random instances (the same ones on every run and machine)."""
    rng = random.Random(seed)
    mp = MethodParams()
    out = [Case(f"small-{i:03d}", "small", small_instance(rng, solver), mp) for i in range(n_small)]
    rng = random.Random(seed + 1)
    out += [Case(f"large-{i:03d}", "large", large_instance(rng, solver), mp) for i in range(n_large)]
    return out


def shipped_cases(n_quickstart: int | None = None, solver: str | None = None) -> list[Case]:
    """``jobs/seed.toml`` and the first ``n_quickstart`` (default: all) scenarios of ``jobs/quickstart.toml``."""
    from dataclasses import replace

    from sweep.inputs.job import load_job
    from sweep.inputs.load import load_scenario
    from sweep.solve.prepare import prepare

    def case(name: str, kind: str, sc) -> Case:
        prep = prepare(sc)
        inst = prep.instance if solver is None else replace(prep.instance, solver=solver)
        return Case(name, kind, inst, prep.params)

    out = [case("seed.toml", "seed", load_scenario(JOBS / "seed.toml"))]
    job = load_job(JOBS / "quickstart.toml")
    scs: Iterator = job.scenarios()
    if n_quickstart is not None:
        scs = itertools.islice(scs, n_quickstart)
    out += [case(f"quickstart#{i}", "quickstart", sc) for i, sc in enumerate(scs)]
    return out
