"""The results dataset (SPEC §8): manifest, scenarios, and solutions/frontier written in parts.

Contract:
- Files appear atomically: a local part (and scenarios.parquet, manifest.json) is written under a
  hidden temporary name (``.tmp-…``, which dataset readers ignore), fsynced and renamed; on an object
  store a part is one PUT, visible whole or not at all. A killed run's temporary files are removed by
  the next run; a failed write removes its own.
- Rows are buffered and flushed as a new part every ``rows_per_part`` rows or ``flush_s`` seconds, so
  memory stays flat and the dataset is readable while a sweep runs. Workers write their own parts
  (:class:`PartWriter`: same atomic parts, at the end of each chunk of work too) into the dataset the
  run's :class:`Store` holds open — in the keeper process (:mod:`sweep.results.keeper`) for a driver on
  processes or Ray, in the driver itself on the serial backend; the store writes only what workers send
  back (where they cannot reach the output location) and ``lost`` rows (status ``lost``), then compacts.
- A pareto task's frontier part is written before its solutions row, so a task that counts as
  finished always has its frontier.
- ``compact()`` (end of a run) merges parts, drops duplicate task ids (a crash can leave a re-run's
  rows twice) keeping the newest, and marks each scenario's best enumeration point ``is_best``.
- One writer per dataset: a local dataset is locked by ``.lock``, an exclusive ``flock`` the kernel
  releases when its process dies (so a dead run's lock is taken over); the file names the holder.
- Failures of the output location (busy, unwritable, full, a damaged part) raise :class:`StoreError`,
  an :class:`~sweep.errors.InputError` with one line: the CLI exits 2.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep import faults
from sweep.errors import InputError, Problem
from sweep.results import schema
from sweep.results.failures import StoreError, redact
from sweep.results.failures import fail as _fail
from sweep.results.failures import reason as _reason
from sweep.results.lock import LockError, take_lock
from sweep.results.rows import TaskOutput, from_ipc, rows_ipc
from sweep.vocab import EXACT_METHODS, Status, cost_per_token_key, is_lost

PARTS = tuple(schema.PART_SCHEMAS)  # ("solutions", "frontier")


def open_fs(out: str) -> tuple[pafs.FileSystem, str, bool]:
    """(filesystem, root path, is_local) for a local path or a URI pyarrow understands (s3://, gs://, file://)."""
    if "://" in out:
        try:
            fs, path = pafs.FileSystem.from_uri(out)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise InputError([Problem(redact(out), f"cannot open output location: {e}")]) from None
        return fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)
    return pafs.LocalFileSystem(), os.path.abspath(out), True


class Store:
    """A results dataset being written by one sweep run. Use as a context manager.

    Every failure to use the output location (busy, unwritable, full, a damaged part) raises
    :class:`StoreError` with one line saying where and why; nothing half-written is left visible.
    """

    def __init__(self, out: str, sweep: str, *, fresh: bool = False, rows_per_part: int = 5000,
                 flush_s: float = 10.0, holder: int | None = None):
        """``holder``: the process the lock file names (the sweep run's driver, when a keeper process
        holds the store for it; default this process)."""
        if "\0" in out:
            raise _fail(repr(out), "output path contains a NUL character")
        self.out = redact(out)  # for messages; never shows credentials from a URI's query
        self.sweep = sweep
        self.fs, self.root, self.local = open_fs(out)
        self.fresh = fresh
        self.rows_per_part = rows_per_part
        self.flush_s = flush_s
        self._tables: dict[str, list[pa.Table]] = {t: [] for t in PARTS}
        self._table_rows = 0
        self._last_flush = time.monotonic()
        self._lock_fd: int | None = None
        self.holder = holder

    # ------------------------------------------------------------------ paths and atomic writes

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _write_error(self, what: str, e: BaseException) -> StoreError:
        return _write_error(self.out, what, e)

    def _tmp_name(self, dest: str) -> str:
        return _tmp_name(dest)

    def _write_table(self, table: pa.Table, dest: str, what: str, fault_point: str = "") -> None:
        write_table_atomic(self.fs, self.local, self.out, table, dest, what, fault_point)

    def _write_bytes(self, data: bytes, dest: str, what: str) -> None:
        tmp = self._tmp_name(dest) if self.local else dest
        try:
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            if self.local:
                _fsync(tmp)
                self.fs.move(tmp, dest)
        except BaseException as e:
            if self.local:
                self._try_delete(tmp)
            if isinstance(e, OSError):
                raise self._write_error(what, e) from None
            raise

    def read_table(self, path: str, **kw: Any) -> pa.Table:
        """A finished part (or scenarios.parquet); a damaged one is a StoreError naming it."""
        try:
            return pq.read_table(path, filesystem=self.fs, **kw)
        except (OSError, pa.ArrowInvalid) as e:
            raise _fail(path, f"cannot read this part ({_reason(e)}): it was damaged outside sweep; "
                              "move it away (its tasks will run again) or start over with --fresh") from None

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
        try:
            infos = self.fs.get_file_info(sel)
        except OSError as e:
            raise _fail(self.path(table), f"cannot list the folder: {_reason(e)}") from None
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name.startswith("part-")
                      and i.base_name.endswith(".parquet"))

    def _new_part_name(self, table: str) -> str:
        return new_part_name(self.root, table)

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
            raise _fail(self.out, f"cannot create the output folder: {_reason(e)}") from None
        self._lock()
        try:
            if self.fresh:
                for t in PARTS:
                    for f in self.part_files(t):
                        self._try_delete(f)
                for name in ("scenarios.parquet", "manifest.json"):
                    self._try_delete(self.path(name))
            self._sweep_temp_files()
        except BaseException:
            self.close()
            raise

    def sweep_temp_files(self) -> None:
        """Remove temporary files of writers that are gone (a run killed mid-write; workers stopped while
        writing a part): garbage once no worker of this run is left (we hold the lock)."""
        try:
            self._sweep_temp_files()
        except OSError:
            pass

    def _sweep_temp_files(self) -> None:
        """Temporary files of a run that was killed mid-write are garbage: remove them (we hold the lock)."""
        if not self.local:
            return
        for folder in (self.root, *(self.path(t) for t in PARTS)):
            sel = pafs.FileSelector(folder, allow_not_found=True)
            for i in self.fs.get_file_info(sel):
                name = i.base_name
                # .tmp-* now; manifest.json.tmp-* from earlier versions
                if i.type == pafs.FileType.File and (name.startswith(".tmp-") or name.startswith("manifest.json.tmp-")):
                    self._try_delete(i.path)

    def _lock(self) -> None:
        """Take ``.lock`` for the whole run (see :func:`sweep.results.lock.take_lock`)."""
        if not self.local:
            return  # object stores have no locks; one writer per URI is the user's to keep
        try:
            self._lock_fd = take_lock(os.path.join(self.root, ".lock"), _reason, self.holder)
        except LockError as e:
            raise _fail(self.out, str(e)) from None

    def close(self) -> None:
        if self._lock_fd is not None:
            _unlink_quietly(os.path.join(self.root, ".lock"))  # while still holding it (see _lock)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ reading what is done

    def finished_task_ids(self, include_errors: bool = True) -> set[str]:
        """Task ids with a row in ``solutions`` (resume skips them). A task whose worker was lost
        (:func:`~sweep.vocab.is_lost`) is not finished; other errors count as
        finished unless ``include_errors`` is false."""
        done: set[str] = set()
        for f in self.part_files("solutions"):
            t = self.read_table(f, columns=["task_id", "status"]).to_pydict()
            for i, s in zip(t["task_id"], t["status"], strict=True):
                if not is_lost(s) and (s != Status.ERROR or include_errors):
                    done.add(i)
        return done

    # ------------------------------------------------------------------ writing

    def write_scenarios(self, parts: list[tuple[bytes, list[bool]]]) -> None:
        """scenarios.parquet: these scenarios — IPC streams of :func:`sweep.results.rows.scenarios_table` rows,
        each with the mask of rows to keep — plus earlier runs' ones not among them."""
        new = pa.concat_tables([from_ipc(data).filter(pa.array(keep, pa.bool_())) for data, keep in parts])
        seen = set(new.column("scenario_id").to_pylist())
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
        self._write_table(new, dest, "scenarios.parquet")

    def add_tables(self, tables: dict[str, bytes]) -> None:
        """Finished rows sent back as IPC streams (by a worker that could not reach the output location, or
        the driver's ``lost`` rows); written as parts every ``rows_per_part`` rows or ``flush_s`` seconds."""
        for t in PARTS:
            data = tables.get(t)
            if data:
                table = from_ipc(data)
                self._tables[t].append(table)
                self._table_rows += table.num_rows if t == "solutions" else 0
        if self._table_rows >= self.rows_per_part or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as new parts (frontier first: see the module docstring)."""
        for t in ("frontier", "solutions"):
            tables = self._tables[t]
            if tables:
                table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                self._write_table(table, self._new_part_name(t), f"results ({t} part)", "part")
                self._tables[t] = []
        self._table_rows = 0
        self._last_flush = time.monotonic()

    def write_manifest(self, info: dict) -> None:
        """manifest.json: ``info`` (the sweep as resolved, status, task counts), when it was created and
        updated, and the versions of sweep and the packages that produced the rows."""
        dest = self.path("manifest.json")
        created = None
        if self._exists(dest):
            try:
                with self.fs.open_input_stream(dest) as f:
                    created = json.loads(f.read().decode()).get("created")
            except (OSError, ValueError):
                created = None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = {"sweep": self.sweep, "created": created or now, "updated": now, "versions": package_versions(), **info}
        self._write_bytes((json.dumps(doc, indent=2, default=str) + "\n").encode(), dest, "manifest.json")

    def best_exact(self) -> dict:
        """The least $/token among exact methods' optimal rows in the dataset (empty if none)."""
        import pyarrow.compute as pc

        best: dict = {}
        cols = ["scenario_id", "method", "status", "cost_per_token", "throughput_tok_s", "cost_per_hour"]
        for f in self.part_files("solutions"):
            t = self.read_table(f, columns=cols)
            exact = pc.is_in(t["method"], value_set=pa.array(list(EXACT_METHODS)))
            t = t.filter(pc.and_(exact, pc.and_(pc.equal(t["status"], Status.OPTIMAL),
                                                pc.is_valid(t["cost_per_token"]))))
            if t.num_rows == 0:
                continue
            i = pc.index(t["cost_per_token"], pc.min(t["cost_per_token"])).as_py()
            row = {c: t[c][i].as_py() for c in cols}
            if not best or row["cost_per_token"] < best["cost_per_token"]:
                best = row
        return best

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
        cols = list(key) + (["scenario_id", "method", "cost_per_hour", "throughput_tok_s", "is_best", "budget"]
                            if table == "solutions" else [])
        cols = list(dict.fromkeys(cols))
        index, metas = self._newest_rows(files, table, key, cols)
        best_enum: dict[str, tuple[tuple, tuple[int, int]]] = {}
        needs_best = False
        if table == "solutions":
            best_enum, needs_best = self._best_enumeration_points(files, cols, index)
        if len(files) == 1 and len(index) == metas[0] and not needs_best:
            return  # one part, no duplicates, nothing to mark
        best_pos = {v[1] for v in best_enum.values()} if needs_best else None
        self._rewrite_parts(files, table, set(index.values()), best_pos, max_rows)

    def _newest_rows(self, files: list[str], table: str, key: tuple[str, ...], cols: list[str],
                     ) -> tuple[dict[tuple, tuple[int, int]], list[int]]:
        """key -> (file index, row) of its newest row, and each part's row count."""
        index: dict[tuple, tuple[int, int]] = {}
        metas = []
        newest_part: dict[str, int] = {}  # frontier: the part holding a scenario's latest frontier
        for fi, f in enumerate(files):
            t = self.read_table(f, columns=cols).to_pydict()
            metas.append(len(t[key[0]]))
            for r in range(len(t[key[0]])):
                index[tuple(t[k][r] for k in key)] = (fi, r)
                if table == "frontier":
                    newest_part[t["scenario_id"][r]] = fi
        if table == "frontier":
            # one pareto task writes its whole frontier into one part: a re-run's (possibly shorter)
            # frontier replaces every point of the earlier one, not just the ranks it shares
            index = {k: pos for k, pos in index.items() if pos[0] == newest_part[k[0]]}
        return index, metas

    def _best_enumeration_points(self, files: list[str], cols: list[str], index: dict[tuple, tuple[int, int]],
                                 ) -> tuple[dict[str, tuple[tuple, tuple[int, int]]], bool]:
        """The newest row of each task decides; then the best enumeration point per scenario (and whether
        there are enumeration rows at all)."""
        best_enum: dict[str, tuple[tuple, tuple[int, int]]] = {}
        needs_best = False
        for fi, f in enumerate(files):
            t = self.read_table(f, columns=cols).to_pydict()
            for r in range(len(t["task_id"])):
                if t["method"][r] != "enumeration" or index[(t["task_id"][r],)] != (fi, r):
                    continue
                needs_best = True
                c, thr = t["cost_per_hour"][r], t["throughput_tok_s"][r]
                if c is None or not thr:
                    continue
                # least $/token; ties: higher throughput, then the lower budget (as queries do)
                rank = (cost_per_token_key(c, thr), -thr, t["budget"][r] or 0.0)
                cur = best_enum.get(t["scenario_id"][r])
                if cur is None or rank < cur[0]:
                    best_enum[t["scenario_id"][r]] = (rank, (fi, r))
        return best_enum, needs_best

    def _rewrite_parts(self, files: list[str], table: str, keep_pos: set[tuple[int, int]],
                       best_pos: set[tuple[int, int]] | None, max_rows: int) -> None:
        """The kept rows into new parts of at most ``max_rows`` (enumeration's ``is_best`` re-marked when
        ``best_pos`` is given); the old parts are deleted only after every new one is in place."""
        written: list[pa.Table] = []
        pending_rows = 0
        new_files: list[str] = []

        def emit() -> None:
            nonlocal written, pending_rows
            if written:
                dest = self._new_part_name(table)
                self._write_table(pa.concat_tables(written), dest, f"results (merging {table} parts)")
                new_files.append(dest)
                written, pending_rows = [], 0

        for fi, f in enumerate(files):
            t = self.read_table(f, schema=schema.PART_SCHEMAS[table])
            mask = [(fi, r) in keep_pos for r in range(t.num_rows)]
            t = t.filter(pa.array(mask, pa.bool_()))
            if best_pos is not None:
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
        faults.point(f"compact-{table}")
        for f in files:  # only after every new part is in place
            self._try_delete(f)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("sweep", "pulp", "highspy", "pyarrow", "pandas", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _write_error(out: str, what: str, e: BaseException) -> StoreError:
    return _fail(out, f"cannot write {what}: {_reason(e)} (results saved before this are kept, "
                      "nothing half-written is left: fix this and run the same command again to resume)")


def _tmp_name(dest: str) -> str:
    """A hidden temporary name next to ``dest`` (readers skip names starting with '.')."""
    folder, name = dest.rsplit("/", 1)
    return f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"


def new_part_name(root: str, table: str) -> str:
    """A new part's path: names sort by creation time (newest last), and never collide across writers."""
    return f"{root}/{table}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


def write_table_atomic(fs: pafs.FileSystem, local: bool, out: str, table: pa.Table, dest: str, what: str,
                       fault_point: str = "") -> None:
    """``table`` at ``dest``, all or nothing: locally under a hidden temporary name, fsynced, renamed; on an
    object store one PUT. An OSError is a :class:`StoreError` (``out`` names the location in it)."""
    if not local:
        try:
            pq.write_table(table, dest, filesystem=fs)
        except OSError as e:
            raise _write_error(out, what, e) from None
        return
    tmp = _tmp_name(dest)
    try:
        pq.write_table(table, tmp, filesystem=fs)
        _fsync(tmp)
        if fault_point:
            faults.point(fault_point)
        fs.move(tmp, dest)
    except BaseException as e:
        try:
            fs.delete_file(tmp)
        except (OSError, FileNotFoundError):
            pass
        if isinstance(e, OSError):
            raise _write_error(out, what, e) from None
        raise


class PartWriter:
    """A worker's own writer of result parts into a dataset the driver holds open (SPEC §9: results need
    not funnel through the driver). Same atomic parts as :class:`Store` (frontier before solutions, so a
    task that counts as finished always has its frontier); no lock, no compaction: the driver's."""

    def __init__(self, out: str | None, rows_per_part: int = 5000, flush_s: float = 5.0):
        """``out`` None: rows are only buffered, for :meth:`tables` (a worker that cannot reach the output)."""
        self.out = redact(out) if out else ""
        if out:
            self.fs, self.root, self.local = open_fs(out)
        self.writes = bool(out)
        self.rows_per_part = rows_per_part
        self.flush_s = flush_s
        self._buf: dict[str, list[dict]] = {t: [] for t in PARTS}
        self._last_flush = time.monotonic()

    def add(self, o: TaskOutput) -> None:
        self._buf["solutions"].append(o.solution)
        self._buf["frontier"].extend(o.frontier)
        if self.writes and (len(self._buf["solutions"]) >= self.rows_per_part
                            or time.monotonic() - self._last_flush >= self.flush_s):
            self.flush()

    def tables(self) -> dict[str, bytes]:
        """The buffered rows as IPC streams, and the buffer emptied (for a worker that sends them back)."""
        out = rows_ipc(self._buf)
        self._buf = {t: [] for t in PARTS}
        return out

    def flush(self) -> None:
        for t in ("frontier", "solutions"):
            rows = self._buf[t]
            if rows:
                table = pa.Table.from_pylist(rows, schema=schema.PART_SCHEMAS[t])
                write_table_atomic(self.fs, self.local, self.out, table, new_part_name(self.root, t),
                                   f"results ({t} part)", "part")
                self._buf[t] = []
        self._last_flush = time.monotonic()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync(path: str) -> None:
    """Data on disk before the rename that publishes it (a power cut must not leave an empty part)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
