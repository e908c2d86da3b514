"""The original solver's configuration folders (issue 9): ``sweep solve path/to/folder``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sweep.errors import InputError, Problems
from sweep.fleet.candidates import build_candidates
from sweep.inputs.catalog import builtin_path, load_gpus
from sweep.inputs.legacy import load_config_folder, map_gpu
from sweep.inputs.load import load_scenario

FOLDER = Path(__file__).parent / "data" / "legacy_config"


def copy(tmp_path: Path, **files: str | None) -> Path:
    """The shipped folder copied, with some files replaced (``None`` removes one)."""
    d = tmp_path / "cfg"
    shutil.copytree(FOLDER, d)
    for name, text in files.items():
        path = d / f"{name}.csv"
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
    return d


def test_shipped_folder_solves_end_to_end(run_cli) -> None:
    res = run_cli("solve", FOLDER, "--json", "-m", "dinkelbach", "-m", "pareto", "-m", "max_throughput")
    assert res.code == 0, res.err
    rows = {r["method"]: r for r in map(json.loads, res.out.splitlines())}
    best = rows["dinkelbach"]
    assert best["status"] == "optimal" and best["cost_per_token"] == rows["pareto"]["cost_per_token"]
    # the cheapest per token (sweep/fleet/perf.py's families: A100s sustain more of their peak than the prior L20):
    # both A100s as one 2-stage pipeline; mixed pipelines over the pool are candidates too
    [entry] = best["allocation"]
    assert (entry["offering"], entry["gpu"], entry["tp"], entry["pp"]) == ("A100", "A100-80GB", 1, 2)
    cands = [json.loads(x) for x in run_cli("candidates", FOLDER, "--json").out.splitlines()]
    mixed = [r for r in cands if r["kept"] and r.get("stages")]
    assert any(len({s["gpu"] for s in r["stages"]}) == 2 for r in mixed)
    assert all({s["offering"] for s in r["stages"]} <= {"A100", "L20", "L4", "T4"} for r in mixed)
    assert rows["max_throughput"]["cost_per_hour"] <= 12  # max_hourly_cost
    assert res.err_lines == [f"warning: {FOLDER / 'config.csv'}: optimality_gap = 0.01 ignored: "
                             "exact methods solve with a zero relative gap"]
    human = run_cli("solve", FOLDER)
    assert human.code == 0 and "A100-80GB" in human.out
    assert "A100:tp1[1-" in run_cli("candidates", FOLDER).out  # a mixed pipeline's stages column


def test_mapping_of_the_original_keys() -> None:
    sc = load_scenario(FOLDER)
    p, m = sc.params, sc.model
    assert (m.model, m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim) == ("llama-3.1-70b", 80, 8192, 64, 64, 128)
    assert m.params_b == pytest.approx(0.8825 * 80) and m.weight_bytes == m.kv_bytes == 1
    assert p["perf.dtype"] == "fp8" and p["perf.mixed"] is True and p["perf.max_mixed"] == 0
    assert (p["workload.prompt_tokens"], p["workload.output_tokens"]) == (2048 - 256, 256)
    assert (p["perf.min_batch"], p["perf.max_batch"], p["perf.max_stages"], p["perf.pp"]) == (1, 64, 4, [1, 2, 3, 4])
    assert p["limits.budget"] == 12 and p["methods.iterative.target_cpt"] == 2e-6
    assert p["methods.weighted.weight"] == 0.5 and p["solver.time_limit_s"] == 60
    o = sc.offerings
    assert {k: (v.gpu, v.gpus_per_node, v.max_nodes, v.price_per_hour) for k, v in o.items()} == {
        "A100": ("A100-80GB", 1, 2, 1.89), "L20": ("L20", 1, 4, 0.95), "L4": ("L4", 1, 8, 0.44), "T4": ("T4", 1, 4, 0.35)}
    assert sc.catalog.gpus["L20"].bf16_tflops == 119.5 and sc.catalog.gpus["L20"].mem_bw_gbps == 864
    assert {k: v.net_gbps for k, v in o.items()} == {"A100": 300, "L20": 32, "L4": 32, "T4": 16}
    assert "A100|L20=25" in p["perf.link_gbps"] and "L4|T4=12.5" in p["perf.link_gbps"]


def test_scenario_id_follows_the_files(tmp_path: Path) -> None:
    same = copy(tmp_path)
    assert load_scenario(same).scenario_id == load_scenario(FOLDER).scenario_id
    (same / "gpu_pool.csv").write_text((FOLDER / "gpu_pool.csv").read_text().replace("0.44", "0.45"))
    assert load_scenario(same).scenario_id != load_scenario(FOLDER).scenario_id


def test_unknown_keys_are_warned_not_fatal(tmp_path: Path, run_cli) -> None:
    cfg = (FOLDER / "config.csv").read_text() + "use_flash_attention,true\nworkload.tpot_slo_ms,500\n"
    d = copy(tmp_path, config=cfg)
    res = run_cli("solve", d, "--json")
    assert res.code == 0, res.err
    assert f"warning: {d / 'config.csv'}: unknown key 'use_flash_attention' (ignored)" in res.err_lines
    assert load_scenario(d)["workload.tpot_slo_ms"] == 500  # scenario keys are accepted as they are


@pytest.mark.parametrize(("files", "where", "what"), [
    ({"gpu_pool": "gpu_type,count,memory_gb,cost_per_hour\nA100,2,80,1.89\nX100,4,64,1.0\n"},
     "gpu_pool.csv:3", "unknown gpu_type 'X100' (known: "),
    ({"gpu_pool": "gpu_type,count,memory_gb,cost_per_hour\nA100,two,80,1.89\n"},
     "gpu_pool.csv:2", "'count' must be a whole number > 0, got 'two'"),
    ({"gpu_pool": "gpu_type,count,cost_per_hour\nA100,2,1.89\n"}, "gpu_pool.csv", "missing column 'memory_gb'"),
    ({"gpu_pool": None}, "gpu_pool.csv", "missing: a configuration folder needs"),
    ({"network_bandwidth": ",gpu_0,gpu_1\ngpu_0,1,2\ngpu_1,2,1\n"}, "network_bandwidth.csv", "2 columns, expected"),
    ({"network_bandwidth": ",gpu_0,gpu_1,gpu_2,gpu_3\ngpu_0,1,2,3,4\ngpu_1,1,1,x,1\ngpu_2,1,1,1,1\ngpu_3,1,1,1,1\n"},
     "network_bandwidth.csv:3", "expected 4 bandwidths"),
    ({"config": "parameter,value\nmodel_name,my-model\nnum_decoder_layers,40\n"}, "config.csv: d_model", "missing"),
    ({"config": "parameter,value\nmodel_name,not-a-model\n"}, "config.csv: model_name", "is not a built-in model"),
    ({"config": "parameter,value\nmodel_name,llama-3.1-8b\nmax_batch_size,0\n"}, "config.csv: max_batch_size (perf.max_batch)", "> 0"),
])
def test_bad_input_names_the_file(tmp_path: Path, run_cli, files: dict, where: str, what: str) -> None:
    d = copy(tmp_path, **files)
    res = run_cli("solve", d)
    assert res.code == 2 and res.out == ""
    errors = [ln for ln in res.err_lines if ln.startswith("error:")]
    assert any(ln.startswith(f"error: {d / where}") and what in ln for ln in errors), errors


def test_gpu_names_map_to_builtin_rows() -> None:
    gpus = load_gpus(builtin_path("gpus"), Problems())
    names = {(t, mem): map_gpu(t, mem, gpus) for t, mem in [
        ("A100", 40), ("A100", 80), ("V100", 16), ("V100", 32), ("H100", 80), ("Tesla T4", 16), ("L4", 24),
        ("A10", 24), ("nvidia-l20", 48), ("A100-80GB-PCIe", 80), ("h100 pcie", 80)]}
    assert {k: (g.gpu if g else None) for k, g in names.items()} == {
        ("A100", 40): "A100-40GB", ("A100", 80): "A100-80GB", ("V100", 16): "V100-16GB", ("V100", 32): "V100-32GB",
        ("H100", 80): "H100-SXM", ("Tesla T4", 16): "T4", ("L4", 24): "L4", ("A10", 24): "A10",
        ("nvidia-l20", 48): "L20", ("A100-80GB-PCIe", 80): "A100-80GB-PCIe", ("h100 pcie", 80): "H100-PCIe"}
    assert map_gpu("Z9", 8, gpus) is None


def test_memory_mismatch_warns_and_uses_the_pool_figure(tmp_path: Path, capsys) -> None:
    d = copy(tmp_path, gpu_pool="gpu_type,count,memory_gb,cost_per_hour\nL4,4,32,0.5\nA100,1,80,1.9\n",
             network_bandwidth=None)
    sc = load_config_folder(d)
    assert sc.gpu("L4").mem_gb == 32 and sc.offerings["L4"].gpu == "L4@32GB"
    assert "memory_gb 32 differs from the built-in L4's 24 GB" in capsys.readouterr().err
    assert sc["perf.link_gbps"] == [] and sc.offerings["L4"].net_gbps == 12.5  # no network file: defaults


def test_per_gpu_matrix_and_gpus_per_node(tmp_path: Path) -> None:
    pool = "gpu_type,count,memory_gb,cost_per_hour,gpus_per_node\nA100,2,80,2.0,2\nL4,2,24,0.5,1\n"
    net = (",gpu_0,gpu_1,gpu_2,gpu_3\n"  # two A100 on NVLink, two L4, 10/20 GB/s across
           "gpu_0,0,600,10,20\ngpu_1,600,0,20,20\ngpu_2,10,20,0,16\ngpu_3,20,20,16,0\n")
    sc = load_config_folder(copy(tmp_path, gpu_pool=pool, network_bandwidth=net))
    a100 = sc.offerings["A100"]
    assert (a100.gpus_per_node, a100.max_nodes, a100.price_per_hour, a100.net_gbps) == (2, 1, 4.0, 600)
    assert sc.offerings["L4"].net_gbps == 16 and sc["perf.link_gbps"] == ["A100|L4=10"]  # the slowest pair
    tab = build_candidates(sc)
    assert any(c.tp == 2 and c.offering == "A100" for c in tab.kept)  # TP inside the 2-GPU node


def test_batch_range_and_budget_overrides(tmp_path: Path, run_cli) -> None:
    small = load_config_folder(FOLDER, {"perf.max_batch": 4})
    assert all(c.batch <= 4 for c in build_candidates(small).kept)
    big = build_candidates(load_scenario(FOLDER)).kept
    assert max(c.throughput_tok_s for c in build_candidates(small).kept) < max(c.throughput_tok_s for c in big)
    cfg = (FOLDER / "config.csv").read_text().replace("max_batch_size,64", "max_batch_size,4")
    assert load_scenario(copy(tmp_path, config=cfg))["perf.max_batch"] == 4
    res = run_cli("solve", FOLDER, "--budget", "3", "--json", "-m", "max_throughput")
    row = json.loads(res.out)
    assert res.code == 0 and row["status"] == "optimal" and row["cost_per_hour"] <= 3


def test_model_from_builtin_name_or_ffn_size(tmp_path: Path) -> None:
    sc = load_config_folder(copy(tmp_path, config="parameter,value\nmodel_name,llama-3.1-8b\nsequence_length,1024\n"))
    assert sc.model.params_b == 8.03 and sc.model.kv_heads == 8 and sc["perf.dtype"] == "bf16"
    assert (sc["workload.prompt_tokens"], sc["workload.output_tokens"]) == (768, 256)
    cfg = ("parameter,value\nmodel_name,my-70b\nnum_decoder_layers,80\nd_model,8192\nd_hidden,28672\n"
           "num_attention_heads,64\nnum_kv_heads,8\nbytes_per_element,2\n")
    m = load_config_folder(copy(tmp_path / "b", config=cfg)).model
    per_layer = 2 * 8192**2 + 2 * 8192 * 8 * 128 + 3 * 8192 * 28672
    assert m.params_b == pytest.approx(80 * per_layer / 1e9) and m.kv_heads == 8 and m.weight_bytes == 2
    with pytest.raises(InputError, match="layer_weight_memory_gb"):
        load_config_folder(copy(tmp_path / "c", config=cfg.replace("d_hidden,28672\n", "")))
