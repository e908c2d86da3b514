"""The rows the store writes: what a finished task hands it (one solutions row, and pareto's frontier
rows), the scenarios.parquet rows of a sweep's scenarios, and tables as the bytes that travel between
processes (Arrow IPC streams: a sweep's driver passes them on without loading pyarrow)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep.inputs.scenario import SCHEMA, Scenario

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class TaskOutput:
    """What a finished task gives the store: one solutions row and, for pareto, frontier rows."""

    task_id: str
    scenario_id: str
    solution: dict
    frontier: tuple[dict, ...] = ()


def scenarios_table(sweep: str, scenarios: Iterable[Scenario]) -> pa.Table:
    """The scenarios.parquet rows: sweep, scenario_id, origin and every resolved parameter."""
    import pyarrow as pa

    from sweep.results import schema

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


def to_ipc(table: pa.Table) -> bytes:
    """A table as one Arrow IPC stream, zstd-compressed (what crosses processes and what a driver holds:
    scenarios.parquet rows shrink ~7×; the driver never decodes them)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


def rows_ipc(rows: dict[str, list[dict]]) -> dict[str, bytes]:
    """Buffered ``solutions`` / ``frontier`` rows as IPC streams (tables with no rows left out)."""
    import pyarrow as pa

    from sweep.results import schema

    return {t: to_ipc(pa.Table.from_pylist(r, schema=schema.PART_SCHEMAS[t])) for t, r in rows.items() if r}
