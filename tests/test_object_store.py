"""Object-store output (SPEC §8, issue 5): `sweep run --out s3://…` writes to, resumes against and is
queried on a real S3-compatible server — moto, started by this module on 127.0.0.1 — with the same
rows as a local run. Both ways of naming an S3-compatible endpoint are covered: the AWS_ENDPOINT_URL
environment variable, and pyarrow's URI query ``?endpoint_override=http://HOST:PORT&scheme=http``.

Sweeps run as subprocesses (their own AWS environment, killable mid-run); the test reads the
bucket with an explicitly configured pyarrow S3FileSystem.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from conftest import REPO
from engine_jobs import rows, write_job

from sweep.engine.runner import run_sweep

BUCKET = "sweep-results"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}  # never ask an EC2 metadata service for credentials


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    def env(self, with_endpoint: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(CREDENTIALS)
        if with_endpoint:
            env["AWS_ENDPOINT_URL"] = self.endpoint
        return env

    def fs(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                                 endpoint_override=self.endpoint, scheme="http")

    def parts(self, prefix: str, table: str = "solutions") -> list[str]:
        sel = pafs.FileSelector(f"{BUCKET}/{prefix}/{table}", allow_not_found=True)
        return [i.path for i in self.fs().get_file_info(sel) if i.base_name.startswith("part-")]

    def download(self, prefix: str, dest: Path) -> Path:
        pafs.copy_files(f"{BUCKET}/{prefix}", str(dest), source_filesystem=self.fs(),
                        destination_filesystem=pafs.LocalFileSystem())
        return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server not installed: pip install -e '.[test]' (moto[server]), outside any namespace")
    import boto3

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:  # its own process group, stopped by it below
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("s3ref")
    job = write_job(tmp, name="s3")
    run_sweep(job, backend="processes", workers=2, out=str(tmp / "local"), progress=False)
    return job, rows(tmp / "local")


def sweep_cli(*args: object, env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=180, cwd=REPO, **kw)


def test_kill_midway_then_resume_on_s3(s3, reference, tmp_path):
    """SIGKILL a sweep writing to S3 after a few parts; the re-run skips exactly what was saved."""
    job, ref = reference
    uri = f"s3://{BUCKET}/runs/killed"
    cmd = [sys.executable, "-m", "sweep.cli", "run", str(job), "--out", uri, "--backend", "processes",
           "--workers", "2", "-q", "--flush-s", "0"]  # save every batch: parts land before the kill
    proc = subprocess.Popen(cmd, env=s3.env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(s3.parts("runs/killed")) < 2:
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert killed, f"the sweep ended before it could be killed: {err.decode()[-2000:]}"
    before = rows(s3.download("runs/killed", tmp_path / "before"))
    assert 0 < len(before) < len(ref)

    r = sweep_cli("run", job, "--out", uri, "--backend", "processes", "--workers", "2", "-q", env=s3.env())
    assert r.returncode == 0, r.stderr
    done = len({b["task_id"] for b in before})
    assert f"({len(ref) - done} run now, {done} already done), 0 failed" in r.stdout
    after = s3.download("runs/killed", tmp_path / "after")
    got = rows(after)
    assert len({g["task_id"] for g in got}) == len(got) == len(ref)
    assert got == ref
    manifest = json.loads((after / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["tasks"]["done"] == len(ref)
    assert len(s3.parts("runs/killed")) == 1  # compacted: one part, no duplicates


def test_endpoint_in_the_uri_run_resume_and_query(s3, reference, tmp_path):
    """No AWS_ENDPOINT_URL: the endpoint travels in the URI, for run, resume and query alike."""
    job, ref = reference
    uri = f"s3://{BUCKET}/runs/query?endpoint_override={s3.endpoint}&scheme=http"
    env = s3.env(with_endpoint=False)
    first = sweep_cli("run", job, "--out", uri, "--backend", "serial", "-q", env=env)
    assert first.returncode == 0 and f"({len(ref)} run now, 0 already done)" in first.stdout, first.stderr
    assert f"dataset: s3://{BUCKET}/runs/query" in first.stdout  # (its query string is not echoed)
    again = sweep_cli("run", job, "--out", uri, "--backend", "serial", "-q", env=env)
    assert again.returncode == 0 and f"(0 run now, {len(ref)} already done)" in again.stdout, again.stderr
    assert rows(s3.download("runs/query", tmp_path / "q")) == ref
    q = sweep_cli("query", uri, "--best", "--format", "json", env=env)
    assert q.returncode == 0, q.stderr
    best = [json.loads(line) for line in q.stdout.splitlines()]
    assert {(b["scenario_id"], b["method"]) for b in best} == {(r["scenario_id"], r["method"]) for r in ref}


def test_missing_bucket_is_one_error_line(s3, reference):
    job, _ = reference
    r = sweep_cli("run", job, "--out", "s3://no-such-bucket/x", "--backend", "serial", "-q", env=s3.env())
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("error: s3://no-such-bucket/x: "), r.stderr
