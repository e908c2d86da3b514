"""``sweep query RESULTS [--where EXPR] [--best | --frontier | --audit | --sql QUERY] [--format table|csv|json]
[--columns a,b,c]``.

``--where`` is a DuckDB SQL boolean expression over the output rows' columns: result columns
(``method``, ``status``, ``cost_per_token``, …) and scenario parameters, by column name
(``workload_prompt_tokens``) or dotted key (``workload.prompt_tokens``); strings in single quotes;
``=`` or ``==``, ``and``/``or``/``not``, ``in (…)``, ``like``, ``is null``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, TextIO

from sweep.errors import InputError, Problem
from sweep.results.query import VIEWS, Results

if TYPE_CHECKING:  # pyarrow is imported when a query runs, not when the CLI parses arguments
    import pyarrow as pa

_RESULT_COLS = ["method", "budget", "status", "cost_per_hour", "throughput_tok_s", "cost_per_token", "gpus",
                "solves", "seconds", "allocation"]
_FRONTIER_COLS = ["rank", "cost_per_hour", "throughput_tok_s", "cost_per_token", "allocation"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder or URI (s3://…, gs://…, file://…)")
    p.add_argument("--where", metavar="EXPR",
                   help="SQL (DuckDB) condition on result columns and scenario parameters, by column name or "
                        "dotted key; strings in single quotes, e.g. \"workload.prompt_tokens >= 1024 and "
                        "method = 'dinkelbach'\". Filters the rows shown (--audit: the rows audited)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--best", action="store_true",
                      help="each scenario × method's answer: its least-$/token row with a fleet (ties: higher tok/s)")
    mode.add_argument("--frontier", action="store_true", help="the exact Pareto points (from the pareto method)")
    mode.add_argument("--audit", action="store_true",
                      help="per method: how often it reaches the exact optimum and its median/worst $/token gap")
    mode.add_argument("--sql", metavar="QUERY",
                      help=f"a DuckDB query over the views {', '.join(VIEWS)} "
                           "(results = solutions ⋈ scenarios; best = --best rows ⋈ scenarios)")
    p.add_argument("--format", "-f", choices=["table", "csv", "json"], default="table",
                   help="table (default), csv, or json (one object per line)")
    p.add_argument("--columns", "-c", metavar="A,B,C",
                   help="only these columns, in this order (dotted parameter keys allowed), or '*' for all; "
                        "default: a readable set for tables; for csv/json every result column plus model and "
                        "the parameters that vary across the sweep")


def run(args: argparse.Namespace) -> int:
    if args.sql is not None and args.where is not None:
        raise InputError([Problem("--where", "cannot be combined with --sql: put the condition in the query")])
    res = Results(args.results)
    if args.sql is not None:
        t = res.sql_arrow(args.sql)
        default = t.column_names
    elif args.audit:
        t = res.audit_arrow(args.where)
        default = [c for c in t.column_names if c != "beats_exact" or _any_nonzero(t, c)]
    else:
        t = res.query(where=args.where, best=args.best, frontier=args.frontier)
        default = _readable_columns(t, frontier=args.frontier)
    if args.columns:
        cols = _pick_columns(args.columns, t.column_names)
    elif args.format == "table":
        cols = default
    elif args.sql is not None or args.audit:
        cols = t.column_names
    else:
        cols = _machine_columns(res, t)
    t = t.select(cols)
    write(t, args.format, sys.stdout)
    _notes(res, t, args)
    return 0


def _notes(res: Results, t: pa.Table, args: argparse.Namespace) -> None:
    """What a reader should know, on stderr (stdout stays parseable)."""
    if t.num_rows == 0:
        why = " (this sweep ran no pareto task)" if args.frontier and not res.part_files("frontier") else ""
        print(f"(no rows{why})", file=sys.stderr)
    if args.audit:
        meta = t.schema.metadata or {}
        missing = int(meta.get(b"scenarios_without_optimum", b"0"))
        if missing:
            print(f"note: {missing} scenario(s) have no exact optimum (no exact method solved them to optimality) "
                  "and are not compared", file=sys.stderr)
        if "beats_exact" in t.column_names:
            for method, n in zip(t["method"].to_pylist(), t["beats_exact"].to_pylist(), strict=True):
                if n:
                    print(f"warning: {method} is cheaper than the exact optimum in {n} scenario(s): an exact "
                          "method's answer or this method's row is wrong", file=sys.stderr)
    status = res.manifest().get("status")
    if status == "running":
        print("note: this sweep is still running; rows so far", file=sys.stderr)


def _any_nonzero(t: pa.Table, col: str) -> bool:
    return any(v for v in t[col].to_pylist())


def _machine_columns(res: Results, t: pa.Table) -> list[str]:
    """csv/json: every result column, ``model`` and the parameters that vary across the dataset's
    scenarios — the same columns for every query of a dataset; the constant ones are in ``scenarios``
    (``--sql "SELECT * FROM scenarios"``) rather than repeated on every row."""
    import pyarrow.compute as pc

    names = t.column_names
    if "origin" not in names:
        return names
    first = names.index("origin")
    sc = res.table("scenarios")
    varying = {c for c in sc.column_names if c == "model" or (sc.num_rows and pc.count_distinct(sc[c]).as_py() > 1)}
    return names[:first] + [c for c in names[first + 1:] if c in varying]


def _pick_columns(spec: str, available: list[str]) -> list[str]:
    from sweep.results import schema

    if spec.strip() == "*":
        return available
    out, bad = [], []
    for c in (c.strip() for c in spec.split(",")):
        if not c:
            continue
        name = c if c in available else schema.param_column(c)
        (out if name in available else bad).append(name if name in available else c)
    if bad:
        raise InputError([Problem("--columns", f"unknown column {c!r} (valid: {', '.join(available)})") for c in bad])
    if not out:
        raise InputError([Problem("--columns", "no column named")])
    return out


def _readable_columns(t: pa.Table, frontier: bool) -> list[str]:
    """scenario_id, the parameters that vary across these rows (model always), then the results."""
    import pyarrow.compute as pc

    names = t.column_names
    first = names.index("origin") + 1 if "origin" in names else len(names)
    params = [c for c in names[first:] if c == "model" or (t.num_rows and pc.count_distinct(t[c]).as_py() > 1)]
    tail = _FRONTIER_COLS if frontier else _RESULT_COLS
    if not frontier and "budget" in names and t["budget"].null_count == t.num_rows:
        tail = [c for c in tail if c != "budget"]
    return [c for c in ["scenario_id", *params, *tail] if c in names]


# --------------------------------------------------------------------------- rendering


def write(t: pa.Table, fmt: str, out: TextIO) -> None:
    """Write a table: ``table`` (fixed width, units in the numbers' format, like sweep.report.table),
    ``csv`` (a header; floats at full precision; lists as JSON text) or ``json`` (one object per line)."""
    if t.num_columns == 0:
        return
    if fmt == "json":
        _json_lines(t, out)
    elif fmt == "csv":
        _csv(t, out)
    else:
        _text_table(t, out)


def _text_table(t: pa.Table, out: TextIO) -> None:
    # column by column and without sweep.report.table, which re-scans a column for every cell:
    # a --best over a big sweep prints 100,000s of rows
    names = t.column_names
    cols = [_cells(name, t.column(i)) for i, name in enumerate(names)]
    right = [_is_number(f.type) for f in t.schema]
    widths = [max([len(h), *map(len, c)]) for h, c in zip(names, cols, strict=True)]
    out.write("  ".join(h.rjust(w) if r else h.ljust(w) for h, w, r in zip(names, widths, right, strict=True)).rstrip()
              + "\n" + "  ".join("-" * w for w in widths) + "\n")
    padded = [[s.rjust(w) for s in c] if r else [s.ljust(w) for s in c]
              for c, w, r in zip(cols, widths, right, strict=True)]
    for start in range(0, t.num_rows, 50_000):
        rows = zip(*(c[start:start + 50_000] for c in padded), strict=True)
        out.write("".join("  ".join(r).rstrip() + "\n" for r in rows))


def _is_number(tp: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(tp) or pa.types.is_floating(tp) or pa.types.is_decimal(tp)


def _duck(t: pa.Table, select: str) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", t)
        return con.sql(select).to_arrow_table()
    finally:
        con.close()


def _is_nested(tp: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_list(tp) or pa.types.is_large_list(tp) or pa.types.is_struct(tp) or pa.types.is_map(tp)


def _json_lines(t: pa.Table, out: TextIO) -> None:
    import pyarrow as pa

    if t.num_rows == 0:
        return
    # JSON has no NaN or Infinity: those become null
    floats = [f.name for f in t.schema if pa.types.is_floating(f.type)]
    repl = ", ".join(f'CASE WHEN isfinite("{c}") THEN "{c}" END AS "{c}"' for c in floats)
    rows = f"(SELECT * REPLACE ({repl}) FROM t)" if floats else "t"
    lines = _duck(t, f"SELECT to_json(r)::VARCHAR AS j FROM {rows} r")["j"].to_pylist()
    out.write("\n".join(lines) + "\n")


def _csv(t: pa.Table, out: TextIO) -> None:
    """CSV by DuckDB (quotes only where needed, floats at full precision, lists as JSON text)."""
    import shutil
    import tempfile

    import duckdb

    repl = ", ".join(f'to_json("{f.name}")::VARCHAR AS "{f.name}"' for f in t.schema if _is_nested(f.type))
    select = f"SELECT * REPLACE ({repl}) FROM t" if repl else "SELECT * FROM t"
    with tempfile.TemporaryDirectory(prefix="sweep-query-") as tmp:
        path = os.path.join(tmp, "out.csv")
        con = duckdb.connect()
        try:
            con.register("t", t)
            con.execute(f"COPY ({select}) TO '{path}' (HEADER, DELIMITER ',')")
        finally:
            con.close()
        with open(path, encoding="utf-8", newline="") as f:
            shutil.copyfileobj(f, out, 1 << 20)


def _cells(col: str, arr: pa.ChunkedArray) -> list[str]:
    """One column as display strings (null: ``-``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tp = arr.type
    if col == "allocation" and _is_nested(tp):
        return allocation_text(arr)
    if pa.types.is_floating(tp):
        f = ("{:.4e}" if col == "cost_per_token" else "{:,.4f}" if col in ("cost_per_hour", "budget")
             else "{:,.0f}" if col == "throughput_tok_s" else "{:.3f}" if col.endswith("seconds")
             else "{:.2f}" if col.endswith("_pct") else "{:.6g}").format
        return [f(v) if v is not None else "-" for v in arr.to_pylist()]
    if pa.types.is_integer(tp) or pa.types.is_string(tp) or pa.types.is_large_string(tp):
        values = (pc.cast(arr, pa.string()) if pa.types.is_integer(tp) else arr).to_pylist()
        return [v if v is not None else "-" for v in values]
    return [str(v) if v is not None else "-" for v in arr.to_pylist()]


def allocation_text(arr: pa.ChunkedArray) -> list[str]:
    """:func:`fmt_allocation` of a whole allocation column, computed by Arrow (a --best over a big
    sweep has 100,000s of them); rows with mixed-pipeline stages go through fmt_allocation."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[str] = []
    for chunk in arr.chunks:
        entries = chunk.flatten()  # one struct per entry, of every row
        names = set(entries.type.names) if pa.types.is_struct(entries.type) else set()
        if not {"offering", "tp", "pp", "replicas"} <= names:
            out += [fmt_allocation(v) for v in chunk.to_pylist()]
            continue
        text = {n: pc.cast(entries.field(n), pa.string()) for n in ("offering", "tp", "pp", "replicas")}
        pp = pc.if_else(pc.greater(entries.field("pp"), 1), pc.binary_join_element_wise(" pp", text["pp"], ""), "")
        entry = pc.binary_join_element_wise(text["replicas"], "×", text["offering"], " tp", text["tp"], pp, "")
        offsets = pc.subtract(chunk.offsets, chunk.offsets[0])  # a sliced chunk's offsets start past 0
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, entry), " + ").to_pylist()
        staged: set[int] = set()
        if "stages" in names:
            has = pc.is_valid(entries.field("stages")).to_numpy(zero_copy_only=False)
            if has.any():
                rows = pc.list_parent_indices(chunk).to_numpy()
                staged = set(rows[has].tolist())
        nulls = chunk.is_null().to_pylist()
        py = chunk.to_pylist() if staged else None
        out += ["-" if nulls[i] or not joined[i] else fmt_allocation(py[i]) if i in staged else joined[i]
                for i in range(len(chunk))]
    return out


def fmt_allocation(entries: list[dict] | None) -> str:
    """``2×lambda-8xH100 tp4 + 1×vast-1xL4 tp1 pp2`` (replicas × offering, layout); a mixed pipeline
    as ``1×[a tp2 L0-15 → b tp1 L16-31]``."""
    if not entries:
        return "-"
    parts = []
    for a in entries:
        if a.get("stages"):  # a mixed-GPU pipeline: its stages and their layers
            stages = " → ".join(f"{s.get('offering')} tp{s.get('tp')} L{s.get('first_layer')}-{s.get('last_layer')}"
                                for s in a["stages"])
            parts.append(f"{a.get('replicas')}×[{stages}]")
            continue
        layout = f"tp{a.get('tp')}" + (f" pp{a['pp']}" if (a.get("pp") or 1) > 1 else "")
        parts.append(f"{a.get('replicas')}×{a.get('offering')} {layout}")
    return " + ".join(parts)


__all__ = ["add_arguments", "allocation_text", "fmt_allocation", "run", "write"]
