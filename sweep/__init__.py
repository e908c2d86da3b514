"""sweep: exact GPU fleet planning for LLM serving, swept over thousands of what-ifs.

Public API: load a scenario, build candidates, solve with any method; run sweeps; read results.
Names are imported on first use, so ``import sweep`` (and the CLI's start-up) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ALL_METHODS": "sweep.methods", "EXACT_METHODS": "sweep.methods", "MethodParams": "sweep.methods",
    "run_method": "sweep.methods",
    "Candidate": "sweep.candidates", "CandidateTable": "sweep.candidates", "build_candidates": "sweep.candidates",
    "Solver": "sweep.compat",
    "InputError": "sweep.errors",
    "Fleet": "sweep.milp", "Instance": "sweep.milp",
    "open_results": "sweep.query",
    "MethodResult": "sweep.result",
    "Scenario": "sweep.scenario", "load_scenario": "sweep.scenario", "scenario_from_dict": "sweep.scenario",
    "prepare": "sweep.solve", "solve_scenario": "sweep.solve",
    "Job": "sweep.job", "load_job": "sweep.job",
    "run_sweep": "sweep.runner",
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
    from sweep.candidates import Candidate, CandidateTable, build_candidates
    from sweep.compat import Solver
    from sweep.errors import InputError
    from sweep.job import Job, load_job
    from sweep.methods import ALL_METHODS, EXACT_METHODS, MethodParams, run_method
    from sweep.milp import Fleet, Instance
    from sweep.query import open_results
    from sweep.result import MethodResult
    from sweep.runner import run_sweep
    from sweep.scenario import Scenario, load_scenario, scenario_from_dict
    from sweep.solve import prepare, solve_scenario
