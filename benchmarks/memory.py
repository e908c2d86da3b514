"""The sweep driver's peak memory as the sweep grows: flat, and under 500 MB at 20,000 scenarios.

    python -m benchmarks.memory [--quick] [--sizes 2000,5000,10000,20000] [--job jobs/bench-20000.toml]
                                [--workers 2] [--out CSV]

Each size is a fresh ``sweep run``-equivalent driver process (``run_sweep``, processes ×``--workers``)
over that many scenarios of the job (spread evenly over its grid; ``jobs/bench-20000.toml``: one cheap
budget solve per scenario). Measured for the driver process only, not its workers:

- ``peak``: the kernel's high-water mark of the driver's resident memory (``VmHWM`` in
  /proc/self/status, read by the driver as it finishes; ``ru_maxrss`` agrees);
- ``after imports``: its RSS before the sweep starts (what Python + sweep + pyarrow cost anyway);
- a timeline sampled every 0.2 s from outside (``VmRSS``), summarised as RSS at 25/50/75 % of the run;
- the largest worker RSS seen, for reference;
- ``driver CPU``: CPU seconds the driver used during the sweep (planning, scenario validation, Parquet).

Flat means the peak does not grow with the number of scenarios: the table shows MB per 1,000 more
scenarios between the smallest and the largest size. Target: peak < 500 MB at 20,000 and flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import JOBS, REPO, add_common_args, fmt, header, job_sample, table, write_csv

TARGET_MB = 500.0


def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
                out.extend(int(k) for k in kids)
                todo.extend(int(k) for k in kids)
        except OSError:
            continue
    return out


def driver(job_path: str, n: int, workers: int) -> dict:
    """Runs in the measured process: one sweep, then its own memory figures."""
    from sweep.engine.runner import run_sweep
    from sweep.inputs.job import load_job

    job = job_sample(load_job(job_path), n)
    after_imports = _status_kb("self", "VmRSS")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-memory-") as tmp:
        t0 = time.perf_counter()
        s = run_sweep(job, backend="processes", workers=workers, out=tmp, fresh=True, progress=False)
        wall = time.perf_counter() - t0
    return {"scenarios": s.scenarios, "tasks": s.tasks_total, "failures": s.failures, "wall_s": wall,
            "after_imports_kb": after_imports, "vmhwm_kb": _status_kb("self", "VmHWM"),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "driver_cpu_s": _cpu(resource.getrusage(resource.RUSAGE_SELF)) - _cpu(r0)}


def _cpu(r: resource.struct_rusage) -> float:
    return r.ru_utime + r.ru_stime


def measure(job_path: str, n: int, workers: int, every_s: float = 0.2) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--_driver", str(n), "--job", job_path, "--workers", str(workers)]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timeline: list[tuple[float, int]] = []
    worker_peak = 0
    t0 = time.perf_counter()
    while p.poll() is None:
        rss = _status_kb(p.pid, "VmRSS")
        if rss:
            timeline.append((time.perf_counter() - t0, rss))
        for k in _descendants(p.pid):
            worker_peak = max(worker_peak, _status_kb(k, "VmRSS") or 0)
        time.sleep(every_s)
    out, err = p.communicate()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        raise SystemExit(f"driver for {n} scenarios exited {p.returncode}:\n{err.strip()[-2000:]}")
    res = json.loads(lines[-1])
    end = timeline[-1][0] if timeline else 0.0

    def at(frac: float) -> float | None:
        pts = [rss for t, rss in timeline if t >= frac * end]
        return pts[0] / 1024 if pts else None

    return {**res, "peak_mb": res["vmhwm_kb"] / 1024, "after_imports_mb": res["after_imports_kb"] / 1024,
            "rss_25_mb": at(0.25), "rss_50_mb": at(0.5), "rss_75_mb": at(0.75),
            "sampled_max_mb": max((r for _, r in timeline), default=0) / 1024, "worker_peak_mb": worker_peak / 1024,
            "scenarios_per_s": res["scenarios"] / res["wall_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "memory")
    ap.add_argument("--job", default=str(JOBS / "bench-20000.toml"))
    ap.add_argument("--sizes", default="2000,5000,10000,20000", help="scenario counts, comma-separated")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--_driver", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._driver:
        print(json.dumps(driver(args.job, args._driver, args.workers)))
        return 0
    if args.quick:
        args.sizes = "50,200"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    header(f"memory: driver peak RSS, {Path(args.job).name}, processes ×{args.workers}")
    rows = []
    for n in sizes:
        r = measure(args.job, n, args.workers)
        rows.append({"scenarios": r["scenarios"], **{k: v for k, v in r.items() if k != "scenarios"}})
        print(f"  {n} scenarios: peak {r['peak_mb']:.0f} MB, {r['wall_s']:.0f} s", file=sys.stderr, flush=True)
    base = rows[0]
    for r in rows:
        dn = (r["scenarios"] - base["scenarios"]) / 1000
        r["mb_per_1000_more"] = (r["peak_mb"] - base["peak_mb"]) / dn if dn else None
        r["target_mb"] = TARGET_MB
    print(table(["scenarios", "wall s", "scen/s", "driver CPU s", "after imports MB", "RSS 25%", "50%", "75%", "peak MB",
                 "MB per +1,000", "worker peak MB", "< 500 MB"],
                [[f"{r['scenarios']:,}", fmt(r["wall_s"], 1), fmt(r["scenarios_per_s"], 0), fmt(r["driver_cpu_s"], 1),
                  fmt(r["after_imports_mb"], 0),
                  fmt(r["rss_25_mb"], 0), fmt(r["rss_50_mb"], 0), fmt(r["rss_75_mb"], 0), fmt(r["peak_mb"], 0),
                  fmt(r["mb_per_1000_more"], 2), fmt(r["worker_peak_mb"], 0),
                  "yes" if r["peak_mb"] < TARGET_MB else "no"] for r in rows]))
    print("peak = the driver's VmHWM (its own high-water mark); RSS n% = sampled at n% of the run's time.")
    path = write_csv(rows, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
