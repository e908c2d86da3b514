"""Fault injection for reliability tests: ``SWEEP_FAULTS`` names tasks to fail on purpose.

``SWEEP_FAULTS`` is a comma-separated list of ``kind:target[:arg]``; ``target`` is a task id, or ``*``
for every task:

- ``raise:<task_id>`` — the task raises inside the worker (it must become one ``error`` row);
- ``kill:<task_id>[:n]`` — the worker running it kills itself (SIGKILL) the first ``n`` times (default
  1): a lost worker, whose tasks must be retried;
- ``hang:<task_id>`` — the first time, the worker writes its pid to the marker file and sleeps (up
  to 120 s) so that a test can kill it from outside; the retry runs normally;
- ``sleep:<target>:<seconds>`` — the task first sleeps that long (to make a sweep slow enough to
  interrupt at a chosen moment);
- ``die:<point>[:n]`` — the *driver* SIGKILLs its own process group the ``n``-th time (default 1) it
  reaches ``point`` in the store: ``part`` (a results part is written under its temporary name, not
  yet renamed) or ``compact-solutions`` / ``compact-frontier`` (that table's merged parts are
  written, the parts they replace not yet deleted).

``kill`` and ``hang`` count what they did in a file ``killed-<task_id>`` in ``SWEEP_FAULTS_DIR``
(default /tmp; one line per kill, the worker's pid), so that retries succeed. Unset in normal use:
then this costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


class InjectedFault(RuntimeError):
    pass


def marker(task_id: str) -> Path:
    """The file a ``kill`` or ``hang`` fault leaves for ``task_id`` (it holds the worker's pid)."""
    return Path(os.environ.get("SWEEP_FAULTS_DIR", "/tmp")) / ("killed-" + task_id.replace("/", "_"))


_reached: dict[str, int] = {}


def _take_turn(task_id: str, times: int) -> bool:
    """Whether this run of ``task_id`` is among its first ``times`` faulted runs (and record it)."""
    m = marker(task_id)
    try:
        done = len(m.read_text().split())
    except FileNotFoundError:
        done = 0
    if done >= times:
        return False
    with open(m, "a") as f:
        f.write(f"{os.getpid()}\n")
    return True


def _parse(item: str) -> tuple[str, str, str]:
    kind, _, rest = item.strip().partition(":")
    if kind in ("sleep", "kill", "die") and rest.count(":") >= 1:
        target, _, arg = rest.rpartition(":")
        return kind, target, arg
    return kind, rest, ""


def _faults() -> list[tuple[str, str, str]]:
    """(kind, target, argument) of each ``SWEEP_FAULTS`` item; none in normal use."""
    spec = os.environ.get("SWEEP_FAULTS")
    return [_parse(item) for item in spec.split(",")] if spec else []


def check(task_id: str) -> None:
    """Called by a worker before it runs ``task_id``."""
    for kind, target, arg in _faults():
        if target not in (task_id, "*"):
            continue
        if kind == "raise":
            raise InjectedFault(f"injected fault in task {task_id}")
        if kind == "kill" and _take_turn(task_id, int(arg or 1)):
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "hang" and _take_turn(task_id, 1):
            time.sleep(120)
        if kind == "sleep":
            time.sleep(float(arg or 0))


def point(name: str) -> None:
    """Called by the driver at a point of the store's writes (see ``die``)."""
    for kind, target, arg in _faults():
        if kind == "die" and target == name:
            _reached[name] = _reached.get(name, 0) + 1
            if _reached[name] == int(arg or 1):
                os.killpg(os.getpgid(0), signal.SIGKILL)
