"""Request mixes as a user meets them (SPEC §3.2, §5.2): ``workload.mix`` and ``workload.trace`` in scenario
files, profile rows per bucket, bad input, the routing in ``--json``, the human report and the Parquet
dataset, and mixes swept in a grid."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import toml_text

from sweep.errors import InputError, Problems
from sweep.inputs.load import load_scenario
from sweep.inputs.mix import MAX_BUCKETS, bucket_requests, read_trace
from sweep.solve.prepare import prepare

MIX = [{"prompt_tokens": 512, "output_tokens": 128, "share": 0.3},
       {"prompt_tokens": 2048, "output_tokens": 256, "share": 0.7}]
# measured per bucket: o1 tp1 serves the short bucket well and the long one poorly, o2 the other way round
PROFILE = ("offering,tp,pp,throughput_tok_s,prompt_tokens,output_tokens\n"
           "o1,1,1,1000.5,512,128\n"
           "o1,1,1,150.25,2048,256\n"
           "o2,1,1,90.125,512,128\n"
           "o2,1,1,240.75,2048,256\n"
           "o1,4,1,3000,,\n")  # no lengths: the same for every bucket


def _mix_scenario(small_scenario, **values):
    return small_scenario({"workload.mix": MIX, **values}, files={"profile.csv": PROFILE})


def test_profile_rows_per_bucket_become_the_candidates_rates(small_scenario) -> None:
    sc = load_scenario(_mix_scenario(small_scenario))
    assert [(b.prompt_tokens, b.output_tokens, b.share) for b in sc.mix] == [
        (512, 128, Fraction(3, 10)), (2048, 256, Fraction(7, 10))]
    assert sc.mean_output_tokens == Fraction(3, 10) * 128 + Fraction(7, 10) * 256
    rates = {c.name: c.rates_tok_s for c in prepare(sc).table.kept}
    assert rates["o1:tp1:pp1"] == (1000.5, 150.25)
    assert rates["o2:tp1:pp1"] == (90.125, 240.75)
    assert rates["o1:tp4:pp1"] == (3000.0, 3000.0)


def test_json_carries_the_routing_and_the_exact_request_rate(small_scenario, run_cli) -> None:
    r = run_cli("solve", _mix_scenario(small_scenario, **{"workload.request_rate": 2.5}), "--method", "all", "--json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert {row["method"] for row in rows} >= {"min_cost", "dinkelbach", "charnes_cooper", "pareto"}
    per_request = 0.3 * 128 + 0.7 * 256
    for row in rows:
        if row["status"] != "optimal":
            continue
        assert row["request_rate"] == pytest.approx(row["throughput_tok_s"] / per_request, rel=1e-12)
        assert row["request_rate"] >= 2.5
        assert len(row["routing"]) == len(row["allocation"])
        for a, routed in zip(row["allocation"], row["routing"], strict=True):
            assert a["routed_rps"] == routed and len(routed) == 2
        total = [sum(r[b] for r in row["routing"]) for b in range(2)]  # every bucket gets its share
        assert total == pytest.approx([0.3 * row["request_rate"], 0.7 * row["request_rate"]], rel=1e-9)
    best = {row["method"]: row["cost_per_token"] for row in rows if row["method"] in ("dinkelbach", "charnes_cooper", "pareto")}
    assert max(best.values()) == pytest.approx(min(best.values()), rel=1e-9)


def test_the_human_report_shows_the_buckets_and_the_routing(small_scenario, run_cli) -> None:
    r = run_cli("solve", _mix_scenario(small_scenario, **{"workload.request_rate": 2.5}), "--method", "min_cost")
    assert r.code == 0, r.err
    assert "a request mix of 2 buckets" in r.out and "512/128 tokens, 30.0%" in r.out
    assert "req/s 512/128" in r.out and "req/s 2048/256" in r.out and "routing:" in r.out
    assert "requests/s" in r.out


def test_a_one_bucket_mix_answers_as_the_plain_lengths(small_scenario, run_cli) -> None:
    plain = run_cli("solve", small_scenario({"workload.prompt_tokens": 512, "workload.output_tokens": 128,
                                             "workload.request_rate": 3}), "--method", "all", "--json")
    one = run_cli("solve", small_scenario({"workload.mix": [{"prompt_tokens": 512, "output_tokens": 128, "share": 1}],
                                           "workload.request_rate": 3}), "--method", "all", "--json")
    assert plain.code == one.code == 0
    keys = ("method", "status", "cost_per_hour", "throughput_tok_s", "cost_per_token", "gpus", "request_rate")
    a = [{k: row[k] for k in keys} for row in map(json.loads, plain.out.splitlines())]
    b = [{k: row[k] for k in keys} for row in map(json.loads, one.out.splitlines())]
    assert a == b


def test_a_trace_is_bucketed_by_length(tmp_path: Path) -> None:
    rng = random.Random(7)
    reqs = [(rng.randint(20, 8000), rng.randint(1, 900)) for _ in range(5000)]
    p = tmp_path / "t.csv"
    p.write_text("# a comment\nprompt_tokens,output_tokens,user\n" + "".join(f"{a},{b},x\n" for a, b in reqs))
    problems = Problems()
    buckets = read_trace(p, problems)
    assert not problems.items
    assert 4 <= len(buckets) <= MAX_BUCKETS
    assert sum(b.share for b in buckets) == 1
    mean_out = sum(b for _, b in reqs) / len(reqs)
    assert float(sum(b.share * b.output_tokens for b in buckets)) == pytest.approx(mean_out, abs=0.5)
    assert all(20 <= b.prompt_tokens <= 8000 and 1 <= b.output_tokens <= 900 for b in buckets)
    # prompt-length groups: a longer group's buckets have longer prompts
    assert sorted(b.prompt_tokens for b in buckets) == [b.prompt_tokens for b in sorted(buckets, key=lambda b: b.prompt_tokens)]
    # a one-request trace and a one-length trace are one bucket
    assert len(bucket_requests([(100, 10)])) == 1 and len(bucket_requests([(100, 10)] * 50)) == 1


def test_the_shipped_trace_loads_as_eight_buckets() -> None:
    repo = Path(__file__).resolve().parents[1]
    problems = Problems()
    buckets = read_trace(repo / "jobs" / "data" / "azure-llm-conv-2023.csv", problems)
    assert not problems.items and len(buckets) == MAX_BUCKETS and sum(b.share for b in buckets) == 1


BAD = [
    ({"workload.mix": [{"prompt_tokens": 512, "output_tokens": 128, "share": 0.3},
                       {"prompt_tokens": 2048, "output_tokens": 256, "share": 0.6}]},
     "workload.mix: shares sum to 0.9, not 1"),
    ({"workload.mix": [{"prompt_tokens": -5, "output_tokens": 128, "share": 1}]},
     "workload.mix[1]: prompt_tokens and output_tokens must be whole numbers > 0"),
    ({"workload.mix": [{"prompt_tokens": 5, "output_tokens": 128, "share": 1, "weight": 2}]},
     "workload.mix[1]: unknown key 'weight'"),
    ({"workload.mix": [{"prompt_tokens": 5, "output_tokens": 128}]}, "workload.mix[1]: missing share"),
    ({"workload.mix": [{"prompt_tokens": 5, "output_tokens": 128, "share": -1}]},
     "workload.mix[1]: share must be a number > 0"),
    ({"workload.mix": [{"prompt_tokens": 5 + i, "output_tokens": 128, "share": 0.1} for i in range(10)]},
     "workload.mix: 10 buckets; at most 8"),
    ({"workload.mix": "512/128"}, "workload.mix: must be a list of tables"),
    ({"workload.mix": MIX, "workload.trace": "t.csv"}, "give workload.mix or workload.trace, not both"),
    ({"workload.trace": "missing.csv"}, "missing.csv: trace file not found"),
    ({"workload.trace": "empty.csv"}, "empty.csv: empty trace"),
    ({"workload.trace": "nocol.csv"}, "nocol.csv: missing column output_tokens"),
    ({"workload.trace": "badrow.csv"}, "badrow.csv:3: prompt_tokens and output_tokens must be whole numbers >= 1"),
    ({"workload.trace": "header.csv"}, "header.csv: no requests in the trace"),
    ({"workload.request_rate": -2}, "workload.request_rate: must be >= 0"),
]
TRACES = {"t.csv": "prompt_tokens,output_tokens\n10,5\n", "empty.csv": "", "nocol.csv": "prompt_tokens\n10\n",
          "badrow.csv": "prompt_tokens,output_tokens\n10,5\n10,-5\n", "header.csv": "prompt_tokens,output_tokens\n"}


@pytest.mark.parametrize(("values", "message"), BAD, ids=[m.split(":")[-1].strip()[:30] for _, m in BAD])
def test_bad_mix_input_is_one_error_line_exit_2(values, message, small_scenario, run_cli) -> None:
    path = small_scenario(values, files=TRACES)
    r = run_cli("solve", path, "--method", "dinkelbach")
    assert r.code == 2 and r.out == ""
    lines = r.err_but_stale.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.err
    assert "Traceback" not in r.err


def test_a_bucket_no_layout_serves_is_bad_input(small_scenario, run_cli) -> None:
    profile = "offering,tp,pp,throughput_tok_s,prompt_tokens,output_tokens\no1,1,1,1000,512,128\n"
    r = run_cli("solve", small_scenario({"workload.mix": MIX}, files={"profile.csv": profile}))
    assert r.code == 2, r.out
    lines = r.err_but_stale.splitlines()
    assert len(lines) == 1 and "no candidate can serve the bucket 2048/256 tokens, 70.0%" in lines[0]


def test_mixes_sweep_like_any_key_into_the_dataset(tmp_path: Path, small_scenario, run_cli) -> None:
    base = _mix_scenario(small_scenario, **{"workload.request_rate": 1.5})
    other = [{"prompt_tokens": 512, "output_tokens": 128, "share": 0.5}, {"prompt_tokens": 2048, "output_tokens": 256, "share": 0.5}]
    job = base.parent / "job.toml"
    job.write_text('[sweep]\nname = "mixes"\nmethods = ["min_cost", "dinkelbach"]\nbase = "scenario.toml"\n[grid]\n'
                   + toml_text({'"workload.mix"': [MIX, other], '"workload.request_rate"': [1.5, 4]}))
    out = tmp_path / "res"
    r = run_cli("run", job, "--backend", "serial", "--out", out, "-q")
    assert r.code == 0, r.err
    t = ds.dataset(out / "solutions", format="parquet").to_table().to_pylist()
    assert len(t) == 8 and len({row["scenario_id"] for row in t}) == 4
    for row in t:
        assert row["status"] == "optimal", row
        assert len(row["routing"]) == len(row["allocation"]) and all(len(r) == 2 for r in row["routing"])
        assert row["request_rate"] >= 1.5
    scen = ds.dataset(out / "scenarios.parquet", format="parquet").to_table().to_pylist()
    assert len(scen) == 4
    for row in scen:  # the buckets in the routing's order, shares as solved
        buckets = json.loads(row["buckets"])
        assert [(b["prompt_tokens"], b["output_tokens"]) for b in buckets] == [(512, 128), (2048, 256)]
        assert sum(b["share"] for b in buckets) == pytest.approx(1)
        r = run_cli("query", out, "--best", "--format", "json")  # each method's answer per scenario
    assert r.code == 0
    best = [json.loads(line) for line in r.out.splitlines()]
    assert len(best) == 8 and all(len(b["routing"]) == len(b["allocation"]) for b in best)


def test_bad_mix_in_a_grid_writes_nothing(tmp_path: Path, small_scenario, run_cli) -> None:
    base = small_scenario()
    job = base.parent / "job.toml"
    job.write_text('[sweep]\nname = "bad"\nmethods = ["dinkelbach"]\nbase = "scenario.toml"\n[grid]\n'
                   '"workload.mix" = [[{prompt_tokens = 10, output_tokens = 5, share = 0.5}]]\n')
    out = tmp_path / "res"
    r = run_cli("run", job, "--backend", "serial", "--out", out)
    assert r.code == 2 and "shares sum to 0.5, not 1" in r.err and not out.exists()


def test_input_error_names_every_problem_at_once(small_scenario) -> None:
    with pytest.raises(InputError) as e:
        load_scenario(small_scenario({"workload.mix": [{"prompt_tokens": 0, "output_tokens": 1, "share": 1},
                                                       {"prompt_tokens": 1, "output_tokens": 1, "share": "x"}]}))
    assert len(e.value.problems) == 2


def test_the_shipped_traffic_job_loads_and_its_first_scenario_solves() -> None:
    from sweep.inputs.job import load_job
    from sweep.solve.methods import run_method

    job = load_job(Path(__file__).resolve().parents[1] / "jobs" / "traffic.toml")
    scenarios = list(job.scenarios())
    assert len(scenarios) == 60 and job.methods == ("min_cost",)
    sc = scenarios[0]
    assert len(sc.mix) == MAX_BUCKETS and sc["workload.request_rate"] > 0
    prep = prepare(sc)
    r = run_method("min_cost", prep.instance, prep.params)
    assert r.status == "optimal" and r.fleet is not None
    assert r.fleet.throughput_exact >= Fraction(sc["workload.request_rate"]) * sc.mean_output_tokens


def test_export_of_a_trace_fleet_makes_room_for_its_longest_request(small_scenario, run_cli, tmp_path: Path) -> None:
    trace = "prompt_tokens,output_tokens\n" + "".join(f"{p},{o}\n" for p, o in
                                                      [(500, 100), (520, 140), (2000, 300), (2100, 900), (90, 20)])
    profile = "offering,tp,pp,throughput_tok_s\no1,1,1,1000\no2,1,1,200\n"
    path = small_scenario({"workload.trace": "t.csv", "workload.request_rate": 1},
                          files={"t.csv": trace, "profile.csv": profile})
    out = tmp_path / "exp"
    r = run_cli("export", path, "--format", "vllm", "--hf-model", "org/m1", "-o", out)
    assert r.code == 0, r.err
    script = (out / "launch-vllm.sh").read_text()
    assert "--max-model-len 3000" in script and "a request mix of" in script  # 2100 + 900, the longest request
    fleet = json.loads((out / "fleet.json").read_text())
    assert len(fleet["buckets"]) == len(load_scenario(path).mix)
    assert all(len(g["routed_rps"]) == len(fleet["buckets"]) for g in fleet["groups"])
