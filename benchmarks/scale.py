"""The driver's own cost per task as a sweep grows: CPU per task, capacity, wall time and peak RSS.

    python -m benchmarks.scale [--quick] [--sizes 1000,10000,100000] [--workers 2]
                               [--max-minutes 10] [--backends processes,ray] [--ray-nodes 4]
                               [--ray-cpus 8] [--out CSV]

Each size is one ``sweep run JOB --backend processes --workers N -q --out DIR`` in a fresh process, over a
generated job of exactly that many tasks: a tiny profile-mode scenario (llama-2-13b on the two RunPod L40S
offerings of ``jobs/data/counterexample-profile.csv``, 7 profile rows) with one method, ``max_throughput``
(one budget solve), and a ``[grid]`` of 100 budgets × (size / 100) prompt lengths. The driver process is a
small wrapper that calls ``sweep.cli.main`` and then reads ``getrusage(RUSAGE_SELF)``: the driver alone
(its workers are other processes). Figures per size:

- ``driver CPU``: user + system seconds of the whole driver process (interpreter start and imports
  included); ``in run`` is the part spent inside ``sweep.cli.main`` (the sweep itself);
- ``CPU/task``: driver CPU / tasks; ``marginal CPU/task``: the slope between this size and the previous
  one (start-up cost removed);
- ``capacity`` = 1 / CPU per task: the tasks/s one driver could hand out if that were all it did;
- ``busy workers at 10 ms`` = capacity × 0.010 s: the largest cluster one driver keeps busy when each
  task takes 10 ms;
- ``wall``, ``tasks/s`` (of ``sweep.cli.main``), ``peak RSS`` (``ru_maxrss`` of the driver);
- ``task ms``: the mean of the dataset's ``seconds`` column (each task's method time in its worker), for scale;
- ``rows = serial`` (``--check-rows``): the dataset's rows equal the serial backend's on the same job.

The driver hands out chunks of scenario indices; workers expand the scenarios, solve and write their own
Parquet parts (``sweep.engine.worker``); the dataset (its lock, scenarios.parquet, compaction) is held by the
keeper process (``sweep.results.keeper``), whose CPU is reported beside the driver's (``keeper CPU``). So the
driver's CPU is start-up (no pyarrow, PuLP or HiGHS is imported) and a few milliseconds a chunk. The driver
runs with bytecode caches written, as an installed copy does (``PYTHONDONTWRITEBYTECODE`` is dropped).

With ``--backends processes,ray`` the same sizes run again on a local multi-node Ray cluster (``tests/raycluster.py``: a head and
``--ray-nodes`` − 1 worker nodes on 127.0.0.1, ``--ray-cpus`` logical CPUs each — more than the machine's cores),
``sweep run --backend ray --address …``. Ray runs only inside a private network namespace: as root the script
re-executes itself under ``unshare -n``; the cluster's nodes are stopped by their own process groups.

Target (issue 15): ≤ 0.05 ms of driver CPU per task, i.e. ≥ 20,000 tasks/s of capacity. A size is
skipped (and says so) when the previous size's rate projects it beyond ``--max-minutes``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    JOBS,
    REPO,
    add_common_args,
    fmt,
    header,
    load_average,
    ray_status,
    reexec_in_netns,
    table,
    write_csv,
)

TARGET_MS_PER_TASK = 0.05
TASK_S = 0.010  # "10 ms tasks"
BUDGETS = [round(1.0 + 0.05 * i, 2) for i in range(100)]  # $1.00 … $5.95 /h

# The driver: `python -c WRAPPER run JOB …` — sweep's own CLI, then its own rusage (the workers are other
# processes). `before_main` is the CPU of interpreter start and importing sweep.cli (sweep's imports are lazy).
# The keeper's CPU (the process that holds the dataset for the driver: sweep.results.keeper) is read from the
# run's summary, which `sweep run` prints only in part: the wrapper keeps a reference to it.
WRAPPER = """
import json, resource, sys, time
from sweep.cli import main
import sweep.commands.run as command
pre = resource.getrusage(resource.RUSAGE_SELF)
seen = []
def run_sweep(*a, **kw):
    seen.append(real(*a, **kw))
    return seen[-1]
real, command.run_sweep = command.run_sweep, run_sweep
t0 = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
r = resource.getrusage(resource.RUSAGE_SELF)
print("SCALE " + json.dumps({"code": code, "wall_s": wall, "cpu_s": r.ru_utime + r.ru_stime, "user_s": r.ru_utime,
      "sys_s": r.ru_stime, "maxrss_kb": r.ru_maxrss, "before_main_s": pre.ru_utime + pre.ru_stime,
      "keeper_cpu_s": seen[-1].keeper_cpu_s if seen else None}))
"""



def write_job(folder: Path, n: int) -> Path:
    """A job of exactly ``n`` tasks (n a multiple of 100): 100 budgets × n/100 prompt lengths."""
    if n % len(BUDGETS):
        raise SystemExit(f"size {n} is not a multiple of {len(BUDGETS)}")
    shutil.copy(JOBS / "data" / "counterexample-profile.csv", folder / "profile.csv")
    prompts = list(range(100, 100 + n // len(BUDGETS)))
    path = folder / "job.toml"
    path.write_text(f"""# benchmarks/scale.py: {n} tasks, one budget solve each, on a tiny profile-mode scenario
model = "llama-2-13b"

[sweep]
name = "scale-{n}"
methods = ["max_throughput"]

[workload]
prompt_tokens = 512
output_tokens = 256
tpot_slo_ms = 50

[catalog]
price = "spot"
only = ["runpod-1xL40S", "runpod-2xL40S"]

[perf]
source = "profile"
profile = "profile.csv"

[grid]
"limits.budget" = {BUDGETS}
"workload.prompt_tokens" = {prompts}
""")
    return path


def same_rows(a: Path, b: Path) -> bool:
    """Whether two datasets hold the same solutions and frontier rows (the ``seconds`` timing column aside)."""
    import pyarrow.dataset as ds

    for name, key in (("solutions", "task_id"), ("frontier", "rank")):
        got = []
        for d in (a, b):
            if not (d / name).exists():
                got.append([])
                continue
            t = ds.dataset(str(d / name), format="parquet").to_table().to_pylist()
            got.append(sorted(({k: v for k, v in r.items() if k != "seconds"} for r in t),
                              key=lambda r, key=key: (r["scenario_id"], str(r[key]))))
        if got[0] != got[1]:
            return False
    return True


def measure(n: int, workers: int, cluster=None, check_rows: bool = False) -> dict:
    """One ``sweep run`` of ``n`` tasks: on processes ×``workers``, or on the Ray ``cluster`` (all its CPUs);
    with ``check_rows`` the same job again on the serial backend (not measured), its rows compared."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-scale-") as tmp:
        job = write_job(Path(tmp), n)
        where = (["--backend", "ray", "--address", cluster.address] if cluster else
                 ["--backend", "processes", "--workers", str(workers)])
        cmd = [sys.executable, "-c", WRAPPER, "run", str(job), *where, "-q", "--out", str(Path(tmp) / "out")]
        # Python as installed: bytecode caches written and used (with PYTHONDONTWRITEBYTECODE, as in some
        # sandboxes, every driver would compile sweep's sources: ~0.05 s of CPU no installed copy pays)
        env = {k: v for k, v in (cluster.client_env() if cluster else os.environ).items()
               if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([sys.executable, "-c", "import sweep.cli, sweep.commands.run, sweep.results.keeper, "
                        "sweep.results.store, sweep.engine.worker"], cwd=REPO, env=env, check=True)  # caches
        load_before = load_average()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, env=env)
        process_wall = time.perf_counter() - t0
        lines = [x for x in p.stdout.splitlines() if x.startswith("SCALE ")]
        if p.returncode != 0 or not lines:
            raise SystemExit(f"driver for {n} tasks exited {p.returncode}:\n{p.stdout[-1000:]}\n{p.stderr[-2000:]}")
        r = json.loads(lines[-1][len("SCALE "):])
        if r["code"] != 0:
            raise SystemExit(f"sweep run for {n} tasks returned {r['code']}:\n{p.stderr[-2000:]}")
        import pyarrow.dataset as ds

        t = ds.dataset(str(Path(tmp) / "out" / "solutions"), format="parquet").to_table(columns=["seconds"])
        rows, task_s = t.num_rows, sum(x for x in t.column("seconds").to_pylist() if x is not None)
        equal = None
        if check_rows:
            serial = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(job), "--backend", "serial", "-q",
                                     "--out", str(Path(tmp) / "serial")], cwd=REPO, capture_output=True, text=True,
                                    check=False)
            if serial.returncode != 0:
                raise SystemExit(f"serial run for {n} tasks exited {serial.returncode}:\n{serial.stderr[-2000:]}")
            equal = same_rows(Path(tmp) / "out", Path(tmp) / "serial")
    cpu_ms = 1000 * r["cpu_s"] / n
    return {"backend": "processes" if cluster is None else "ray", "tasks": n, "rows": rows, "workers": workers, "wall_s": r["wall_s"], "process_wall_s": process_wall,
            "tasks_per_s": n / r["wall_s"], "driver_cpu_s": r["cpu_s"], "driver_user_s": r["user_s"],
            "driver_sys_s": r["sys_s"], "driver_cpu_startup_s": r["before_main_s"],
            "driver_cpu_in_run_s": r["cpu_s"] - r["before_main_s"],
            "cpu_ms_per_task": cpu_ms, "in_run_cpu_ms_per_task": 1000 * (r["cpu_s"] - r["before_main_s"]) / n,
            "capacity_tasks_per_s": 1000 / cpu_ms, "busy_workers_at_10ms": 1000 / cpu_ms * TASK_S,
            "keeper_cpu_s": r.get("keeper_cpu_s"),
            "peak_rss_mb": r["maxrss_kb"] / 1024, "task_ms_mean": 1000 * task_s / max(rows, 1),
            "load_before": load_before, "load_after": load_average(),
            "target_ms_per_task": TARGET_MS_PER_TASK, "met": cpu_ms <= TARGET_MS_PER_TASK,
            "rows_equal_serial": equal}


def series(sizes: list[int], workers: int, max_minutes: float, cluster=None, check_rows: bool = False) -> list[dict]:
    """Every size in turn (one backend); a size projected beyond ``max_minutes`` becomes a ``skipped`` row."""
    rows: list[dict] = []
    backend = "processes" if cluster is None else "ray"
    for n in sizes:
        done = [r for r in rows if not r.get("skipped")]
        if done:
            eta_min = n / done[-1]["tasks_per_s"] / 60
            if eta_min > max_minutes:
                why = (f"{n:,} tasks (projected {eta_min:.0f} min at {done[-1]['tasks_per_s']:.0f} tasks/s "
                       f"> --max-minutes {max_minutes:g})")
                print(f"  {backend}: skipped {why}", file=sys.stderr, flush=True)
                rows.append({"backend": backend, "tasks": n, "skipped": why})
                continue
        r = measure(n, workers, cluster, check_rows)
        if done:
            prev = done[-1]
            r["marginal_cpu_ms_per_task"] = 1000 * (r["driver_cpu_s"] - prev["driver_cpu_s"]) / (n - prev["tasks"])
        else:
            r["marginal_cpu_ms_per_task"] = None
        rows.append(r)
        print(f"  {backend}: {n:,} tasks: {r['wall_s']:.1f} s, driver CPU {r['driver_cpu_s']:.2f} s "
              f"({r['cpu_ms_per_task']:.3f} ms/task), load {r['load_before']} → {r['load_after']}",
              file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "scale")
    ap.add_argument("--sizes", default="1000,10000,100000", help="task counts (multiples of 100), comma-separated")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=10.0,
                    help="skip a size whose projected wall time (from the previous size's rate) is longer")
    ap.add_argument("--backends", default="processes",
                    help="comma-separated: processes, ray (a local multi-node Ray cluster, in a private network namespace)")
    ap.add_argument("--ray-nodes", type=int, default=4, help="Ray nodes (head included)")
    ap.add_argument("--ray-cpus", type=int, default=8, help="logical CPUs per Ray node")
    ap.add_argument("--check-rows", action="store_true",
                    help="also run each job on the serial backend (not measured) and compare the rows")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    if set(backends) - {"processes", "ray"}:
        ap.error(f"--backends: processes and/or ray, got {args.backends!r}")
    if "ray" in backends and __name__ == "__main__":
        reexec_in_netns("benchmarks.scale", argv)
    if args.quick:
        args.sizes = "1000"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    header(f"scale: the driver's CPU per task, sweep run on {', '.join(backends)}")
    rows = series(sizes, args.workers, args.max_minutes, check_rows=args.check_rows) if "processes" in backends else []
    if "ray" in backends:
        why_not = ray_status()
        if why_not:
            print(f"ray: skipped, {why_not}")
        else:
            sys.path.insert(0, str(REPO / "tests"))
            from raycluster import ray_cluster

            print(f"ray: a local cluster of {args.ray_nodes} nodes × {args.ray_cpus} logical CPUs "
                  f"on {os.cpu_count()} cores", flush=True)
            with ray_cluster(cpus_per_node=args.ray_cpus, workers=args.ray_nodes - 1, timeout_s=180) as c:
                rows += series(sizes, args.ray_nodes * args.ray_cpus, args.max_minutes, c, args.check_rows)
    print(table(["backend", "tasks", "rows", "wall s", "tasks/s", "driver CPU s", "in run s", "CPU ms/task", "marginal ms/task",
                 "capacity tasks/s", "busy workers @10 ms", "keeper CPU s", "peak RSS MB", "task ms (mean)",
                 "≤ 0.05 ms/task", "rows = serial"],
                [[f"{r['backend']} ×{r['workers']}", f"{r['tasks']:,}", f"{r['rows']:,}", fmt(r["wall_s"], 1), fmt(r["tasks_per_s"], 0),
                  fmt(r["driver_cpu_s"], 2), fmt(r["driver_cpu_in_run_s"], 2), fmt(r["cpu_ms_per_task"], 3),
                  fmt(r["marginal_cpu_ms_per_task"], 3), fmt(r["capacity_tasks_per_s"], 0),
                  fmt(r["busy_workers_at_10ms"], 1), fmt(r["keeper_cpu_s"], 2), fmt(r["peak_rss_mb"], 0),
                  fmt(r["task_ms_mean"], 1),
                  "yes" if r["met"] else "no",
                  {True: "yes", False: "NO", None: "-"}[r["rows_equal_serial"]]] for r in rows if not r.get("skipped")]))
    print("driver CPU = getrusage(RUSAGE_SELF) of the `sweep run` process (workers and the dataset's keeper excluded); "
          "capacity = 1 / (CPU per task); busy workers @10 ms = capacity × 0.010 s; keeper CPU = the process holding "
          "the dataset (scenarios.parquet, resume, compaction); target ≤ 0.05 ms/task (≥ 20,000 tasks/s).")
    for r in rows:
        if r.get("skipped"):
            print(f"skipped: {r['backend']}, {r['skipped']}")
    rows = [r for r in rows if not r.get("skipped")]
    path = write_csv(rows, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
