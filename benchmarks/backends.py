"""Backends on the same sweep: serial, processes ×2, local Ray ×2 — speed-up, efficiency, overhead.

    python -m benchmarks.backends [--quick] [--job jobs/bench-1000.toml] [--scenarios N] [--workers 2]
                                  [--repeat 1] [--no-ray] [--items 2000] [--out CSV]

Ray runs only inside a private network namespace: when this is not one and we are root, the script
re-executes itself under ``unshare -n`` with loopback up (all of it, so every backend sees the same
conditions); otherwise the Ray rows are skipped with the reason.

Every backend runs ``sweep.engine.runner.run_sweep`` (the code behind ``sweep run``) on the same job into a
fresh dataset, no progress output. Figures per run:

- ``wall``: run_sweep's whole call — planning, workers' start, solves, Parquet writes, compaction.
  ``ray ×2`` includes starting the local Ray (as ``sweep run --backend ray`` does); ``ray ×2 warm`` is a
  second sweep on that already-running Ray (as on a cluster that is up).
- ``speed-up`` = serial wall / wall;  ``efficiency`` = speed-up / workers.
- ``overhead vs Σ solve`` = 1 − Σ seconds / (wall × workers), Σ seconds being the dataset's ``seconds``
  column (each task's method time: its MILP solves and the code between them). Note that this counts
  the scenario's candidate generation (``prepare``, not in ``seconds``) as overhead.
- ``driver CPU``: CPU seconds the driver process itself used (for serial it includes the solves).
- ``overhead vs plain loop`` = 1 − plain / (wall × workers), where ``plain`` is the same work done by a
  bare Python loop in one process (validate scenario, ``prepare``, ``run_method``; no planning, no
  workers, no Parquet). This is the framework's own cost; target ≤ 10 %.

Then issue 4's check: serial vs processes ×``--workers`` on ``jobs/quickstart.toml`` (all five methods;
enumeration's 15 budget points are separate tasks), ``--quickstart`` scenarios of it (default all).

Then per-task overhead with trivial items (a function returning its argument): one task per item vs
50 items per task, on Ray ×2 and on a process pool ×2.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds

from benchmarks.common import (
    JOBS,
    add_common_args,
    fmt,
    header,
    job_sample,
    ray_status,
    reexec_in_netns,
    table,
    write_csv,
)

TARGET_OVERHEAD = 0.10
RAY_INIT = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}


def plain_loop(job) -> dict:
    """The sweep's work without the framework: one process, a for loop."""
    from sweep.solve.methods import run_method
    from sweep.solve.prepare import prepare

    t0 = time.perf_counter()
    prep_s = solve_s = 0.0
    n = 0
    for sc in job.scenarios():
        a = time.perf_counter()
        prep = prepare(sc)
        b = time.perf_counter()
        for m in job.methods:
            run_method(m, prep.instance, prep.params)
        solve_s += time.perf_counter() - b
        prep_s += b - a
        n += 1
    return {"wall_s": time.perf_counter() - t0, "prepare_s": prep_s, "solve_s": solve_s, "scenarios": n}


def one_sweep(job, backend: str, workers: int, out: Path) -> dict:
    from sweep.engine.runner import run_sweep

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    s = run_sweep(job, backend=backend, workers=workers, out=str(out), fresh=True, progress=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    t = ds.dataset(out / "solutions", format="parquet").to_table(columns=["seconds", "status"])
    return {"wall_s": wall, "tasks": t.num_rows, "failures": s.failures,
            "sum_task_s": float(sum(t.column("seconds").to_pylist())),
            "driver_cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}


def sweeps(job, workers: int, repeat: int, with_ray: bool, tmp: Path) -> list[dict]:
    rows = []
    plain = min((plain_loop(job) for _ in range(repeat)), key=lambda r: r["wall_s"])
    rows.append({"backend": "plain loop (no framework)", "workers": 1, "wall_s": plain["wall_s"],
                 "tasks": plain["scenarios"] * len(job.methods), "sum_task_s": plain["solve_s"],
                 "prepare_s": plain["prepare_s"]})
    print(f"  plain loop: {plain['wall_s']:.1f} s", file=sys.stderr, flush=True)
    runs = [("serial", 1), ("processes", workers)]
    for name, w in runs:
        best = min((one_sweep(job, name, w, tmp / f"{name}-{i}") for i in range(repeat)), key=lambda r: r["wall_s"])
        rows.append({"backend": f"{name} ×{w}", "workers": w, **best})
        print(f"  {name} ×{w}: {best['wall_s']:.1f} s", file=sys.stderr, flush=True)
    if with_ray:
        import ray

        cold = []
        warm = []
        for i in range(repeat):
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, **RAY_INIT)
            init_s = time.perf_counter() - t0
            r = one_sweep(job, "ray", workers, tmp / f"ray-{i}")
            cold.append({**r, "wall_s": r["wall_s"] + init_s, "ray_init_s": init_s})
            warm.append(one_sweep(job, "ray", workers, tmp / f"ray-warm-{i}"))
            if i < repeat - 1:
                ray.shutdown()  # the last session stays up for the per-task measurement
        best = min(cold, key=lambda r: r["wall_s"])
        rows.append({"backend": f"ray ×{workers}", "workers": workers, **best})
        rows.append({"backend": f"ray ×{workers} warm", "workers": workers, **min(warm, key=lambda r: r["wall_s"])})
        print(f"  ray ×{workers}: {best['wall_s']:.1f} s", file=sys.stderr, flush=True)
    serial = next(r["wall_s"] for r in rows if r["backend"].startswith("serial"))
    for r in rows:
        cap = r["wall_s"] * r["workers"]
        r["speedup"] = serial / r["wall_s"]
        r["efficiency"] = r["speedup"] / r["workers"]
        r["overhead_vs_solve"] = 1 - r["sum_task_s"] / cap
        r["overhead_vs_plain"] = 1 - plain["wall_s"] / cap
        r["scenarios_per_s"] = plain["scenarios"] / r["wall_s"]
        r["target_overhead"] = TARGET_OVERHEAD
    return rows


# --------------------------------------------------------------------------- per-task overhead


def _noop(x):
    return x


def _noop_batch(xs):
    return [_noop(x) for x in xs]


def ray_items(n: int, workers: int, per_task: int) -> float:
    """Seconds per trivial item on a running local Ray (already warm)."""
    import ray

    one = ray.remote(num_cpus=1)(lambda x: x)
    many = ray.remote(num_cpus=1)(lambda xs: list(xs))
    ray.get([one.remote(i) for i in range(4 * workers)])  # start the workers
    ray.get([many.remote([i]) for i in range(4 * workers)])
    t0 = time.perf_counter()
    if per_task == 1:
        out = ray.get([one.remote(i) for i in range(n)])
    else:
        out = [x for xs in ray.get([many.remote(list(range(i, min(n, i + per_task)))) for i in range(0, n, per_task)])
               for x in xs]
    dt = time.perf_counter() - t0
    assert len(out) == n
    return dt / n


def pool_items(n: int, workers: int, per_task: int) -> float:
    """Seconds per trivial item on a forkserver process pool (as the processes backend uses)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        list(pool.map(_noop, range(4 * workers)))  # start the workers
        t0 = time.perf_counter()
        if per_task == 1:
            futs = [pool.submit(_noop, i) for i in range(n)]
        else:
            futs = [pool.submit(_noop_batch, list(range(i, min(n, i + per_task)))) for i in range(0, n, per_task)]
        out = [f.result() for f in futs]
        dt = time.perf_counter() - t0
    assert len(out) == (n if per_task == 1 else -(-n // per_task))
    return dt / n


def per_task(n: int, workers: int, with_ray: bool) -> list[dict]:
    """Trivial items, one per task vs 50 per task; on Ray, the session left running by :func:`sweeps`."""
    rows = []
    for per in (1, 50):
        rows.append({"what": f"process pool ×{workers}, {per} item(s) per task", "items": n,
                     "us_per_item": pool_items(n, workers, per) * 1e6})
    if with_ray:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=workers, **RAY_INIT)
        try:
            for per in (1, 50):
                rows.append({"what": f"ray ×{workers}, {per} item(s) per task", "items": n,
                             "us_per_item": ray_items(n, workers, per) * 1e6})
        finally:
            ray.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "backends")
    ap.add_argument("--job", default=str(JOBS / "bench-1000.toml"))
    ap.add_argument("--scenarios", type=int, default=0, help="use only this many of the job's scenarios (0 = all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend; the fastest is reported")
    ap.add_argument("--items", type=int, default=2000, help="trivial items for the per-task overhead")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    ap.add_argument("--quickstart", type=int, default=-1,
                    help="scenarios of jobs/quickstart.toml for serial vs processes (-1 = all, 0 = skip)")
    args = ap.parse_args(argv)
    if not args.no_ray and __name__ == "__main__":
        reexec_in_netns("benchmarks.backends", argv)
    if args.quick:
        args.scenarios, args.items = args.scenarios or 16, 200
        args.quickstart = 2 if args.quickstart == -1 else args.quickstart
    why_not = "skipped by --no-ray" if args.no_ray else ray_status()
    with_ray = not why_not

    from sweep.inputs.job import load_job

    job = load_job(args.job)
    if args.scenarios:
        job = job_sample(job, args.scenarios)
    header(f"backends: {job.name}, {job.size} scenarios × {', '.join(job.methods)}, workers {args.workers}")
    if not with_ray:
        print(f"ray: {why_not}")
    with tempfile.TemporaryDirectory(prefix="sweep-bench-backends-") as tmp:
        rows = sweeps(job, args.workers, args.repeat, with_ray, Path(tmp))
    items = per_task(args.items, args.workers, with_ray)  # also shuts the Ray session down
    print(table(["backend", "wall s", "tasks", "fail", "scen/s", "speed-up", "efficiency", "Σ task s", "driver CPU s",
                 "overhead vs Σ solve", "overhead vs plain", "target"],
                [[r["backend"], fmt(r["wall_s"], 2), r["tasks"], r.get("failures", "-"), fmt(r["scenarios_per_s"], 1),
                  fmt(r["speedup"], 2) + "×", fmt(100 * r["efficiency"], 0) + "%", fmt(r["sum_task_s"], 1),
                  fmt(r.get("driver_cpu_s"), 1),
                  fmt(100 * r["overhead_vs_solve"], 1) + "%", fmt(100 * r["overhead_vs_plain"], 1) + "%", "≤ 10%"]
                 for r in rows]))
    plain = rows[0]
    print(f"plain loop: {plain['prepare_s']:.1f} s candidates (prepare) + {plain['sum_task_s']:.1f} s methods; "
          f"'Σ task s' is the dataset's seconds column (methods only).")
    qs_rows = []
    if args.quickstart:
        qs = load_job(JOBS / "quickstart.toml")
        if args.quickstart > 0:
            # a sample may hold no scenario with a demand, where min_cost is bad input: time the other methods
            qs = replace(job_sample(qs, args.quickstart), methods=tuple(m for m in qs.methods if m != "min_cost"))
        with tempfile.TemporaryDirectory(prefix="sweep-bench-quickstart-") as tmp:
            for name, w in (("serial", 1), ("processes", args.workers)):
                r = one_sweep(qs, name, w, Path(tmp) / name)
                qs_rows.append({"what": "quickstart", "backend": f"{name} ×{w}", "workers": w,
                                "scenarios": qs.size, **r})
                print(f"  quickstart {name} ×{w}: {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
        for r in qs_rows:
            r["speedup"] = qs_rows[0]["wall_s"] / r["wall_s"]
            r["efficiency"] = r["speedup"] / r["workers"]
            r["overhead_vs_solve"] = 1 - r["sum_task_s"] / (r["wall_s"] * r["workers"])
        print()
        print(table(["quickstart.toml", "scenarios", "tasks", "fail", "wall s", "speed-up", "efficiency",
                     "Σ task s", "overhead vs Σ solve"],
                    [[r["backend"], r["scenarios"], r["tasks"], r["failures"], fmt(r["wall_s"], 2),
                      fmt(r["speedup"], 2) + "×", fmt(100 * r["efficiency"], 0) + "%", fmt(r["sum_task_s"], 1),
                      fmt(100 * r["overhead_vs_solve"], 1) + "%"] for r in qs_rows]))
    print()
    print(table(["per-task overhead (trivial items)", "items", "µs per item"],
                [[r["what"], r["items"], fmt(r["us_per_item"], 1)] for r in items]))
    for r in rows:
        r["what"] = "sweep"
    path = write_csv(rows + qs_rows + items, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
