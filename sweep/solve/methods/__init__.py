"""The min-$/token methods of SPEC §6, each a function ``Instance -> MethodResult``.

Baselines, kept exactly as the design note describes them: ``weighted``, ``iterative`` and
``enumeration``. Exact methods: ``dinkelbach``, ``charnes_cooper`` (in :mod:`sweep.solve.methods.charnes_cooper`)
and ``pareto``. The empty fleet is never a $/token answer; ties on $/token go to the higher throughput.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sweep.solve.methods.baselines import (
    enumeration,
    enumeration_budgets,
    enumeration_point,
    enumeration_reduce,
    iterative,
    weighted,
)
from sweep.solve.methods.charnes_cooper import charnes_cooper
from sweep.solve.methods.common import MethodParams, Tally
from sweep.solve.methods.exact import dinkelbach, max_throughput, min_cost, pareto, single_replica_start
from sweep.solve.milp import ERROR, Fleet, Instance
from sweep.solve.result import MethodResult
from sweep.vocab import ALL_METHODS, BASELINE_METHODS, EXACT_METHODS


def _charnes_cooper(inst: Instance, mp: MethodParams | None = None) -> MethodResult:
    return charnes_cooper(inst)


METHODS: dict[str, Callable[[Instance, MethodParams], MethodResult]] = {
    "max_throughput": max_throughput,
    "weighted": weighted,
    "iterative": iterative,
    "enumeration": enumeration,
    "dinkelbach": dinkelbach,
    "charnes_cooper": _charnes_cooper,
    "pareto": pareto,
    "min_cost": min_cost,
}


def run_method(name: str, inst: Instance, mp: MethodParams) -> MethodResult:
    """Run one method; a crash becomes an ``error`` result, never an exception."""
    t0 = time.perf_counter()
    try:
        return METHODS[name](inst, mp)
    except Exception as e:  # noqa: BLE001 - a failing method is a row, the sweep goes on
        return MethodResult(name, ERROR, None, 0, time.perf_counter() - t0, inst.solver,
                            message=f"{e.__class__.__name__}: {e}")


def gap_pct(fleet: Fleet | None, exact: Fleet | None) -> float | None:
    """How much worse a $/token is than the exact optimum, in percent."""
    if fleet is None or exact is None or not fleet.throughput_tok_s or not exact.throughput_tok_s:
        return None
    if fleet.ratio is None or exact.ratio is None:
        return None
    return float((fleet.ratio / exact.ratio - 1) * 100)


__all__ = [
    "ALL_METHODS", "BASELINE_METHODS", "EXACT_METHODS", "METHODS", "MethodParams", "MethodResult", "Tally",
    "charnes_cooper", "dinkelbach", "enumeration", "enumeration_budgets", "enumeration_point", "gap_pct",
    "enumeration_reduce", "iterative", "max_throughput", "min_cost", "pareto", "run_method", "single_replica_start", "weighted",
]
