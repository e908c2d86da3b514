"""Shared vocabulary with no heavy imports: the $/token order and the "at the optimum" test.

One home for rules that the store, queries, plots and reports all apply to result rows.
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction


class Status(StrEnum):
    """How a solve or a method ended (SPEC §7), mapped from each solver's own codes
    (:func:`sweep.solve.milp.run_solver`). A time-limited run with an incumbent is ``TIME_LIMIT``, never
    ``OPTIMAL``. Values are the strings stored in results; ``LOST`` appears only in a sweep's dataset
    (``sweep solve`` runs in one process and reports the other four)."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    ERROR = "error"
    LOST = "lost"  # a sweep task whose worker kept dying (after the backend's retries): a re-run retries it


COST_UNITS_PER_DOLLAR = 10_000  # prices are multiples of 1e-4 $/h
EXACT_METHODS = ("dinkelbach", "charnes_cooper", "pareto")  # exact min-$/token methods
BASELINE_METHODS = ("weighted", "iterative", "enumeration")  # the design note's, kept as baselines
ALL_METHODS = ("max_throughput", "min_cost", *BASELINE_METHODS, *EXACT_METHODS)
FAILED = (Status.ERROR, Status.LOST)  # rows counted as failures
DTYPES = ("bf16", "fp8", "fp4", "int4")  # the precisions a layout runs at (perf.dtype; sweep.fleet.perf.DTYPE_BYTES)


def is_lost(status: str | None) -> bool:
    """Is this row a task whose worker died (not the task's own result: a re-run runs it again), as opposed
    to an ``error`` row (a result, re-run only with ``--retry-errors``)?"""
    return status == Status.LOST


AT_OPTIMUM_REL = 1e-9  # a $/token within this relative distance of the exact optimum is at it


def cost_per_token_key(cost_per_hour: float, throughput_tok_s: float) -> Fraction:
    """The exact $/token order of a result row: whole cost units over the stored throughput (exact
    rationals), so equal ratios compare equal — ties then go to the higher throughput."""
    return Fraction(round(cost_per_hour * COST_UNITS_PER_DOLLAR)) / Fraction(throughput_tok_s)


# The same order in SQL over result columns: cost units (exact) over the stored float throughput
RATIO_SQL = f"(round(cost_per_hour * {COST_UNITS_PER_DOLLAR}) / throughput_tok_s)"
HAS_FLEET_SQL = "(cost_per_hour IS NOT NULL AND throughput_tok_s > 0)"
