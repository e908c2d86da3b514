"""Arrow schemas of the results dataset (SPEC §8). One definition, used by the store and by queries.

Scenario parameters become columns of ``scenarios.parquet`` named by their dotted key with dots
turned into underscores (``workload.prompt_tokens`` → ``workload_prompt_tokens``); lists and tables
are stored as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

STAGES = pa.list_(pa.struct([
    ("offering", pa.string()), ("gpu", pa.string()), ("tp", pa.int32()),
    ("first_layer", pa.int32()), ("last_layer", pa.int32()),
]))
# a mixed-GPU pipeline entry also carries its stages (null for a one-offering layout)
ALLOCATION = pa.list_(pa.struct([
    ("offering", pa.string()), ("gpu", pa.string()), ("tp", pa.int32()), ("pp", pa.int32()),
    ("replicas", pa.int32()), ("nodes", pa.int32()), ("stages", STAGES),
]))

SOLUTIONS = pa.schema([
    ("sweep", pa.string()),
    ("task_id", pa.string()),
    ("scenario_id", pa.string()),
    ("method", pa.string()),
    ("budget", pa.float64()),  # $/h the row was solved at (enumeration points, max_throughput), else null
    ("status", pa.string()),  # optimal | infeasible | time_limit | error
    ("cost_per_hour", pa.float64()),
    ("throughput_tok_s", pa.float64()),
    ("cost_per_token", pa.float64()),
    ("gpus", pa.int64()),
    ("allocation", ALLOCATION),
    ("solves", pa.int64()),
    ("seconds", pa.float64()),
    ("solver", pa.string()),
    ("error", pa.string()),  # the message of an error or time_limit row
    ("is_best", pa.bool_()),  # the row a method answers with (enumeration: its best budget point)
    ("mip_gap", pa.float64()),
    ("path", pa.string()),  # JSON: iterations / budgets the method took
    ("request_rate", pa.float64()),  # requests/s (throughput / output tokens) when the scenario has a request
    # rate, a TTFT limit or a request mix, else null; older datasets without the column read it as nulls
    ("routing", pa.list_(pa.list_(pa.float64()))),  # with a request mix (SPEC §5.2): per allocation entry,
    # requests/s of each bucket routed to it (buckets in the order of the scenario's mix), else null
])

FRONTIER = pa.schema([
    ("sweep", pa.string()),
    ("scenario_id", pa.string()),
    ("rank", pa.int32()),  # 0 = cheapest point
    ("cost_per_hour", pa.float64()),
    ("throughput_tok_s", pa.float64()),
    ("cost_per_token", pa.float64()),
    ("allocation", ALLOCATION),
])


PART_SCHEMAS = {"solutions": SOLUTIONS, "frontier": FRONTIER}  # the tables a run writes as parts


def param_column(key: str) -> str:
    return key.replace(".", "_")


def param_value(v: Any, kind: str = "") -> Any:
    """A parameter as its column stores it: lists and tables as JSON; "auto"|true|false as a string."""
    if kind == "auto|bool" and isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v


def scenarios_schema(param_types: dict[str, str]) -> pa.Schema:
    """``scenario_id``, ``sweep``, ``origin`` and one column per schema key (kind from sweep.inputs.scenario.SCHEMA)."""
    kinds = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}
    fields = [("sweep", pa.string()), ("scenario_id", pa.string()), ("origin", pa.string())]
    fields += [(param_column(k), kinds.get(t, pa.string())) for k, t in param_types.items()]
    # a request mix as the solver saw it (SPEC §5.2; a trace's buckets too): JSON [{prompt_tokens,
    # output_tokens, share}], in the order of the solutions' ``routing`` entries; null without a mix
    fields.append(("buckets", pa.string()))
    return pa.schema(fields)
