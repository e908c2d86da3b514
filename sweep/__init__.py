"""sweep: exact GPU fleet planning for LLM serving, swept over thousands of what-ifs.

Public API: load a scenario, build candidates, solve with any method; run sweeps; read results.
Names are imported on first use, so ``import sweep`` (and the CLI's start-up) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ALL_METHODS": "sweep.solve.methods", "EXACT_METHODS": "sweep.solve.methods", "MethodParams": "sweep.solve.methods",
    "run_method": "sweep.solve.methods",
    "Candidate": "sweep.fleet.candidates", "CandidateTable": "sweep.fleet.candidates", "build_candidates": "sweep.fleet.candidates",
    "Solver": "sweep.solve.compat",
    "InputError": "sweep.errors",
    "Fleet": "sweep.solve.milp", "Instance": "sweep.solve.milp",
    "open_results": "sweep.results.query",
    "MethodResult": "sweep.solve.result",
    "Scenario": "sweep.inputs.scenario", "load_scenario": "sweep.inputs.load", "scenario_from_dict": "sweep.inputs.scenario",
    "prepare": "sweep.solve.prepare", "solve_scenario": "sweep.solve.prepare",
    "Job": "sweep.inputs.job", "load_job": "sweep.inputs.job",
    "run_sweep": "sweep.engine.runner",
}

__all__ = [
    "ALL_METHODS", "EXACT_METHODS", "Candidate", "CandidateTable", "Fleet", "InputError", "Instance", "Job",
    "MethodParams", "MethodResult", "Scenario", "Solver", "__version__", "build_candidates", "load_job",
    "load_scenario", "open_results", "prepare", "run_method", "run_sweep", "scenario_from_dict", "solve_scenario",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and editors
    from sweep.engine.runner import run_sweep
    from sweep.errors import InputError
    from sweep.fleet.candidates import Candidate, CandidateTable, build_candidates
    from sweep.inputs.job import Job, load_job
    from sweep.inputs.load import load_scenario
    from sweep.inputs.scenario import Scenario, scenario_from_dict
    from sweep.results.query import open_results
    from sweep.solve.compat import Solver
    from sweep.solve.methods import ALL_METHODS, EXACT_METHODS, MethodParams, run_method
    from sweep.solve.milp import Fleet, Instance
    from sweep.solve.prepare import prepare, solve_scenario
    from sweep.solve.result import MethodResult
