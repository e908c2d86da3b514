"""The foundation's command line on the built-in catalogs: solve, candidates, catalog (SPEC §7).

Real solves with HiGHS and CBC; no mocks. Also the solver-status mapping: a time-limited solve is
never reported ``optimal``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pulp
import pytest
from conftest import REPO, toml_text

from sweep import load_scenario, prepare
from sweep.fleet.perf import Knobs, Workload, estimate
from sweep.inputs.catalog import load_builtin
from sweep.solve.methods import max_throughput
from sweep.solve.milp import build, run_solver

SEED = REPO / "jobs" / "seed.toml"
SOLVE_FIELDS = {"scenario_id", "method", "status", "budget", "cost_per_hour", "throughput_tok_s", "cost_per_token",
                "gpus", "allocation", "solves", "seconds", "solver"}
ALLOCATION_FIELDS = {"offering", "gpu", "tp", "pp", "replicas", "nodes"}
CANDIDATE_FIELDS = {"offering", "gpu", "tp", "pp", "gpus", "throughput_tok_s", "batch", "tpot_ms", "cost_per_hour",
                    "kept", "reason"}


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_solve_prints_a_deployment(run_cli):
    r = run_cli("solve", SEED, "--method", "max_throughput", "--budget", "20")
    assert r.code == 0 and r.err_but_stale == ""
    lines = r.out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.split() == ["offering", "gpu", "tp", "pp", "replicas", "nodes",
                                                                   "tok/s"])
    assert set(lines[head + 1]) <= {"-", " "}
    assert "max_throughput: optimal" in r.out
    total = next(ln for ln in lines if ln.startswith("total:"))
    assert "GPUs" in total and "tok/s" in total and "/h" in total and "per M tokens" in total
    body = lines[head + 2: lines.index(total)]
    assert body, "no deployment rows"
    offerings = load_builtin().offerings
    for row in body:
        assert row.split()[0] in offerings


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_solve_json_fields_and_consistency(solver, run_cli, tmp_path):
    path = tmp_path / "seed.toml"
    path.write_text(SEED.read_text().replace('name = "highs"', f'name = "{solver}"'))
    assert f'name = "{solver}"' in path.read_text()
    r = run_cli("solve", path, "--method", "max_throughput", "--budget", "20", "--json")
    assert r.code == 0 and r.err_but_stale == ""
    (row,) = _json_lines(r.out)
    assert set(row) == SOLVE_FIELDS
    assert row["method"] == "max_throughput" and row["status"] == "optimal" and row["solver"] == solver
    assert row["budget"] == 20 and row["solves"] in (1, 2) and row["seconds"] >= 0  # a budget solve: max T, then the least cost among the maximisers
    assert 0 < row["cost_per_hour"] <= 20

    # re-price the allocation from the catalog and the candidate table
    cands = {(c["offering"], c["tp"], c["pp"]): c
             for c in _json_lines(run_cli("candidates", path, "--json").out) if c["kept"]}
    offerings = load_builtin().offerings
    thr = gpus = 0
    nodes: dict[str, int] = {}
    gpus_on: dict[str, int] = {}
    for a in row["allocation"]:
        assert set(a) == ALLOCATION_FIELDS
        c = cands[(a["offering"], a["tp"], a["pp"])]
        assert a["gpu"] == c["gpu"] == offerings[a["offering"]].gpu
        thr += c["throughput_tok_s"] * a["replicas"]
        gpus += a["tp"] * a["pp"] * a["replicas"]
        nodes[a["offering"]] = nodes.get(a["offering"], 0) + a["nodes"]
        gpus_on[a["offering"]] = gpus_on.get(a["offering"], 0) + a["tp"] * a["pp"] * a["replicas"]
    for name, n in nodes.items():
        o = offerings[name]
        assert math.ceil(gpus_on[name] / o.gpus_per_node) == n <= o.max_nodes
    assert row["throughput_tok_s"] == thr
    assert row["gpus"] == gpus
    assert row["cost_per_hour"] == pytest.approx(sum(offerings[k].price_per_hour * n for k, n in nodes.items()),
                                                 rel=1e-12)
    assert row["cost_per_token"] == pytest.approx(row["cost_per_hour"] / (3600 * thr), rel=1e-12)
    assert row["scenario_id"] == prepare(load_scenario(path, {"limits.budget": 20.0})).scenario_id


def test_candidates_json_has_kept_and_dropped_rows_with_reasons(run_cli):
    r = run_cli("candidates", SEED, "--json")
    assert r.code == 0 and r.err == ""
    rows = _json_lines(r.out)
    for c in rows:
        assert set(c) >= CANDIDATE_FIELDS
        assert c["gpus"] == c["tp"] * c["pp"]
        if c["kept"]:
            assert c["reason"] == ""
            assert c["throughput_tok_s"] >= 1 and c["batch"] >= 1 and 0 < c["tpot_ms"] <= 100  # seed: TPOT ≤ 100 ms
            assert c["cost_per_hour"] > 0
        else:
            assert c["reason"]
    kept = [c for c in rows if c["kept"]]
    reasons = " | ".join(c["reason"] for c in rows if not c["kept"])
    assert kept and len(kept) < len(rows)
    for why in ("weights need", "exceeds the", "dominated by"):  # memory, TP wider than a node, pruning
        assert why in reasons, why
    # TP stays inside a node
    offerings = load_builtin().offerings
    assert all(c["tp"] <= offerings[c["offering"]].gpus_per_node for c in kept)
    # the human table shows the same counts
    human = run_cli("candidates", SEED).out
    assert f"{len(kept)} kept, {len(rows) - len(kept)} dropped" in human


def test_a_tpot_limit_drops_slow_layouts(run_cli, tmp_path):
    path = tmp_path / "tight.toml"
    path.write_text(toml_text({"model": "llama-3.1-70b", "workload.tpot_slo_ms": 15, "catalog.only": ["L4", "H100-SXM"]}))
    rows = _json_lines(run_cli("candidates", path, "--json").out)
    assert any("TPOT" in c["reason"] and "above the 15 ms limit" in c["reason"] for c in rows)
    assert all(c["tpot_ms"] <= 15 for c in rows if c["kept"])


@pytest.mark.parametrize("kind, names", [
    ("gpus", ["V100-16GB", "V100-32GB", "T4", "L4", "A10G", "A100-40GB", "A100-80GB", "L40S", "H100-SXM", "H100-PCIe",
              "H200", "B200", "MI300X"]),
    ("models", ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b",
                "mistral-7b", "mixtral-8x7b", "qwen2.5-72b"]),
    ("offerings", ["aws-p5.48xlarge", "gcp-a3-highgpu-8g", "azure-ND96isr_H100_v5", "lambda-8xH100-SXM"]),
])
def test_catalog_tables(kind, names, run_cli):
    r = run_cli("catalog", kind)
    assert r.code == 0 and r.err == ""
    first = {ln.split()[0] for ln in r.out.splitlines() if ln.strip()}
    for name in names:
        assert name in first, name
    if kind == "offerings":
        assert {"aws", "gcp", "azure", "lambda", "runpod", "vast"} <= set(r.out.split())


def test_dtype_changes_throughput_and_memory(run_cli, tmp_path):
    """fp8 halves weight and KV bytes and uses the fp8 FLOPS: bigger batches, more tokens/s, models fit where
    bf16 does not."""
    rows = {}
    for dtype in ("bf16", "fp8"):
        path = tmp_path / f"{dtype}.toml"
        path.write_text(toml_text({"model": "llama-3.1-70b", "perf.dtype": dtype, "catalog.only": ["H200", "H100-SXM"]}))
        r = run_cli("candidates", path, "--json")
        assert r.code == 0
        rows[dtype] = {(c["offering"], c["tp"], c["pp"]): c for c in _json_lines(r.out)}
    # one H100 (80 GiB = 85.5e9 bytes): 70B in bf16 (141 GB of weights) does not fit, in fp8 (71 GB) it does.
    # (One H200, 143771 MiB = 150.8e9 bytes, holds 70B even in bf16, as engines run it: it is in `both` below.)
    one_h100 = ("runpod-1xH100-SXM", 1, 1)
    assert not rows["bf16"][one_h100]["kept"] and "weights need" in rows["bf16"][one_h100]["reason"]
    assert rows["fp8"][one_h100]["kept"]
    both = [k for k in rows["bf16"] if rows["bf16"][k]["kept"] and rows["fp8"][k]["kept"]]
    assert both
    for k in both:
        assert rows["fp8"][k]["throughput_tok_s"] > rows["bf16"][k]["throughput_tok_s"], k

    cat = load_builtin()
    # without a vocab the embedding and head are not set apart (they would stay 16-bit): the bytes are the dtype's
    m, g = replace(cat.models["llama-3.1-70b"], vocab=0), cat.gpus["H100-SXM"]
    # no engine cap on the batch, so that the batch shows the memory left for the KV cache
    est = {d: estimate(m, g, 4, 1, Workload(512, 256, 0, d), Knobs(max_batch=4096))
           for d in ("bf16", "fp8", "fp4", "int4")}
    assert est["fp8"].weights_gb_per_gpu == pytest.approx(est["bf16"].weights_gb_per_gpu / 2)
    assert est["int4"].weights_gb_per_gpu == pytest.approx(est["bf16"].weights_gb_per_gpu / 4)
    # NVFP4: 4 bits plus one 8-bit scale per 16 weights
    assert est["fp4"].weights_gb_per_gpu == pytest.approx(est["bf16"].weights_gb_per_gpu * 4.5 / 16)
    assert est["bf16"].batch < est["fp8"].batch
    assert est["bf16"].throughput_tok_s < est["fp8"].throughput_tok_s


def test_infeasible_scenario_is_a_result(run_cli, tmp_path):
    path = tmp_path / "too-much.toml"
    path.write_text(SEED.read_text().replace("min_throughput = 0", "min_throughput = 1e9"))
    r = run_cli("solve", path, "--method", "max_throughput", "--json")
    assert r.code == 0 and r.err_but_stale == ""
    (row,) = _json_lines(r.out)
    assert row["status"] == "infeasible"
    assert row["allocation"] == [] and row["throughput_tok_s"] is None and row["cost_per_hour"] is None
    human = run_cli("solve", path, "--method", "max_throughput")
    assert human.code == 0 and "max_throughput: infeasible" in human.out


# --------------------------------------------------------------------------- time limits


def test_time_limited_solve_is_not_optimal(run_cli, tmp_path):
    """A 0.1 ms limit on the full built-in catalog: HiGHS stops first; we say time_limit, never optimal."""
    path = tmp_path / "rushed.toml"
    path.write_text(toml_text({"model": "llama-3.1-8b", "limits.budget": 300, "solver.time_limit_s": 1e-4}))
    r = run_cli("solve", path, "--method", "max_throughput", "--json")
    assert r.code == 0 and r.err_but_stale == ""
    (row,) = _json_lines(r.out)
    assert row["status"] in ("optimal", "time_limit")
    assert row["status"] == "time_limit"  # HiGHS cannot even finish presolve in 0.1 ms


@pytest.mark.parametrize("time_limit_s", [1e-4, 1e-3, 1.0])
def test_highs_status_is_read_from_highs(time_limit_s):
    """Whatever HiGHS itself reports for the sweep MILP (not PuLP's summary) decides our status."""
    import highspy

    sc = load_scenario(SEED, {"model": "llama-3.1-8b", "limits.budget": 300.0, "workload.tpot_slo_ms": 0})
    inst = prepare(sc).instance
    m = build(inst)
    m.prob.setObjective((inst.max_cost_units() + 1) * m.T - m.C)
    rep = run_solver(m.prob, "highs", time_limit_s)
    own = m.prob.solverModel.getModelStatus()
    expected = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kTimeLimit: "time_limit"}
    assert rep.status == expected[own]
    if time_limit_s == 1.0:
        assert rep.status == "optimal"


def _market_split(seed: int = 1, rows: int = 4, cols: int = 40) -> pulp.LpProblem:
    """Cornuéjols–Dawande market split: an incumbent is trivial (x = 0), proving optimality takes far more
    than a second for any MILP solver at this size."""
    rng = random.Random(seed)
    prob = pulp.LpProblem("market_split", pulp.LpMinimize)
    x = [pulp.LpVariable(f"x{j}", cat="Binary") for j in range(cols)]
    over = [pulp.LpVariable(f"over{i}", 0) for i in range(rows)]
    under = [pulp.LpVariable(f"under{i}", 0) for i in range(rows)]
    for i in range(rows):
        a = [rng.randint(0, 99) for _ in range(cols)]
        prob += pulp.lpSum(a[j] * x[j] for j in range(cols)) + over[i] - under[i] == sum(a) // 2, f"split{i}"
    prob += pulp.lpSum(over) + pulp.lpSum(under)
    return prob


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_time_limit_with_an_incumbent_is_time_limit(solver):
    """PuLP calls a time-limited run that has an incumbent "Optimal"; we must say time_limit and keep it."""
    prob = _market_split()
    rep = run_solver(prob, solver, 0.5)
    assert pulp.LpStatus[prob.status] == "Optimal"  # PuLP's summary, which is not the truth here
    assert prob.sol_status == pulp.LpSolutionIntegerFeasible
    if solver == "highs":
        import highspy

        assert prob.solverModel.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
    assert rep.status == "time_limit"
    assert rep.has_solution


def test_cbc_time_limit_is_never_reported_infeasible(tmp_path):
    """The budget solve without a demand floor is always feasible (the empty fleet), so 'infeasible' is wrong."""
    sc = load_scenario(SEED, {"model": "llama-3.1-8b", "limits.budget": 300.0, "solver.name": "cbc",
                              "workload.tpot_slo_ms": 0})
    inst = prepare(sc).instance
    statuses = []
    for tl in (5e-4, 1e-3, 2e-3, 3e-3) * 3:
        statuses.append(max_throughput(replace(inst, time_limit_s=tl)).status)
    assert set(statuses) <= {"optimal", "time_limit"}, statuses


def test_fp4_runs_on_fp4_tensor_cores_only_where_the_gpu_has_them():
    """fp4 weight GEMMs use fp4 tensor cores (B200) where gpus.csv gives fp4_tflops; elsewhere (H100) they are
    weight-only 4-bit with 16-bit math; attention runs at the fp8 KV cache's precision on both."""
    from sweep.fleet.perf import DTYPE_BYTES, attention_tflops, peak_tflops
    from sweep.vocab import DTYPES

    assert set(DTYPE_BYTES) == set(DTYPES)  # the precisions perf.dtype accepts are the ones the model sizes

    cat = load_builtin()
    b200, h100 = cat.gpus["B200"], cat.gpus["H100-SXM"]
    assert peak_tflops(b200, "fp4") == b200.fp4_tflops > b200.fp8_tflops
    assert peak_tflops(h100, "fp4") == h100.bf16_tflops  # no fp4 tensor cores on Hopper
    assert attention_tflops(b200, "fp4") == b200.fp8_tflops
    assert attention_tflops(h100, "fp4") == h100.fp8_tflops  # Hopper: fp4 weights dequantised, fp8 attention
    assert attention_tflops(h100, "bf16") == h100.bf16_tflops
    # prefill-heavy work on B200: fp4 beats fp8 (compute) and fits a larger batch (memory)
    m, wl = cat.models["llama-3.3-70b"], {d: Workload(5000, 500, 0, d) for d in ("fp8", "fp4")}
    est = {d: estimate(m, b200, 1, 1, wl[d], Knobs(max_batch=4096)) for d in wl}
    assert est["fp4"].batch > est["fp8"].batch
    assert est["fp4"].throughput_tok_s > est["fp8"].throughput_tok_s


def test_embedding_and_head_stay_16_bit_on_the_end_stages():
    """The embedding sits on the first pipeline stage and the output head on the last, both at 16 bits in a
    quantised checkpoint: with PP 2 the last stage holds more than the first, and an fp8 model's weights exceed
    half its 16-bit size by exactly the two vocab × hidden matrices."""
    from sweep.fleet.perf import StageShape, stage_memory

    cat = load_builtin()
    m, g, wl = cat.models["llama-3.1-8b"], cat.gpus["H100-SXM"], Workload(512, 256, 0, "fp8")
    half = m.layers // 2
    first = stage_memory(m, wl, StageShape(g, 1, half, first=True), Knobs())[0]
    last = stage_memory(m, wl, StageShape(g, 1, half, last=True), Knobs())[0]
    plain = stage_memory(m, wl, StageShape(g, 1, half), Knobs())[0]
    assert first == pytest.approx(last) == pytest.approx(plain + m.vocab * m.hidden * 2)
    one = {d: estimate(m, g, 1, 1, Workload(512, 256, 0, d), Knobs()).weights_gb_per_gpu for d in ("bf16", "fp8")}
    assert one["bf16"] == pytest.approx(m.params_b * 2)
    assert one["fp8"] == pytest.approx(one["bf16"] / 2 + 2 * m.vocab * m.hidden / 1e9)
    # the head is read every decode step: the last of two stages is the slower one
    from sweep.fleet.perf import stage_step_s

    s_first = stage_step_s(m, wl, StageShape(g, 1, half, first=True), Knobs(), 64)
    s_last = stage_step_s(m, wl, StageShape(g, 1, half, last=True), Knobs(), 64)
    assert s_last > 1.1 * s_first
