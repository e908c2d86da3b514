"""Ray clusters (issue 5): cluster-launcher configs validated by Ray itself, `sweep run --address` and
`sweep submit --wait` on a real two-node cluster (token auth on) giving the processes backend's rows,
one-line errors for a refused token or an unreachable cluster, and `sweep submit`'s input checks.

The cluster tests need a private network namespace (`bash tests/run.sh`); one cluster serves the
module (start ~11 s, stop ~5 s measured here). Sweeps run as subprocesses: each is its own Ray
driver with its own environment, as a user's would be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from engine_jobs import rows, write_job
from netns import requires_netns
from raycluster import RayCluster, free_port, start_cluster

from sweep.engine.cluster import plan_submission, validate_cluster_config
from sweep.engine.runner import run_sweep
from sweep.errors import InputError

CONFIGS = [REPO / "cluster.yaml", REPO / "jobs" / "cluster-onprem.yaml"]


def sweep_cli(*args: object, env: dict[str, str] | None = None, timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout_s, cwd=REPO)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    """The engine test job in a folder of its own, reading one catalog from a data file beside it
    (relative path): `sweep submit` must carry that file to the cluster."""
    folder = tmp_path_factory.mktemp("clusterjob")
    (folder / "data").mkdir()
    shutil.copy(REPO / "sweep" / "data" / "offerings.csv", folder / "data" / "offerings.csv")
    return write_job(folder, name="clu", extra='"catalog.offerings" = ["data/offerings.csv"]\n')


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ref") / "p"
    s = run_sweep(job, backend="processes", workers=2, out=str(out), progress=False)
    assert s.failures == 0 and s.tasks_run == s.tasks_total == 64
    return rows(out)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    c = start_cluster(cpus_per_node=1, workers=1)
    try:
        yield c
    finally:
        c.stop()


# ------------------------------------------------------------------------------------ configs (offline)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_cluster_configs_pass_rays_validation(path):
    cfg = validate_cluster_config(path)
    raw = path.read_text()
    assert "max_workers:" in raw.split("available_node_types")[0], "top-level max_workers must be explicit"
    # secure by default: token auth on every node, the dashboard on loopback, nothing on 0.0.0.0
    for cmds in (cfg["head_start_ray_commands"], cfg["worker_start_ray_commands"]):
        start = next(c for c in cmds if "ray start" in c)
        assert "RAY_AUTH_MODE=token" in start
    assert "--dashboard-host=127.0.0.1" in " ".join(cfg["head_start_ray_commands"])
    assert "0.0.0.0" not in raw
    assert "~/.ray/auth_token" in cfg["file_mounts"]
    assert any("pip install" in c and "sweep" in c for c in cfg["setup_commands"])


def test_aws_config_autoscales_cpu_workers():
    cfg = validate_cluster_config(REPO / "cluster.yaml")
    assert cfg["provider"]["type"] == "aws"
    assert cfg["available_node_types"][cfg["head_node_type"]]["resources"] == {"CPU": 0}  # solves go to workers
    workers = [n for name, n in cfg["available_node_types"].items() if name != cfg["head_node_type"]]
    assert workers and all(n["min_workers"] == 0 < n["max_workers"] <= cfg["max_workers"] for n in workers)
    assert all("GPU" not in n.get("resources", {}) for n in workers)
    assert all(not n["node_config"]["InstanceType"].startswith(("p", "g")) for n in workers)
    assert 0 < cfg["idle_timeout_minutes"] <= 30


def test_onprem_config_is_local_provider():
    cfg = validate_cluster_config(REPO / "jobs" / "cluster-onprem.yaml")
    assert cfg["provider"]["type"] == "local"
    assert cfg["provider"]["head_ip"] and cfg["provider"]["worker_ips"]


def test_bad_cluster_config_is_one_line_per_problem(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text((REPO / "cluster.yaml").read_text().replace("idle_timeout_minutes: 5", "idle_timeout_minutes: five"))
    with pytest.raises(InputError) as e:
        validate_cluster_config(bad)
    assert e.value.lines() == [f"error: {bad}: idle_timeout_minutes: 'five' is not of type 'number'"]
    missing = tmp_path / "m.yaml"
    missing.write_text("\n".join(ln for ln in (REPO / "cluster.yaml").read_text().splitlines()
                                 if not ln.startswith("max_workers")))
    with pytest.raises(InputError, match="max_workers"):
        validate_cluster_config(missing)


# ------------------------------------------------------------------------------------ submit: local checks


def test_submission_carries_the_job_folder(job):
    sub = plan_submission(job, "s3://bucket/sweeps/clu?endpoint_override=http://127.0.0.1:9000&scheme=http")
    assert sub.runtime_env["working_dir"] == str(job.parent.resolve())
    assert "results/" in sub.runtime_env["excludes"]
    assert sub.entrypoint == ("python -m sweep.cli run clu.toml --backend ray --out "
                              "'s3://bucket/sweeps/clu?endpoint_override=http://127.0.0.1:9000&scheme=http'")
    assert sub.out == "s3://bucket/sweeps/clu?…"  # what is printed: a URI's query may carry credentials
    default = plan_submission(job)
    assert default.entrypoint.endswith('--out "$HOME"/sweep-results/clu') and default.out == "$HOME/sweep-results/clu"


def test_submit_refuses_what_would_not_work_on_the_cluster(tmp_path, job):
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(REPO / "sweep" / "data" / "gpus.csv", outside)
    (tmp_path / "sub").mkdir()
    j = write_job(tmp_path / "sub", extra=f'"catalog.gpus" = ["{outside}"]\n"catalog.models" = ["missing.csv"]\n')
    r = sweep_cli("submit", j, "--address", "http://127.0.0.1:1", "--out", "rel/out")
    err = error_lines(r.stderr)
    assert r.returncode == 2 and len(err) == 3, r.stderr
    assert any("grid.catalog.gpus" in ln and "outside the job's folder" in ln for ln in err)
    assert any("grid.catalog.models" in ln and "file not found" in ln for ln in err)
    assert any(ln.startswith("error: --out: rel/out is relative") for ln in err)
    for args in (["--address", "127.0.0.1:6379"], ["--status", "x", "--address", "ftp://h:1"]):
        r = sweep_cli("submit", *([job] if "--status" not in args else []), *args)
        assert r.returncode == 2 and len(error_lines(r.stderr)) == 1 and "dashboard URL" in r.stderr
    r = sweep_cli("submit", job, "--address", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 2 and error_lines(r.stderr) == [r.stderr.strip()], r.stderr
    assert "cannot reach the Ray dashboard" in r.stderr


# ------------------------------------------------------------------------------------ a real cluster


@pytest.mark.ray
@requires_netns
def test_run_with_address_uses_both_nodes(cluster, job, reference, tmp_path):
    out = tmp_path / "ray"
    t0 = time.monotonic()
    r = sweep_cli("run", job, "--backend", "ray", "--address", cluster.address, "--out", out, env=cluster.client_env())
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    # sized by the cluster: two nodes of one CPU each
    assert f"on ray ({cluster.address}) ×2" in r.stderr, r.stderr
    assert "64 run now" in r.stdout and "0 failed" in r.stdout
    assert rows(out) == reference
    print(f"sweep run --address: {took:.1f}s")


@pytest.mark.ray
@requires_netns
def test_submit_wait_gives_the_same_rows(cluster, job, reference, tmp_path):
    out = tmp_path / "job"
    t0 = time.monotonic()
    r = sweep_cli("submit", job, "--address", cluster.dashboard, "--out", out, "--wait", env=cluster.client_env())
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    job_id = r.stdout.splitlines()[0]
    assert job_id.startswith("raysubmit_")
    assert "64 run now" in r.stdout  # the driver's summary, followed from the job's logs
    assert f"job {job_id}: SUCCEEDED" in r.stderr
    assert rows(out) == reference
    s = sweep_cli("submit", "--status", job_id, "--address", cluster.dashboard, env=cluster.client_env())
    assert s.returncode == 0 and s.stdout.startswith(f"{job_id}: SUCCEEDED")
    print(f"sweep submit --wait: {took:.1f}s")


@pytest.mark.ray
@requires_netns
def test_submit_a_job_whose_base_scenario_names_files_relatively(cluster, tmp_path):
    """The README's shape: a base scenario.toml naming its catalogs and profile by relative path beside
    it. Everything a task needs travels with it: the job runs on the two-node cluster and gives the
    rows a local run gives."""
    from conftest import SMALL_FILES, SMALL_SCENARIO, toml_text

    folder = tmp_path / "rel"
    folder.mkdir()
    for name, content in SMALL_FILES.items():
        (folder / name).write_text(content)
    (folder / "scenario.toml").write_text(toml_text(SMALL_SCENARIO))
    (folder / "job.toml").write_text('[sweep]\nname = "rel"\nmethods = ["dinkelbach", "enumeration", "pareto"]\n'
                                     'base = "scenario.toml"\n[grid]\n"workload.min_throughput" = [0, 500, 2500.5]\n'
                                     '"catalog.price" = ["on_demand", "spot"]\n')
    local = run_sweep(folder / "job.toml", backend="processes", workers=2, out=str(tmp_path / "local"), progress=False)
    assert local.failures == 0
    out = tmp_path / "remote"
    r = sweep_cli("submit", folder / "job.toml", "--address", cluster.dashboard, "--out", out, "--wait",
                  env=cluster.client_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(out) == rows(tmp_path / "local")


@pytest.mark.ray
@requires_netns
def test_failed_and_stopped_jobs_exit_1(cluster, job, tmp_path):
    # the output folder is in use on the head (a live lock): the job's `sweep run` exits 2, the job FAILS
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        r = sweep_cli("submit", job, "--address", cluster.dashboard, "--out", out, "--wait", env=cluster.client_env())
        assert r.returncode == 1, r.stdout + r.stderr
        assert "in use by another sweep run" in r.stdout  # the job's own error line, from its logs
        assert "FAILED: Job entrypoint command failed with exit code 2" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    r = sweep_cli("submit", job, "--address", cluster.dashboard, "--out", tmp_path / "s", env=cluster.client_env())
    job_id = r.stdout.strip()
    assert r.returncode == 0 and job_id.startswith("raysubmit_")
    s = sweep_cli("submit", "--stop", job_id, "--address", cluster.dashboard, "--wait", env=cluster.client_env())
    assert s.returncode == 0 and s.stdout.strip() == f"{job_id}: STOPPED", s.stdout + s.stderr
    unknown = sweep_cli("submit", "--status", "raysubmit_nope", "--address", cluster.dashboard, env=cluster.client_env())
    assert unknown.returncode == 2 and error_lines(unknown.stderr) == [
        f"error: raysubmit_nope: no such job on the cluster at {cluster.dashboard}"]


@pytest.mark.ray
@requires_netns
def test_refused_token_is_one_error_line(cluster, job, tmp_path):
    wrong = cluster.client_env(RAY_AUTH_TOKEN="0" * 64)  # RAY_AUTH_TOKEN wins over RAY_AUTH_TOKEN_PATH
    no_mode = {k: v for k, v in cluster.client_env().items() if k != "RAY_AUTH_MODE"}
    cases = [
        (wrong, ["run", job, "--backend", "ray", "--address", cluster.address, "--out", tmp_path / "a"]),
        (no_mode, ["run", job, "--backend", "ray", "--address", cluster.address, "--out", tmp_path / "b"]),
        (wrong, ["submit", job, "--address", cluster.dashboard, "--out", tmp_path / "c"]),
        (no_mode, ["submit", "--status", "raysubmit_x", "--address", cluster.dashboard]),
    ]
    for env, args in cases:
        t0 = time.monotonic()
        r = sweep_cli(*args, env=env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == error_lines(r.stderr) and len(error_lines(r.stderr)) == 1, r.stderr
        assert "refused this client" in r.stderr and "RAY_AUTH_MODE=token" in r.stderr
        assert ("RAY_AUTH_MODE is unset here" in r.stderr) == (env is no_mode)
        assert time.monotonic() - t0 < 30  # not ray.init's ~20 s of retries (measured ~1.5 s)
    assert not any((tmp_path / d).exists() for d in "abc")  # nothing written


@pytest.mark.ray
@requires_netns
def test_unreachable_cluster_is_one_error_line(cluster, job, tmp_path):
    r = sweep_cli("run", job, "--backend", "ray", "--address", f"127.0.0.1:{free_port()}", "--out", tmp_path / "x",
                  env=cluster.client_env())
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1 and "cannot reach a Ray cluster" in r.stderr
    assert not (tmp_path / "x").exists()
