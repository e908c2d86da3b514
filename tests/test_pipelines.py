"""Mixed-GPU pipelines (SPEC §4.1, issue 9).

* the layer split of every template is the best over *every* split and stage order (exhaustive);
* pruning is exact: every pipeline of the space is dominated by a kept candidate;
* the exact methods over the pruned table equal a brute force over all pipelines (a DP over GPU
  usage vectors, independent of sweep.solve.milp), and tests/brute.py over the MILP's own instance;
* acceptance: a 70B fp8 model that fits on neither of two small GPUs alone is served by a mixed
  pipeline through ``sweep solve``;
* batch-size range (``perf.min_batch``/``perf.max_batch``) as a sweep axis; ``perf.link_gbps``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest
from brute import fleets, frontier, min_ratio
from conftest import toml_text

from sweep.errors import InputError
from sweep.fleet.candidates import Candidate, build_candidates, workload_of
from sweep.fleet.perf import Knobs, StageShape, pipeline_estimate
from sweep.fleet.pipelines import link_overrides, mixed_candidates, pipeline_links, templates
from sweep.inputs.scenario import Scenario, flatten, scenario_from_dict
from sweep.solve.methods import dinkelbach, max_throughput, pareto
from sweep.solve.milp import Instance, Slot
from sweep.solve.prepare import prepare

# --------------------------------------------------------------------------- small random scenarios


def tiny(tmp: Path, seed: int, vocab: bool = True) -> Scenario:
    """2–3 offerings of different GPUs (one provider), a 4–7 layer model that often needs 2+ GPUs, most with an
    embedding and output head of their own (``vocab``)."""
    rng = random.Random(seed)
    n = rng.choice([2, 3, 3])
    d = tmp / f"tiny{seed}"
    d.mkdir()
    gpus = ["gpu,mem_gb,bf16_tflops,mem_bw_gbps,link_gbps"]
    offs = ["offering,provider,gpu,gpus_per_node,price_per_hour,max_nodes,net_gbps"]
    mems = []
    for i in range(n):
        mem = rng.choice([12, 16, 24, 40])
        mems.append(mem)
        gpus.append(f"G{i},{mem},{rng.randint(50, 400)},{rng.randint(200, 2000)},{rng.choice([16, 64, 300])}")
        offs.append(f"o{i},acme,G{i},{rng.choice([1, 1, 2])},{rng.randint(30, 300) / 100:.2f},"
                    f"{rng.randint(1, 3)},{rng.choice([5, 12.5, 50])}")
    layers = rng.randint(4, 7)
    params_b = round(max(mems) / 2 * rng.uniform(0.6, 1.8), 1)  # bf16: 0.6–1.8 × the largest GPU
    (d / "gpus.csv").write_text("\n".join(gpus) + "\n")
    (d / "offerings.csv").write_text("\n".join(offs) + "\n")
    # an embedding and head of their own on the end stages in most (their own generator: the rest is unchanged)
    v = random.Random(seed + 1000).choice(["", "32000", "128000", "256000"]) if vocab else ""
    (d / "models.csv").write_text(f"model,params_b,layers,hidden,heads,kv_heads,vocab\nm,{params_b},{layers},2048,16,"
                                  f"{rng.choice([2, 16])},{v}\n")
    values = {
        "model": "m",
        "catalog": {"gpus": "gpus.csv", "offerings": "offerings.csv", "models": "models.csv"},
        "workload": {"prompt_tokens": rng.choice([128, 512, 2048]), "output_tokens": rng.choice([32, 128]),
                     "tpot_slo_ms": rng.choice([0, 0, 60, 250])},
        "perf": {"mixed": True, "max_stages": 3, "max_gpu_types": rng.choice([2, 3]), "max_mixed": 0,
                 "tp": [1, 2], "pp": [1, 2, 3], "max_batch": rng.choice([4, 16, 64]),
                 "min_batch": rng.choice([1, 1, 2])},
        "limits": {"budget": rng.choice([0, 0, rng.randint(2, 8)])},
    }
    return scenario_from_dict(values, d, f"tiny{seed}")


SEEDS = range(20)  # 20: mixed pipelines win some of them (test_some_tiny_optimum_is_a_mixed_pipeline)


def stage_key(c: Candidate) -> tuple:
    return tuple(sorted((s.offering, s.tp) for s in c.stages))


def exhaustive_best(sc: Scenario, blocks) -> int:
    """Best whole tokens/s of a template over every contiguous layer split and every order: of its stages for a
    model without a vocab (where no order beats the template's), of its blocks (an offering's stages consecutive,
    the template space) for one whose embedding and head sit on the end stages."""
    knobs, wl = Knobs.from_params(sc.params), workload_of(sc)
    gpus_on = {b.offering: b.tp * b.count for b in blocks}
    overrides = link_overrides(sc)
    total = sc.model.layers
    best = 0
    stages = [(b.offering, b.tp) for b in blocks for _ in range(b.count)]
    orders = (set(itertools.permutations(stages)) if not sc.model.vocab else
              {tuple((b.offering, b.tp) for b in perm for _ in range(b.count)) for perm in itertools.permutations(blocks)})
    for order in orders:
        links = pipeline_links(sc, [o for o, _ in order], gpus_on, overrides)
        if min(links) <= 0:
            continue
        for cuts in itertools.combinations(range(1, total), len(order) - 1):
            sizes = [b - a for a, b in zip((0, *cuts), (*cuts, total), strict=True)]
            shapes = [StageShape(sc.gpu(o), tp, n) for (o, tp), n in zip(order, sizes, strict=True)]
            est = pipeline_estimate(sc.model, wl, shapes, knobs, links)
            if not est.reason:
                best = max(best, est.throughput_tok_s)
    return best


@pytest.mark.parametrize("vocab", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_split_is_best_over_every_split_and_order(tmp_path: Path, seed: int, vocab: bool) -> None:
    sc = tiny(tmp_path, seed, vocab)
    mine: dict[tuple, Candidate] = {}  # the best order of each set of stages (every order is a template)
    for c in mixed_candidates(sc, Knobs.from_params(sc.params), workload_of(sc), prune=False):
        if stage_key(c) not in mine or c.throughput_tok_s > mine[stage_key(c)].throughput_tok_s:
            mine[stage_key(c)] = c
    for blocks in templates(sc, link_overrides(sc)):
        key = tuple(sorted((b.offering, b.tp) for b in blocks for _ in range(b.count)))
        best = exhaustive_best(sc, blocks)
        got = mine.get(key)
        assert (got.throughput_tok_s if got else 0) == best, (seed, key)
        if got:
            assert got.stages[0].first_layer == 1 and got.stages[-1].last_layer == sc.model.layers
            assert all(b.first_layer == a.last_layer + 1 for a, b in itertools.pairwise(got.stages))
            assert got.batch <= sc["perf.max_batch"] and got.gpus == sum(g for _, g in got.uses)


def all_pipelines(sc: Scenario) -> list[Candidate]:
    """Every homogeneous candidate and every template's best-split pipeline, nothing pruned."""
    homo = [c for c in build_candidates(sc, prune=False).kept if not c.stages]
    return homo + mixed_candidates(sc, Knobs.from_params(sc.params), workload_of(sc), prune=False)


def dominated_by(c: Candidate, kept: tuple[Candidate, ...]) -> bool:
    uses = dict(c.uses)
    return any(k.throughput_tok_s >= c.throughput_tok_s and all(uses.get(o, 0) >= g for o, g in k.uses)
               for k in kept)


@pytest.mark.parametrize("seed", SEEDS)
def test_pruning_keeps_a_dominator_of_every_pipeline(tmp_path: Path, seed: int) -> None:
    sc = tiny(tmp_path, seed)
    kept = build_candidates(sc).kept
    assert all(dominated_by(c, kept) for c in all_pipelines(sc))


# --------------------------------------------------------------------------- methods vs brute force


def dp_points(inst: Instance) -> list[tuple[int, int]]:
    """(cost units, tokens/s) of the best fleet at every GPU usage vector — every fleet is dominated
    by one of these (cost depends only on the GPUs used per offering)."""
    caps = [s.gpus_per_node * s.max_nodes for s in inst.slots]
    idx = {s.name: i for i, s in enumerate(inst.slots)}
    uses = []
    for c in inst.candidates:
        a = [0] * len(caps)
        for o, g in c.uses:
            a[idx[o]] += g
        uses.append(tuple(a))
    best: dict[tuple[int, ...], int] = {}
    for u in itertools.product(*(range(cap + 1) for cap in caps)):  # u - a comes before u
        if not any(u):
            best[u] = 0
            continue
        t = -1
        for a, c in zip(uses, inst.candidates, strict=True):
            prev = tuple(x - y for x, y in zip(u, a, strict=True))
            if min(prev) >= 0 and prev in best:
                t = max(t, best[prev] + Fraction(c.throughput_tok_s))
        if t >= 0:
            best[u] = t
    out = []
    for u, t in best.items():
        if not any(u) or (inst.max_gpus and sum(u) > inst.max_gpus) or t < inst.min_throughput_tok_s:
            continue
        cost = sum(s.price_units * -(-x // s.gpus_per_node) for s, x in zip(inst.slots, u, strict=True))
        if inst.budget_units and cost > inst.budget_units:
            continue
        out.append((cost, t))
    return out


def dp_answers(inst: Instance):
    pts = dp_points(inst)
    ratio = min(pts, key=lambda p: (Fraction(p[0]) / p[1], -p[1])) if pts else None
    front = sorted({(c, t) for c, t in pts if not any(c2 <= c and t2 >= t and (c2, t2) != (c, t) for c2, t2 in pts)},
                   reverse=True)
    top = max(pts, key=lambda p: (p[1], -p[0])) if pts else None
    return ratio, front, top


def full_instance(sc: Scenario, like: Instance) -> Instance:
    slots = tuple(Slot(o, sc.offerings[o].gpu, sc.offerings[o].gpus_per_node, sc.price_units(o),
                       sc.offerings[o].max_nodes) for o in sorted(sc.offerings))
    return Instance(slots, tuple(all_pipelines(sc)), like.budget_units, like.max_gpus, like.min_throughput_tok_s,
                    like.solver, like.time_limit_s)


def point(f) -> tuple[int, Fraction] | None:
    return None if f is None else (f.cost_units, f.throughput_exact)


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_methods_equal_brute_force_over_all_pipelines(tmp_path: Path, seed: int) -> None:
    sc = tiny(tmp_path, seed)
    inst = prepare(sc).instance
    ratio, front, top = dp_answers(full_instance(sc, inst))
    assert point(dinkelbach(inst).fleet) == ratio
    assert [point(f) for f in pareto(inst).frontier] == front
    assert point(max_throughput(inst).fleet) == top
    # and tests/brute.py over the MILP's own (pruned, multi-offering) instance, when small enough
    if math.prod(inst.replica_bound(c) + 1 for c in range(len(inst.candidates))) <= 50_000:
        r = min_ratio(inst)
        assert (None if r is None else (r[1], r[0])) == ratio
        assert frontier(inst) == front
        assert all(C >= 0 for _, _, C in fleets(inst))


def test_some_tiny_optimum_is_a_mixed_pipeline(tmp_path: Path) -> None:
    """The brute-force comparisons above are not vacuous: mixed pipelines win some of them."""
    wins = 0
    for seed in SEEDS:
        inst = prepare(tiny(tmp_path, seed)).instance
        f = dinkelbach(inst).fleet
        wins += f is not None and any(inst.candidates[c].stages for c, _ in f.replicas)
    assert wins >= 2


# --------------------------------------------------------------------------- acceptance (builtin catalog)

SMALL_PAIR = {
    "model": "llama-3.1-70b",
    "perf": {"dtype": "fp8"},  # perf.mixed = "auto" (the default) builds the pipelines: nothing else holds it
    # two small 24 GB GPUs of one provider, two of each: 2 × 22.6 GB usable (23034 / 23028 MiB = 24.15 GB, − 1.5)
    # < 70.6 GB of fp8 weights
    "catalog": {"only": ["aws-g6.xlarge", "aws-g5.xlarge"], "max_nodes": {"aws-g6.xlarge": 2, "aws-g5.xlarge": 2}},
}


def toml(values: dict, path: Path) -> Path:
    path.write_text(toml_text(flatten(values)))
    return path


def test_70b_fp8_on_two_small_gpus_needs_a_mixed_pipeline(tmp_path: Path, run_cli) -> None:
    homo = toml({**SMALL_PAIR, "perf": {"dtype": "fp8", "mixed": False}}, tmp_path / "homo.toml")
    res = run_cli("solve", homo, "--json", "-m", "dinkelbach")
    assert res.code == 0 and json.loads(res.out)["status"] == "infeasible"
    human = run_cli("solve", homo, "-m", "dinkelbach").out
    assert "mixed-GPU pipelines are off (perf.mixed = false" in human  # the way out is named

    human = run_cli("solve", toml(SMALL_PAIR, tmp_path / "auto.toml"), "-m", "dinkelbach").out
    assert "mixed-GPU pipelines built: no single-offering layout holds the model" in human
    always = toml({**SMALL_PAIR, "perf": {"dtype": "fp8", "mixed": True}}, tmp_path / "always.toml")
    row = json.loads(run_cli("solve", always, "--json", "-m", "dinkelbach").out)
    assert row["status"] == "optimal" and row["allocation"][0]["stages"]

    mixed = toml(SMALL_PAIR, tmp_path / "mixed.toml")
    res = run_cli("solve", mixed, "--json", "-m", "dinkelbach", "-m", "max_throughput")
    assert res.code == 0, res.err
    for row in map(json.loads, res.out.splitlines()):
        assert row["status"] == "optimal" and row["throughput_tok_s"] > 0
        [entry] = row["allocation"]
        stages = entry["stages"]
        assert {s["offering"] for s in stages} == {"aws-g6.xlarge", "aws-g5.xlarge"}
        assert {s["gpu"] for s in stages} == {"L4", "A10G"} and entry["gpu"] in ("A10G+L4", "L4+A10G")
        assert stages[0]["first_layer"] == 1 and stages[-1]["last_layer"] == 80
        assert all(b["first_layer"] == a["last_layer"] + 1 for a, b in itertools.pairwise(stages))
        assert entry["pp"] == len(stages) and row["gpus"] == sum(s["tp"] for s in stages)

    res = run_cli("candidates", mixed)
    assert res.code == 0 and "stages" in res.out.splitlines()[1]
    assert "aws-g5.xlarge:tp1[1-" in res.out
    rows = [json.loads(x) for x in run_cli("candidates", mixed, "--json").out.splitlines()]
    assert any(r["kept"] and r.get("stages") for r in rows)
    assert not any(r["kept"] and not r.get("stages") for r in rows)  # neither GPU alone can


# --------------------------------------------------------------------------- batch range, links, caps


def test_max_batch_is_a_sweep_axis() -> None:
    base = {"model": "llama-3.1-8b", "catalog": {"only": ["aws-g6.xlarge", "aws-g5.xlarge", "aws-g6.24xlarge"]}}
    tables = {mb: build_candidates(scenario_from_dict({**base, "perf": {"max_batch": mb}})) for mb in (4, 256)}
    small, big = ({(c.offering, c.tp, c.pp): c for c in tables[mb].kept} for mb in (4, 256))
    assert all(c.batch <= 4 for c in small.values())
    assert any(small[k].throughput_tok_s < big[k].throughput_tok_s for k in small.keys() & big.keys())
    # and for mixed pipelines too
    mixed = build_candidates(scenario_from_dict({**SMALL_PAIR, "perf": {**SMALL_PAIR["perf"], "max_batch": 8}}))
    assert mixed.kept and all(c.batch <= 8 for c in mixed.kept)
    # a min_batch no layout can hold drops everything, with the reason
    none = build_candidates(scenario_from_dict({**base, "perf": {"min_batch": 20000, "max_batch": 32768}}))
    assert not none.kept and any("KV cache for 20000" in c.reason for c in none.dropped)
    assert not build_candidates(scenario_from_dict({**SMALL_PAIR, "perf": {**SMALL_PAIR["perf"], "min_batch": 200}})).kept


def test_link_gbps_validated_and_used() -> None:
    with pytest.raises(InputError) as e:
        scenario_from_dict({**SMALL_PAIR, "perf": {**SMALL_PAIR["perf"], "link_gbps": ["aws-g6.xlarge-aws-g5.xlarge"]}})
    assert "perf.link_gbps" in str(e.value)
    sc = scenario_from_dict({**SMALL_PAIR, "perf": {**SMALL_PAIR["perf"], "link_gbps": ["aws-g6.xlarge|nope=5"]}})
    with pytest.raises(InputError, match="unknown offering 'nope'"):
        build_candidates(sc)
    cut = {**SMALL_PAIR["perf"], "link_gbps": ["aws-g6.xlarge|aws-g5.xlarge=0"]}
    assert not build_candidates(scenario_from_dict({**SMALL_PAIR, "perf": cut})).kept  # not connected
    slow = {**SMALL_PAIR["perf"], "link_gbps": ["aws-g6.xlarge|aws-g5.xlarge=0.01"]}
    fast, crawl = (max(c.throughput_tok_s for c in build_candidates(scenario_from_dict({**SMALL_PAIR, "perf": p})).kept)
                   for p in (SMALL_PAIR["perf"], slow))
    assert crawl < fast


def test_providers_mix_only_over_a_given_link() -> None:
    pair = {"model": "llama-3.1-70b", "catalog": {"only": ["runpod-1xL4", "aws-g5.xlarge"],
                                                  "max_nodes": {"runpod-1xL4": 2, "aws-g5.xlarge": 2}}}
    perf = {"dtype": "fp8", "mixed": True}
    assert not build_candidates(scenario_from_dict({**pair, "perf": perf})).kept
    linked = {**perf, "link_gbps": ["runpod-1xL4|aws-g5.xlarge=1.25"]}
    assert build_candidates(scenario_from_dict({**pair, "perf": linked})).kept


def test_max_mixed_keeps_the_cheapest_per_token(tmp_path: Path) -> None:
    for seed in SEEDS:
        sc = tiny(tmp_path, seed)
        knobs, wl = Knobs.from_params(sc.params), workload_of(sc)
        sc1 = Scenario({**sc.params, "perf.max_mixed": 1}, sc.origin, sc.catalog, sc.model, sc.offerings)
        every, one = mixed_candidates(sc, knobs, wl), mixed_candidates(sc1, knobs, wl)
        sets = {frozenset(o for o, _ in c.uses) for c in every}
        assert len(one) == len(sets)

        for c in one:
            group = [x for x in every if {o for o, _ in x.uses} == {o for o, _ in c.uses}]
            assert cpt(sc, c) == min(cpt(sc, x) for x in group)


def cpt(sc: Scenario, c: Candidate) -> Fraction:
    """A replica's pro-rata cost per token/s (exact)."""
    return sum(Fraction(sc.price_units(o) * g, sc.offerings[o].gpus_per_node) for o, g in c.uses) / c.throughput_tok_s
