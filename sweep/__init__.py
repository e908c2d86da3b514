"""sweep: exact GPU fleet planning for LLM serving, swept over thousands of what-ifs.

Public API: load a scenario, build candidates, solve with any method; run sweeps; read results.
"""

from sweep.candidates import Candidate, CandidateTable, build_candidates
from sweep.errors import InputError
from sweep.methods import ALL_METHODS, EXACT_METHODS, MethodParams, run_method
from sweep.milp import Fleet, Instance
from sweep.result import MethodResult
from sweep.scenario import Scenario, load_scenario, scenario_from_dict
from sweep.solve import prepare, solve_scenario

__version__ = "0.1.0"

__all__ = [
    "ALL_METHODS", "EXACT_METHODS", "Candidate", "CandidateTable", "Fleet", "InputError", "Instance",
    "MethodParams", "MethodResult", "Scenario", "build_candidates", "load_scenario", "prepare",
    "run_method", "scenario_from_dict", "solve_scenario", "__version__",
]
