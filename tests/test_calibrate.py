"""``sweep calibrate`` and ``perf.calibration`` (SPEC §4.3): fitting lowers held-out error, bad input is
one ``error:`` line per problem with nothing written, vLLM's ``--save-result`` JSON is read, and a
calibration file changes a scenario's estimates and id by content."""

from __future__ import annotations

import csv
import json
import tomllib
from dataclasses import replace
from pathlib import Path

from sweep.fleet.calibrate import (
    CSV_COLUMNS,
    errors,
    fit,
    read_measurements_csv,
    read_vllm_json,
    shipped_measurements_path,
    summary,
)
from sweep.fleet.candidates import build_candidates
from sweep.fleet.perf import Family, Knobs, family_of
from sweep.inputs.catalog import load_builtin
from sweep.inputs.load import load_scenario

PRIOR = Family("MI300X", 0.69, 0.57, 8.0)  # what an unmeasured family gets: the NVIDIA families' median


def _shipped_rows(family: str) -> list[dict[str, str]]:
    with shipped_measurements_path().open(newline="") as f:  # '#' lines are comments (and excluded rows)
        return [r for r in csv.DictReader(line for line in f if not line.startswith("#"))
                if family_of(r["gpu"]) == family]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_fitting_half_of_a_family_lowers_the_other_halfs_error(tmp_path):
    """MI300X from the prior: fit every other published row, test on the rest."""
    rows = _shipped_rows("MI300X")
    train, test = rows[0::2], rows[1::2]
    catalog, problems = load_builtin(), []
    ms_train = read_measurements_csv(_write_csv(tmp_path / "train.csv", train), catalog, problems)
    ms_test = read_measurements_csv(_write_csv(tmp_path / "test.csv", test), catalog, problems)
    assert not problems and len(ms_train) >= 4 and len(ms_test) >= 4
    prior = Knobs().with_family(PRIOR)
    before = summary(errors(ms_test, catalog, prior))[0]
    after = summary(errors(ms_test, catalog, fit(ms_train, catalog, prior)))[0]
    assert after < 0.5 * before and after < 0.25, (before, after)


def test_cli_writes_a_calibration_that_a_scenario_applies(tmp_path, run_cli):
    rows = _shipped_rows("H100")[:12]
    src = _write_csv(tmp_path / "h100.csv", rows)
    out = tmp_path / "cal" / "h100.toml"
    r = run_cli("calibrate", src, "-o", out)
    assert r.code == 0, r.err
    assert "median |error|: before" in r.out and "leave-one-row-out" in r.out
    assert all(f"h100.csv:{i}" in r.out for i in range(2, 2 + len(rows)))  # every row's error is printed
    cal = tomllib.loads(out.read_text())
    assert set(cal["families"]) == {"H100"}
    assert not list(out.parent.glob(".*"))  # the temporary file was renamed, not left behind

    base = {"model": "llama-3.1-8b", "perf.dtype": "fp8", "catalog.only": ["H100-SXM"]}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in base.items())
    (tmp_path / "cal" / "plain.toml").write_text(lines)
    (tmp_path / "cal" / "with.toml").write_text(lines + 'perf.calibration = "h100.toml"\n')
    plain, withcal = load_scenario(tmp_path / "cal" / "plain.toml"), load_scenario(tmp_path / "cal" / "with.toml")
    assert plain.scenario_id != withcal.scenario_id
    fam = Knobs.from_params(withcal.params, withcal.calibration).family(withcal.catalog.gpus["H100-SXM"])
    assert (fam.bw_eff, fam.compute_eff) == (cal["families"]["H100"]["bw_eff"], cal["families"]["H100"]["compute_eff"])
    thr = {c.offering: c.throughput_tok_s for c in build_candidates(plain).kept if c.tp == 1 and c.pp == 1}
    thr2 = {c.offering: c.throughput_tok_s for c in build_candidates(withcal).kept if c.tp == 1 and c.pp == 1}
    assert thr and thr.keys() == thr2.keys() and thr != thr2

    # the id hashes the file's content, not its path
    (tmp_path / "cal" / "copy.toml").write_text(out.read_text())
    (tmp_path / "cal" / "with2.toml").write_text(lines + 'perf.calibration = "copy.toml"\n')
    assert load_scenario(tmp_path / "cal" / "with2.toml").scenario_id == withcal.scenario_id
    out.write_text(out.read_text().replace("[families.", "# changed\n[families.", 1))
    assert load_scenario(tmp_path / "cal" / "with.toml").scenario_id != withcal.scenario_id


def test_bad_rows_are_one_error_each_and_nothing_is_written(tmp_path, run_cli):
    head = ",".join(CSV_COLUMNS)
    good = "llama-3.1-8b,H100-SXM,1,1,fp8,128,128,max,20000"
    src = tmp_path / "bad.csv"
    src.write_text("\n".join([head, good, "llama-x,H100-SXM,1,1,fp8,128,128,max,100",
                              "llama-3.1-8b,H100-SXM,0,1,fp8,128,128,max,100",
                              "llama-3.1-8b,H100-SXM,1,1,fp8,128,128,lots,100",
                              "llama-3.1-8b,Z9000,1,1,fp8,128,128,4,100",
                              "llama-3.1-8b,H100-SXM,1,1,fp8,128,128,4,"]) + "\n")
    out = tmp_path / "cal.toml"
    out.write_text("previous\n")
    r = run_cli("calibrate", src, "-o", out)
    assert r.code == 2 and r.out == ""
    assert r.err_lines == [
        f"error: {src}:3: unknown model 'llama-x' (known: {', '.join(sorted(load_builtin().models))})",
        f"error: {src}:4: tp must be at least 1, got 0",
        f"error: {src}:5: concurrency must be a whole number, got 'lots'",
        f"error: {src}:6: unknown gpu 'Z9000' (known: {', '.join(sorted(load_builtin().gpus))})",
        f"error: {src}:7: missing output_tok_s",
    ]
    assert out.read_text() == "previous\n"


def test_bad_files(tmp_path, run_cli):
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("model,gpu\nllama-3.1-8b,H100-SXM\n")
    notjson = tmp_path / "r.json"
    notjson.write_text("{not json")
    out = tmp_path / "cal.toml"
    r = run_cli("calibrate", nocol, notjson, tmp_path / "absent.csv", "-o", out)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err_lines[0].startswith(f"error: {nocol}: missing column(s) tp, pp, dtype")
    assert r.err_lines[1].startswith(f"error: {notjson}: not JSON")
    assert r.err_lines[2] == f"error: {tmp_path / 'absent.csv'}: file not found"
    assert not out.exists()


def _vllm_result(**meta: object) -> dict:
    """A ``benchmark_serving.py --save-result`` file: setup, ``--metadata`` keys, traffic, then the results."""
    return {
        "date": "20250101-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B-Instruct",
        "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct", "num_prompts": 640, **meta,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 64,
        "duration": 61.2, "completed": 640, "total_input_tokens": 655360, "total_output_tokens": 81920,
        "request_throughput": 10.457, "request_goodput": None, "output_throughput": 1338.56,
        "total_token_throughput": 12047.0, "input_lens": [1024] * 3, "output_lens": [128] * 3,
        "ttfts": [0.05] * 3, "itls": [[0.04]] * 3, "generated_texts": ["x"] * 3, "errors": [""] * 3,
        "mean_ttft_ms": 120.0, "median_ttft_ms": 110.0, "mean_tpot_ms": 45.0, "mean_itl_ms": 45.0,
    }


def test_vllm_save_result_json(tmp_path, run_cli):
    catalog = load_builtin()
    with_meta = tmp_path / "meta.json"
    with_meta.write_text(json.dumps(_vllm_result(gpu="A100-40GB", tp="1", dtype="bf16")))
    problems: list = []
    (m,) = read_vllm_json(with_meta, catalog, problems)
    assert not problems
    assert (m.model, m.gpu, m.tp, m.pp, m.dtype) == ("llama-3.1-8b", "A100-40GB", 1, 1, "bf16")
    assert (m.prompt_tokens, m.output_tokens, m.concurrency, m.output_tok_s) == (1024, 128, 64, 1338.56)

    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({**_vllm_result(), "max_concurrency": None}))
    r = run_cli("calibrate", bare, "-o", tmp_path / "x.toml")  # no GPU anywhere: a bad input
    assert r.code == 2 and r.err_lines == [f"error: {bare}: no gpu: give --gpu or save it in the file's metadata (gpu=...)"]
    r = run_cli("calibrate", bare, with_meta, "--gpu", "A100-40GB", "--tp", "1", "--dtype", "bf16",
                "-o", tmp_path / "a100.toml")
    assert r.code == 0, r.err
    assert "bare.json" in r.out and "max" in r.out  # max_concurrency None = maximum load
    assert "A100" in tomllib.loads((tmp_path / "a100.toml").read_text())["families"]


def test_scenario_calibration_errors(tmp_path, run_cli):
    (tmp_path / "s.toml").write_text('model = "llama-3.1-8b"\nperf.calibration = "missing.toml"\n')
    r = run_cli("candidates", tmp_path / "s.toml")
    assert r.code == 2 and r.err_lines == [f"error: {tmp_path / 'missing.toml'}: calibration file not found"]
    (tmp_path / "bad.toml").write_text('[families.H100]\nbw_eff = 1.7\ncompute_eff = 0.5\n')
    (tmp_path / "s2.toml").write_text('model = "llama-3.1-8b"\nperf.calibration = "bad.toml"\n')
    r = run_cli("candidates", tmp_path / "s2.toml")
    assert r.code == 2 and r.err_lines == [
        f"error: {tmp_path / 'bad.toml'}: families.H100: bw_eff and compute_eff must be in (0, 1]"]


def test_candidates_show_an_error_band(tmp_path, run_cli):
    (tmp_path / "s.toml").write_text('model = "llama-3.1-8b"\ncatalog.only = ["H100-SXM", "L4"]\n')
    r = run_cli("candidates", tmp_path / "s.toml", "--json", "--kept")
    rows = [json.loads(x) for x in r.out.splitlines()]
    h100 = [x for x in rows if x["gpu"] == "H100-SXM"]
    l4 = [x for x in rows if x["gpu"] == "L4"]
    assert h100 and l4
    assert all(len(x["error_band_pct"]) == 2 and x["error_band_pct"][0] < 0 < x["error_band_pct"][1] for x in h100)
    assert all(x["error_band_pct"] is None for x in l4)  # no published L4 measurement: unmeasured
    r = run_cli("candidates", tmp_path / "s.toml")
    assert "error band" in r.out and "unmeasured" in r.out


def test_no_error_band_from_too_few_rows():
    """A family with fewer than MIN_BAND_ROWS published rows shows no band (a point is not a spread)."""
    from collections import Counter

    from sweep.fleet.calibrate import MIN_BAND_ROWS, error_band_pct, family_error_bands

    catalog, problems = load_builtin(), []
    counts = Counter(family_of(m.gpu) for m in read_measurements_csv(shipped_measurements_path(), catalog, problems))
    assert not problems
    bands = family_error_bands()
    for fam, n in counts.items():
        assert (fam in bands) == (n >= MIN_BAND_ROWS), (fam, n)
    for gpu in catalog.gpus:
        assert (error_band_pct(gpu) is None) == (counts.get(family_of(gpu), 0) < MIN_BAND_ROWS), gpu


def test_a_max_load_row_can_name_the_engines_batch_cap(tmp_path, run_cli):
    """At maximum load the model fills memory (up to 4096 sequences) unless the row says what the engine capped
    the running sequences at (a CSV ``max_batch`` column; ``--max-batch`` or metadata for vLLM JSON): a short-context
    8B run on an H100 capped at 64 sequences is predicted well below an uncapped one; a bad cap is one error line."""
    catalog = load_builtin()
    head = ",".join([*CSV_COLUMNS, "max_batch"])
    src = tmp_path / "capped.csv"
    src.write_text(f"{head}\nllama-3.1-8b,H100-SXM,1,1,fp8,128,128,max,20000,\n"
                   "llama-3.1-8b,H100-SXM,1,1,fp8,128,128,max,20000,64\n")
    problems: list = []
    free, capped = read_measurements_csv(src, catalog, problems)
    assert not problems and (free.max_batch, capped.max_batch) == (None, 64)
    e_free, e_capped = errors([free, capped], catalog, Knobs())
    assert (1 + e_capped) < 0.6 * (1 + e_free)
    r = run_cli("calibrate", src, "-o", tmp_path / "c.toml")
    assert r.code == 0, r.err
    assert "max≤64" in r.out

    bad = tmp_path / "bad.csv"
    bad.write_text(f"{head}\nllama-3.1-8b,H100-SXM,1,1,fp8,128,128,max,20000,zero\n")
    r = run_cli("calibrate", bad, "-o", tmp_path / "d.toml")
    assert r.code == 2 and r.err_lines == [f"error: {bad}:2: max_batch must be a whole number, got 'zero'"]
    assert not (tmp_path / "d.toml").exists()

    js = tmp_path / "r.json"
    js.write_text(json.dumps({**_vllm_result(gpu="H100-SXM", tp="1", dtype="fp8"), "max_concurrency": None}))
    (m,) = read_vllm_json(js, catalog, problems, max_batch=256)
    assert not problems and m.max_batch == 256 and m.concurrency is None
    zero = tmp_path / "zero.json"
    zero.write_text(json.dumps({**_vllm_result(gpu="H100-SXM", tp="1", dtype="fp8", max_batch=0)}))
    for path, cap in ((js, 0), (zero, None)):  # a cap of 0, given or saved, is bad input, not "no cap"
        assert read_vllm_json(path, catalog, problems, max_batch=cap) == []
    assert [p.what for p in problems] == ["max_batch must be at least 1, got 0"] * 2
    # a fixed concurrency above the engine's cap runs at the cap
    fixed = replace(capped, concurrency=512)
    assert errors([fixed], catalog, Knobs()) == errors([replace(fixed, max_batch=None, concurrency=64)], catalog,
                                                       Knobs())
