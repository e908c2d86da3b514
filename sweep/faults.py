"""Fault injection for reliability tests: ``SWEEP_FAULTS`` names tasks to fail on purpose.

``SWEEP_FAULTS="raise:<task_id>,kill:<task_id>"`` — ``raise`` makes that task raise inside the
worker (it must become one ``error`` row); ``kill`` kills the worker process running it the first
time (a lost worker, whose tasks must be retried). ``kill`` uses a marker file in
``SWEEP_FAULTS_DIR`` so the retry succeeds. Unset in normal use: then this costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


class InjectedFault(RuntimeError):
    pass


def check(task_id: str) -> None:
    spec = os.environ.get("SWEEP_FAULTS")
    if not spec:
        return
    for item in spec.split(","):
        kind, _, target = item.partition(":")
        if target != task_id:
            continue
        if kind == "raise":
            raise InjectedFault(f"injected fault in task {task_id}")
        if kind == "kill":
            marker = Path(os.environ.get("SWEEP_FAULTS_DIR", "/tmp")) / ("killed-" + task_id.replace("/", "_"))
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
