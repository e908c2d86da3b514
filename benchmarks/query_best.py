"""Benchmark ``sweep query --best`` on a synthetic results dataset (default 1,000,000 solution rows).

    python -m benchmarks.query_best [--rows 1000000] [--parts 4] [--repeat 3] [--out benchmarks/out/query_best.csv]

Builds, in a temporary folder, a dataset with the real schema (sweep.results.schema): scenarios.parquet and
solutions in ``--parts`` part files, 19 rows per scenario (weighted, iterative, dinkelbach, pareto and
15 enumeration budget points; 5% of scenarios without a fleet). A second copy adds a newer part that
repeats 1% of the task rows, as a crashed-and-resumed sweep leaves before compaction (the reader
must deduplicate). Times, best of ``--repeat``:

- ``api``: ``sweep.open_results(path).best()`` (read, deduplicate, pick, join, to pandas);
- ``cli csv`` / ``cli table``: ``sweep query PATH --best`` run in this process, stdout to /dev/null
  (the whole answer set: a quarter of the rows, so mostly the cost of formatting them);
- ``cli --where``: the same with ``--where "method = 'dinkelbach'"`` (a twentieth of the rows);
- ``cli process``: the same as a fresh ``sweep`` process (adds interpreter start-up and imports).

Each figure is the best wall time of ``--repeat`` runs, with the CPU seconds of that run and the load
average (a shared machine's other work shows there). Prints a table and writes the figures to ``--out``
as CSV. Target: ``--best`` ≤ 1 s at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sweep.inputs.scenario import SCHEMA
from sweep.results import schema

OTHER_METHODS = ("weighted", "iterative", "dinkelbach", "pareto")
BUDGETS = tuple(round(0.30 * (34.65 / 0.30) ** (i / 14), 4) for i in range(15))
ROWS_PER_SCENARIO = len(OTHER_METHODS) + len(BUDGETS)
TARGET_S = 1.0


def _allocation(rng: np.random.Generator, n: int, has_fleet: np.ndarray) -> pa.Array:
    """list<struct> allocations: 1–3 entries per row with a fleet, [] otherwise."""
    k = np.where(has_fleet, rng.integers(1, 4, n), 0)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    m = int(offsets[-1])
    gpu_names = np.array(["H100-SXM", "A100-80GB", "L4", "V100-16GB", "T4"])
    gi = rng.integers(0, len(gpu_names), m)
    tp = 2 ** rng.integers(0, 4, m)
    pp = 2 ** rng.integers(0, 3, m)
    replicas = rng.integers(1, 9, m)
    made = {"offering": pc.take(pa.array(np.char.add("cloud-1x", gpu_names)), gi),
            "gpu": pc.take(pa.array(gpu_names), gi), "tp": pa.array(tp, pa.int32()), "pp": pa.array(pp, pa.int32()),
            "replicas": pa.array(replicas, pa.int32()), "nodes": pa.array(replicas * pp, pa.int32())}
    fields = list(schema.ALLOCATION.value_type)
    # fields this script does not know (mixed-pipeline stages) stay null
    struct = pa.StructArray.from_arrays([made.get(f.name, pa.nulls(m, f.type)) for f in fields], fields=fields)
    return pa.ListArray.from_arrays(pa.array(offsets), struct, type=schema.ALLOCATION)


def make_dataset(root: Path, rows: int, parts: int, dup_frac: float = 0.0, seed: int = 0) -> int:
    """Write a synthetic results dataset with ``rows`` solution rows; returns the scenario count."""
    rng = np.random.default_rng(seed)
    n_sc = -(-rows // ROWS_PER_SCENARIO)
    sids = np.char.mod("%016x", rng.integers(0, 2**63, n_sc, dtype=np.int64))
    labels = np.array([*OTHER_METHODS, *(["enumeration"] * len(BUDGETS))])
    budgets = np.array([np.nan] * len(OTHER_METHODS) + list(BUDGETS))
    suffix = np.array([f"/{m}" for m in OTHER_METHODS] + [f"/enumeration@{b:g}" for b in BUDGETS])
    sid = np.repeat(sids, ROWS_PER_SCENARIO)[:rows]
    method = np.tile(labels, n_sc)[:rows]
    budget = np.tile(budgets, n_sc)[:rows]
    task = np.char.add(sid, np.tile(suffix, n_sc)[:rows])
    has_fleet = np.repeat(rng.random(n_sc) > 0.05, ROWS_PER_SCENARIO)[:rows]
    thr = rng.integers(100, 200_000, rows).astype(np.float64)
    units = rng.integers(1_000, 400_000, rows)  # cost units of 1e-4 $/h
    cost = units / 10_000
    cols = {
        "sweep": pa.array(np.full(rows, "bench")),
        "task_id": pa.array(task),
        "scenario_id": pa.array(sid),
        "method": pa.array(method),
        "budget": pa.array(budget, pa.float64(), from_pandas=True),
        "status": pa.array(np.where(has_fleet, "optimal", "infeasible")),
        "cost_per_hour": pa.array(cost, mask=~has_fleet),
        "throughput_tok_s": pa.array(thr, mask=~has_fleet),
        "cost_per_token": pa.array(cost / 3600 / thr, mask=~has_fleet),
        "gpus": pa.array(rng.integers(1, 64, rows), mask=~has_fleet),
        "allocation": _allocation(rng, rows, has_fleet),
        "solves": pa.array(np.where(method == "pareto", rng.integers(20, 300, rows), 1 + (method == "dinkelbach") * 2)),
        "seconds": pa.array(rng.random(rows)),
        "solver": pa.array(np.full(rows, "highs")),
        "error": pa.nulls(rows, pa.string()),
        "is_best": pa.array(method != "enumeration"),
        "mip_gap": pa.nulls(rows, pa.float64()),
        "path": pa.array(np.where(method == "iterative", '[{"step": "stop", "reason": "max_iter"}]', None)),
    }
    # columns this script does not know (request_rate: scenarios with a request rate) stay null
    cols = {f.name: cols.get(f.name, pa.nulls(rows, f.type)) for f in schema.SOLUTIONS}
    table = pa.table(cols, schema=schema.SOLUTIONS)
    (root / "solutions").mkdir(parents=True)
    (root / "frontier").mkdir()
    bounds = np.linspace(0, rows, parts + 1).astype(int)
    t0 = time.time_ns()
    for i in range(parts):
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]),
                       root / "solutions" / f"part-{t0 + i:020d}-{i:08x}.parquet")
    if dup_frac > 0:  # a resumed run wrote these tasks again, in a newer part
        pick = np.sort(rng.choice(rows, int(rows * dup_frac), replace=False))
        pq.write_table(table.take(pick), root / "solutions" / f"part-{t0 + parts:020d}-{parts:08x}.parquet")
    sc_schema = schema.scenarios_schema({k: v.kind for k, v in SCHEMA.items()})
    defaults = {schema.param_column(k): schema.param_value(v.default) for k, v in SCHEMA.items()}
    sc_cols = {f.name: pa.array([defaults.get(f.name)] * n_sc, f.type) for f in sc_schema}
    sc_cols["sweep"] = pa.array(np.full(n_sc, "bench"))
    sc_cols["scenario_id"] = pa.array(sids)
    sc_cols["origin"] = pa.array(np.char.mod("bench.toml#%d", np.arange(n_sc)))
    sc_cols["model"] = pa.array(np.array(["llama-3.1-8b", "llama-3.1-70b", "mistral-7b"])[np.arange(n_sc) % 3])
    sc_cols["workload_prompt_tokens"] = pa.array(np.array([256, 512, 1024, 2048, 4096])[np.arange(n_sc) % 5])
    pq.write_table(pa.table(sc_cols, schema=sc_schema), root / "scenarios.parquet")
    (root / "manifest.json").write_text('{"sweep": "bench", "status": "complete"}\n')
    return n_sc


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(best wall seconds, CPU seconds of that run, the result) over ``repeat`` runs."""
    best, out = (math.inf, math.inf), None
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu_s()
        out = fn()
        best = min(best, (time.perf_counter() - t, _cpu_s() - c))
    return best[0], best[1], out


def _cli_in_process(path: Path, fmt: str, *extra: str) -> int:
    from sweep.cli import main

    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        code = main(["query", str(path), "--best", "--format", fmt, *extra])
    if code != 0:
        raise SystemExit(f"sweep query exited {code}")
    return code


def _cli_process(path: Path) -> int:
    r = subprocess.run([sys.executable, "-m", "sweep.cli", "query", str(path), "--best", "--format", "csv"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"sweep query exited {r.returncode}: {r.stderr.strip()}")
    return r.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="solution rows (default 1,000,000)")
    ap.add_argument("--parts", type=int, default=4, help="part files (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is reported (default 3)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "query_best.csv"), help="CSV of the figures")
    args = ap.parse_args(argv)

    from sweep import open_results

    rows_out = []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        for label, dup in (("compacted", 0.0), ("1% duplicates", 0.01)):
            root = Path(tmp) / label.replace(" ", "_").replace("%", "pct")
            t = time.perf_counter()
            n_sc = make_dataset(root, args.rows, args.parts, dup)
            build_s = time.perf_counter() - t
            timings = {"api best()": best_of(lambda r=root: open_results(r).best(), args.repeat)}
            best = timings["api best()"][2]
            expected = int(pq.read_table(root / "solutions", columns=["scenario_id", "method", "cost_per_hour"])
                           .filter(pc.is_valid(pc.field("cost_per_hour")))
                           .group_by(["scenario_id", "method"]).aggregate([]).num_rows)
            if len(best) != expected:  # a benchmark of a wrong answer is worthless
                raise SystemExit(f"--best returned {len(best)} rows, expected {expected}")
            timings["cli --best csv (in-process)"] = best_of(lambda r=root: _cli_in_process(r, "csv"), args.repeat)
            timings["cli --best table (in-process)"] = best_of(lambda r=root: _cli_in_process(r, "table"), args.repeat)
            timings["cli --best --where dinkelbach csv"] = best_of(
                lambda r=root: _cli_in_process(r, "csv", "--where", "method = 'dinkelbach'"), args.repeat)
            timings["cli --best csv (new process)"] = best_of(lambda r=root: _cli_process(r), args.repeat)
            for what, (secs, cpu_s, _) in timings.items():
                rows_out.append({"dataset": label, "rows": args.rows, "parts": args.parts + (dup > 0),
                                 "scenarios": n_sc, "best_rows": len(best), "what": what,
                                 "seconds": round(secs, 3), "cpu_s": round(cpu_s, 3), "target_s": TARGET_S,
                                 "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
                                 "build_s": round(build_s, 1)})
    from sweep.report import table

    print(table(["dataset", "rows", "parts", "best rows", "timing", "seconds", "cpu s", "≤ 1 s", "load"],
                [[r["dataset"], f"{r['rows']:,}", r["parts"], f"{r['best_rows']:,}", r["what"], f"{r['seconds']:.3f}",
                  f"{r['cpu_s']:.3f}", "yes" if r["seconds"] <= TARGET_S else "no", f"{r['loadavg_1m']:.1f}"]
                 for r in rows_out]))
    print(f"\n{os.cpu_count()} CPUs; load = 1-minute load average when measured (other work on the machine "
          "slows every figure)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows_out[0]))
        w.writeheader()
        w.writerows(rows_out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
