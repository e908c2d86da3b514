"""The rows the store writes: what a finished task hands it (one solutions row, and pareto's frontier
rows), and the scenarios.parquet rows of a sweep's scenarios."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sweep.inputs.scenario import SCHEMA, Scenario
from sweep.results import schema


@dataclass(frozen=True)
class TaskOutput:
    """What a finished task gives the store: one solutions row and, for pareto, frontier rows."""

    task_id: str
    scenario_id: str
    solution: dict
    frontier: tuple[dict, ...] = ()


def scenarios_table(sweep: str, scenarios: Iterable[Scenario]) -> pa.Table:
    """The scenarios.parquet rows: sweep, scenario_id, origin and every resolved parameter."""
    sch = schema.scenarios_schema({k: v.kind for k, v in SCHEMA.items()})
    cols: dict[str, list[Any]] = {f.name: [] for f in sch}
    for sc in scenarios:
        cols["sweep"].append(sweep)
        cols["scenario_id"].append(sc.scenario_id)
        cols["origin"].append(sc.origin)
        for k in SCHEMA:
            cols[schema.param_column(k)].append(schema.param_value(sc.params[k], SCHEMA[k].kind))
        cols["buckets"].append(json.dumps([{"prompt_tokens": b.prompt_tokens, "output_tokens": b.output_tokens,
                                            "share": float(b.share)} for b in sc.mix]) if sc.mix else None)
    return pa.table(cols, schema=sch)
