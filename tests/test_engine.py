"""The sweep engine end to end: same rows on every backend, resume after SIGKILL, a poisoned task,
a killed worker, job validation — real solves, real Parquet, real processes and a real local Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from engine_jobs import rows, write_job
from netns import requires_netns

from sweep.cli import main
from sweep.engine.runner import run_sweep
from sweep.results.store import Store


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("ref")
    job = write_job(tmp)
    s = run_sweep(job, backend="serial", out=str(tmp / "out"), progress=False)
    assert s.failures == 0 and s.tasks_run == s.tasks_total > 0
    return job, rows(tmp / "out")


def test_serial_dataset_is_complete(reference, tmp_path):
    job, ref = reference
    ids = [r["task_id"] for r in ref]
    assert len(ids) == len(set(ids))
    # 8 scenarios x (4 single-row methods + 4 enumeration points)
    assert len(ids) == 8 * (4 + 4)
    out = Path(ds.dataset(job.parent / "out" / "solutions").files[0]).parents[1]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["tasks"]["total"] == len(ids)
    sc = ds.dataset(out / "scenarios.parquet").to_table()
    assert sc.num_rows == 8 and "workload_prompt_tokens" in sc.column_names
    # each enumeration scenario has exactly one best point, the least $/token among its points
    enum = [r for r in ref if r["method"] == "enumeration"]
    for sid in {r["scenario_id"] for r in enum}:
        pts = [r for r in enum if r["scenario_id"] == sid]
        best = [r for r in pts if r["is_best"]]
        feasible = [r for r in pts if r["cost_per_token"] is not None]
        assert len(best) == (1 if feasible else 0)
        if feasible:
            assert best[0]["cost_per_token"] == min(r["cost_per_token"] for r in feasible)
    # pareto's answer is the frontier's least $/token point
    front = rows(out, "frontier")
    for r in (r for r in ref if r["method"] == "pareto" and r["cost_per_token"] is not None):
        pts = [f for f in front if f["scenario_id"] == r["scenario_id"]]
        assert pts and min(p["cost_per_token"] for p in pts) == pytest.approx(r["cost_per_token"], rel=1e-12)


# every parallel backend passes the same suite against the serial reference
BACKENDS = [pytest.param("processes", id="processes"),
            pytest.param("ray", id="ray", marks=[pytest.mark.ray, requires_netns])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_gives_the_serial_rows(backend, reference, tmp_path):
    job, ref = reference
    s = run_sweep(job, backend=backend, workers=2, out=str(tmp_path / "p"), progress=False)
    assert s.failures == 0
    assert rows(tmp_path / "p") == ref


@pytest.mark.ray
@requires_netns
def test_local_ray_never_attaches_to_a_stale_cluster(reference, tmp_path):
    """Ray's leftover address file names a cluster that is gone: `--backend ray` without an address
    starts its own private Ray and gives the same rows (SPEC §9). In a private mount namespace with a
    tmpfs on /tmp/ray, so the test touches no Ray file outside it."""
    job, ref = reference
    out = tmp_path / "stale"
    script = ("mount -t tmpfs tmpfs /tmp/ray && echo 127.0.0.1:6399 > /tmp/ray/ray_current_cluster && "
              f"exec {sys.executable} -m sweep.cli run {job} --backend ray --workers 2 -q --out {out}")
    os.makedirs("/tmp/ray", exist_ok=True)  # the mount point (the mount itself stays in the namespace)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "internal" not in r.stderr
    assert rows(out) == ref


def test_resume_skips_finished_work(reference, tmp_path):
    job, ref = reference
    out = tmp_path / "o"
    run_sweep(job, backend="serial", out=str(out), progress=False)
    again = run_sweep(job, backend="serial", out=str(out), progress=False)
    assert again.tasks_run == 0 and again.tasks_skipped == len(ref)
    assert rows(out) == ref
    fresh = run_sweep(job, backend="serial", out=str(out), progress=False, fresh=True)
    assert fresh.tasks_run == len(ref)
    assert rows(out) == ref


def test_sigkill_of_driver_then_resume(reference, tmp_path):
    """Kill the driver's whole process group mid-sweep; a re-run completes with no duplicate or missing task."""
    job, ref = reference
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "sweep.cli", "run", str(job), "--out", str(out), "--backend", "processes",
           "--workers", "2", "-q", "--flush-s", "0"]  # save every batch, so parts are on disk before the kill
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list((out / "solutions").glob("part-*.parquet")) if (out / "solutions").exists() else []
        if len(parts) >= 2:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed, "the sweep finished before it could be killed; make the job larger"
    before = {r["task_id"] for r in ds.dataset(out / "solutions").to_table(columns=["task_id"]).to_pylist()}
    assert 0 < len(before) < len(ref)
    s = run_sweep(job, backend="processes", workers=2, out=str(out), progress=False)
    assert s.tasks_skipped == len(before) and s.tasks_run == len(ref) - len(before)
    got = rows(out)
    assert len({r["task_id"] for r in got}) == len(got) == len(ref)
    assert got == ref


@pytest.mark.parametrize("backend", BACKENDS)
def test_poisoned_task_is_one_error_row(backend, reference, tmp_path, monkeypatch):
    job, ref = reference
    victim = next(r["task_id"] for r in ref if r["method"] == "dinkelbach")
    monkeypatch.setenv("SWEEP_FAULTS", f"raise:{victim}")
    s = run_sweep(job, backend=backend, workers=2, out=str(tmp_path / "x"), progress=False)
    got = {r["task_id"]: r for r in rows(tmp_path / "x")}
    assert s.failures == 1
    assert got[victim]["status"] == "error" and "injected fault" in got[victim]["error"]
    for r in ref:
        if r["task_id"] != victim:
            assert got[r["task_id"]] == r


def test_killed_worker_is_retried(reference, tmp_path, monkeypatch):
    job, ref = reference
    victim = next(r["task_id"] for r in ref if r["method"] == "pareto")
    monkeypatch.setenv("SWEEP_FAULTS", f"kill:{victim}")
    monkeypatch.setenv("SWEEP_FAULTS_DIR", str(tmp_path))
    s = run_sweep(job, backend="processes", workers=2, out=str(tmp_path / "w"), progress=False)
    assert (tmp_path / ("killed-" + victim.replace("/", "_"))).exists(), "the worker was not killed"
    assert s.failures == 0
    assert rows(tmp_path / "w") == ref


def test_bad_job_exit_2_and_nothing_written(tmp_path, capsys):
    job = write_job(tmp_path, extra='"workload.prompt_len" = [1]\n"workload.output_tokens" = [0, 5]\n')
    code = main(["run", str(job), "--out", str(tmp_path / "bad"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any("grid.workload.prompt_len: unknown key" in line for line in err)
    assert any("grid.workload.output_tokens" in line and "> 0" in line for line in err)
    assert all(line.startswith("error: ") for line in err)
    assert not (tmp_path / "bad").exists()


def test_second_run_into_same_folder_is_refused(reference, tmp_path, capsys):
    job, _ = reference
    out = tmp_path / "l"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        code = main(["run", str(job), "--out", str(out), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and "in use by another sweep run" in err
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and is taken over
    assert main(["run", str(job), "--out", str(out), "-q", "--backend", "serial"]) == 0


def test_min_cost_in_a_sweep_without_any_demand_is_bad_input(tmp_path, run_cli):
    """SPEC §5.1: min_cost needs a demand. A sweep with some demand runs it where there is one; a sweep with
    none is one `error:` line, exit 2, nothing written."""
    path = write_job(tmp_path, name="nodemand", methods=("min_cost",))
    r = run_cli("run", path, "--backend", "serial", "--out", tmp_path / "o", "-q")
    assert r.code == 2 and r.err.strip().splitlines() == [
        f"error: {path}: sweep.methods: min_cost needs a demand, and no scenario of this sweep sets "
        "workload.min_throughput or workload.request_rate"], r.err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ a driver that coordinates, not computes

EXPLICIT_JOB = """
model = "llama-2-13b"

[sweep]
name = "files"
methods = ["max_throughput", "dinkelbach"]

[workload]
prompt_tokens = 512
output_tokens = 256
tpot_slo_ms = 50

[catalog]
price = "spot"
only = ["runpod-1xL40S", "runpod-2xL40S"]

[perf]
source = "profile"
profile = "data/profile.csv"

[[scenarios]]
"limits.budget" = 2.0

[[scenarios]]
"limits.budget" = 4.0
"catalog.price" = "on_demand"

[grid]
"workload.prompt_tokens" = [256, 512, 1024]
"workload.output_tokens" = [128, 256]
"""


def write_files_job(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "jobs" / "data" / "counterexample-profile.csv"
    (folder / "data" / "profile.csv").write_bytes(src.read_bytes())
    job = folder / "files.toml"
    job.write_text(EXPLICIT_JOB)
    return job


def test_scenario_ranges_match_the_jobs_own_order(tmp_path):
    """Workers expand index ranges; the ranges give exactly the job's scenarios, in its order."""
    from sweep.engine.plan import raw_at, raw_range
    from sweep.inputs.job import load_job

    job = load_job(write_files_job(tmp_path))
    want = list(job.raw_scenarios())
    assert len(want) == job.size == 12
    assert [(i, raw_at(job, i)) for i in range(job.size)] == want
    for lo, hi in [(0, 12), (0, 1), (5, 9), (11, 12), (3, 3), (6, 12)]:
        assert list(raw_range(job, lo, hi)) == want[lo:hi]


def test_files_travel_with_the_work(tmp_path):
    """A worker needs none of the driver's files: the job's data files travel as contents. With the job's
    folder gone, a chunk still validates and solves, with the same scenario ids and the file values as the
    job gave them; its rows are written by the worker, not returned."""
    from sweep.engine.plan import Chunk
    from sweep.engine.runner import context
    from sweep.engine.worker import run_chunk, survey_chunk
    from sweep.inputs.job import load_job

    folder = tmp_path / "job"
    job = load_job(write_files_job(folder))
    ids = [sc.scenario_id for sc in job.scenarios()]
    ctx = context(job, out=str(tmp_path / "out"))
    assert any(name.endswith("profile.csv") for name in ctx.files)
    folder.rename(tmp_path / "gone")
    handle = ("obj", ctx.key, ctx)
    part = survey_chunk(handle, Chunk(0, 0, job.size))
    assert not part.problems
    from sweep.results.rows import from_ipc

    t = from_ipc(part.table).to_pydict()
    assert t["scenario_id"] == ids and part.ids == tuple(int(i, 16) for i in ids)
    assert part.index == tuple(range(job.size)) and part.tasks == (2,) * job.size
    assert set(t["perf_profile"]) == {"data/profile.csv"} and set(t["catalog_gpus"]) == {"builtin"}
    with Store(str(tmp_path / "out"), "files"):  # the driver holds the dataset; the worker writes into it
        done = run_chunk(handle, Chunk(1, 2, 5))
    assert (done.tasks, done.errors, done.tables, done.store_error) == (6, 0, None, ())
    got = rows(tmp_path / "out")
    assert {r["scenario_id"] for r in got} == set(ids[2:5]) and len(got) == 6
    assert all(r["status"] == "optimal" for r in got)


def test_the_driver_builds_no_scenario_beyond_the_first(reference, tmp_path, monkeypatch):
    """The driver validates one scenario itself (a bad job fails fast); the workers build the rest —
    the same rows as the serial reference."""
    import sweep.engine.runner as runner
    import sweep.inputs.job as job_module

    built = []
    real = job_module.build_scenario

    def counting(*a, **kw):
        built.append(a[2])
        return real(*a, **kw)

    monkeypatch.setattr(job_module, "build_scenario", counting)
    monkeypatch.setattr(runner, "build_scenario", counting)
    job, ref = reference
    s = run_sweep(job, backend="processes", workers=2, out=str(tmp_path / "p"), progress=False)
    assert s.failures == 0 and s.tasks_run == len(ref)
    assert built == [f"{job}#0"]
    assert rows(tmp_path / "p") == ref


def test_a_job_that_generates_its_own_scenarios(reference, tmp_path):
    """A Job subclass with its own ``raw_scenarios`` (the benchmarks' grid samples) runs those scenarios,
    though workers expand jobs by index: the engine turns it into its list of scenarios first."""
    from dataclasses import dataclass, fields

    from sweep.inputs.job import Job, load_job

    job, ref = reference

    @dataclass(frozen=True)
    class EveryOther(Job):
        def raw_scenarios(self):
            for i, raw in Job.raw_scenarios(self):
                if i % 2 == 0:
                    yield i // 2, raw

        @property
        def size(self) -> int:
            return 4

    plain = load_job(job)
    sample = EveryOther(**{f.name: getattr(plain, f.name) for f in fields(Job)})
    want = [sc.scenario_id for sc in sample.scenarios()]
    s = run_sweep(sample, backend="processes", workers=2, out=str(tmp_path / "s"), progress=False)
    assert s.scenarios == 4 and s.failures == 0
    got = rows(tmp_path / "s")
    assert {r["scenario_id"] for r in got} == set(want)
    assert got == [r for r in ref if r["scenario_id"] in set(want)]
