"""Small real sweep jobs for the engine tests (built-in catalogs, a short GPU list, a low budget)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds

JOB = """
[sweep]
name = "{name}"
methods = ["dinkelbach", "enumeration", "pareto", "max_throughput", "iterative"]

[catalog]
only = ["L4", "A10G", "T4"]

[limits]
budget = 3

[methods.enumeration]
budget_min = 0.3
budget_max = 3.0
points = 4

[grid]
model = ["llama-3.1-8b", "mistral-7b"]
"workload.prompt_tokens" = [256, 1024]
"catalog.price" = ["on_demand", "spot"]
"""

TIMING = {"seconds"}


def write_job(tmp: Path, name: str = "eng", extra: str = "") -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(JOB.format(name=name) + extra)
    return p


def rows(out: Path, table: str = "solutions") -> list[dict]:
    """Every row of a table, timing columns dropped, in a stable order."""
    t = ds.dataset(out / table, format="parquet").to_table().to_pylist()
    key = "task_id" if table == "solutions" else "rank"
    t = [{k: v for k, v in r.items() if k not in TIMING} for r in t]
    return sorted(t, key=lambda r: (r["scenario_id"], str(r[key])))
