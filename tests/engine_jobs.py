"""Small real sweep jobs for the engine tests (built-in catalogs, a short GPU list, a low budget)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds

JOB = """
[sweep]
name = "{name}"
methods = {methods}

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
{grid}"""
METHODS = ("dinkelbach", "enumeration", "pareto", "max_throughput", "iterative")
GRID = '"workload.prompt_tokens" = [256, 1024]\n"catalog.price" = ["on_demand", "spot"]\n'

TIMING = {"seconds"}


def write_job(tmp: Path, name: str = "eng", extra: str = "", methods: tuple[str, ...] = METHODS,
              grid: str = GRID) -> Path:
    """The job file ``<name>.toml``: these methods, two models × ``grid`` (more grid lines), then ``extra``."""
    p = tmp / f"{name}.toml"
    p.write_text(JOB.format(name=name, methods=json.dumps(list(methods)), grid=grid) + extra)
    return p


def rows(out: Path, table: str = "solutions") -> list[dict]:
    """Every row of a table, timing columns dropped, in a stable order."""
    t = ds.dataset(out / table, format="parquet").to_table().to_pylist()
    key = "task_id" if table == "solutions" else "rank"
    t = [{k: v for k, v in r.items() if k not in TIMING} for r in t]
    return sorted(t, key=lambda r: (r["scenario_id"], str(r[key])))
