"""The benchmark scripts run at their smallest sizes and write their CSVs. Nothing about their figures
is asserted (timings are measured, never tested); this only proves the scripts work."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from netns import requires_netns

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / f"{name}.csv"
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick", "--out", str(out), *args],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "machine:" in r.stdout
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows
    return rows


def test_methods(tmp_path):
    rows = run_benchmark("methods", tmp_path)
    assert {r["method"] for r in rows} >= {"dinkelbach", "enumeration", "pareto"}
    assert (tmp_path / "methods_instances.csv").exists() and (tmp_path / "methods_seed.csv").exists()


def test_solvers(tmp_path):
    rows = run_benchmark("solvers", tmp_path)
    assert rows[0]["subset"] == "all"


def test_latency(tmp_path):
    rows = run_benchmark("latency", tmp_path)
    assert any(r["what"].startswith("ratio in-process") for r in rows)


def test_memory(tmp_path):
    rows = run_benchmark("memory", tmp_path)
    assert len(rows) == 2 and all(float(r["peak_mb"]) > 0 for r in rows)


def test_scale(tmp_path):
    rows = run_benchmark("scale", tmp_path)
    assert len(rows) == 1 and rows[0]["tasks"] == "1000" and rows[0]["rows"] == "1000"
    for col in ("wall_s", "tasks_per_s", "driver_cpu_s", "cpu_ms_per_task", "capacity_tasks_per_s",
                "busy_workers_at_10ms", "peak_rss_mb"):
        assert float(rows[0][col]) > 0, col


def test_frontier(tmp_path):
    rows = run_benchmark("frontier", tmp_path, "--walk-points", "3")
    assert len(rows) == 1 and rows[0]["equals_dinkelbach"] == "True" and int(rows[0]["frontier_points"]) > 100
    assert rows[0]["walk_points"] == "3" and rows[0]["merge_never_worse"] == "True"


def test_backends_without_ray(tmp_path):
    rows = run_benchmark("backends", tmp_path, "--no-ray", "--scenarios", "4", "--quickstart", "1", "--items", "50")
    assert {r["backend"] for r in rows if r.get("backend")} >= {"serial ×1", "processes ×2"}


@pytest.mark.ray
@requires_netns
def test_backends_with_ray(tmp_path):
    rows = run_benchmark("backends", tmp_path, "--scenarios", "4", "--quickstart", "0", "--items", "50")
    assert any(r.get("backend", "").startswith("ray") for r in rows)


@pytest.mark.ray
@requires_netns
def test_vs_tune(tmp_path):
    pytest.importorskip("ray.tune", reason="needs the bench extra: pip install -e '.[bench]'")
    rows = run_benchmark("vs_tune", tmp_path, "--tune", "tuned")
    assert any(r["what"].startswith("Ray Tune") for r in rows)


def test_run_all_rebuilds_the_readme_table(tmp_path, monkeypatch):
    """The README table is built from whatever CSVs exist (none here: an empty table, no crash)."""
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks.run_all as run_all

    monkeypatch.setattr(run_all, "OUT_DIR", tmp_path / "out")
    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\nbefore\n\n{run_all.START}\nold\n{run_all.END}\n\nafter\n")
    monkeypatch.setattr(run_all, "README", readme)
    monkeypatch.setattr(run_all, "REPO", tmp_path)
    run_all.update_readme("quick", 1.0, [])
    text = readme.read_text()
    assert "before" in text and "after" in text and "old" not in text and "| benchmark |" in text
