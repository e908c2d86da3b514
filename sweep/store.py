"""The results dataset (SPEC §8): manifest, scenarios, and solutions/frontier written in parts.

Contract:
- Parts appear atomically: a local part is written under a hidden temporary name (``.tmp-…``, which
  dataset readers ignore) and renamed; on an object store a part is one PUT, visible whole or not at all.
- Rows are buffered and flushed as a new part every ``rows_per_part`` rows or ``flush_s`` seconds, so
  memory stays flat and the dataset is readable while a sweep runs.
- A pareto task's frontier part is written before its solutions row, so a task that counts as
  finished always has its frontier.
- ``compact()`` (end of a run) merges parts, drops duplicate task ids (a crash can leave a re-run's
  rows twice) keeping the newest, and marks each scenario's best enumeration point ``is_best``.
- One writer per dataset: a local dataset is locked by ``.lock`` (pid and host); a stale lock of a
  dead process on this host is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep import schema
from sweep.errors import InputError, Problem
from sweep.plan import TaskOutput
from sweep.scenario import SCHEMA, Scenario

PARTS = ("solutions", "frontier")
_TABLE_SCHEMA = {"solutions": schema.SOLUTIONS, "frontier": schema.FRONTIER}


def open_fs(out: str) -> tuple[pafs.FileSystem, str, bool]:
    """(filesystem, root path, is_local) for a local path or a URI pyarrow understands (s3://, gs://, file://)."""
    if "://" in out:
        try:
            fs, path = pafs.FileSystem.from_uri(out)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise InputError([Problem(out, f"cannot open output location: {e}")]) from None
        return fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)
    return pafs.LocalFileSystem(), os.path.abspath(out), True


class StoreError(InputError):
    """The output location cannot be used (busy, unwritable, full)."""


def _fail(where: str, what: str) -> StoreError:
    return StoreError([Problem(where, what)])


@dataclass
class Counts:
    written: int = 0
    errors: int = 0


class Store:
    """A results dataset being written by one sweep run. Use as a context manager."""

    def __init__(self, out: str, sweep: str, *, fresh: bool = False, rows_per_part: int = 5000,
                 flush_s: float = 10.0):
        self.out = out
        self.sweep = sweep
        self.fs, self.root, self.local = open_fs(out)
        self.fresh = fresh
        self.rows_per_part = rows_per_part
        self.flush_s = flush_s
        self._buf: dict[str, list[dict]] = {t: [] for t in PARTS}
        self._last_flush = time.monotonic()
        self._locked = False
        self.counts = Counts()

    # ------------------------------------------------------------------ paths and atomic writes

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _write_table(self, table: pa.Table, dest: str) -> None:
        if self.local:
            tmp = dest.rsplit("/", 1)[0] + "/.tmp-" + uuid.uuid4().hex + ".parquet"
            try:
                pq.write_table(table, tmp, filesystem=self.fs)
                self.fs.move(tmp, dest)
            except BaseException:
                self._try_delete(tmp)
                raise
        else:
            pq.write_table(table, dest, filesystem=self.fs)

    def _write_bytes(self, data: bytes, dest: str) -> None:
        tmp = dest + ".tmp-" + uuid.uuid4().hex if self.local else dest
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        if self.local:
            self.fs.move(tmp, dest)

    def _try_delete(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except (OSError, FileNotFoundError):
            pass

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def part_files(self, table: str) -> list[str]:
        """Finished parts of a table, oldest first (names sort by creation time)."""
        sel = pafs.FileSelector(self.path(table), allow_not_found=True)
        files = [i.path for i in self.fs.get_file_info(sel)
                 if i.type == pafs.FileType.File and i.base_name.startswith("part-") and i.base_name.endswith(".parquet")]
        return sorted(files)

    def _new_part_name(self, table: str) -> str:
        return self.path(table, f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet")

    # ------------------------------------------------------------------ open / close

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self.fs.create_dir(self.root, recursive=True)
            for t in PARTS:
                self.fs.create_dir(self.path(t), recursive=True)
        except OSError as e:
            raise _fail(self.out, f"cannot create the output folder: {e.strerror or e}") from None
        self._lock()
        if self.fresh:
            for t in PARTS:
                for f in self.part_files(t):
                    self._try_delete(f)
            for name in ("scenarios.parquet", "manifest.json"):
                self._try_delete(self.path(name))
        self._sweep_temp_files()

    def _sweep_temp_files(self) -> None:
        """Temporary files of a run that was killed mid-write are garbage: remove them."""
        if not self.local:
            return
        for t in PARTS:
            sel = pafs.FileSelector(self.path(t), allow_not_found=True)
            for i in self.fs.get_file_info(sel):
                if i.base_name.startswith(".tmp-"):
                    self._try_delete(i.path)

    def _lock(self) -> None:
        if not self.local:
            return  # object stores have no exclusive create; one writer per URI is the user's to keep
        lock = os.path.join(self.root, ".lock")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(lock) as fh:
                        other = json.loads(fh.read() or "{}")
                except (OSError, ValueError):
                    other = {}
                if other.get("host") == me["host"] and not _alive(int(other.get("pid", 0) or 0)):
                    os.unlink(lock)  # stale: its process is gone
                    continue
                raise _fail(self.out, f"in use by another sweep run (pid {other.get('pid', '?')} on "
                                      f"{other.get('host', '?')}); wait for it, or remove {lock} if that run is gone") from None
            except OSError as e:
                raise _fail(self.out, f"cannot write here: {e.strerror or e}") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
            self._locked = True
            return

    def close(self) -> None:
        if self._locked:
            try:
                os.unlink(os.path.join(self.root, ".lock"))
            except OSError:
                pass
            self._locked = False

    # ------------------------------------------------------------------ reading what is done

    def finished_task_ids(self, include_errors: bool = True) -> set[str]:
        """Task ids with a row in ``solutions`` (resume skips them)."""
        done: set[str] = set()
        for f in self.part_files("solutions"):
            t = pq.read_table(f, columns=["task_id", "status"], filesystem=self.fs)
            ids = t.column("task_id").to_pylist()
            if include_errors:
                done.update(ids)
            else:
                done.update(i for i, s in zip(ids, t.column("status").to_pylist(), strict=True) if s != "error")
        return done

    # ------------------------------------------------------------------ writing

    def write_scenarios(self, scenarios: Iterable[Scenario]) -> int:
        """scenarios.parquet: these scenarios plus earlier runs' ones not among them. Returns the count."""
        sch = schema.scenarios_schema({k: v.kind for k, v in SCHEMA.items()})
        cols: dict[str, list[Any]] = {f.name: [] for f in sch}
        seen: set[str] = set()
        for sc in scenarios:
            sid = sc.scenario_id
            if sid in seen:
                continue
            seen.add(sid)
            cols["sweep"].append(self.sweep)
            cols["scenario_id"].append(sid)
            cols["origin"].append(sc.origin)
            for k in SCHEMA:
                cols[schema.param_column(k)].append(schema.param_value(sc.params[k]))
        new = pa.table(cols, schema=sch)
        dest = self.path("scenarios.parquet")
        if self._exists(dest):
            try:
                old = pq.read_table(dest, filesystem=self.fs)
                keep = [sid not in seen for sid in old.column("scenario_id").to_pylist()]
                old = old.filter(pa.array(keep, pa.bool_()))
                if old.num_rows:
                    new = pa.concat_tables([new, old.select(new.schema.names).cast(new.schema)])
            except (pa.ArrowInvalid, KeyError, OSError):
                pass  # an unreadable or older-schema file is replaced
        self._write_table(new, dest)
        return len(seen)

    def add(self, outputs: Iterable[TaskOutput]) -> None:
        for o in outputs:
            self._buf["solutions"].append(o.solution)
            self._buf["frontier"].extend(o.frontier)
            self.counts.written += 1
            if o.solution["status"] == "error":
                self.counts.errors += 1
        if len(self._buf["solutions"]) >= self.rows_per_part or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as new parts (frontier first: see the module docstring)."""
        for t in ("frontier", "solutions"):
            rows = self._buf[t]
            if rows:
                table = pa.Table.from_pylist(rows, schema=_TABLE_SCHEMA[t])
                self._write_table(table, self._new_part_name(t))
                self._buf[t] = []
        self._last_flush = time.monotonic()

    def write_manifest(self, info: dict) -> None:
        dest = self.path("manifest.json")
        created = None
        if self._exists(dest):
            try:
                with self.fs.open_input_stream(dest) as f:
                    created = json.loads(f.read().decode()).get("created")
            except (OSError, ValueError):
                created = None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = {"sweep": self.sweep, "created": created or now, "updated": now, **info}
        self._write_bytes((json.dumps(doc, indent=2, default=str) + "\n").encode(), dest)

    # ------------------------------------------------------------------ compaction

    def compact(self, max_rows_per_part: int = 500_000) -> None:
        """Merge parts, drop duplicate keys (newest wins), mark the best enumeration point per scenario."""
        self.flush()
        self._compact_table("frontier", ("scenario_id", "rank"), max_rows_per_part)
        self._compact_table("solutions", ("task_id",), max_rows_per_part)

    def _compact_table(self, table: str, key: tuple[str, ...], max_rows: int) -> None:
        files = self.part_files(table)
        if not files:
            return
        cols = list(key) + (["scenario_id", "method", "cost_per_hour", "throughput_tok_s", "is_best"]
                            if table == "solutions" else [])
        cols = list(dict.fromkeys(cols))
        index: dict[tuple, tuple[int, int]] = {}  # key -> (file index, row) of its newest row
        best_enum: dict[str, tuple[Fraction, int, tuple[int, int]]] = {}
        metas = []
        for fi, f in enumerate(files):
            t = pq.read_table(f, columns=cols, filesystem=self.fs).to_pydict()
            metas.append(len(t[key[0]]))
            for r in range(len(t[key[0]])):
                index[tuple(t[k][r] for k in key)] = (fi, r)
        needs_best = False
        if table == "solutions":
            # the newest row of each task decides; then the best enumeration point per scenario
            for fi, f in enumerate(files):
                t = pq.read_table(f, columns=cols, filesystem=self.fs).to_pydict()
                for r in range(len(t["task_id"])):
                    if t["method"][r] != "enumeration" or index[(t["task_id"][r],)] != (fi, r):
                        continue
                    needs_best = True
                    c, thr = t["cost_per_hour"][r], t["throughput_tok_s"][r]
                    if c is None or not thr:
                        continue
                    ratio = Fraction(round(c * 10_000), int(thr))
                    cur = best_enum.get(t["scenario_id"][r])
                    if cur is None or (ratio, -thr) < (cur[0], -cur[1]):
                        best_enum[t["scenario_id"][r]] = (ratio, int(thr), (fi, r))
        if len(files) == 1 and len(index) == metas[0] and not needs_best:
            return  # one part, no duplicates, nothing to mark
        keep_pos = set(index.values())
        best_pos = {v[2] for v in best_enum.values()}
        written: list[pa.Table] = []
        pending_rows = 0
        new_files: list[str] = []

        def emit() -> None:
            nonlocal written, pending_rows
            if written:
                dest = self._new_part_name(table)
                self._write_table(pa.concat_tables(written), dest)
                new_files.append(dest)
                written, pending_rows = [], 0

        for fi, f in enumerate(files):
            t = pq.read_table(f, filesystem=self.fs, schema=_TABLE_SCHEMA[table])
            mask = [(fi, r) in keep_pos for r in range(t.num_rows)]
            t = t.filter(pa.array(mask, pa.bool_()))
            if table == "solutions" and needs_best:
                rows_pos = [r for r in range(len(mask)) if mask[r]]
                methods = t.column("method").to_pylist()
                best = t.column("is_best").to_pylist()
                for i, r in enumerate(rows_pos):
                    if methods[i] == "enumeration":
                        best[i] = (fi, r) in best_pos
                t = t.set_column(t.schema.get_field_index("is_best"), "is_best", pa.array(best, pa.bool_()))
            written.append(t)
            pending_rows += t.num_rows
            if pending_rows >= max_rows:
                emit()
        emit()
        for f in files:  # only after every new part is in place
            self._try_delete(f)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
