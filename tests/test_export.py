"""``sweep export``: SkyPilot task YAMLs (checked with SkyPilot's own loader, offline, against catalog
fixtures in its real format) and vLLM launch commands, from a solve and from a results dataset.
TP, PP, replicas and batch are compared with ``sweep solve --json`` and ``sweep candidates --json``."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO

SEED = REPO / "jobs" / "seed.toml"
DATA = REPO / "tests" / "data" / "skypilot"
# vLLM flags we emit, each an EngineArgs field of vllm/engine/arg_utils.py (the CLI flag is the field in
# kebab-case) or a `vllm serve` frontend option; vLLM itself does not install here (CUDA wheels, no CPU build
# on PyPI), so its parser is not run
VLLM_FLAGS = {
    "--host": "frontend (vllm/entrypoints/openai/cli_args.py)",
    "--port": "frontend (vllm/entrypoints/openai/cli_args.py)",
    "--tensor-parallel-size": "ParallelConfig.tensor_parallel_size",
    "--pipeline-parallel-size": "ParallelConfig.pipeline_parallel_size",
    "--data-parallel-size": "ParallelConfig.data_parallel_size",
    "--distributed-executor-backend": "ParallelConfig.distributed_executor_backend",
    "--max-num-seqs": "SchedulerConfig.max_num_seqs",
    "--max-model-len": "ModelConfig.max_model_len",
    "--gpu-memory-utilization": "CacheConfig.gpu_memory_utilization",
    "--quantization": "ModelConfig.quantization",
}


def _json_lines(text: str) -> list[dict]:
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def _serve_args(run: str) -> dict[str, str]:
    """The flags of the `vllm serve` command in a run script (continuation lines joined)."""
    text = run.replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "vllm serve" in ln)
    words = shlex.split(line[line.index("vllm serve"):])
    assert words[:2] == ["vllm", "serve"] and not words[2].startswith("-")
    flags = words[3:]
    out = {}
    for i, w in enumerate(flags):
        if w.startswith("--"):
            out[w] = flags[i + 1] if i + 1 < len(flags) and not flags[i + 1].startswith("--") else ""
    return {"model": words[2], **out}


def _sky_load(paths: list[Path], tmp_path: Path) -> list[dict]:
    """Load task YAMLs with SkyPilot's own loader (sky.Task.from_yaml) in a child process and check each
    task's resources against SkyPilot's catalog code, offline: its catalogs are the fixtures, placed where
    SkyPilot keeps them (~/.sky/catalogs/v8/<cloud>/vms.csv)."""
    pytest.importorskip("sky", reason="skypilot is not installed (pip install -e '.[test]')")
    home = tmp_path / "home"
    for f in DATA.glob("*/vms.csv"):
        dest = home / ".sky" / "catalogs" / "v8" / f.parent.name / "vms.csv"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())  # fresh mtime: SkyPilot does not try to re-download it
    code = textwrap.dedent("""
        import json, sys
        import sky
        from sky import catalog
        out = []
        for p in sys.argv[1:]:
            t = sky.Task.from_yaml(p)  # schema, cloud, accelerators, service
            (r,) = list(t.resources)
            cloud = str(r.cloud).lower()
            if r.instance_type:  # what the optimizer checks at launch, from SkyPilot's catalog code
                if not r.cloud.instance_type_exists(r.instance_type):
                    sys.exit(f"{p}: no instance type {r.instance_type} on {cloud}")
                if r.cloud.get_accelerators_from_instance_type(r.instance_type) != r.accelerators:
                    sys.exit(f"{p}: {r.instance_type} does not carry {r.accelerators}")
                launchable = [r.instance_type]
            else:
                ((name, count),) = r.accelerators.items()
                launchable, fuzzy = catalog.get_instance_type_for_accelerator(
                    name, count, use_spot=r.use_spot, clouds=cloud)
                if not launchable:
                    sys.exit(f"{p}: no {cloud} instance has {name}:{count} (close: {fuzzy})")
            out.append({"num_nodes": t.num_nodes, "cloud": cloud, "accelerators": r.accelerators,
                        "instance_type": r.instance_type, "use_spot": r.use_spot, "launchable": launchable,
                        "replicas": t.service.min_replicas if t.service else None, "version": sky.__version__})
        print(json.dumps(out))
    """)
    env = {**os.environ, "HOME": str(home), "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"}
    p = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_seed_skypilot_matches_the_solve(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli("export", SEED, "--format", "skypilot", "-o", out)
    assert r.code == 0, r.err
    (solved,) = _json_lines(run_cli("solve", SEED, "--json").out)
    cands = {(c["offering"], c["tp"], c["pp"]): c for c in _json_lines(run_cli("candidates", SEED, "--json").out)}
    files = sorted(out.glob("*.yaml"))
    assert len(files) == len(solved["allocation"]) >= 1  # one task per replica group
    for f, a in zip(files, solved["allocation"], strict=True):
        task = yaml.safe_load(f.read_text())
        args = _serve_args(task["run"])
        assert args["model"] == "meta-llama/Llama-3.1-70B-Instruct"
        assert int(args["--tensor-parallel-size"]) == a["tp"] and int(args["--pipeline-parallel-size"]) == a["pp"]
        assert int(args["--max-num-seqs"]) == cands[(a["offering"], a["tp"], a["pp"])]["batch"]
        assert int(args["--max-model-len"]) == 512 + 256
        dp = int(args.get("--data-parallel-size", 1))
        assert task["service"]["replicas"] * dp >= a["replicas"] > (task["service"]["replicas"] - 1) * dp
        assert task["service"]["readiness_probe"]["path"] == "/health"
        assert task["resources"]["use_spot"] is False and task["resources"]["cloud"] == a["offering"].split("-")[0]
        assert set(args) - {"model"} <= set(VLLM_FLAGS)
    loaded = _sky_load(files, tmp_path)
    from sweep.inputs.load import load_scenario

    offerings = load_scenario(SEED).offerings
    for got, a in zip(loaded, solved["allocation"], strict=True):
        # the solve's node, as SkyPilot names it: its GPU (H100-SXM is SkyPilot's H100) × the node's GPUs
        gpn = offerings[a["offering"]].gpus_per_node
        ((name, count),) = got["accelerators"].items()
        assert got["cloud"] == a["offering"].split("-")[0] and a["gpu"].startswith(name) and count == gpn
        assert got["num_nodes"] == -(-a["tp"] * a["pp"] // gpn)
        assert got["replicas"] == a["replicas"] and got["use_spot"] is False
        assert len(got["launchable"]) == 1 and got["launchable"][0].startswith(f"{gpn}x-")  # a fixture node
    fleet = json.loads((out / "fleet.json").read_text())
    assert fleet["cost_per_hour"] == solved["cost_per_hour"] and fleet["throughput_tok_s"] == solved["throughput_tok_s"]


def _imported(run_cli, tmp_path: Path) -> Path:
    off = tmp_path / "offerings.csv"
    assert run_cli("catalog", "import", "skypilot", *sorted(DATA.glob("*/vms.csv")), "-o", off).code == 0
    return off


def test_pipeline_across_nodes_and_data_parallel_nodes(run_cli, tmp_path):
    off = _imported(run_cli, tmp_path)
    big = tmp_path / "big.toml"  # 405B fp8 on 8×A100-40GB nodes: the pipeline must span two nodes
    big.write_text(f'model = "llama-3.1-405b"\n[catalog]\nofferings = "{off}"\nonly = ["aws-p4d.24xlarge"]\n'
                   'price = "spot"\n[perf]\ndtype = "fp8"\n')
    small = tmp_path / "small.toml"  # an 8B model at tp=1 on 8-GPU nodes: 8 replicas per node
    small.write_text(f'model = "llama-3.1-8b"\n[catalog]\nofferings = "{off}"\nonly = ["aws-p5.48xlarge"]\n'
                     '[perf]\ntp = [1]\npp = [1]\n')
    files = []
    for sc, name in [(big, "big"), (small, "small")]:
        r = run_cli("export", sc, "--format", "skypilot", "-o", tmp_path / name)
        assert r.code == 0, r.err
        (f,) = sorted((tmp_path / name).glob("*.yaml"))
        files.append(f)
        (solved,) = _json_lines(run_cli("solve", sc, "--json").out)
        (a,) = solved["allocation"]
        task = yaml.safe_load(f.read_text())
        args = _serve_args(task["run"])
        assert (int(args["--tensor-parallel-size"]), int(args["--pipeline-parallel-size"])) == (a["tp"], a["pp"])
        if name == "big":
            assert a["tp"] * a["pp"] > 8 and task["num_nodes"] == a["tp"] * a["pp"] // 8
            assert "ray start --head" in task["run"] and args["--distributed-executor-backend"] == "ray"
            assert args["--quantization"] == "fp8" and task["resources"]["use_spot"] is True
            assert task["service"]["replicas"] == a["replicas"]
        else:
            assert task["num_nodes"] == 1 and args["--data-parallel-size"] == "8"
            assert task["service"]["replicas"] == a["nodes"] == a["replicas"] // 8
    loaded = _sky_load(files, tmp_path)
    catalog = {r["InstanceType"]: {r["AcceleratorName"]: int(float(r["AcceleratorCount"]))}
               for r in csv.DictReader((DATA / "aws" / "vms.csv").open()) if r["AcceleratorName"]}
    assert all(got["accelerators"] == catalog[got["instance_type"]] for got in loaded)
    assert loaded[0]["instance_type"] == "p4d.24xlarge" and loaded[0]["num_nodes"] == 2 and loaded[0]["use_spot"]
    assert loaded[1]["instance_type"] == "p5.48xlarge" and loaded[1]["accelerators"] == {"H100": 8}


def test_skypilot_loader_rejects_what_the_catalog_does_not_offer(tmp_path):
    """The SkyPilot check is real: an instance type its catalog does not list, or one without the named
    accelerators, is refused."""
    pytest.importorskip("sky")
    bad = tmp_path / "bad.yaml"
    for res in ("instance_type: p9.fake\n  accelerators: H100:8", "instance_type: p5.48xlarge\n  accelerators: A100:8",
                "accelerators: H100:3"):
        bad.write_text(f"resources:\n  cloud: aws\n  {res}\nrun: echo\n")
        with pytest.raises(AssertionError):
            _sky_load([bad], tmp_path)


def test_mixed_pipeline_is_written_up_and_the_rest_exported(run_cli, tmp_path):
    off = _imported(run_cli, tmp_path)
    sc = tmp_path / "mixed.toml"
    sc.write_text(f'model = "llama-3.1-70b"\n[catalog]\nofferings = "{off}"\n'
                  'only = ["vast-2x-L40S-32-65536", "vast-1x-H100_SXM-32-65536"]\n'
                  'max_nodes = {"vast-2x-L40S-32-65536" = 1, "vast-1x-H100_SXM-32-65536" = 1}\n'
                  '[perf]\nmixed = true\n')
    (solved,) = _json_lines(run_cli("solve", sc, "--json").out)
    assert any("stages" in a for a in solved["allocation"]), "the fixture should pick a mixed pipeline"
    for fmt in ("skypilot", "vllm"):
        r = run_cli("export", sc, "--format", fmt, "-o", tmp_path / fmt)
        assert r.code == 0, r.err
        assert "mixed-GPU pipeline" in r.err and "NOT-EXPRESSIBLE.md" in r.err
        note = (tmp_path / fmt / "NOT-EXPRESSIBLE.md").read_text()
        assert "SkyPilot" in note and "vLLM" in note and "tp=" in note
        yamls = list((tmp_path / fmt).glob("*.yaml"))
        assert len(yamls) == sum("stages" not in a for a in solved["allocation"])


def test_vllm_format_is_a_runnable_script(run_cli, tmp_path):
    r = run_cli("export", SEED, "--format", "vllm", "-o", tmp_path / "v")
    assert r.code == 0, r.err
    script = tmp_path / "v" / "launch-vllm.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    (solved,) = _json_lines(run_cli("solve", SEED, "--json").out)
    args = _serve_args(script.read_text())
    a = solved["allocation"][0]
    assert (int(args["--tensor-parallel-size"]), int(args["--pipeline-parallel-size"])) == (a["tp"], a["pp"])
    assert set(args) - {"model"} <= set(VLLM_FLAGS)
    bad = subprocess.run(["bash", str(script), "99"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown group" in bad.stderr


def test_export_from_a_results_dataset(run_cli, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('[sweep]\nname = "ex"\nmethods = ["dinkelbach", "max_throughput"]\n'
                   '[catalog]\nonly = ["L4", "A10G"]\n[limits]\nbudget = 5\n'
                   '[grid]\nmodel = ["llama-3.1-8b", "mistral-7b"]\n')
    res = tmp_path / "res"
    assert run_cli("run", job, "--backend", "serial", "--out", res, "-q").code == 0
    import sweep

    best = sweep.open_results(res).best()
    row = best[(best.method == "max_throughput")].iloc[0]
    sid = row["scenario_id"]
    r = run_cli("export", res, "--scenario", sid[:6], "--method", "max_throughput", "--format", "skypilot",
                "-o", tmp_path / "o")
    assert r.code == 0, r.err
    files = sorted((tmp_path / "o").glob("*.yaml"))
    assert len(files) == len(row["allocation"])
    for f, a in zip(files, row["allocation"], strict=True):
        args = _serve_args(yaml.safe_load(f.read_text())["run"])
        assert (int(args["--tensor-parallel-size"]), int(args["--pipeline-parallel-size"])) == (a["tp"], a["pp"])
    # the batch comes from the rebuilt scenario's candidates: the same as solving that scenario now
    sc_row = sweep.open_results(res).scenarios().set_index("scenario_id").loc[sid]
    sc = tmp_path / "again.toml"
    sc.write_text(f'model = "{sc_row["model"]}"\n[catalog]\nonly = ["L4", "A10G"]\n[limits]\nbudget = 5\n')
    cands = {(c["offering"], c["tp"], c["pp"]): c["batch"] for c in _json_lines(run_cli("candidates", sc, "--json").out)}
    for f, a in zip(files, row["allocation"], strict=True):
        assert int(_serve_args(yaml.safe_load(f.read_text())["run"])["--max-num-seqs"]) == cands[
            (a["offering"], a["tp"], a["pp"])]


@pytest.mark.parametrize("args, where", [
    (["{res}", "--format", "skypilot", "-o", "{out}"], "--scenario"),
    ([str(SEED), "--method", "nope", "--format", "skypilot", "-o", "{out}"], "--method"),
    ([str(SEED), "--scenario", "abc", "--format", "skypilot", "-o", "{out}"], "--scenario"),
    (["{missing}", "--format", "vllm", "-o", "{out}"], "{missing}"),
    ([str(SEED), "--format", "helm", "-o", "{out}"], "sweep export"),
])
def test_bad_input(run_cli, tmp_path, args, where):
    res = tmp_path / "res"
    (res / "solutions").mkdir(parents=True)
    subst = {"{res}": str(res), "{out}": str(tmp_path / "out"), "{missing}": str(tmp_path / "none.toml")}
    r = run_cli("export", *[subst.get(a, a) for a in args])
    assert r.code == 2, r.err
    errors = [ln for ln in r.err_lines if not ln.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {subst.get(where, where)}"), r.err
    assert not (tmp_path / "out").exists()


def test_a_profile_without_batches_exports_the_engines_largest_batch(run_cli, small_scenario, tmp_path):
    """Profile rows may omit the batch (it is then unknown): the export uses perf.max_batch for --max-num-seqs."""
    path = small_scenario({"perf.max_batch": 64})
    res = run_cli("export", path, "--format", "vllm", "--hf-model", "acme/m1", "-o", tmp_path / "out")
    assert res.code == 0, res.err
    script = (tmp_path / "out" / "launch-vllm.sh").read_text()
    assert "--max-num-seqs 64" in script
