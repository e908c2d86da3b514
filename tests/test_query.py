"""``sweep query`` and ``sweep.open_results`` on a real sweep (serial backend, real HiGHS, real Parquet):
--best against the exact rows, --sql aggregates, --where filters, csv/json outputs, duplicates, a
running sweep's files, bad input, the audit, and an object store (a local S3 server)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SMALL_FILES, SMALL_SCENARIO, toml_text

from sweep import open_results
from sweep.engine.runner import run_sweep
from sweep.errors import InputError
from sweep.results import schema
from sweep.results.query import Results
from sweep.solve.methods import EXACT_METHODS

METHODS = ["max_throughput", "weighted", "iterative", "enumeration", "dinkelbach", "charnes_cooper", "pareto"]
POINTS = 4  # enumeration budget points per scenario
# 2 prices x 3 throughput floors; the 50,000 tok/s floor is beyond the catalog: no fleet anywhere
JOB = f"""
[sweep]
name = "tq"
methods = {json.dumps(METHODS)}
base = "scenario.toml"

[limits]
budget = 30

[methods.enumeration]
budget_min = 1.0
budget_max = 30.0
points = {POINTS}

[grid]
"catalog.price" = ["on_demand", "spot"]
"workload.min_throughput" = [0, 2500, 50000]
"""
SCENARIOS, FEASIBLE = 6, 4


def write_job(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SMALL_FILES.items():
        (folder / name).write_text(text)
    (folder / "scenario.toml").write_text(toml_text(SMALL_SCENARIO))
    (folder / "job.toml").write_text(JOB)
    return folder / "job.toml"


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A finished (compacted) sweep: 6 scenarios x 7 methods, enumeration as 4 budget tasks."""
    tmp = tmp_path_factory.mktemp("sweep")
    s = run_sweep(write_job(tmp / "job"), backend="serial", out=str(tmp / "out"), progress=False)
    assert s.failures == 0 and s.tasks_total == SCENARIOS * (len(METHODS) - 1 + POINTS)
    return tmp / "out"


@pytest.fixture
def copy(swept, tmp_path) -> Path:
    """A private copy of the sweep to alter."""
    return Path(shutil.copytree(swept, tmp_path / "out"))


def raw(out: Path, table: str = "solutions") -> list[dict]:
    return ds.dataset(out / table, format="parquet").to_table().to_pylist()


def newer_part(out: Path, table: str, rows: pa.Table) -> Path:
    """Write rows as a part named after every existing one (part names sort by creation time)."""
    dest = out / table / f"part-{time.time_ns() + 10**12:020d}-dup00000.parquet"
    pq.write_table(rows, dest)
    return dest


def ratio(r: dict) -> tuple:
    from fractions import Fraction

    return (Fraction(round(r["cost_per_hour"] * 10_000), int(r["throughput_tok_s"])), -r["throughput_tok_s"])


# --------------------------------------------------------------------------- --best


def test_best_matches_the_exact_rows(swept):
    best = open_results(swept).best()
    rows = raw(swept)
    by_task = {r["task_id"]: r for r in rows}
    # one answer per scenario x method, only where a fleet exists (the 50,000 tok/s floor has none)
    assert len(best) == FEASIBLE * len(METHODS)
    assert not best.duplicated(["scenario_id", "method"]).any()
    for b in best.to_dict("records"):
        row = by_task[b["task_id"]]
        assert b["cost_per_token"] == row["cost_per_token"] and b["throughput_tok_s"] == row["throughput_tok_s"]
        if b["method"] != "enumeration":  # single-row methods: their row, which they mark is_best
            assert row["is_best"] and b["task_id"] == f"{b['scenario_id']}/{b['method']}"
        else:  # the best of its budget points (ties: higher throughput) = the point compaction marked
            points = [r for r in rows if r["scenario_id"] == b["scenario_id"] and r["method"] == "enumeration"]
            assert len(points) == POINTS
            fleets = [p for p in points if p["cost_per_hour"] is not None]
            assert ratio(row) == min(ratio(p) for p in fleets)
            ties = [p for p in fleets if ratio(p) == ratio(row)]  # several budgets can buy the same fleet
            assert row["budget"] == min(p["budget"] for p in ties)
            (marked,) = [p for p in points if p["is_best"]]
            assert ratio(marked) == ratio(row)
    # exact methods agree with each other on every feasible scenario
    exact = best[best["method"].isin(EXACT_METHODS)]
    assert exact.groupby("scenario_id")["cost_per_token"].nunique().eq(1).all()
    assert set(exact["scenario_id"]) == set(best["scenario_id"])


def test_best_does_not_need_compaction_flags(copy):
    """A running sweep's enumeration rows have is_best false until compaction: --best computes it."""
    before = open_results(copy).best()
    (part,) = sorted((copy / "solutions").glob("part-*.parquet"))
    t = pq.read_table(part)
    t = t.set_column(t.schema.get_field_index("is_best"), "is_best", pa.array([False] * t.num_rows))
    newer_part(copy, "solutions", t)
    part.unlink()
    after = open_results(copy).best()
    assert after["task_id"].tolist() == before["task_id"].tolist()


def test_best_ties_go_to_higher_throughput_whatever_the_stored_rounding(tmp_path):
    """Equal $/token (1 $/h per 200 tok/s = 3 $/h per 600 tok/s): the higher throughput wins, even
    when the stored cost_per_token of the winner is one ulp larger."""
    (tmp_path / "solutions").mkdir()
    base = {"sweep": "t", "scenario_id": "s1", "method": "enumeration", "status": "optimal", "gpus": 1,
            "allocation": [], "solves": 1, "seconds": 0.1, "solver": "highs", "is_best": False}
    cpt = 1.0 / 3600 / 200
    rows = [
        {**base, "task_id": "s1/enumeration@1", "budget": 1.0, "cost_per_hour": 1.0, "throughput_tok_s": 200.0,
         "cost_per_token": cpt},
        {**base, "task_id": "s1/enumeration@3", "budget": 3.0, "cost_per_hour": 3.0, "throughput_tok_s": 600.0,
         "cost_per_token": math.nextafter(cpt, 1.0)},
        {**base, "task_id": "s1/enumeration@9", "budget": 9.0, "cost_per_hour": 9.0, "throughput_tok_s": 1000.0,
         "cost_per_token": 9.0 / 3600 / 1000},
        {**base, "task_id": "s1/enumeration@0.1", "budget": 0.1, "status": "optimal"},  # no fleet at this budget
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SOLUTIONS), tmp_path / "solutions" / "part-1.parquet")
    best = open_results(tmp_path).best()
    assert best["task_id"].tolist() == ["s1/enumeration@3"]


# --------------------------------------------------------------------------- duplicates and running sweeps


def test_duplicate_task_rows_keep_the_newest_part(copy, run_cli):
    n_rows = len(raw(copy))
    (part,) = sorted((copy / "solutions").glob("part-*.parquet"))
    t = pq.read_table(part)
    # a re-run wrote every task again (as a crash between writing and compacting leaves it) ...
    shutil.copy(part, copy / "solutions" / f"part-{time.time_ns() + 10**12:020d}-copy0000.parquet")
    # ... and then a newer run wrote the dinkelbach rows once more, with a marker
    dink = t.filter(pc.equal(t["method"], "dinkelbach"))
    dink = dink.set_column(dink.schema.get_field_index("solver"), "solver", pa.array(["newest"] * dink.num_rows))
    time.sleep(0.001)
    newer_part(copy, "solutions", dink)
    (fpart,) = sorted((copy / "frontier").glob("part-*.parquet"))
    shutil.copy(fpart, copy / "frontier" / f"part-{time.time_ns() + 10**12:020d}-copy0000.parquet")

    res = open_results(copy)
    sol = res.solutions()
    assert len(raw(copy)) == 3 * n_rows - (n_rows - dink.num_rows)  # the files do hold duplicates
    assert len(sol) == n_rows and sol["task_id"].is_unique
    assert set(sol.loc[sol["method"] == "dinkelbach", "solver"]) == {"newest"}
    assert set(sol.loc[sol["method"] != "dinkelbach", "solver"]) == {"highs"}
    assert len(res.frontier()) == len(raw(copy, "frontier")) // 2
    counts = res.sql("SELECT method, count(*) AS n FROM solutions GROUP BY method")
    assert dict(zip(counts["method"], counts["n"], strict=True)) == {
        m: SCENARIOS * (POINTS if m == "enumeration" else 1) for m in METHODS}
    best = run_cli("query", copy, "--best", "--format", "json")
    assert best.code == 0
    answers = [json.loads(line) for line in best.out.splitlines()]
    assert len(answers) == FEASIBLE * len(METHODS)
    assert {a["solver"] for a in answers if a["method"] == "dinkelbach"} == {"newest"}
    assert res.sql("SELECT count(*) AS n FROM results")["n"][0] == n_rows
    assert set(res.sql("SELECT solver FROM best WHERE method = 'dinkelbach'")["solver"]) == {"newest"}


def test_in_progress_files_are_ignored(copy):
    (copy / "solutions" / ".tmp-0123abcd.parquet").write_bytes(b"half a parquet fi")
    (copy / "frontier" / ".tmp-4567ef.parquet").write_bytes(b"")
    res = open_results(copy)
    assert len(res.solutions()) == len(raw(copy))  # (pyarrow's reader skips dot files too)
    assert len(res.best()) == FEASIBLE * len(METHODS)


def test_a_part_that_disappears_mid_read_is_retried(copy):
    """Compaction replaces parts; a reader holding the old listing lists again, once."""
    (part,) = sorted((copy / "solutions").glob("part-*.parquet"))
    merged = newer_part(copy, "solutions", pq.read_table(part))
    stale = [str(part), str(merged)]
    part.unlink()  # what compaction does after writing the merged part

    class StaleListing(Results):
        listings = 0

        def part_files(self, table: str) -> list[str]:
            StaleListing.listings += 1
            return stale if StaleListing.listings == 1 else super().part_files(table)

    res = StaleListing(copy)
    assert len(res.table("solutions")) == pq.read_table(merged).num_rows
    assert StaleListing.listings == 2


def test_an_empty_dataset_of_a_sweep_just_started(tmp_path, run_cli):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "manifest.json").write_text('{"sweep": "x", "status": "running"}')
    r = run_cli("query", tmp_path, "--best")
    assert r.code == 0 and "(no rows)" in r.err and "still running" in r.err
    assert open_results(tmp_path).solutions().empty


# --------------------------------------------------------------------------- --sql, --where, formats


def test_sql_aggregates(swept, run_cli):
    r = run_cli("query", swept, "--sql", "SELECT method, count(*) AS n, count(DISTINCT scenario_id) AS sc "
                                         "FROM solutions GROUP BY method ORDER BY method", "--format", "json")
    assert r.code == 0, r.err
    got = {o["method"]: (o["n"], o["sc"]) for o in map(json.loads, r.out.splitlines())}
    assert got == {m: (SCENARIOS * (POINTS if m == "enumeration" else 1), SCENARIOS) for m in METHODS}
    # joined views: parameters by dotted key; best has one row per feasible scenario x method
    df = open_results(swept).sql("SELECT catalog.price AS price, count(*) AS n FROM best GROUP BY 1 ORDER BY 1")
    assert df.to_dict("records") == [{"price": "on_demand", "n": 2 * len(METHODS)},
                                     {"price": "spot", "n": 2 * len(METHODS)}]
    df = open_results(swept).sql("SELECT count(*) AS n, min(rank) AS r0 FROM frontier_results "
                                 "WHERE workload_min_throughput = 0")
    assert df["n"][0] > 0 and df["r0"][0] == 0


def test_where_on_a_scenario_parameter(swept, run_cli):
    r = run_cli("query", swept, "--where", "workload.min_throughput >= 2500 and method == 'dinkelbach'",
                "--format", "json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 4  # 2 prices x (2500, 50000)
    assert {o["method"] for o in rows} == {"dinkelbach"}
    assert {o["workload_min_throughput"] for o in rows} == {2500, 50000}
    same = run_cli("query", swept, "--where", "workload_min_throughput >= 2500 AND method = 'dinkelbach'",
                   "--format", "json")
    assert same.out == r.out  # the dotted key and the column name are the same column
    assert {o["status"] for o in rows if o["workload_min_throughput"] == 50000} == {"infeasible"}


def test_where_on_a_result_column(swept, run_cli):
    sol = open_results(swept).solutions()
    limit = float(sol["cost_per_token"].median())
    r = run_cli("query", swept, "--where", f"cost_per_token <= {limit!r} and status = 'optimal'", "--format", "csv")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    want = sol[(sol["cost_per_token"] <= limit) & (sol["status"] == "optimal")]
    assert sorted(x["task_id"] for x in rows) == sorted(want["task_id"])
    assert all(float(x["cost_per_token"]) <= limit for x in rows)
    # --best applies --where to the answers
    b = run_cli("query", swept, "--best", "--where", "method = 'enumeration'", "--format", "json")
    assert len(b.out.splitlines()) == FEASIBLE


def test_outputs_parse(swept, run_cli):
    j = run_cli("query", swept, "--best", "--format", "json")
    objs = [json.loads(line) for line in j.out.splitlines()]
    assert len(objs) == FEASIBLE * len(METHODS)
    assert all(isinstance(o["allocation"], list) and o["allocation"] for o in objs)
    assert {"offering", "gpu", "tp", "pp", "replicas", "nodes"} <= set(objs[0]["allocation"][0])
    c = run_cli("query", swept, "--best", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(c.out)))
    assert len(rows) == len(objs)
    assert [r["task_id"] for r in rows] == [o["task_id"] for o in objs]
    assert json.loads(rows[0]["allocation"]) == objs[0]["allocation"]
    assert float(rows[0]["cost_per_token"]) == objs[0]["cost_per_token"]  # full precision
    t = run_cli("query", swept, "--best")
    head = t.out.splitlines()[0].split()
    assert head[:2] == ["scenario_id", "model"] and "cost_per_token" in head
    assert len(t.out.splitlines()) == 2 + len(objs)
    cols = run_cli("query", swept, "--frontier", "--columns", "scenario_id,rank,catalog.price,cost_per_hour",
                   "--format", "csv")
    assert cols.out.splitlines()[0] == "scenario_id,rank,catalog_price,cost_per_hour"


def test_machine_formats_carry_the_varying_parameters(swept, run_cli):
    """csv/json: every result column, model and the parameters that vary in this sweep; '*' adds the rest."""
    head = run_cli("query", swept, "--best", "--format", "csv").out.splitlines()[0].split(",")
    assert head[:len(schema.SOLUTIONS)] == schema.SOLUTIONS.names
    assert head[len(schema.SOLUTIONS):] == ["model", "workload_min_throughput", "catalog_price"]
    every = run_cli("query", swept, "--best", "--format", "json", "--columns", "*").out.splitlines()
    assert {"perf_source", "solver_name", "origin"} <= set(json.loads(every[0]))


def test_allocation_text():
    from sweep.commands.query import allocation_text, fmt_allocation

    entry = {"offering": "o1", "gpu": "G1", "tp": 4, "pp": 1, "replicas": 2, "nodes": 2, "stages": None}
    staged = {**entry, "pp": 2, "replicas": 1, "stages": [
        {"offering": "o1", "gpu": "G1", "tp": 4, "first_layer": 0, "last_layer": 15},
        {"offering": "o2", "gpu": "G2", "tp": 1, "first_layer": 16, "last_layer": 31}]}
    rows = [[entry, {**entry, "pp": 2, "replicas": 3}], [], None, [staged, entry]]
    col = pa.chunked_array([pa.array(rows, schema.ALLOCATION)]).slice(0)
    assert allocation_text(col) == [fmt_allocation(r) for r in rows] == [
        "2×o1 tp4 + 3×o1 tp4 pp2", "-", "-", "1×[o1 tp4 L0-15 → o2 tp1 L16-31] + 2×o1 tp4"]
    assert allocation_text(col.slice(1)) == ["-", "-", "1×[o1 tp4 L0-15 → o2 tp1 L16-31] + 2×o1 tp4"]


def test_frontier_points(swept, run_cli):
    r = run_cli("query", swept, "--frontier", "--format", "json")
    pts = [json.loads(line) for line in r.out.splitlines()]
    assert len(pts) == len(raw(swept, "frontier")) > 0
    assert {p["scenario_id"] for p in pts} == set(open_results(swept).best()["scenario_id"])
    by_sc: dict[str, list[dict]] = {}
    for p in pts:
        by_sc.setdefault(p["scenario_id"], []).append(p)
    for ps in by_sc.values():
        assert [p["rank"] for p in ps] == list(range(len(ps)))
        # a Pareto frontier: more money buys strictly more throughput
        assert all(a["cost_per_hour"] < b["cost_per_hour"] and a["throughput_tok_s"] < b["throughput_tok_s"]
                   for a, b in zip(ps, ps[1:], strict=False))


# --------------------------------------------------------------------------- the audit


def test_audit(swept, run_cli):
    r = run_cli("query", swept, "--audit", "--format", "json")
    assert r.code == 0, r.err
    audit = {o["method"]: o for o in map(json.loads, r.out.splitlines())}
    assert list(audit) == METHODS
    assert "2 scenario(s) have no exact optimum" in r.err
    for m in EXACT_METHODS:
        assert audit[m]["at_optimum_pct"] == 100 and audit[m]["worst_gap_pct"] == 0
    # recompute the baselines' gaps from the best rows
    best = open_results(swept).best()
    opt = best[best["method"].isin(EXACT_METHODS)].groupby("scenario_id")["cost_per_token"].min()
    for m in METHODS:
        rows = best[best["method"] == m]
        gaps = sorted((rows["cost_per_token"] / rows["scenario_id"].map(opt) - 1) * 100)
        a = audit[m]
        assert a["scenarios"] == FEASIBLE and a["no_fleet"] == 0 and a["beats_exact"] == 0
        assert a["worst_gap_pct"] == pytest.approx(max(gaps), abs=1e-9)
        assert a["median_gap_pct"] == pytest.approx((gaps[1] + gaps[2]) / 2, abs=1e-9)
        assert a["at_optimum_pct"] == 100 * sum(g <= 1e-7 for g in gaps) / len(gaps)
    # enumeration's solves per scenario are summed over its budget points (one budget solve: 1-2 MILPs)
    sols = open_results(swept).solutions()
    per_sc = sols[(sols["method"] == "enumeration") & sols["scenario_id"].isin(opt.index)].groupby("scenario_id")["solves"].sum()
    assert audit["enumeration"]["median_solves"] == per_sc.median()
    assert per_sc.min() >= POINTS and per_sc.max() <= 2 * POINTS
    assert any(audit[m]["worst_gap_pct"] > 0 for m in ("weighted", "iterative", "enumeration"))
    table = run_cli("query", swept, "--audit")
    assert table.out.splitlines()[0].split()[:3] == ["method", "scenarios", "at_optimum_pct"]
    spot = open_results(swept).audit(where="catalog.price = 'spot'")
    assert set(spot["scenarios"]) == {2}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("args", "where", "what"), [
    (["--where", "no_such_column > 1"], "--where", "unknown column 'no_such_column'"),
    (["--where", 'method = "dinkelbach"'], "--where", "strings take single quotes"),
    (["--best", "--where", "cost_per_token >"], "--where", "Parser Error"),
    (["--sql", "SELEC * FROM solutions"], "--sql", "syntax error"),
    (["--sql", "SELECT * FROM nowhere"], "--sql", "views: solutions, frontier, scenarios"),
    (["--sql", "SELECT 1", "--where", "TRUE"], "--where", "cannot be combined with --sql"),
    (["--columns", "task_id,bogus"], "--columns", "unknown column 'bogus'"),
])
def test_bad_input_is_one_line_and_exit_2(swept, run_cli, args, where, what):
    r = run_cli("query", swept, *args)
    assert r.code == 2 and r.out == ""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith(f"error: {where}: ")
    assert what in r.err and "Traceback" not in r.err


def test_not_a_dataset(tmp_path, run_cli):
    missing = run_cli("query", tmp_path / "nope")
    assert missing.code == 2 and missing.err_lines == [f"error: {tmp_path / 'nope'}: no such folder"]
    empty = run_cli("query", tmp_path)
    assert empty.code == 2 and "not a results dataset" in empty.err
    with pytest.raises(InputError):
        open_results(tmp_path / "nope")
    both = run_cli("query", tmp_path, "--best", "--frontier")
    assert both.code == 2 and "not allowed with argument" in both.err


# --------------------------------------------------------------------------- the Python API


def test_python_api(swept):
    res = open_results(str(swept))
    sol, sc = res.solutions(), res.scenarios()
    assert len(sol) == len(raw(swept)) and sol["task_id"].is_unique
    assert len(sc) == SCENARIOS and {"workload_min_throughput", "catalog_price"} <= set(sc.columns)
    assert isinstance(res.dataset("solutions"), ds.Dataset)
    assert res.dataset("solutions").count_rows() == len(sol)
    assert res.dataset("scenarios").count_rows() == SCENARIOS
    f = res.frontier(sc["scenario_id"][0])
    assert set(f["scenario_id"]) <= {sc["scenario_id"][0]}
    assert res.manifest()["status"] == "complete"
    assert res.sql("SELECT 42 AS x")["x"][0] == 42
    with pytest.raises(ValueError):
        res.dataset("nope")
    g = res.gaps()
    assert len(g) == SCENARIOS * len(METHODS)
    assert g.loc[g["method"].isin(EXACT_METHODS) & g["optimum_cost_per_token"].notna(), "gap_pct"].eq(0).all()


# --------------------------------------------------------------------------- object store, benchmark


def test_object_store_uri(swept, run_cli, monkeypatch):
    """The same queries through s3:// against a local S3 server (moto), read by pyarrow."""
    moto_server = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        s3 = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1",
                               allow_bucket_creation=True)
        s3.create_dir("bucket")
        pafs.copy_files(str(swept), "bucket/tq", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
        uri = f"s3://bucket/tq?endpoint_override={host}:{port}&scheme=http&region=us-east-1"
        local = run_cli("query", swept, "--best", "--format", "csv")
        remote = run_cli("query", uri, "--best", "--format", "csv")
        assert remote.code == 0, remote.err
        assert remote.out == local.out
        audit = run_cli("query", uri, "--audit", "--format", "json")
        assert len(audit.out.splitlines()) == len(METHODS)
        missing = run_cli("query", uri.replace("/tq?", "/nothing?"))
        assert missing.code == 2 and missing.err_lines == ["error: s3://bucket/nothing: no such folder"]
    finally:
        server.stop()


def test_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.csv"
    r = subprocess.run([sys.executable, "-m", "benchmarks.query_best", "--rows", "10000", "--repeat", "1",
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert {r["what"] for r in rows} >= {"api best()", "cli --best csv (in-process)"}
    assert all(float(r["seconds"]) > 0 and int(r["best_rows"]) > 0 for r in rows)


def test_a_misspelled_dotted_key_in_where_names_the_valid_keys(swept, run_cli):
    r = run_cli("query", swept, "--where", "workload.prompt_token = 512")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --where: unknown key 'workload.prompt_token' (valid dotted keys: ")
    assert "workload.prompt_tokens" in lines[0] and "Binder" not in lines[0]
