"""Request rates and TTFT limits for the one-bucket workload (SPEC §3.2, §4.2, §5.1, §5.2; issue #16 items
1 and 4): the scenario keys, the TTFT limit on candidates (as sweep.fleet.latency says, monotone in the
limit), ``request_rate`` as a demand (min_cost against a brute force), and ``request_rate`` in results."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import brute
import pyarrow.parquet as pq
import pytest

from sweep.fleet.candidates import build_candidates
from sweep.fleet.latency import capacity_rps, max_rate_rps
from sweep.fleet.layouts import workload_of
from sweep.fleet.perf import Knobs, estimate
from sweep.inputs.scenario import scenario_from_dict
from sweep.solve.prepare import prepare

# roofline, built-in catalog, a long prompt so that a TTFT limit bites
ROOF = {"model": "llama-3.1-8b", "catalog.only": ["L4", "A100-80GB", "H100-SXM"],
        "workload.prompt_tokens": 4096, "workload.output_tokens": 256, "perf.mixed": False}


def _roof(**kw):
    return scenario_from_dict({**ROOF, **{k.replace("__", "."): v for k, v in kw.items()}})


_SEEN: dict[tuple, tuple] = {}


def _model_rate(sc, c, ttft, tpot, pct):
    """The usable throughput of a homogeneous candidate straight from perf + latency (not via layouts)."""
    o = sc.offerings[c.offering]
    gpu = sc.catalog.gpus[o.gpu]
    link = gpu.link_gbps if c.gpus <= o.gpus_per_node else min(gpu.link_gbps, o.net_gbps)
    key = (sc.scenario_id, o.gpu, c.tp, c.pp, link, ttft, tpot, pct)  # one GPU layout at many providers
    if key not in _SEEN:
        wl = workload_of(sc)
        est = estimate(sc.model, gpu, c.tp, c.pp, wl, Knobs.from_params(sc.params, sc.calibration),
                       pp_link_gbps=link)
        assert est.timing is not None
        _SEEN[key] = est, max_rate_rps(est.timing, ttft, tpot, pct) * wl.output_tokens
    return _SEEN[key]


# --------------------------------------------------------------------------- keys


BAD = {
    "negative rate": ({"workload.request_rate": -1}, ["workload.request_rate: must be >= 0"]),
    "negative ttft": ({"workload.ttft_slo_ms": -5}, ["workload.ttft_slo_ms: must be >= 0"]),
    "percentile 0": ({"workload.slo_percentile": 0}, ["workload.slo_percentile: must be in (0, 100)"]),
    "percentile 100": ({"workload.slo_percentile": 100}, ["workload.slo_percentile: must be in (0, 100)"]),
    "percentile text": ({"workload.slo_percentile": "p90"}, ["workload.slo_percentile: must be a number"]),
    "ttft on a profile": ({"workload.ttft_slo_ms": 500}, ["workload.ttft_slo_ms: needs perf.source = 'roofline'"]),
    "all at once": ({"workload.request_rate": -1, "workload.ttft_slo_ms": -1, "workload.slo_percentile": 150},
                    ["workload.request_rate: must be >= 0", "workload.ttft_slo_ms: must be >= 0",
                     "workload.slo_percentile: must be in (0, 100)"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_keys_exit_2_one_line_each_nothing_written(case, small_scenario, run_cli, tmp_path):
    values, expected = BAD[case]
    path = small_scenario(values)
    r = run_cli("solve", path, "--json", "--method", "min_cost")
    assert r.code == 2 and r.out == ""
    lines = r.err_lines
    assert len(lines) == len(expected), r.err
    for want in expected:
        assert sum(ln.startswith("error: ") and want in ln for ln in lines) == 1, (want, r.err)
    # a sweep over it writes nothing either
    job = path.parent / "job.toml"
    job.write_text(f'[sweep]\nname = "bad"\nmethods = ["dinkelbach"]\nbase = "{path.name}"\n'
                   '[grid]\n"workload.prompt_tokens" = [256, 512]\n')
    out = tmp_path / f"out-{case.replace(' ', '-')}"
    r = run_cli("run", job, "--backend", "serial", "--out", out, "-q")
    assert r.code == 2 and not out.exists(), r.err


def test_good_keys_and_defaults(small_scenario):
    from sweep.inputs.load import load_scenario

    sc = load_scenario(small_scenario({"workload.request_rate": 2.5, "workload.slo_percentile": 99.9}))
    assert sc["workload.request_rate"] == 2.5 and sc["workload.slo_percentile"] == 99.9
    d = load_scenario(small_scenario())
    assert (d["workload.request_rate"], d["workload.ttft_slo_ms"], d["workload.slo_percentile"]) == (0, 0, 90)
    # the new keys at their defaults leave a scenario's id as it was before they existed
    explicit = load_scenario(small_scenario({"workload.request_rate": 0, "workload.ttft_slo_ms": 0,
                                             "workload.slo_percentile": 90}))
    assert explicit.scenario_id == d.scenario_id != sc.scenario_id


# --------------------------------------------------------------------------- candidates


def test_defaults_build_no_timing_and_change_nothing():
    """No TTFT limit and no request rate: no latency model runs; a request rate without latency limits
    caps nothing (only the demand changes)."""
    sc = _roof()
    assert not workload_of(sc).timing
    base = build_candidates(sc, prune=False)
    rate_only = build_candidates(_roof(workload__request_rate=3.0), prune=False)
    assert [(c.name, c.throughput_tok_s, c.kept, c.reason) for c in base.all] == \
           [(c.name, c.throughput_tok_s, c.kept, c.reason) for c in rate_only.all]


def test_timing_matches_the_perf_model():
    """The step table leaves out the prefill term: capacity_rps × output tokens is perf's throughput
    (exactly for one stage; for a pipeline the busiest stage's step and prefill may differ)."""
    sc = _roof(workload__ttft_slo_ms=10_000)
    knobs = Knobs.from_params(sc.params, sc.calibration)
    gpu = sc.catalog.gpus["H100-SXM"]
    for tp in (1, 2, 4):
        est = estimate(sc.model, gpu, tp, 1, workload_of(sc), knobs)
        t = est.timing
        assert t is not None and t.max_batch == est.batch and t.prefill_latency_s is None
        assert math.isclose(capacity_rps(t) * 256, est.throughput_tok_s, rel_tol=1e-9)
    est = estimate(sc.model, gpu, 1, 4, workload_of(sc), knobs)
    t = est.timing
    assert t is not None and t.first_token_s > 3.9 * t.prefill_s  # four stages' prefills in a row
    assert capacity_rps(t) * 256 <= est.throughput_tok_s * (1 + 1e-9)


@pytest.mark.parametrize("ttft", [3000.0, 800.0, 400.0])
def test_ttft_limit_caps_and_drops_as_the_model_says(ttft):
    sc = _roof(workload__ttft_slo_ms=ttft)
    base = {c.name: c for c in build_candidates(_roof(), prune=False).kept}
    table = build_candidates(sc, prune=False)
    assert table.kept, "some layout serves at this limit"
    for c in table.kept:
        est, usable = _model_rate(sc, c, ttft, None, 90.0)
        assert c.throughput_tok_s == min(base[c.name].throughput_tok_s, usable) > 0
        assert (c.batch, c.tpot_ms) == (base[c.name].batch, base[c.name].tpot_ms)
    lone = [c for c in table.dropped if c.name in base]
    for c in lone:
        est, usable = _model_rate(sc, c, ttft, None, 90.0)
        assert usable == 0
        assert c.reason.startswith("TTFT p90 of a lone request ") and c.reason.endswith(f"{ttft:,.0f} ms limit")
        assert est.timing.first_token_s * 1e3 > ttft
    if ttft == 400.0:
        assert lone, "a 4096-token prompt on one L4 takes longer than 400 ms"


def test_tighter_limits_never_raise_a_candidate():
    limits = [0, 20_000, 5_000, 2_000, 1_000, 700, 500, 300, 200]
    prev: dict[str, float] | None = None
    for ttft in limits:
        table = build_candidates(_roof(workload__ttft_slo_ms=ttft, workload__tpot_slo_ms=80), prune=False)
        thr = {c.name: (c.throughput_tok_s if c.kept else 0.0) for c in table.all}
        if prev is not None:
            assert thr.keys() == prev.keys()
            worse = {n: (prev[n], v) for n, v in thr.items() if v > prev[n]}
            assert not worse, (ttft, worse)
        prev = thr
    assert not any(prev.values()) or min(v for v in prev.values() if v) > 0
    # a higher percentile is a tighter limit too
    p = [{c.name: (c.throughput_tok_s if c.kept else 0.0) for c in
          build_candidates(_roof(workload__ttft_slo_ms=800, workload__slo_percentile=q), prune=False).all}
         for q in (50, 90, 99)]
    assert all(p[i + 1][n] <= p[i][n] for i in range(2) for n in p[0])


def test_percentile_applies_to_tpot_with_a_request_rate():
    """With a request rate, the TPOT limit is checked at the percentile at load too (never more throughput
    than the batch cap alone gives); without one it only caps the batch."""
    plain = {c.name: c for c in build_candidates(_roof(workload__tpot_slo_ms=60), prune=False).kept}
    sc = _roof(workload__tpot_slo_ms=60, workload__request_rate=1.0)
    at_load = build_candidates(sc, prune=False)
    assert at_load.kept
    for c in at_load.kept:
        _, usable = _model_rate(sc, c, None, 60.0, 90.0)
        assert c.throughput_tok_s == min(plain[c.name].throughput_tok_s, usable)
    assert any(c.throughput_tok_s < plain[c.name].throughput_tok_s for c in at_load.kept)


# --------------------------------------------------------------------------- request_rate as a demand


@pytest.mark.parametrize("rate", [0.5, 3.9, 11.25, 20.0])
def test_min_cost_serves_the_rate_and_equals_brute_force(rate, small_scenario, run_cli):
    path = small_scenario({"workload.request_rate": rate, "workload.output_tokens": 128})
    r = run_cli("solve", path, "--method", "min_cost", "--json")
    assert r.code == 0, r.err
    row = json.loads(r.out)
    from sweep.inputs.load import load_scenario

    inst = prepare(load_scenario(path)).instance
    assert inst.demand_tok_s == rate * 128 and inst.request_rate == rate
    want = brute.min_cost(inst)
    if want is None:
        assert row["status"] == "infeasible" and row["request_rate"] is None
        return
    T, C = want
    assert row["status"] == "optimal"
    assert row["throughput_tok_s"] >= rate * 128
    assert Fraction(row["throughput_tok_s"]) == T and round(row["cost_per_hour"] * 1e4) == C
    assert row["request_rate"] == row["throughput_tok_s"] / 128 >= rate


def test_rate_and_throughput_demands_combine(small_scenario):
    from sweep.inputs.load import load_scenario

    for rate, floor, want in [(4.0, 100.0, 1024.0), (4.0, 5000.0, 5000.0), (0.0, 700.0, 700.0)]:
        sc = load_scenario(small_scenario({"workload.request_rate": rate, "workload.min_throughput": floor}))
        assert prepare(sc).instance.demand_tok_s == want


def test_min_cost_needs_a_demand(small_scenario, run_cli):
    r = run_cli("solve", small_scenario(), "--method", "min_cost")
    assert r.code == 2 and "workload.request_rate" in r.err
    r = run_cli("solve", small_scenario({"workload.request_rate": 2}), "--method", "all", "--json")
    assert r.code == 0 and "min_cost" in {json.loads(ln)["method"] for ln in r.out.splitlines()}


# --------------------------------------------------------------------------- results


def test_json_and_report_show_request_rate_only_when_planned(small_scenario, run_cli):
    r = run_cli("solve", small_scenario(), "--json")
    assert "request_rate" not in json.loads(r.out)
    r = run_cli("solve", small_scenario({"workload.request_rate": 2}), "--json")
    row = json.loads(r.out)
    assert row["request_rate"] == row["throughput_tok_s"] / 256
    r = run_cli("solve", small_scenario({"workload.request_rate": 2}))
    assert "≥ 2 requests/s" in r.out and f"= {row['request_rate']:,.3f} requests/s" in r.out
    assert "requests/s" not in run_cli("solve", small_scenario()).out


def test_dataset_column_and_grids(small_scenario, run_cli, tmp_path):
    path = small_scenario({"workload.output_tokens": 100})
    job = path.parent / "job.toml"
    job.write_text(f'[sweep]\nname = "rates"\nmethods = ["min_cost", "dinkelbach"]\nbase = "{path.name}"\n'
                   '[grid]\n"workload.request_rate" = [0, 5, 12.5]\n')
    out = tmp_path / "res"
    r = run_cli("run", job, "--backend", "serial", "--out", out, "-q")
    assert r.code == 0, r.err
    from sweep.results.query import open_results

    sol = open_results(out).solutions()
    scen = open_results(out).scenarios()
    rates = dict(zip(scen["scenario_id"], scen["workload_request_rate"], strict=True))
    assert sorted(rates.values()) == [0, 5, 12.5]
    for row in sol.to_dict("records"):
        rate = rates[row["scenario_id"]]
        if rate == 0:
            assert row["method"] != "min_cost" and (row["request_rate"] is None or math.isnan(row["request_rate"]))
        else:
            assert row["request_rate"] == pytest.approx(row["throughput_tok_s"] / 100, rel=1e-12)
            if row["method"] == "min_cost":
                assert row["throughput_tok_s"] >= rate * 100
    # an older part without the column still reads (as nulls)
    part = sorted((out / "solutions").rglob("*.parquet"))[0]
    t = pq.read_table(part)
    pq.write_table(t.drop(["request_rate"]), part)
    again = open_results(out).solutions()
    assert len(again) == len(sol) and "request_rate" in again.columns
