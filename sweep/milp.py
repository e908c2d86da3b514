"""The throughput-max MILP of SPEC §5, built with PuLP and solved by HiGHS (in-process) or CBC.

Data are exact integers: throughput in whole tokens/s, cost in 1e-4 $/h units. The solver only
chooses replica counts; throughput, cost and the (minimal) node counts of a fleet are recomputed
here from those integers, so a reported point is exact and never better than what was solved.
Statuses are read from each solver's own report and mapped to ``optimal / infeasible / time_limit
/ error``: a time-limited run that has an incumbent is ``time_limit``, never ``optimal``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import pulp

from sweep.candidates import Candidate, CandidateTable
from sweep.catalog import COST_UNITS_PER_DOLLAR
from sweep.scenario import Scenario

OPTIMAL, INFEASIBLE, TIME_LIMIT, ERROR = "optimal", "infeasible", "time_limit", "error"


@dataclass(frozen=True)
class Slot:
    """An offering as the MILP sees it: price in 1e-4 $/node-hour units."""

    name: str
    gpu: str
    gpus_per_node: int
    price_units: int
    max_nodes: int


@dataclass(frozen=True)
class Instance:
    """Everything one solve needs; small, frozen and picklable (it travels to workers)."""

    slots: tuple[Slot, ...]
    candidates: tuple[Candidate, ...]
    budget_units: int = 0  # 0 = no budget
    max_gpus: int = 0  # 0 = no cap
    min_throughput_tok_s: int = 0
    solver: str = "highs"
    time_limit_s: float = 60.0

    # derived lookups, computed once per instance (cached_property writes past the frozen guard)
    @cached_property
    def _slot_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.slots)}

    @cached_property
    def _uses(self) -> list[list[tuple[int, int]]]:
        idx = self._slot_index
        return [[(idx[o], g) for o, g in c.uses] for c in self.candidates]

    @cached_property
    def _replica_bounds(self) -> list[int]:
        out = []
        for us, cand in zip(self._uses, self.candidates, strict=True):
            ub = min(self.slots[s].max_nodes * self.slots[s].gpus_per_node // g for s, g in us)
            if self.max_gpus:
                ub = min(ub, self.max_gpus // cand.gpus)
            out.append(ub)
        return out

    @cached_property
    def throughput_bound(self) -> int:
        """An upper bound on any fleet's tokens/s: every GPU of each offering at the best tokens/s per
        GPU of a candidate using it, capped by the GPU cap and by Σ throughput·replica bound."""
        rate = [0.0] * len(self.slots)
        for us, cand in zip(self._uses, self.candidates, strict=True):
            for s, _ in us:
                rate[s] = max(rate[s], cand.throughput_tok_s / cand.gpus)
        bound = sum(r * s.max_nodes * s.gpus_per_node for r, s in zip(rate, self.slots, strict=True))
        if self.max_gpus and rate:
            bound = min(bound, max(rate) * self.max_gpus)
        direct = sum(c.throughput_tok_s * b for c, b in zip(self.candidates, self._replica_bounds, strict=True))
        return int(min(bound, direct)) + 1

    @cached_property
    def throughput_per_cost_unit(self) -> float:
        """The most tokens/s one cost unit (1e-4 $/h) can buy: bounds T by budget (T ≤ this × C)."""
        rate = [0.0] * len(self.slots)
        for us, cand in zip(self._uses, self.candidates, strict=True):
            for s, _ in us:
                rate[s] = max(rate[s], cand.throughput_tok_s / cand.gpus)
        free = any(r > 0 and s.price_units == 0 for r, s in zip(rate, self.slots, strict=True))
        if free:
            return float("inf")
        return max((r * s.gpus_per_node / s.price_units for r, s in zip(rate, self.slots, strict=True)), default=0.0)

    def slot_index(self) -> dict[str, int]:
        return self._slot_index

    def uses(self) -> list[list[tuple[int, int]]]:
        """Per candidate: (slot index, GPUs per replica)."""
        return self._uses

    def replica_bound(self, c: int) -> int:
        """Most replicas of candidate c that availability (and the GPU cap) allows."""
        return self._replica_bounds[c]

    def max_cost_units(self) -> int:
        total = sum(s.price_units * s.max_nodes for s in self.slots)
        return min(total, self.budget_units) if self.budget_units else total


@dataclass(frozen=True)
class Fleet:
    """A deployment: replicas per candidate (index, count) and the fewest nodes that hold them."""

    replicas: tuple[tuple[int, int], ...]
    nodes: tuple[tuple[int, int], ...]
    throughput_tok_s: int
    cost_units: int
    gpus: int

    @property
    def cost_per_hour(self) -> float:
        return self.cost_units / COST_UNITS_PER_DOLLAR

    @property
    def cost_per_token(self) -> float | None:
        """$ per output token; None for the empty fleet."""
        if self.throughput_tok_s <= 0:
            return None
        return self.cost_units / (COST_UNITS_PER_DOLLAR * 3600 * self.throughput_tok_s)

    @property
    def empty(self) -> bool:
        return not self.replicas


def fleet_of(inst: Instance, counts: Mapping[int, int]) -> Fleet:
    """The fleet of these replica counts, with the minimal node count per offering."""
    uses = inst.uses()
    gpus_used = [0] * len(inst.slots)
    reps = tuple(sorted((c, n) for c, n in counts.items() if n > 0))
    for c, n in reps:
        for s, g in uses[c]:
            gpus_used[s] += g * n
    nodes = tuple((s, -(-used // inst.slots[s].gpus_per_node)) for s, used in enumerate(gpus_used) if used)
    thr = sum(inst.candidates[c].throughput_tok_s * n for c, n in reps)
    cost = sum(inst.slots[s].price_units * n for s, n in nodes)
    gpus = sum(inst.candidates[c].gpus * n for c, n in reps)
    return Fleet(reps, nodes, thr, cost, gpus)


def effective_budget(inst: Instance, budget_units: int | None) -> int | None:
    """An explicit budget (units, 0 allowed), else the instance's (0 there = none); None = no budget."""
    if budget_units is not None:
        return budget_units
    return inst.budget_units or None


def violations(inst: Instance, fleet: Fleet, budget_units: int | None = None) -> list[str]:
    """Why a fleet breaks the instance's constraints (empty list = feasible)."""
    out = []
    budget = effective_budget(inst, budget_units)
    for s, n in fleet.nodes:
        if n > inst.slots[s].max_nodes:
            out.append(f"{inst.slots[s].name}: {n} nodes > max {inst.slots[s].max_nodes}")
    if budget is not None and fleet.cost_units > budget:
        out.append(f"cost {fleet.cost_units} > budget {budget}")
    if inst.max_gpus and fleet.gpus > inst.max_gpus:
        out.append(f"gpus {fleet.gpus} > {inst.max_gpus}")
    if fleet.throughput_tok_s < inst.min_throughput_tok_s:
        out.append(f"throughput {fleet.throughput_tok_s} < {inst.min_throughput_tok_s}")
    return out


@dataclass(frozen=True)
class Outcome:
    """One MILP solve: the solver's real status, the fleet it returned (if any), and its cost in time."""

    status: str
    fleet: Fleet | None
    seconds: float
    mip_gap: float | None = None
    message: str = ""
    solves: int = 1


def instance_of(sc: Scenario, table: CandidateTable) -> Instance:
    """The MILP data of a scenario: only offerings some kept candidate uses."""
    used = sorted({o for c in table.kept for o, _ in c.uses})
    slots = tuple(
        Slot(o, sc.offerings[o].gpu, sc.offerings[o].gpus_per_node, sc.price_units(o), sc.offerings[o].max_nodes)
        for o in used
    )
    budget = sc["limits.budget"]
    return Instance(
        slots=slots,
        candidates=table.kept,
        budget_units=math.floor(budget * COST_UNITS_PER_DOLLAR + 1e-9) if budget else 0,
        max_gpus=sc["limits.max_gpus"],
        min_throughput_tok_s=math.ceil(sc["workload.min_throughput"] - 1e-9),
        solver=sc["solver.name"],
        time_limit_s=sc["solver.time_limit_s"],
    )


# --------------------------------------------------------------------------- solving


_highs_quiet = False


def _silence_highs_banner() -> None:
    """HiGHS prints a banner to fd 1 when the first Highs object of a process is made; JSON output
    must stay clean, so make that first object with fd 1 pointed at /dev/null."""
    global _highs_quiet
    if _highs_quiet:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _highs_quiet = True


def make_solver(name: str, time_limit_s: float) -> pulp.LpSolver:
    """Exact settings: relative MIP gap 0, one thread (workers already use every core)."""
    if name == "highs":
        _silence_highs_banner()
        return pulp.HiGHS(msg=False, gapRel=0.0, timeLimit=time_limit_s, threads=1)
    if name == "cbc":
        # no ``threads``: CBC is serial by default, and ``-threads 1`` switches on its threaded
        # branch-and-bound, which stalls for 10 s in about one solve in 600 (measured, CBC 2.10.3)
        return pulp.PULP_CBC_CMD(msg=False, gapRel=0.0, timeLimit=time_limit_s)
    raise ValueError(f"unknown solver {name!r}")  # validated at load; reaching here is a bug


@dataclass
class SolveReport:
    status: str
    has_solution: bool
    mip_gap: float | None
    seconds: float
    message: str = ""


def run_solver(prob: pulp.LpProblem, solver_name: str, time_limit_s: float) -> SolveReport:
    """Solve and map the solver's own status; never raises for solver trouble (returns ``error``)."""
    t0 = time.perf_counter()
    try:
        prob.solve(make_solver(solver_name, time_limit_s))
    except Exception as e:  # a solver crash is a result, not a failure of the sweep
        return SolveReport(ERROR, False, None, time.perf_counter() - t0, f"{e.__class__.__name__}: {e}")
    seconds = time.perf_counter() - t0
    if solver_name == "highs":
        return _highs_report(prob, seconds)
    rep = _cbc_report(prob, seconds)
    if rep.status == INFEASIBLE and seconds >= 0.9 * time_limit_s:
        # CBC stopped by its clock during preprocessing says "infeasible": that proves nothing
        return SolveReport(TIME_LIMIT, False, None, seconds, "CBC stopped on its time limit without a proof")
    return rep


def _highs_report(prob: pulp.LpProblem, seconds: float) -> SolveReport:
    import highspy

    h = prob.solverModel
    st = h.getModelStatus()
    info = h.getInfo()
    has = info.primal_solution_status == 2  # kSolutionStatusFeasible
    gap = info.mip_gap if has else None
    S = highspy.HighsModelStatus
    if st == S.kOptimal:
        return SolveReport(OPTIMAL, has, gap, seconds)
    if st == S.kInfeasible:
        return SolveReport(INFEASIBLE, False, None, seconds)
    if st in (S.kTimeLimit, S.kIterationLimit, S.kSolutionLimit, S.kInterrupt):
        return SolveReport(TIME_LIMIT, has, gap, seconds, f"HiGHS stopped: {h.modelStatusToString(st)}")
    return SolveReport(ERROR, False, None, seconds, f"HiGHS: {h.modelStatusToString(st)}")


def _cbc_report(prob: pulp.LpProblem, seconds: float) -> SolveReport:
    st, sol = prob.status, prob.sol_status
    if st == pulp.LpStatusOptimal and sol == pulp.LpSolutionOptimal:
        return SolveReport(OPTIMAL, True, 0.0, seconds)
    if st == pulp.LpStatusOptimal and sol == pulp.LpSolutionIntegerFeasible:
        return SolveReport(TIME_LIMIT, True, None, seconds, "CBC stopped on its time limit with an incumbent")
    if st == pulp.LpStatusInfeasible:
        return SolveReport(INFEASIBLE, False, None, seconds)
    if st == pulp.LpStatusNotSolved:
        return SolveReport(TIME_LIMIT, False, None, seconds, "CBC stopped before finding a solution")
    return SolveReport(ERROR, False, None, seconds, f"CBC status {pulp.LpStatus.get(st, st)}")


@dataclass
class Built:
    """A built PuLP model of an instance: replicas ``x``, nodes ``n``, and the T and C expressions."""

    prob: pulp.LpProblem
    x: list[pulp.LpVariable]
    n: list[pulp.LpVariable]
    T: pulp.LpAffineExpression
    C: pulp.LpAffineExpression
    extra: dict = field(default_factory=dict)


def build(inst: Instance, *, budget_units: int | None = None, nonempty: bool = False,
          t_floor: int = 0, sense: int = pulp.LpMaximize) -> Built:
    """The SPEC §5 constraints (capacity per offering, availability, budget, demand floor, GPU cap)."""
    prob = pulp.LpProblem("fleet", sense)
    budget = effective_budget(inst, budget_units)
    n = [
        prob.add_variable(
            f"n{i}", 0,
            min(s.max_nodes, budget // s.price_units) if budget is not None and s.price_units else s.max_nodes,
            cat="Integer",
        )
        for i, s in enumerate(inst.slots)
    ]
    x = [prob.add_variable(f"x{c}", 0, inst.replica_bound(c), cat="Integer") for c in range(len(inst.candidates))]
    T = pulp.lpSum(c.throughput_tok_s * x[i] for i, c in enumerate(inst.candidates))
    C = pulp.lpSum(s.price_units * n[i] for i, s in enumerate(inst.slots))
    per_slot: list[list[tuple[int, int]]] = [[] for _ in inst.slots]
    for c, us in enumerate(inst.uses()):
        for s, g in us:
            per_slot[s].append((c, g))
    for s, slot in enumerate(inst.slots):
        prob += pulp.lpSum(g * x[c] for c, g in per_slot[s]) <= slot.gpus_per_node * n[s], f"cap{s}"
    if budget is not None:
        prob += budget >= C, "budget"
    if inst.max_gpus:
        prob += pulp.lpSum(c.gpus * x[i] for i, c in enumerate(inst.candidates)) <= inst.max_gpus, "max_gpus"
    floor = max(t_floor, inst.min_throughput_tok_s)
    if floor > 0:
        prob += floor <= T, "demand"
    if nonempty:
        prob += pulp.lpSum(x) >= 1, "nonempty"
    return Built(prob, x, n, T, C)


def extract(inst: Instance, m: Built) -> Fleet:
    counts = {i: int(round(v.varValue or 0)) for i, v in enumerate(m.x)}
    return fleet_of(inst, counts)


def optimise(inst: Instance, t_weight: float, c_weight: float, *, budget_units: int | None = None,
             nonempty: bool = False, t_floor: int = 0) -> Outcome:
    """Maximise ``t_weight·T − c_weight·C`` over the instance's fleets."""
    if not inst.candidates:
        return Outcome(INFEASIBLE, None, 0.0, message="no candidate can serve this model")
    m = build(inst, budget_units=budget_units, nonempty=nonempty, t_floor=t_floor)
    m.prob.setObjective(t_weight * m.T - c_weight * m.C)
    rep = run_solver(m.prob, inst.solver, inst.time_limit_s)
    fleet = extract(inst, m) if rep.has_solution else None
    return Outcome(rep.status, fleet, rep.seconds, rep.mip_gap, rep.message)


# Above this magnitude of (cost range + 1)·throughput, one weighted objective would ask the solver to
# resolve differences of 1 in numbers too large for its tolerances: solve in two stages instead.
LEXICOGRAPHIC_ONE_SOLVE_MAX = 1e11


class BudgetSolver:
    """Repeated budget solves of one instance on one built model: only the budget row, the node
    bounds it implies and the objective change between solves (pareto, iterative and enumeration
    make many).

    Lexicographic (max T, then least C among the maximisers). T and C are integers and C lies in
    [0, cap], so maximising (cap + 1)·T − C is exact in one solve while the numbers stay small; past
    :data:`LEXICOGRAPHIC_ONE_SOLVE_MAX` it is two solves: max T, then min C subject to T ≥ T*.
    """

    def __init__(self, inst: Instance):
        self.inst = inst
        self.ceiling = inst.max_cost_units()
        self.m = build(inst, budget_units=self.ceiling)
        self.budget_row = self.m.prob.get_constraint_by_name("budget")
        self.m.prob += self.m.T >= 0, "lexfloor"
        self.floor_row = self.m.prob.get_constraint_by_name("lexfloor")

    def solve(self, budget_units: int | None = None) -> Outcome:
        inst, m = self.inst, self.m
        if not inst.candidates:
            return Outcome(INFEASIBLE, None, 0.0, message="no candidate can serve this model", solves=0)
        budget = effective_budget(inst, budget_units)
        cap = self.ceiling if budget is None else min(self.ceiling, budget)
        self.budget_row.constant = -cap
        self.floor_row.constant = 0
        for var, slot in zip(m.n, inst.slots, strict=True):
            var.upBound = min(slot.max_nodes, cap // slot.price_units) if slot.price_units else slot.max_nodes
        t_hi = min(inst.throughput_bound, cap * inst.throughput_per_cost_unit + 1)
        if (cap + 1) * t_hi <= LEXICOGRAPHIC_ONE_SOLVE_MAX:
            m.prob.setObjective((cap + 1) * m.T - m.C)
            rep = run_solver(m.prob, inst.solver, inst.time_limit_s)
            solves = 1
        else:
            m.prob.setObjective(m.T)
            rep = run_solver(m.prob, inst.solver, inst.time_limit_s)
            solves = 1
            if rep.status == OPTIMAL and rep.has_solution:
                self.floor_row.constant = -extract(inst, m).throughput_tok_s
                m.prob.setObjective(-1 * m.C)
                second = run_solver(m.prob, inst.solver, inst.time_limit_s)
                second.seconds += rep.seconds
                rep, solves = second, 2
        fleet = extract(inst, m) if rep.has_solution else None
        if rep.status == OPTIMAL and fleet is not None and fleet.empty:
            return Outcome(INFEASIBLE, None, rep.seconds, message="no fleet fits the limits", solves=solves)
        return Outcome(rep.status, fleet, rep.seconds, rep.mip_gap, rep.message, solves=solves)


_last_budget_solver: BudgetSolver | None = None


def budget_solve(inst: Instance, budget_units: int | None = None) -> Outcome:
    """Max throughput within the budget; among the maximisers the least cost (one lexicographic solve).

    Exact: T and C are integers and every fleet's cost lies in [0, budget], so weighting T by
    budget + 1 makes one more token/s worth more than any cost saving. Consecutive calls on the same
    instance object reuse its built model.
    """
    global _last_budget_solver
    if _last_budget_solver is None or _last_budget_solver.inst is not inst:
        _last_budget_solver = BudgetSolver(inst)
    return _last_budget_solver.solve(budget_units)
