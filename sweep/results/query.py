"""Reading and querying a results dataset (SPEC §7 ``sweep query``, §8): pandas, Arrow and DuckDB SQL.

``open_results(path)`` opens a local folder or a URI (s3://, gs://, file://) and reads it as it is
now, so it works on a sweep still running:

- only finished parts (``part-*.parquet``) are read; hidden ``.tmp-*`` files are writes in progress;
- a part that disappears while being read (compaction merged it) makes the read start over, once;
- a crash or a retried batch can leave a task's row twice until the next compaction: readers keep
  the row of the newest part (parts are named by creation time), the same rule compaction applies;
- enumeration rows get ``is_best`` only at compaction, so :meth:`Results.best` computes each
  method's answer itself instead of trusting that flag.

SQL is DuckDB's. The views a query can use:

====================  ========================================================================
``solutions``         one row per task (SPEC §8), duplicates dropped
``frontier``          exact Pareto points (pareto method), duplicates dropped
``scenarios``         ``scenario_id`` and every resolved parameter (dots in keys become ``_``)
``results``           solutions ⋈ scenarios on ``scenario_id``
``best``              each scenario × method's answer (see :meth:`Results.best`) ⋈ scenarios
``frontier_results``  frontier ⋈ scenarios
====================  ========================================================================

Units: ``cost_per_hour`` and ``budget`` in $/h, ``throughput_tok_s`` in output tokens/s,
``cost_per_token`` in $ per output token, ``seconds`` wall-clock seconds of the solves.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sweep.errors import InputError, Problem
from sweep.inputs.catalog import COST_UNITS_PER_DOLLAR
from sweep.inputs.schema import SCHEMA
from sweep.vocab import ALL_METHODS, AT_OPTIMUM_REL, EXACT_METHODS, HAS_FLEET_SQL, RATIO_SQL

# pyarrow, numpy, pandas and duckdb are imported where used: `import sweep` (every CLI command)
# should not pay for them.
if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

TABLES = ("solutions", "frontier", "scenarios")
VIEWS = ("solutions", "frontier", "scenarios", "results", "best", "frontier_results")
_KEYS = {"solutions": ("task_id",), "frontier": ("scenario_id", "rank")}
_DEPENDS = {"results": ("solutions", "scenarios"), "best": ("solutions", "scenarios"),
            "frontier_results": ("frontier", "scenarios")}
# $/token order: integer cost units (1e-4 $/h) over the stored throughput, one correctly rounded
# division (sweep.vocab) — unlike the stored cost_per_token, which went through several roundings.
_RATIO = RATIO_SQL
_HAS_FLEET = HAS_FLEET_SQL


def _part_schema(table: str) -> pa.Schema:
    from sweep.results import schema

    if table in schema.PART_SCHEMAS:
        return schema.PART_SCHEMAS[table]
    raise ValueError(f"unknown table {table!r} (valid: {', '.join(TABLES)})")


def _method_order(col: str = "method") -> str:
    return f"CASE {col} " + " ".join(f"WHEN '{m}' THEN {i}" for i, m in enumerate(ALL_METHODS)) + " ELSE 99 END"


def open_results(path: str | os.PathLike[str]) -> Results:
    """Open a results dataset (a folder, or a URI pyarrow understands: s3://, gs://, file://).

    Raises :class:`~sweep.errors.InputError` if there is no results dataset at ``path``.
    """
    return Results(path)


class Results:
    """A results dataset, read fresh on every call (a running sweep grows between calls).

    Tables come back deduplicated (newest part wins). Units: ``cost_per_hour``/``budget`` $/h,
    ``throughput_tok_s`` output tokens/s, ``cost_per_token`` $/output token, ``seconds`` s.
    """

    def __init__(self, path: str | os.PathLike[str]):
        import pyarrow.fs as pafs

        from sweep.results.store import open_fs

        self.path = os.fspath(path)
        # messages name the location without a URI's query string (it may carry credentials)
        self.label = self.path.split("?", 1)[0] if "://" in self.path else self.path
        self.fs, self.root, self.local = open_fs(self.path)
        try:
            info = self.fs.get_file_info(self.root)
        except OSError as e:
            raise InputError([Problem(self.label, f"cannot open: {e}")]) from None
        if info.type == pafs.FileType.NotFound:
            raise InputError([Problem(self.label, "no such folder")])
        if info.type != pafs.FileType.Directory:
            raise InputError([Problem(self.label, "not a folder: expected a results dataset (sweep run --out)")])
        marks = [self._exists(n) for n in ("manifest.json", "scenarios.parquet", "solutions")]
        if not any(marks):
            raise InputError([Problem(self.label, "not a results dataset: no manifest.json, scenarios.parquet "
                                                 "or solutions/ (made by `sweep run`)")])

    def __repr__(self) -> str:
        return f"Results({self.label!r})"

    # ------------------------------------------------------------------ files

    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _exists(self, name: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self._p(name)).type != pafs.FileType.NotFound

    def part_files(self, table: str) -> list[str]:
        """Finished parts of ``solutions`` or ``frontier``, oldest first (in-progress ``.tmp-*`` skipped)."""
        import pyarrow.fs as pafs

        _part_schema(table)
        sel = pafs.FileSelector(self._p(table), allow_not_found=True)
        try:
            infos = self.fs.get_file_info(sel)
        except OSError as e:
            raise InputError([Problem(self._p(table), f"cannot list: {e}")]) from None
        return sorted(i.path for i in infos if i.type == pafs.FileType.File
                      and i.base_name.startswith("part-") and i.base_name.endswith(".parquet"))

    def manifest(self) -> dict[str, Any]:
        """``manifest.json`` (the sweep as resolved, versions, task counts), or ``{}`` if not written yet."""
        try:
            with self.fs.open_input_stream(self._p("manifest.json")) as f:
                return json.loads(f.read().decode())
        except (OSError, ValueError):
            return {}

    def dataset(self, name: str) -> ds.Dataset:
        """A pyarrow dataset over the parts of ``solutions`` or ``frontier`` as they are now, or
        ``scenarios``. Raw: a running or crashed sweep's parts may hold a task twice — use
        :meth:`solutions` / :meth:`frontier` (or ``.table()``) for deduplicated rows."""
        import pyarrow.dataset as ds

        if name == "scenarios":
            return ds.dataset(self._p("scenarios.parquet"), filesystem=self.fs, format="parquet")
        return ds.dataset(self.part_files(name), schema=_part_schema(name), filesystem=self.fs, format="parquet")

    # ------------------------------------------------------------------ tables

    def table(self, name: str, columns: Iterable[str] | None = None) -> pa.Table:
        """One of ``solutions``, ``frontier``, ``scenarios`` as an Arrow table, deduplicated.

        ``columns`` limits what is read (key columns are read anyway, to deduplicate).
        Raises InputError if a part cannot be read.
        """
        if name == "scenarios":
            return self._scenarios(columns)
        _part_schema(name)
        return self._parts(name, None if columns is None else list(columns))

    def _scenarios(self, columns: Iterable[str] | None = None) -> pa.Table:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from sweep.results import schema

        path = self._p("scenarios.parquet")
        for attempt in range(2):
            if not self._exists("scenarios.parquet"):
                t = schema.scenarios_schema({k: v.kind for k, v in SCHEMA.items()}).empty_table()
                break
            try:
                t = pq.read_table(path, filesystem=self.fs)
                break
            except (OSError, pa.ArrowInvalid) as e:  # replaced under us: read the new one
                if attempt:
                    raise InputError([Problem(path, f"cannot read: {e}")]) from None
        if t.num_rows and pc.count_distinct(t["scenario_id"]).as_py() < t.num_rows:
            first = t.append_column("_i", pa.array(np.arange(t.num_rows)))
            keep = first.group_by("scenario_id", use_threads=False).aggregate([("_i", "min")])["_i_min"]
            t = t.filter(pc.is_in(first["_i"], keep))
        if columns is not None:
            want = set(columns) | {"scenario_id"}
            t = t.select([c for c in t.column_names if c in want])
        return t

    def _parts(self, name: str, columns: list[str] | None) -> pa.Table:
        """The parts of ``name`` concatenated, duplicates dropped."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        t, stale = self._parts_raw(name, columns)
        if len(stale) == 0:
            return t
        return t.filter(pc.invert(pc.is_in(pa.array(np.arange(t.num_rows, dtype=np.int64)), stale)))

    def _parts_raw(self, name: str, columns: list[str] | None) -> tuple[pa.Table, pa.Array]:
        """(the parts of ``name`` concatenated oldest first, the rows superseded by a newer row of
        the same key). Raises InputError if a part cannot be read."""
        import pyarrow as pa

        sch = _part_schema(name)
        key = _KEYS[name]
        want = sch if columns is None else pa.schema([f for f in sch if f.name in set(columns) | set(key)])
        for attempt in range(2):
            files = self.part_files(name)
            try:
                if len(files) > 1:  # a part per thread (on an object store each read waits on the network)
                    workers = min(len(files), (os.cpu_count() or 2) if self.local else 16)
                    with ThreadPoolExecutor(max_workers=workers) as pool:
                        parts = list(pool.map(lambda f: _read_part(self.fs, f, want, threads=False), files))
                else:
                    parts = [_read_part(self.fs, f, want) for f in files]
                break
            except (OSError, pa.ArrowInvalid) as e:
                # compaction replaces parts: list again and read what is there now (once)
                if attempt:
                    raise InputError([Problem(self._p(name), f"cannot read parts: {e}")]) from None
        t = pa.concat_tables(parts) if parts else want.empty_table()
        return t, _superseded_rows(t, key)

    def solutions(self) -> Any:
        """Every task's row (SPEC §8) as a pandas DataFrame, one per ``task_id`` (newest part wins)."""
        return to_pandas(self._parts("solutions", None))

    def frontier(self, scenario_id: str | None = None) -> Any:
        """Exact Pareto points (``rank`` 0 = cheapest), optionally of one scenario, as a pandas DataFrame."""
        import pyarrow.compute as pc

        t = self._parts("frontier", None)
        if scenario_id is not None:
            t = t.filter(pc.equal(t["scenario_id"], scenario_id))
        return to_pandas(t.sort_by([("scenario_id", "ascending"), ("rank", "ascending")]))

    def scenarios(self) -> Any:
        """``scenario_id`` and every resolved parameter (``workload.prompt_tokens`` →
        ``workload_prompt_tokens``; lists and tables as JSON text) as a pandas DataFrame."""
        return to_pandas(self._scenarios())

    # ------------------------------------------------------------------ SQL

    def connect(self, views: Iterable[str] = VIEWS) -> Any:
        """A DuckDB connection with the given views (module docstring) and the tables they need
        registered. The caller closes it."""
        return self._connect(views)[0]

    def _connect(self, views: Iterable[str]) -> tuple[Any, dict[str, pa.Table]]:
        """(connection, the Arrow tables registered). Besides the public views, ``_solutions`` and
        ``_frontier`` carry ``_i`` (row in the table read, duplicates included) and ``_scenarios``,
        ``_results``, ``_best``, ``_frontier_results`` also ``_pos`` (row in scenarios)."""
        import duckdb
        import pyarrow as pa

        need = set()
        for v in views:
            if v not in VIEWS:
                raise ValueError(f"unknown view {v!r} (valid: {', '.join(VIEWS)})")
            need.add(v)
            need.update(_DEPENDS.get(v, ()))
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        tables: dict[str, pa.Table] = {}
        part_cols: set[str] = set()
        for t in ("solutions", "frontier"):
            if t in need:
                # the rows as read, superseded ones hidden by the view rather than copied out:
                # ``_i`` stays a position in tables[t]
                tables[t], stale = self._parts_raw(t, None)
                part_cols |= set(tables[t].column_names)
                con.register(f"_{t}_parts", _with_index(tables[t], "_i"))
                con.register(f"_{t}_stale", pa.table({"_i": stale}))
                hide = f" WHERE _i NOT IN (SELECT _i FROM _{t}_stale)" if len(stale) else ""
                con.execute(f"CREATE VIEW _{t} AS SELECT * FROM _{t}_parts{hide}")
                con.execute(f"CREATE VIEW {t} AS SELECT * EXCLUDE (_i) FROM _{t}")
        if "scenarios" not in need:
            return con, tables
        sc = tables["scenarios"] = self._scenarios()
        con.register("_scenarios", _with_index(sc, "_pos"))
        con.execute("CREATE VIEW scenarios AS SELECT * EXCLUDE (_pos) FROM _scenarios")
        params = "".join(f', c."{c}"' for c in sc.column_names if c not in part_cols)

        def joined(name: str, source: str) -> None:
            con.execute(f"CREATE VIEW _{name} AS SELECT s.*{params}, c._pos FROM {source} s "
                        "LEFT JOIN _scenarios c ON c.scenario_id = s.scenario_id")
            con.execute(f"CREATE VIEW {name} AS SELECT * EXCLUDE (_i, _pos) FROM _{name}")

        if "results" in need:
            joined("results", "_solutions")
        if "best" in need:
            con.execute(f"CREATE VIEW _best_solutions AS SELECT * FROM _solutions WHERE _i IN ({_best_index_sql('_solutions')})")
            joined("best", "_best_solutions")
        if "frontier_results" in need:
            joined("frontier_results", "_frontier")
        return con, tables

    def sql(self, query: str) -> Any:
        """Run a DuckDB query over the views (module docstring) and return a pandas DataFrame.

        Dotted parameter names (``workload.prompt_tokens``) may be used for their columns.
        Raises InputError (``--sql``) if the query does not parse or bind.
        """
        return to_pandas(self.sql_arrow(query))

    def sql_arrow(self, query: str, where: str = "--sql") -> pa.Table:
        """:meth:`sql`, as an Arrow table. ``where`` names the query in error messages."""
        import duckdb
        import pyarrow as pa

        q = rewrite_names(query, {k.replace(".", "_") for k in SCHEMA})
        views = [v for v in VIEWS if re.search(rf"\b{v}\b", q, re.IGNORECASE)]
        con = self.connect(views)
        try:
            rel = con.sql(q)
            return rel.to_arrow_table() if rel is not None else pa.table({})
        except duckdb.Error as e:
            raise InputError([Problem(where, _duck_message(e, views=True))]) from None
        finally:
            con.close()

    # ------------------------------------------------------------------ the query modes

    def query(self, *, where: str | None = None, best: bool = False, frontier: bool = False) -> pa.Table:
        """Rows for ``sweep query``: all results, each method's best (``best``) or the frontier
        points (``frontier``), each joined with their scenario's parameters, filtered by the SQL
        boolean expression ``where`` (applied to these output rows), in scenario (sweep) order.

        Raises InputError (``--where``) for an expression that does not parse or names an unknown column.
        """
        import duckdb

        view = "best" if best else "frontier_results" if frontier else "results"
        part = "frontier" if frontier else "solutions"
        con, tables = self._connect([view])
        try:
            cond = self._where_sql(con, view, where)
            order = "rank" if frontier else f"{_method_order()}, budget NULLS FIRST, task_id"
            # DuckDB picks and orders row numbers; Arrow gathers the rows, so the wide and nested
            # columns never pass through the SQL engine
            q = f"SELECT _i, _pos FROM _{view} WHERE {cond} ORDER BY _pos NULLS LAST, scenario_id, {order}"
            if best and cond == "TRUE":  # the same rows, without joining the answers back to their rows
                q = (f"SELECT b._i, c._pos FROM ({_best_index_sql('_solutions', keys=True)}) b LEFT JOIN "
                     f"_scenarios c ON c.scenario_id = b.scenario_id ORDER BY c._pos NULLS LAST, b.scenario_id, "
                     f"{_method_order('b.method')}")
            try:
                picked = con.sql(q).to_arrow_table()
            except duckdb.Error as e:
                raise InputError([Problem("--where", _duck_message(e))]) from None
        finally:
            con.close()
        out = tables[part].take(picked["_i"])
        params = tables["scenarios"].take(picked["_pos"])
        for name in params.column_names:
            if name not in out.column_names:
                out = out.append_column(params.schema.field(name), params[name])
        return out

    def best(self, where: str | None = None) -> Any:
        """Each scenario × method's answer as a pandas DataFrame joined with the scenario's parameters:
        its least-$/token row (ties → higher throughput), among rows with a fleet.

        For ``enumeration`` that is the best of its budget points (computed here; ``is_best`` is
        only set at compaction); for the other methods, their one row. ``where`` filters the answers
        (SQL, as ``sweep query --where``).
        """
        return to_pandas(self.query(where=where, best=True))

    def audit(self, where: str | None = None) -> Any:
        """How far each method lands from the exact optimum, across the sweep, as a pandas DataFrame.

        The exact optimum of a scenario is the least $/token among optimal rows of the exact methods
        (dinkelbach, charnes_cooper, pareto). Only scenarios that have one are compared. Per method:

        - ``scenarios``: scenarios compared; ``no_fleet``: of them, where the method found no fleet;
        - ``at_optimum_pct``: share (%) whose answer is within 1e-9 (relative) of the optimum;
        - ``median_gap_pct`` / ``worst_gap_pct``: $/token above the optimum, % (answers with a fleet);
        - ``beats_exact``: answers cheaper than the "exact" optimum (should be 0: a bug if not);
        - ``median_solves`` / ``median_seconds``: MILP solves and solve seconds per scenario
          (enumeration: summed over its budget points).

        ``where`` (SQL, as ``sweep query --where``) filters the solution rows audited, before each
        method's answer is picked; the optimum always comes from all rows.
        """
        return to_pandas(self.audit_arrow(where))

    def audit_arrow(self, where: str | None = None) -> pa.Table:
        """:meth:`audit` as an Arrow table, plus ``scenarios_without_optimum`` in its schema metadata."""
        import duckdb

        con = self.connect(["results"])
        try:
            self._gaps_view(con, where)
            q = f"""
            SELECT method,
                count(*) AS scenarios,
                100.0 * count(*) FILTER (WHERE k <= k_opt * (1 + {AT_OPTIMUM_REL})) / count(*) AS at_optimum_pct,
                median(gap_pct) AS median_gap_pct,
                max(gap_pct) AS worst_gap_pct,
                count(*) FILTER (WHERE k IS NULL) AS no_fleet,
                count(*) FILTER (WHERE k < k_opt * (1 - {AT_OPTIMUM_REL})) AS beats_exact,
                median(solves) AS median_solves,
                median(seconds) AS median_seconds
            FROM _gaps WHERE k_opt IS NOT NULL GROUP BY method ORDER BY {_method_order()}"""
            try:
                t = con.sql(q).to_arrow_table()
                missing = con.sql("SELECT count(DISTINCT scenario_id) FROM _gaps WHERE k_opt IS NULL").fetchall()
            except duckdb.Error as e:
                raise InputError([Problem("--where", _duck_message(e))]) from None
        finally:
            con.close()
        return t.replace_schema_metadata({"scenarios_without_optimum": str(missing[0][0] if missing else 0)})

    def gaps(self, where: str | None = None) -> Any:
        """Per scenario × method, its answer against the scenario's exact optimum (see :meth:`audit`),
        as a pandas DataFrame: ``cost_per_token`` ($/output token, null = no fleet),
        ``optimum_cost_per_token`` (null = no exact optimum), ``gap_pct`` (% above the optimum),
        ``solves`` and ``seconds`` (summed over enumeration's budget points)."""
        con = self.connect(["results"])
        try:
            self._gaps_view(con, where)
            per_token = COST_UNITS_PER_DOLLAR * 3600
            t = con.sql(f"""SELECT scenario_id, method, k / {per_token} AS cost_per_token,
                k_opt / {per_token} AS optimum_cost_per_token, gap_pct, solves, seconds FROM _gaps
                ORDER BY scenario_id, {_method_order()}""").to_arrow_table()
        finally:
            con.close()
        return to_pandas(t)

    def _gaps_view(self, con: Any, where: str | None) -> None:
        """``_gaps``: scenario_id, method, solves, seconds, k (the answer's exact-order $/token key,
        null = no fleet), k_opt (the exact optimum's, null = none), gap_pct."""
        cond = self._where_sql(con, "results", where)
        exact = ", ".join(f"'{m}'" for m in EXACT_METHODS)
        con.execute(f"""CREATE VIEW _gaps AS
            WITH rows AS (SELECT * FROM results WHERE {cond}),
            ref AS (
                SELECT scenario_id, min({_RATIO}) AS k_opt FROM solutions
                WHERE method IN ({exact}) AND status = 'optimal' AND {_HAS_FLEET} GROUP BY scenario_id),
            grp AS (
                SELECT scenario_id, method, sum(solves) AS solves, sum(seconds) AS seconds,
                    min({_RATIO}) FILTER (WHERE {_HAS_FLEET}) AS k
                FROM rows GROUP BY scenario_id, method)
            SELECT g.scenario_id, g.method, g.solves, g.seconds, g.k, r.k_opt, (g.k / r.k_opt - 1) * 100 AS gap_pct
            FROM grp g LEFT JOIN ref r ON r.scenario_id = g.scenario_id""")

    # ------------------------------------------------------------------ helpers

    def _where_sql(self, con: Any, view: str, where: str | None) -> str:
        """The --where expression as SQL over ``view``'s columns; checked here so errors name it."""
        import duckdb

        if where is None or not where.strip():
            return "TRUE"
        cols = _column_names(con, view)
        unknown = unknown_dotted_names(where, set(cols))
        if unknown:
            from sweep.inputs.schema import SCHEMA

            keys = [k for k in SCHEMA if "." in k and k.replace(".", "_") in cols]
            raise InputError([Problem("--where", f"unknown key {name!r} (valid dotted keys: {', '.join(keys)}; "
                                      "or any column)") for name in unknown])
        expr = rewrite_names(where, set(cols))
        try:
            con.sql(f"SELECT count(*) FROM (SELECT * FROM {view} LIMIT 0) v WHERE ({expr})").fetchall()
        except duckdb.Error as e:
            raise InputError([Problem("--where", _where_message(e, where, cols))]) from None
        return f"({expr})"


def _column_names(con: Any, view: str) -> list[str]:
    return [d[0] for d in con.sql(f"SELECT * FROM {view} LIMIT 0").description]


def _best_index_sql(source: str, keys: bool = False) -> str:
    """``_i`` of each scenario × method's least-$/token row with a fleet (ties: higher throughput,
    then the lower budget — the first budget point that reaches it — then the earlier row); with
    ``keys``, ``scenario_id`` and ``method`` too."""
    return (f"SELECT {'scenario_id, method, ' if keys else ''}"
            f"arg_min(_i, ({_RATIO}, -throughput_tok_s, coalesce(budget, 0), _i)) "
            f"AS _i FROM {source} WHERE {_HAS_FLEET} GROUP BY scenario_id, method")


def _read_part(fs: Any, path: str, want: pa.Schema, threads: bool = True) -> pa.Table:
    """One part file, conformed to ``want`` (a column an older part lacks reads as nulls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open_input_file(path) as f:
        pf = pq.ParquetFile(f, pre_buffer=True)
        have = set(pf.schema_arrow.names)
        t = pf.read(columns=[c for c in want.names if c in have], use_threads=threads)
    cols = [t[f.name].cast(f.type) if f.name in have else pa.nulls(t.num_rows, f.type) for f in want]
    return pa.table(cols, schema=want)


def _superseded_rows(t: pa.Table, key: tuple[str, ...]) -> pa.Array:
    """Rows (positions) of ``t`` whose key has a newer row: a later part's, or later in the same
    part (``t`` holds the parts concatenated oldest first, so the newest row of a key is its last)."""
    import duckdb
    import pyarrow as pa

    none = pa.array([], pa.int64())
    if t.num_rows < 2:
        return none
    cols = ", ".join(f'"{k}"' for k in key)
    con = duckdb.connect()
    try:
        con.register("k", _with_index(t.select(list(key)), "_i"))
        # the common case, a compacted or healthy dataset, costs one count of distinct key hashes
        # (distinct hashes prove distinct keys; a rare 64-bit collision only costs the exact pass)
        (distinct,), = con.sql(f"SELECT count(DISTINCT hash({cols})) FROM k").fetchall()
        if distinct == t.num_rows:
            return none
        return con.sql(f"""
            WITH g AS (SELECT {cols}, max(_i) AS keep FROM k GROUP BY {cols} HAVING count(*) > 1)
            SELECT k._i FROM k JOIN g USING ({cols}) WHERE k._i <> g.keep""").to_arrow_table()["_i"].combine_chunks()
    finally:
        con.close()


def _with_index(t: pa.Table, name: str) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    return t.append_column(name, pa.array(np.arange(t.num_rows, dtype=np.int64)))


def to_pandas(t: pa.Table) -> Any:
    """Arrow → pandas; list and struct columns (``allocation``) stay Arrow-backed (``pd.ArrowDtype``):
    turning 100,000s of allocations into Python lists of dicts would cost more than the query."""
    import pandas as pd
    import pyarrow as pa

    def nested(tp: pa.DataType) -> Any:
        if pa.types.is_list(tp) or pa.types.is_large_list(tp) or pa.types.is_struct(tp) or pa.types.is_map(tp):
            return pd.ArrowDtype(tp)
        return None

    return t.to_pandas(types_mapper=nested)


_IDENT = re.compile(r"'(?:[^']|'')*'|\"([^\"]*)\"|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def rewrite_names(expr: str, known: set[str]) -> str:
    """Dotted parameter keys (``workload.prompt_tokens``, bare or double-quoted) → their column
    names (``workload_prompt_tokens``), when that column is known. String literals are left alone."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name is None or "." not in name:
            return m.group(0)
        col = name.replace(".", "_")  # sweep.results.schema.param_column
        return f'"{col}"' if col in known else m.group(0)

    return _IDENT.sub(sub, expr)


def unknown_dotted_names(expr: str, known: set[str]) -> list[str]:
    """Dotted keys in an expression (outside string literals) that name no column."""
    out = []
    for m in _IDENT.finditer(expr):
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name and "." in name and name.replace(".", "_") not in known and name not in out:
            out.append(name)
    return out


def _duck_message(e: Exception, views: bool = False) -> str:
    """DuckDB's message on one line (the caret diagram dropped)."""
    text = str(e).split("\n\nLINE ")[0]
    msg = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if views and ("Table with name" in msg or "Catalog Error" in msg):
        msg += f" (views: {', '.join(VIEWS)})"
    return msg


def _where_message(e: Exception, where: str, cols: list[str]) -> str:
    m = re.search(r'Referenced column "?([^"\s]+)"? not found', str(e))
    if m:
        name = m.group(1)
        hint = ""
        if f'"{name}"' in where:
            hint = f" (strings take single quotes: '{name}')"
        return f"unknown column {name!r}{hint} (valid: {', '.join(cols)})"
    return _duck_message(e)
