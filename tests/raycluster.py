"""A real two-node Ray cluster on 127.0.0.1 for tests: ``ray start --head`` plus ``ray start --address``.

Only inside a private network namespace (tests/run.sh; see tests/netns.py): there every Ray server is
on 127.0.0.1 and nothing is reachable from outside. Each node runs as ``setsid ray start … --block``,
so it is its own process group; :meth:`RayCluster.stop` ends those groups (SIGTERM, then SIGKILL
after a grace period) and then any process still carrying this cluster's marker variable (Ray
workers and job drivers inherit it). Never ``ray stop``: that kills every Ray process on the host.

Token authentication is ON, explicitly, for every process: ``RAY_AUTH_MODE=token`` and
``RAY_AUTH_TOKEN_PATH`` pointing to a fresh random token in the cluster's private temp dir. That is
the configuration users should run (README "Run on a Ray cluster"), it keeps the tests independent
of a ``~/.ray/auth_token`` on the machine, and it lets a test check what a wrong token looks like.
``RAY_AUTH_TOKEN`` is removed from the environment so it cannot shadow the file.

The temp dir is a short ``/tmp/ray-<random>`` (unix socket paths must stay under ~107 bytes, which
a pytest ``tmp_path`` can exceed) and is removed on stop.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

MARKER = "SWEEP_TEST_RAY_CLUSTER"
GRACE_S = 10.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's ephemeral range: outside Ray's 10002–19999)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    """Explicit ports for one node's side servers: two nodes share 127.0.0.1, so no fixed defaults."""
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
    ]


@dataclass
class RayCluster:
    """A running local cluster: its GCS ``address``, ``dashboard`` URL and the env its clients need."""

    address: str
    dashboard: str
    temp_dir: Path
    token_path: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a client (driver, `sweep submit`) of this cluster, plus ``extra``."""
        return {**self.env, **extra}

    def alive_nodes(self) -> int:
        r = requests.get(f"{self.dashboard}/nodes?view=summary", timeout=5,
                         headers={"Authorization": f"Bearer {self.token_path.read_text().strip()}"})
        r.raise_for_status()
        nodes = r.json()["data"]["summary"]
        return sum(1 for n in nodes if n.get("raylet", {}).get("state") == "ALIVE")

    def wait_nodes(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"ray start exited with {p.returncode}: {' '.join(p.args)}")
            try:
                if self.alive_nodes() >= n:
                    return
            except (requests.RequestException, KeyError, ValueError) as e:
                last = e
            time.sleep(0.25)
        raise TimeoutError(f"{n} Ray nodes not alive after {timeout_s:.0f}s (last error: {last})")

    def stop(self) -> None:
        """End every process of this cluster by its own process group / pid; remove the temp dir.

        SIGTERM goes to each node's group leader (``ray start --block``), which stops its node's
        processes in order; SIGTERM to the whole group at once left the GCS running for over 30 s
        (measured). Whatever is left of a group after the grace period gets SIGKILL.
        """
        for p in reversed(self.procs):  # workers first, the head last
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + GRACE_S
            try:
                p.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            while _group_alive(p.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(p.pid, signal.SIGKILL)
            p.wait()
        # workers or job drivers that left the node's process group still carry the marker
        for pid in _marked_pids(self.env[MARKER]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment has ``MARKER=marker`` (this cluster's, and only those)."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            pids.append(int(d.name))
    return pids


def start_cluster(cpus_per_node: int = 1, workers: int = 1, timeout_s: float = 60.0) -> RayCluster:
    """Start a head and ``workers`` worker nodes on 127.0.0.1; wait until all are alive.

    Raises RuntimeError/TimeoutError (after stopping whatever started) if the cluster does not come up.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    token_path = temp_dir / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    env.update({
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_path),
        "RAY_USAGE_STATS_ENABLED": "0",
        MARKER: str(temp_dir),
    })
    gcs_port, dash_port = free_port(), free_port()
    cluster = RayCluster(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}", temp_dir, token_path, env)
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--num-gpus=0",
              "--object-store-memory=100000000", "--disable-usage-stats", "--block"]
    head = ["ray", "start", "--head", f"--port={gcs_port}", f"--temp-dir={temp_dir}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
            f"--ray-client-server-port={free_port()}", "--min-worker-port=20000", "--max-worker-port=20999",
            *node_ports(), *common]
    log = temp_dir / "start.log"
    try:
        t0 = time.monotonic()
        cluster.procs.append(_spawn(head, env, log))
        _wait_port(gcs_port, cluster.procs[0], timeout_s)  # workers can join once the GCS listens
        cluster.timings_s["gcs_s"] = time.monotonic() - t0
        for i in range(workers):
            lo = 21000 + 1000 * i
            # its own temp dir, as on a real second machine: nodes sharing one would share runtime_env
            # folders, and one node re-unpacking a job's working_dir deletes it under the other's driver
            cmd = ["ray", "start", f"--address={cluster.address}", f"--temp-dir={temp_dir / f'w{i}'}",
                   f"--min-worker-port={lo}",
                   f"--max-worker-port={lo + 999}", *node_ports(), *common]
            cluster.procs.append(_spawn(cmd, env, log))
        cluster.wait_nodes(1 + workers, timeout_s)
        cluster.timings_s["all_alive_s"] = time.monotonic() - t0
    except BaseException:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        cluster.stop()
        if tail:
            print(f"--- ray start output (tail) ---\n{tail}")
        raise
    return cluster


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s:.0f}s")


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # setsid: the node is its own process group


@contextmanager
def ray_cluster(**kwargs: object) -> Iterator[RayCluster]:
    """``with ray_cluster() as c:`` — a started cluster, stopped on exit (also on error)."""
    c = start_cluster(**kwargs)  # type: ignore[arg-type]
    try:
        yield c
    finally:
        c.stop()


if __name__ == "__main__":  # manual check, inside `unshare -n`: start, report, stop
    with ray_cluster() as c:
        print(c.address, c.dashboard, {k: round(v, 1) for k, v in c.timings_s.items()}, c.alive_nodes())
