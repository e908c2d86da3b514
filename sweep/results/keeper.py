"""A results :class:`~sweep.results.store.Store` held by a process of its own — the dataset's *keeper* — so
that a sweep's driver coordinates and never loads pyarrow (SPEC §9: the driver is never what limits a
cluster). The driver sends the keeper the few calls a run makes (open, what is finished, scenarios.parquet,
rows sent back, the manifest, compaction, the best row) and gets each one's answer; table contents travel
as Arrow IPC bytes the driver passes on without decoding.

The keeper holds the folder's lock, ignores SIGINT (the driver stops it: Ctrl-C reaches the whole process
group) and dies with the driver: it exits when the driver's end of its pipe closes, and the kernel kills it
if the driver dies first (``PR_SET_PDEATHSIG``). Faults and their recovery are the store's own (atomic
parts, compaction that deletes old parts only after the new ones are in place).

    python -m sweep.results.keeper FD_IN FD_OUT      (started by :class:`StoreProcess`)
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

from sweep.errors import InputError, Problem
from sweep.results.failures import StoreError


class KeeperError(RuntimeError):
    """The keeper failed in a way that is not the output location's (a bug), or died."""


class StoreProcess:
    """The :class:`~sweep.results.store.Store` methods a sweep run calls, run by a keeper process."""

    def __init__(self) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sweep.results.keeper", str(to_r), str(from_w)],
            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        os.close(to_r)
        os.close(from_w)
        self._to = Connection(to_w, readable=False)
        self._from = Connection(from_r, writable=False)
        self._pending = False
        self.cpu_s: float | None = None

    def call(self, name: str, *args: Any, **kw: Any) -> Any:
        """One call, answered; raises what the store raised (StoreError, InputError) or KeeperError. A call
        interrupted (Ctrl-C, SIGTERM) while the keeper works on it is answered before the next one is sent."""
        try:
            if self._pending:
                self._from.recv()  # the answer to an interrupted call
                self._pending = False
            self._to.send((name, args, kw))
            self._pending = True
            kind, value = self._from.recv()
            self._pending = False
        except (EOFError, OSError):
            code = self._proc.poll()
            raise KeeperError(f"the results keeper process died (exit {code})") from None
        if kind == "ok":
            return value
        if kind == "store":
            raise StoreError([Problem(w, m) for w, m in value])
        if kind == "input":
            raise InputError([Problem(w, m) for w, m in value])
        raise KeeperError(f"the results keeper failed: {value}")

    # the Store's interface, as the driver uses it
    def open(self, out: str, sweep: str, **kw: Any) -> None:
        """Open (and lock) the dataset; its lock file names this process, the sweep run."""
        self.call("open", out, sweep, holder=os.getpid(), **kw)

    def finished_task_ids(self, include_errors: bool = True) -> set[str]:
        return self.call("finished_task_ids", include_errors)

    def write_scenarios(self, parts: list[tuple[bytes, list[bool]]]) -> None:
        self.call("write_scenarios", parts)

    def write_manifest(self, info: dict) -> None:
        self.call("write_manifest", info)

    def add_tables(self, tables: dict[str, bytes]) -> None:
        self.call("add_tables", tables)

    def flush(self) -> None:
        self.call("flush")

    def compact(self) -> None:
        self.call("compact")

    def sweep_temp_files(self) -> None:
        self.call("sweep_temp_files")

    def best_exact(self) -> dict:
        return self.call("best_exact")

    def close(self) -> None:
        """Close the store (releasing its lock) and end the keeper; ``cpu_s``: the keeper's CPU seconds."""
        try:
            if self._proc.poll() is None:
                self.cpu_s = self.call("close")
        except KeeperError:
            pass  # it died: nothing of it to close (the lock went with it)
        finally:
            for c in (self._to, self._from):
                c.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _die_with_parent() -> None:
    """In the keeper, before it runs: the kernel sends it SIGKILL when the driver dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(fd_in: int, fd_out: int) -> None:
    """The keeper's loop: one call in, its answer out, until ``close`` or the driver is gone."""
    from sweep.results.store import Store

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() == 1:  # the driver died before PR_SET_PDEATHSIG took effect
        return
    inbox, outbox = Connection(fd_in, writable=False), Connection(fd_out, readable=False)
    store: Store | None = None
    while True:
        try:
            name, args, kw = inbox.recv()
        except (EOFError, OSError):
            break  # the driver is gone: the lock goes with this process
        try:
            if name == "open":
                store = Store(*args, **kw)
                store.open()
                value = None
            elif name == "close":
                if store is not None:
                    store.close()
                    store = None
                use = resource.getrusage(resource.RUSAGE_SELF)
                value = use.ru_utime + use.ru_stime  # what the keeper cost, for benchmarks
            else:
                assert store is not None, f"{name} before open"
                value = getattr(store, name)(*args, **kw)
            outbox.send(("ok", value))
        except StoreError as e:
            outbox.send(("store", [(p.where, p.what) for p in e.problems]))
        except InputError as e:
            outbox.send(("input", [(p.where, p.what) for p in e.problems]))
        except Exception as e:  # noqa: BLE001 - reported to the driver, which raises it
            outbox.send(("crash", f"{e.__class__.__name__}: {e}"))
        if name == "close":
            break
    if store is not None:
        store.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
