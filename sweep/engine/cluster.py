"""Ray clusters (SPEC §7 ``sweep submit``, §9 ``ray`` backend): joining one, Ray Jobs, token auth, and
offline checks of cluster-launcher configs.

- :func:`join` connects this process to a running cluster (``sweep run --backend ray --address``),
  failing fast with one :class:`~sweep.errors.InputError` line when nothing listens there or the
  cluster refuses this client's token (``ray.init`` alone retries for ~20 s and prints a warning a second).
- :func:`plan_submission` turns a job file into a Ray Job (entrypoint, ``runtime_env``); :class:`Jobs`
  submits, follows, inspects and stops it through ``ray.job_submission.JobSubmissionClient``.
- :func:`validate_cluster_config` runs Ray's own validation of a ``ray up`` YAML, without a cloud.

Token authentication (Ray ≥ 2.52): every Ray process of a cluster, and every client, needs
``RAY_AUTH_MODE=token`` and the cluster's token, from ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token`` (in that order; ``ray get-auth-token --generate``
writes the last). A client without the mode set sends no token and is refused.

``ray`` is imported inside functions only: importing this module never needs Ray.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from sweep.errors import InputError, Problem, Problems

if TYPE_CHECKING:
    from sweep.inputs.job import Job

TOKEN_HELP = ("set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN, a file named by "
              "RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token (`ray get-auth-token` on the head node prints it)")
# Ray Job states: the terminal ones and the exit code `sweep submit --wait` gives each
OUTCOME_EXIT = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 1}
CONNECT_TIMEOUT_S = 5.0
# never uploaded with a job's folder: earlier results and tool caches
UPLOAD_EXCLUDES = ["results/", ".git/", "__pycache__/", "*.pyc", ".venv/", ".tmp-*"]
_FILE_KEYS = ("catalog.gpus", "catalog.offerings", "catalog.models", "perf.profile")


class ClusterError(Exception):
    """The cluster failed a request that was well formed (exit 3); ``str()`` is one line."""


# ---------------------------------------------------------------------------------------------- auth


def is_auth_error(e: BaseException) -> bool:
    """Whether ``e`` is Ray refusing this client's token (gRPC or HTTP)."""
    if e.__class__.__name__ == "AuthenticationError":
        return True
    text = str(e)
    return any(s in text for s in ("InvalidAuthToken", "Authentication token is missing or incorrect",
                                   "Unauthorized: Missing authentication token",
                                   "Forbidden: Invalid authentication token"))


def auth_problem(where: str, e: BaseException) -> Problem:
    """One line for a refused token: what Ray said, this shell's RAY_AUTH_MODE if not 'token', the fix."""
    said = _first_line(getattr(e, "message", None) or str(e))
    for prefix in ("RPC error: ", "Authentication required: "):
        said = said.removeprefix(prefix)
    mode = os.environ.get("RAY_AUTH_MODE")
    note = "" if mode == "token" else f"; RAY_AUTH_MODE is {'unset' if mode is None else repr(mode)} here"
    return Problem(where, f"the Ray cluster refused this client ({said}){note}: {TOKEN_HELP}")


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0].rstrip(".") if lines else "no details"


# ---------------------------------------------------------------------------------------------- joining


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` GCS address; None for ``auto``, ``ray://…`` and other forms."""
    if "://" in address or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def check_reachable(where: str, host: str, port: int, what: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise InputError unless a TCP connection to host:port opens within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise InputError([Problem(where, f"cannot reach {what} at {host}:{port} ({why})")]) from None


@contextmanager
def _stderr_to_file() -> Iterator[None]:
    """Send this process's fd 2 (where Ray's C++ core logs) to a scratch file for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_gcs(address: str) -> None:
    """Fail fast on a ``HOST:PORT`` cluster address: nothing listening, or the token refused.

    One probe of the GCS (``ray._raylet.GcsClient``, private: used only here) answers in
    milliseconds where ``ray.init`` would retry for ~20 s. Raises InputError (one line).
    """
    hp = _host_port(address)
    if hp is None:
        return
    check_reachable(address, *hp, what="a Ray cluster (GCS)")
    try:
        from ray._raylet import GcsClient
    except ImportError:
        return
    try:
        with _stderr_to_file():
            GcsClient(address=address)
    except Exception as e:  # noqa: BLE001 - only classified here; ray.init reports anything else
        if is_auth_error(e):
            raise InputError([auth_problem(address, e)]) from None


def join(address: str) -> None:
    """Connect this process to the Ray cluster at ``address`` (``HOST:PORT``, ``auto`` or ``ray://…``).

    Raises InputError with one line if it cannot be reached, refuses the token, or runs another Ray.
    """
    import ray

    check_gcs(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, AuthenticationError…
        cause = e.__cause__ or e
        if is_auth_error(e) or is_auth_error(cause):
            raise InputError([auth_problem(address, cause if is_auth_error(cause) else e)]) from None
        raise InputError([Problem(address, f"cannot join the Ray cluster: {_first_line(str(e))}")]) from None


def cluster_cpus() -> int:
    """CPUs of the connected cluster now (an autoscaling cluster grows and shrinks)."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))


# ---------------------------------------------------------------------------------------------- Ray Jobs


@dataclass(frozen=True)
class Submission:
    """A sweep as a Ray Job: run ``entrypoint`` in a copy of ``folder`` on the head node."""

    name: str
    folder: Path
    entrypoint: str
    out: str  # for messages: as the driver sees it ("$HOME/…" is expanded there), a URI's query left out

    @property
    def runtime_env(self) -> dict[str, Any]:
        return {"working_dir": str(self.folder), "excludes": list(UPLOAD_EXCLUDES)}


def plan_submission(job_file: str | Path, out: str | None = None, *, fresh: bool = False) -> Submission:
    """The Ray Job for a job file: its folder travels as ``working_dir``; the driver runs
    ``python -m sweep.cli run <job file> --backend ray --out <out>`` there.

    ``out`` must be an object-store URI or an absolute path on the head node (a relative one would
    land in the job's temporary copy of the folder); default: the job's ``sweep.out`` if it is one,
    else ``$HOME/sweep-results/<sweep name>`` on the head node. Raises InputError for a bad job,
    ``out``, or a data file outside the job's folder (it would not travel).
    """
    from sweep.inputs.job import load_job

    job = load_job(job_file)
    path = Path(job_file).resolve()
    folder = path.parent
    problems = Problems()
    for key, value in _referenced_files(job, path):
        p = Path(value).expanduser()
        p = p if p.is_absolute() else folder / p
        where = f"{job_file}: {key}"
        if not p.resolve().is_relative_to(folder):
            problems.add(where, f"{value} is outside the job's folder {folder}: only that folder travels to the "
                                "cluster; move the file into it and name it relatively")
        elif not p.is_file():
            problems.add(where, f"{value}: file not found")
    if out is None and job.out and ("://" in job.out or Path(job.out).is_absolute()):
        out = job.out
    if out is None:
        out_arg = '"$HOME"/sweep-results/' + shlex.quote(job.name)
        out_shown = f"$HOME/sweep-results/{job.name}"
    elif "://" in out or Path(out).is_absolute():
        from sweep.results.store import redact  # a URI's query may carry credentials: never echoed

        out_arg, out_shown = shlex.quote(out), redact(out)
    else:
        problems.add("--out", f"{out} is relative: the job runs in a temporary copy of its folder on the head "
                              "node; give an object-store URI (s3://…, gs://…) or an absolute path on the head node")
        out_arg = out_shown = out
    problems.raise_if_any()
    cmd = f"python -m sweep.cli run {shlex.quote(path.name)} --backend ray --out {out_arg}"
    return Submission(job.name, folder, cmd + (" --fresh" if fresh else ""), out_shown)


def _referenced_files(job: Job, path: Path) -> Iterator[tuple[str, str]]:
    """(key, value) of every data file a job names: its base scenario file and catalog/profile files."""
    try:
        base = tomllib.loads(path.read_text(encoding="utf-8")).get("sweep", {}).get("base")
    except (OSError, tomllib.TOMLDecodeError):
        base = None
    if isinstance(base, str):
        yield "sweep.base", base
    tables: list[tuple[str, dict[str, Any]]] = [("", job.base)]
    tables += [(f"scenarios[{i}].", t) for i, t in enumerate(job.explicit)]
    for prefix, table in tables:
        for key in _FILE_KEYS:
            v = table.get(key)
            if isinstance(v, str) and v and v != "builtin":
                yield prefix + key, v
    for key in _FILE_KEYS:
        for v in job.grid.get(key, []):
            if isinstance(v, str) and v and v != "builtin":
                yield f"grid.{key}", v


def dashboard_address(address: str | None) -> str:
    """The Jobs API URL: ``address``, else $RAY_API_SERVER_ADDRESS, else an http(s) $RAY_ADDRESS."""
    env = os.environ.get("RAY_API_SERVER_ADDRESS") or ""
    if not env and os.environ.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        env = os.environ["RAY_ADDRESS"]
    url = (address or env).rstrip("/")
    if not url:
        raise InputError([Problem("--address", "required: the Ray dashboard URL, e.g. http://127.0.0.1:8265 "
                                               "(after `ray dashboard cluster.yaml`)")])
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError([Problem("--address", f"expected the Ray dashboard URL http(s)://HOST:PORT (default port "
                                               f"8265), got {url!r}; HOST:6379 is the cluster (GCS) address, "
                                               "which `sweep run --address` takes")])
    return url


class Jobs:
    """Ray Jobs on one cluster (its dashboard URL). Every method raises InputError (one line) when the
    dashboard cannot be reached or refuses the token, and ClusterError when a request fails there."""

    def __init__(self, address: str):
        self.address = address
        parts = urlsplit(address)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        check_reachable(address, parts.hostname or "", port, what="the Ray dashboard (Jobs API)")
        from ray.job_submission import JobSubmissionClient

        with self._errors():
            self.client = JobSubmissionClient(address)

    @contextmanager
    def _errors(self, job_id: str | None = None) -> Iterator[None]:
        try:
            yield
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - Ray's SDK raises bare RuntimeError/ConnectionError/ValueError
            if is_auth_error(e):
                raise InputError([auth_problem(self.address, e)]) from None
            text = str(e)
            if job_id and ("does not exist" in text or "404" in text):
                raise InputError([Problem(job_id, f"no such job on the cluster at {self.address}")]) from None
            if isinstance(e, ConnectionError):
                raise InputError([Problem(self.address, f"cannot reach the Ray dashboard: {_first_line(text)}")]) from None
            if isinstance(e, ValueError):  # e.g. the job's folder is over Ray's upload limit
                raise InputError([Problem(self.address, _first_line(text))]) from None
            raise ClusterError(f"{self.address}: the Ray Jobs API failed: {_first_line(text)}") from None

    def submit(self, sub: Submission) -> str:
        """Submit; returns the job id (``raysubmit_…``)."""
        with self._errors():
            return self.client.submit_job(entrypoint=sub.entrypoint, runtime_env=sub.runtime_env,
                                          metadata={"sweep": sub.name, "out": sub.out})

    def status(self, job_id: str) -> str:
        with self._errors(job_id):
            return str(self.client.get_job_status(job_id).value)

    def info(self, job_id: str) -> Any:
        with self._errors(job_id):
            return self.client.get_job_info(job_id)

    def stop(self, job_id: str) -> bool:
        """Ask the job to stop; False if it had already ended."""
        with self._errors(job_id):
            return bool(self.client.stop_job(job_id))

    def follow(self, job_id: str, out: TextIO, poll_s: float = 1.0) -> str:
        """Copy the job's logs to ``out`` as they come, until it ends; returns its final status."""
        import asyncio

        seen = 0

        async def tail() -> None:
            nonlocal seen
            async for chunk in self.client.tail_job_logs(job_id):
                out.write(chunk)
                out.flush()
                seen += len(chunk)

        try:
            with self._errors(job_id):
                asyncio.run(tail())
        except ClusterError:
            pass  # the log stream broke: poll below
        while True:  # the stream ends with the job; poll in case it broke off early
            status = self.status(job_id)
            if status in OUTCOME_EXIT:
                with self._errors(job_id):
                    logs = self.client.get_job_logs(job_id)
                if len(logs) > seen:
                    out.write(logs[seen:])
                    out.flush()
                return status
            with self._errors(job_id):
                logs = self.client.get_job_logs(job_id)
            if len(logs) > seen:
                out.write(logs[seen:])
                out.flush()
                seen = len(logs)
            time.sleep(poll_s)

    def wait(self, job_id: str, poll_s: float = 0.5) -> str:
        """Block until the job ends; its final status."""
        while (status := self.status(job_id)) not in OUTCOME_EXIT:
            time.sleep(poll_s)
        return status


# ---------------------------------------------------------------------------------------------- configs


def validate_cluster_config(path: str | Path) -> dict[str, Any]:
    """Ray's own checks of a cluster-launcher YAML (``ray up``'s, minus any cloud call); the prepared config.

    Also requires a top-level ``max_workers`` (Ray would default it silently). Uses Ray's private
    ``ray.autoscaler._private.util.prepare_config`` / ``validate_config``: this is their one caller.
    Raises InputError naming the file (and key) of each problem.
    """
    import yaml

    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError([Problem(where, f"cannot read file ({e.strerror or e})")]) from None
    except yaml.YAMLError as e:
        raise InputError([Problem(where, f"invalid YAML: {_first_line(str(e))}")]) from None
    if not isinstance(raw, dict):
        raise InputError([Problem(where, "expected a mapping (a Ray cluster config)")])
    if "max_workers" not in raw:
        raise InputError([Problem(f"{where}: max_workers", "set the top-level max_workers explicitly "
                                                           "(the most worker nodes the cluster may launch)")])
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        config = prepare_config(raw)
        validate_config(config)
    except jsonschema.ValidationError as e:
        key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InputError([Problem(f"{where}: {key}", _first_line(e.message))]) from None
    except Exception as e:  # noqa: BLE001 - Ray raises ValueError, RuntimeError, KeyError, click's abort…
        raise InputError([Problem(where, f"{e.__class__.__name__}: {_first_line(str(e))}")]) from None
    return config
