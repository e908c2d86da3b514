"""Against what a user would otherwise reach for: the same grid through Ray Tune vs ``sweep run``.

    python -m benchmarks.vs_tune [--quick] [--job jobs/bench-1000.toml] [--scenarios 200] [--workers 2]
                                 [--tune default,tuned,tuned-batched] [--no-full] [--out CSV]

Tune gets the grid's axes as ``tune.grid_search`` lists and a function trainable doing exactly what a
sweep task does: build the scenario from the job's base + the trial's config, ``prepare`` (candidates),
``run_method`` for each of the job's methods, ``tune.report`` the answer. Its grid is the job's grid cut
to at most ``--scenarios`` (each axis to a prefix); ``sweep run`` (processes ×``--workers``, the default
backend) runs the same cut grid, and also the whole job (unless ``--no-full``) for its rate at scale.
The answers are compared scenario by scenario ($/token equal to 1e-12 relative).

Tune configurations (each in a fresh process with a fresh local Ray of ``--workers`` CPUs, in a private
network namespace; the script re-executes itself under ``unshare -n`` when it can):

- ``default``: ``Tuner(trainable, param_space=grid)`` with only ``storage_path`` moved to a temporary
  folder (instead of ``~/ray_results``); ``ray.init(num_cpus=workers)`` with Ray's defaults.
- ``tuned``: everything found to make it cheaper without changing what it computes —
  ``reuse_actors=True``, ``max_concurrent_trials=workers``, ``verbose=0``, ``log_to_file=False``, no
  checkpoints (``CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False)``), ``storage_path`` on
  tmpfs (/dev/shm), ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`` (no per-trial CSV/JSON/TensorBoard files),
  ``TUNE_GLOBAL_CHECKPOINT_S=1e9`` (no periodic experiment snapshot), ``TUNE_MAX_PENDING_TRIALS_PG=workers``,
  and Ray without dashboard and without forwarding worker logs (as the sweep's Ray backend starts it).
- ``tuned-batched``: as ``tuned``, but one trial runs 50 scenarios (``grid_search`` over chunks of the
  grid) — no longer one trial per grid point, shown to locate Tune's cost (it is per trial).

Rates are scenarios per second of ``Tuner.fit()`` (Ray's start excluded: the most favourable reading for
Tune) and of the whole ``run_sweep`` call (its worker start included). Target: sweep ≥ 50× Tune's rate.
"""

from __future__ import annotations

import argparse
import itertools
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
    job_subgrid,
    ray_status,
    reexec_in_netns,
    table,
    write_csv,
)

TARGET = 50.0
CONFIGS = ("default", "tuned", "tuned-batched")
BATCH = 50


def _env_for(config: str, workers: int) -> dict[str, str]:
    env = dict(os.environ)
    if config.startswith("tuned"):
        env.update({"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1000000000",
                    "TUNE_MAX_PENDING_TRIALS_PG": str(workers)})
    return env


# --------------------------------------------------------------------------- the Tune side (child process)


def _make_trainable(base: dict, base_dir: str, methods: tuple[str, ...], batched: list[list[dict]] | None):
    def solve(config: dict) -> dict:
        from pathlib import Path as _P

        from sweep.inputs.scenario import build_scenario
        from sweep.solve.methods import run_method
        from sweep.solve.prepare import prepare

        sc = build_scenario({**base, **config}, _P(base_dir), "tune")
        prep = prepare(sc)
        out = {"scenario_id": sc.scenario_id}
        for m in methods:
            r = run_method(m, prep.instance, prep.params)
            out[f"{m}_status"] = r.status
            out[f"{m}_cost_per_token"] = r.fleet.cost_per_token if r.fleet else None
        return out

    def trainable(config: dict) -> None:
        from ray import tune

        if batched is None:
            tune.report(solve(config))
        else:
            tune.report({"answers": json.dumps([solve(c) for c in batched[config["chunk"]]])})

    return trainable


def tune_child(config: str, job_path: str, n: int, workers: int) -> dict:
    import ray
    from ray import tune

    from sweep.inputs.job import load_job

    job = job_subgrid(load_job(job_path), n)
    points = [dict(zip(job.grid, combo, strict=True)) for combo in itertools.product(*job.grid.values())]
    batched = None
    if config == "tuned-batched":
        batched = [points[i:i + BATCH] for i in range(0, len(points), BATCH)]
        space = {"chunk": tune.grid_search(list(range(len(batched))))}
    else:
        space = {k: tune.grid_search(list(v)) for k, v in job.grid.items()}
    trainable = _make_trainable(job.base, str(job.base_dir), job.methods, batched)
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-tune-", dir="/dev/shm" if config.startswith("tuned")
                                 and os.path.isdir("/dev/shm") else None))
    t0 = time.perf_counter()
    if config == "default":
        ray.init(num_cpus=workers)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    if config == "default":
        tuner = tune.Tuner(trainable, param_space=space, run_config=tune.RunConfig(storage_path=str(root)))
    else:
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=workers),
            run_config=tune.RunConfig(
                storage_path=str(root), verbose=0, log_to_file=False,
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False)))
    t0 = time.perf_counter()
    results = tuner.fit()
    fit_s = time.perf_counter() - t0
    answers: dict[str, float | None] = {}
    errors = 0
    for r in results:
        if r.error is not None or not r.metrics:
            errors += 1
            continue
        rows = json.loads(r.metrics["answers"]) if batched is not None else [r.metrics]
        for a in rows:
            answers[a["scenario_id"]] = a.get(f"{job.methods[0]}_cost_per_token")
    files = sum(len(f) for _, _, f in os.walk(root))
    ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    return {"config": config, "scenarios": len(points), "trials": len(results), "errors": errors,
            "ray_init_s": init_s, "fit_s": fit_s, "files": files, "storage": str(root.parent), "answers": answers}


def run_tune(config: str, job_path: str, n: int, workers: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.vs_tune", "--_child", config, "--job", job_path,
           "--scenarios", str(n), "--workers", str(workers)]
    r = subprocess.run(cmd, cwd=REPO, env=_env_for(config, workers), capture_output=True, text=True, check=False)
    lines = [x for x in r.stdout.splitlines() if x.startswith("{\"config\"")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-15:]
        raise SystemExit(f"Tune ({config}) failed with exit {r.returncode}:\n" + "\n".join(tail))
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- the sweep side


def run_sweep_side(job, workers: int) -> dict:
    import pyarrow.dataset as ds

    from sweep.engine.runner import run_sweep

    with tempfile.TemporaryDirectory(prefix="sweep-bench-vs-tune-") as tmp:
        t0 = time.perf_counter()
        s = run_sweep(job, backend="processes", workers=workers, out=tmp, fresh=True, progress=False)
        wall = time.perf_counter() - t0
        t = ds.dataset(Path(tmp) / "solutions", format="parquet").to_table(
            columns=["scenario_id", "method", "cost_per_token"])
    m0 = job.methods[0]
    answers = {r["scenario_id"]: r["cost_per_token"] for r in t.to_pylist() if r["method"] == m0}
    return {"scenarios": s.scenarios, "wall_s": wall, "failures": s.failures, "answers": answers}


def agree(a: dict, b: dict) -> tuple[int, int]:
    same = 0
    for sid, x in a.items():
        y = b.get(sid, "missing")
        if x == y or (x is not None and isinstance(y, float) and abs(x - y) <= 1e-12 * abs(x)):
            same += 1
    return same, len(a)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "vs_tune")
    ap.add_argument("--job", default=str(JOBS / "bench-1000.toml"))
    ap.add_argument("--scenarios", type=int, default=200, help="Tune's grid: the job's grid cut to at most this many")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tune", default=",".join(CONFIGS), help=f"Tune configurations to run ({', '.join(CONFIGS)})")
    ap.add_argument("--no-full", action="store_true", help="skip sweep's run of the whole job")
    ap.add_argument("--_child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        print(json.dumps(tune_child(args._child, args.job, args.scenarios, args.workers)))
        return 0
    if __name__ == "__main__":
        reexec_in_netns("benchmarks.vs_tune", argv)
    if args.quick:
        args.scenarios, args.no_full = 4, True
        args.tune = "default,tuned" if args.tune == ",".join(CONFIGS) else args.tune
    why_not = ray_status()
    try:
        import ray.tune  # noqa: F401
    except ImportError as e:
        why_not = why_not or f"ray.tune does not import ({e}); pip install 'ray[tune]' (the bench extra)"
    if why_not:
        print(f"vs_tune: cannot run Ray Tune: {why_not}", file=sys.stderr)
        return 1

    from sweep.inputs.job import load_job

    full = load_job(args.job)
    job = job_subgrid(full, args.scenarios)
    header(f"vs Ray Tune: {job.name} grid cut to {job.size} scenarios × {', '.join(job.methods)}, {args.workers} CPUs")
    sw = run_sweep_side(job, args.workers)
    print(f"  sweep run (processes ×{args.workers}), {sw['scenarios']} scenarios: {sw['wall_s']:.1f} s",
          file=sys.stderr, flush=True)
    rows = [{"what": f"sweep run, processes ×{args.workers}", "scenarios": sw["scenarios"], "trials": "-",
             "seconds": sw["wall_s"], "rate": sw["scenarios"] / sw["wall_s"], "errors": sw["failures"],
             "files": "-", "agree": "-"}]
    if not args.no_full and full.size > job.size:
        fw = run_sweep_side(full, args.workers)
        rows.append({"what": f"sweep run, processes ×{args.workers} (whole job)", "scenarios": fw["scenarios"],
                     "trials": "-", "seconds": fw["wall_s"], "rate": fw["scenarios"] / fw["wall_s"],
                     "errors": fw["failures"], "files": "-", "agree": "-"})
    for config in [c for c in args.tune.split(",") if c]:
        t = run_tune(config, args.job, args.scenarios, args.workers)
        same, n = agree(t["answers"], sw["answers"])
        rows.append({"what": f"Ray Tune, {config}", "scenarios": t["scenarios"], "trials": t["trials"],
                     "seconds": t["fit_s"], "rate": t["scenarios"] / t["fit_s"], "errors": t["errors"],
                     "files": t["files"], "agree": f"{same}/{n}", "ray_init_s": t["ray_init_s"],
                     "s_per_trial": t["fit_s"] / max(1, t["trials"])})
        print(f"  Tune {config}: {t['fit_s']:.1f} s (+{t['ray_init_s']:.1f} s Ray start)", file=sys.stderr, flush=True)
    sweep_rate = rows[0]["rate"]
    full_rate = rows[1]["rate"] if len(rows) > 1 and "whole job" in rows[1]["what"] else None
    for r in rows:
        if r["what"].startswith("Ray Tune"):
            r["sweep_x"] = sweep_rate / r["rate"]
            if full_rate:
                r["sweep_full_x"] = full_rate / r["rate"]
            r["target_x"] = TARGET
    print(table(["run", "scenarios", "trials", "seconds", "scen/s", "s/trial", "files", "errors", "same answers",
                 "sweep ×", "sweep (whole job) ×", "target"],
                [[r["what"], r["scenarios"], r["trials"], fmt(r["seconds"], 2), fmt(r["rate"], 2),
                  fmt(r.get("s_per_trial"), 3), r["files"], r["errors"], r["agree"],
                  fmt(r.get("sweep_x"), 1) + ("×" if "sweep_x" in r else ""),
                  fmt(r.get("sweep_full_x"), 1) + ("×" if "sweep_full_x" in r else ""),
                  f"≥ {TARGET:g}×" if "sweep_x" in r else ""] for r in rows]))
    print("sweep × = sweep's scenarios/s over Tune's on the same grid; Tune's time is Tuner.fit() only "
          "(Ray's start excluded), sweep's the whole run_sweep call; files = files Tune left in its storage.")
    path = write_csv(rows, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
