"""What every benchmark script shares: the machine's description, tables, CSV output, timing helpers,
and running the Ray parts inside a private network namespace."""

from __future__ import annotations

import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = Path(__file__).resolve().parent / "out"
JOBS = REPO / "jobs"


# --------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("sweep", "pulp", "highspy", "pyarrow", "pandas", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "-"
    out["cbc"] = cbc_version()
    return out


def cbc_version() -> str:
    try:
        import pulp

        path = pulp.PULP_CBC_CMD().path
        r = subprocess.run([path, "-quit"], capture_output=True, text=True, timeout=10, check=False)
        for line in r.stdout.splitlines():
            if line.strip().startswith("Version:"):
                return line.split(":", 1)[1].strip()
    except Exception:  # noqa: BLE001 - only a label
        pass
    return "?"


def machine() -> str:
    """One line: cores, CPU, RAM, load, Python and package versions."""
    v = versions()
    pk = ", ".join(f"{k} {x}" for k, x in v.items() if k != "python")
    return (f"{os.cpu_count()} cores ({cpu_model()}), {mem_total_gb():.0f} GB RAM, load avg {load_average()}; "
            f"Python {v['python']}; {pk}")


# --------------------------------------------------------------------------- output


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    from sweep.report import table as _table

    return _table(headers, rows)


def write_csv(rows: list[dict], out: str | Path) -> Path:
    """Write ``rows`` (dicts; the union of their keys is the header) to ``out``; returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return path


def default_out(name: str) -> str:
    return str(OUT_DIR / f"{name}.csv")


def add_common_args(ap, name: str) -> None:
    ap.add_argument("--quick", action="store_true", help="the smallest sizes (the smoke test's)")
    ap.add_argument("--out", default=default_out(name), help=f"CSV of the figures (default benchmarks/out/{name}.csv)")


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def quantile(xs: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}f}"


# --------------------------------------------------------------------------- Ray in a private netns


def private_netns() -> bool:
    """Is this process in a network namespace whose only interface is loopback (every Ray address 127.0.0.1)?"""
    try:
        with open("/proc/net/dev") as f:
            names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return names == ["lo"]


def can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0


def reexec_in_netns(module: str, argv: Sequence[str]) -> None:
    """Replace this process by ``python -m module argv`` inside a private network namespace with
    loopback up; returns only if that is impossible (not root / no unshare)."""
    if private_netns() or not can_unshare():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$0" "$@"',
                          sys.executable, "-m", module, *argv])


def ray_status() -> str:
    """'' if Ray may run here, else why not."""
    if not private_netns():
        return "not in a private network namespace (run as root, or inside `unshare -n`)"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed"
    return ""


# --------------------------------------------------------------------------- job subsets


def job_sample(job, n: int):
    """The job restricted to ``n`` of its scenarios, every (size // n)-th in grid order (spread over
    the whole grid); the job itself when ``n`` is at least its size."""
    from dataclasses import dataclass

    from sweep.inputs.job import Job

    if n >= job.size:
        return job

    @dataclass(frozen=True)
    class Sampled(Job):
        stride: int = 1
        limit: int = 0

        def raw_scenarios(self):
            j = 0
            for i, raw in Job.raw_scenarios(self):
                if j >= self.limit:
                    return
                if i % self.stride == 0:
                    yield j, raw
                    j += 1

        @property
        def size(self) -> int:
            return self.limit

    from dataclasses import fields

    kw = {f.name: getattr(job, f.name) for f in fields(Job)}
    return Sampled(**kw, stride=max(1, job.size // n), limit=n)


def job_subgrid(job, n: int):
    """The job on a smaller cartesian grid (each axis cut to a prefix, the longest first) of at most
    ``n`` scenarios — what ``tune.grid_search`` over the same axes can express."""
    from dataclasses import replace

    lens = {k: len(v) for k, v in job.grid.items()}

    def size() -> int:
        s = 1
        for v in lens.values():
            s *= v
        return s

    while size() > n:
        k = max(reversed(list(lens)), key=lambda k: lens[k])
        if lens[k] == 1:
            break
        lens[k] -= 1
    return replace(job, grid={k: v[: lens[k]] for k, v in job.grid.items()})
