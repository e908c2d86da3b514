"""The throughput-max MILP of SPEC §5, built with PuLP and solved by HiGHS (in-process) or CBC.

Data are the user's own numbers: throughputs as given (never rounded), costs in whole 1e-4 $/h units.
The solver works on a scaled copy and only chooses replica counts; throughput (in exact rational
arithmetic), cost and the (minimal) node counts of a fleet are recomputed here from those counts, so
a reported point is exact and never better than what was solved, and a fleet that breaks a limit by
the solver's tolerance is caught.
Statuses are read from each solver's own report and mapped to ``optimal / infeasible / time_limit
/ error``: a time-limited run that has an incumbent is ``time_limit``, never ``optimal``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cached_property

import pulp

from sweep.fleet.candidates import Candidate, CandidateTable, unserved_buckets
from sweep.inputs.catalog import COST_UNITS_PER_DOLLAR
from sweep.inputs.scenario import Scenario
from sweep.solve.routing import max_rate
from sweep.vocab import Status

OPTIMAL, INFEASIBLE, TIME_LIMIT, ERROR = Status.OPTIMAL, Status.INFEASIBLE, Status.TIME_LIMIT, Status.ERROR


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
    min_throughput_tok_s: float = 0.0  # as given, never rounded
    solver: str = "highs"
    time_limit_s: float = 60.0
    request_rate: float = 0.0  # requests/s the fleet must serve (0 = none), as given
    per_request: Fraction = Fraction(0)  # output tokens per request (ō of the mix); needed with a request rate
    # a request mix (SPEC §5.2): each bucket's share and output tokens; candidates then carry rates_tok_s
    shares: tuple[Fraction, ...] = ()
    outputs: tuple[int, ...] = ()

    @property
    def routed(self) -> bool:
        """Is this the request-mix form of the MILP (routed rates per bucket)?"""
        return bool(self.shares)

    @property
    def demand_tok_s(self) -> float:
        """The throughput floor: min_throughput, and the request rate × output tokens per request
        (rounded up to a float, so that a fleet meeting it meets the exact product)."""
        by_rate = Fraction(self.request_rate) * self.per_request
        floor = float(by_rate)
        if Fraction(floor) < by_rate:
            floor = math.nextafter(floor, math.inf)
        return max(self.min_throughput_tok_s, floor)

    @cached_property
    def _mu(self) -> list[tuple[Fraction, ...]]:
        return [tuple(Fraction(r) / o for r, o in zip(c.rates_tok_s, self.outputs, strict=True))
                for c in self.candidates]

    def mu(self, c: int) -> tuple[Fraction, ...]:
        """Requests/s one replica of candidate c sustains on each bucket alone (exact)."""
        return self._mu[c]

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
    """A deployment: replicas per candidate (index, count) and the fewest nodes that hold them.

    ``throughput_exact`` is the fleet's tokens/s in exact rational arithmetic over the candidates' own
    values — their sum, or with a request mix the routing LP's optimum × ō (:mod:`sweep.solve.routing`) —
    which every comparison uses (``ratio``); ``throughput_tok_s`` is it as a float, as reported."""

    replicas: tuple[tuple[int, int], ...]
    nodes: tuple[tuple[int, int], ...]
    throughput_tok_s: float
    cost_units: int
    gpus: int
    throughput_exact: Fraction = Fraction(0)
    # with a request mix: per replicas entry, requests/s of each bucket routed to it (SPEC §5.2)
    routing: tuple[tuple[float, ...], ...] = ()

    @property
    def cost_per_hour(self) -> float:
        return self.cost_units / COST_UNITS_PER_DOLLAR

    @property
    def ratio(self) -> Fraction | None:
        """Exact cost units per (token/s); None for a fleet without throughput."""
        if self.throughput_exact <= 0:
            return None
        return Fraction(self.cost_units) / self.throughput_exact

    @property
    def cost_per_token(self) -> float | None:
        """$ per output token; None for the empty fleet."""
        r = self.ratio
        return None if r is None else float(r / (COST_UNITS_PER_DOLLAR * 3600))

    @property
    def empty(self) -> bool:
        """No replicas, or (with a request mix) replicas that cannot serve every bucket: no throughput."""
        return not self.replicas or self.throughput_exact <= 0


def fleet_of(inst: Instance, counts: Mapping[int, int]) -> Fleet:
    """The fleet of these replica counts, with the minimal node count per offering."""
    uses = inst.uses()
    gpus_used = [0] * len(inst.slots)
    reps = tuple(sorted((c, n) for c, n in counts.items() if n > 0))
    for c, n in reps:
        for s, g in uses[c]:
            gpus_used[s] += g * n
    nodes = tuple((s, -(-used // inst.slots[s].gpus_per_node)) for s, used in enumerate(gpus_used) if used)
    cost = sum(inst.slots[s].price_units * n for s, n in nodes)
    gpus = sum(inst.candidates[c].gpus * n for c, n in reps)
    if inst.routed:  # the most requests/s these replicas serve with the mix's shares, exactly
        rate, y = max_rate([n for _, n in reps], [inst.mu(c) for c, _ in reps], inst.shares)
        exact = rate * inst.per_request
        routing = tuple(tuple(float(v) for v in row) for row in y)
        return Fleet(reps, nodes, float(exact), cost, gpus, exact, routing)
    exact = sum((Fraction(inst.candidates[c].throughput_tok_s) * n for c, n in reps), Fraction(0))
    return Fleet(reps, nodes, float(exact), cost, gpus, exact)


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
    if fleet.throughput_exact < Fraction(inst.min_throughput_tok_s):
        out.append(f"throughput {fleet.throughput_tok_s} < {inst.min_throughput_tok_s}")
    if inst.request_rate and fleet.throughput_exact < Fraction(inst.request_rate) * inst.per_request:
        out.append(f"request rate {fleet.throughput_tok_s / float(inst.per_request):g} < {inst.request_rate:g}")
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
    if unserved_buckets(sc, table):  # a mix whose bucket no layout serves: no fleet serves the mix
        table = replace(table, kept=())
    used = sorted({o for c in table.kept for o, _ in c.uses})
    slots = tuple(
        Slot(o, sc.offerings[o].gpu, sc.offerings[o].gpus_per_node, sc.price_units(o), sc.offerings[o].max_nodes)
        for o in used
    )
    return Instance(
        slots=slots,
        candidates=table.kept,
        budget_units=sc.limits.budget_units,
        max_gpus=sc.limits.max_gpus,
        min_throughput_tok_s=float(sc.workload.min_throughput),
        solver=sc.solver.name,
        time_limit_s=sc.solver.time_limit_s,
        request_rate=sc.workload.request_rate,  # Λ ≥ rate ⟺ T ≥ rate·ō (SPEC §5.2)
        per_request=sc.mean_output_tokens,
        shares=tuple(b.share for b in sc.mix),
        outputs=tuple(b.output_tokens for b in sc.mix),
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


# The models are scaled so that every coefficient is at most 1 (throughput ÷ the largest candidate's,
# price ÷ the dearest node's): the solver's absolute tolerances are then tiny next to the data, and
# every fleet it returns is re-checked here in exact arithmetic.
FEASIBILITY_TOL = 1e-9
MIP_ABS_GAP = 1e-10
TIE_WEIGHT = 1e-3  # μ of the budget solve's tie-break objective max T − μ·C (both scaled)


def make_solver(name: str, time_limit_s: float, presolve: bool = True) -> pulp.LpSolver:
    """Exact settings: MIP gaps 0 (absolute: :data:`MIP_ABS_GAP` on scaled objectives), tight
    feasibility tolerances, one thread (workers already use every core). HiGHS's feasibility-jump
    heuristic is off: a primal heuristic (optimality is still proved by branch and bound), it cost ~7 ms
    on every MIP however small, 2-6x the whole solve time of this tool's models (benchmarks/README.md)."""
    if name == "highs":
        _silence_highs_banner()
        extra = {"mip_heuristic_run_feasibility_jump": False} | ({} if presolve else {"presolve": "off"})
        return pulp.HiGHS(msg=False, gapRel=0.0, gapAbs=MIP_ABS_GAP, timeLimit=time_limit_s, threads=1,
                          primal_feasibility_tolerance=FEASIBILITY_TOL, mip_feasibility_tolerance=FEASIBILITY_TOL,
                          **extra)
    if name == "cbc":
        # no ``threads``: CBC is serial by default, and ``-threads 1`` switches on its threaded
        # branch-and-bound, which stalls for 10 s in about one solve in 600 (measured, CBC 2.10.3)
        return pulp.PULP_CBC_CMD(msg=False, gapRel=0.0, gapAbs=MIP_ABS_GAP, timeLimit=time_limit_s,
                                 options=[f"primalTolerance {FEASIBILITY_TOL}", f"integerTolerance {FEASIBILITY_TOL}",
                                          f"increment {MIP_ABS_GAP}",  # CBC ignores improvements below 1e-5 by default
                                          *([] if presolve else ["presolve off"])])
    raise ValueError(f"unknown solver {name!r}")  # validated at load; reaching here is a bug


@dataclass
class SolveReport:
    status: str
    has_solution: bool
    mip_gap: float | None
    seconds: float
    message: str = ""


def run_solver(prob: pulp.LpProblem, solver_name: str, time_limit_s: float, presolve: bool = True) -> SolveReport:
    """Solve and map the solver's own status; never raises for solver trouble (returns ``error``)."""
    t0 = time.perf_counter()
    try:
        prob.solve(make_solver(solver_name, time_limit_s, presolve))
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
    """A built PuLP model of an instance: replicas ``x``, nodes ``n``, and the scaled throughput and cost
    expressions ``T`` (tokens/s ÷ ``t_scale``) and ``C`` (cost units ÷ ``c_scale``)."""

    prob: pulp.LpProblem
    x: list[pulp.LpVariable]
    n: list[pulp.LpVariable]
    T: pulp.LpAffineExpression
    C: pulp.LpAffineExpression
    t_scale: float
    c_scale: float
    presolve: bool = True


def node_bound(slot: Slot, budget: int | None) -> int:
    return min(slot.max_nodes, budget // slot.price_units) if budget is not None and slot.price_units else slot.max_nodes


def scales(inst: Instance) -> tuple[float, float]:
    """(tokens/s, cost units) that scale the model's coefficients to at most 1."""
    t_scale = max((max(c.bucket_rates) for c in inst.candidates), default=1.0) or 1.0
    c_scale = float(max((s.price_units for s in inst.slots), default=1) or 1)
    return t_scale, c_scale


def build(inst: Instance, *, budget_units: int | None = None, nonempty: bool = False,
          t_floor: float = 0.0, sense: int = pulp.LpMaximize) -> Built:
    """The SPEC §5 constraints (capacity per offering, availability, budget, demand floor, GPU cap).

    The budget row allows half a cost unit of slack: costs are whole units, so this admits exactly the
    fleets within budget, with a margin far above the solver's tolerance."""
    prob = pulp.LpProblem("fleet", sense)
    budget = effective_budget(inst, budget_units)
    t_scale, c_scale = scales(inst)
    n = [prob.add_variable(f"n{i}", 0, node_bound(s, budget), cat="Integer") for i, s in enumerate(inst.slots)]
    x = [prob.add_variable(f"x{c}", 0, inst.replica_bound(c), cat="Integer") for c in range(len(inst.candidates))]
    T = routed_throughput(prob, inst, dict(enumerate(x)), t_scale) if inst.routed else pulp.lpSum(
        (c.throughput_tok_s / t_scale) * x[i] for i, c in enumerate(inst.candidates))
    C = pulp.lpSum((s.price_units / c_scale) * n[i] for i, s in enumerate(inst.slots))
    per_slot: list[list[tuple[int, int]]] = [[] for _ in inst.slots]
    for c, us in enumerate(inst.uses()):
        for s, g in us:
            per_slot[s].append((c, g))
    for s, slot in enumerate(inst.slots):
        prob += pulp.lpSum(g * x[c] for c, g in per_slot[s]) <= slot.gpus_per_node * n[s], f"cap{s}"
    prob += ((budget if budget is not None else inst.max_cost_units()) + 0.5) / c_scale >= C, "budget"
    if inst.max_gpus:
        prob += pulp.lpSum(c.gpus * x[i] for i, c in enumerate(inst.candidates)) <= inst.max_gpus, "max_gpus"
    floor = max(t_floor, inst.demand_tok_s)
    prob += floor / t_scale <= T, "demand"
    if nonempty:
        prob += pulp.lpSum(x) >= 1, "nonempty"
    return Built(prob, x, n, T, C, t_scale, c_scale)


def routed_throughput(prob: pulp.LpProblem, inst: Instance, x: Mapping[int, pulp.LpAffineExpression | pulp.LpVariable],
                      t_scale: float, prefix: str = "") -> pulp.LpAffineExpression:
    """SPEC §5.2 with the routed rates written as replica time: w_{c,b} = y_{c,b}/μ_{c,b} replicas of c
    serving bucket b. A replica's time is shared among its buckets, Σ_b w_{c,b} ≤ x_c; each bucket gets
    its share, Σ_c μ_{c,b}·w_{c,b} ≥ s_b·Λ (a surplus is simply not sent). Scaled: L = Λ·ō / t_scale is
    the throughput, and a bucket row reads Σ_c (thr_{c,b}·ō/(o_b·t_scale))·w_{c,b} ≥ s_b·L.
    ``x``: the replica counts (or their images) of the candidates that may be used."""
    per_request = float(inst.per_request)
    L = prob.add_variable(f"{prefix}rL", 0, None)  # r…: names apart from every other model's (CBC reads them)
    into: list[list[tuple[pulp.LpVariable, float]]] = [[] for _ in inst.shares]
    for c, xc in x.items():
        ws = []
        for b, (rate_tok_s, out_tokens) in enumerate(zip(inst.candidates[c].rates_tok_s, inst.outputs, strict=True)):
            if rate_tok_s > 0:
                w = prob.add_variable(f"{prefix}rw{c}_{b}", 0, inst.replica_bound(c))
                into[b].append((w, rate_tok_s * per_request / (out_tokens * t_scale)))
                ws.append(w)
        if ws:
            prob += pulp.lpSum(ws) <= xc, f"{prefix}time{c}"
    for b, share in enumerate(inst.shares):
        prob += pulp.lpSum(k * w for w, k in into[b]) >= float(share) * L, f"{prefix}share{b}"
    return pulp.LpAffineExpression(L)


def peak_tok_s(inst: Instance, c: int) -> float:
    """An upper bound on the tokens/s one replica of candidate c adds to any fleet: its throughput, or
    with a request mix ō·max_b μ_{c,b} (Λ = Σ y_{c,b} ≤ Σ_c x_c·max_b μ_{c,b})."""
    cand = inst.candidates[c]
    if not inst.routed:
        return cand.throughput_tok_s
    per_request = float(inst.per_request)
    return max(r * per_request / o for r, o in zip(cand.rates_tok_s, inst.outputs, strict=True))


def extract(inst: Instance, m: Built) -> Fleet:
    counts = {i: int(round(v.varValue or 0)) for i, v in enumerate(m.x)}
    return fleet_of(inst, counts)


def solve_built(inst: Instance, m: Built, budget_units: int | None = None) -> Outcome:
    """Solve a built model and check its fleet in exact arithmetic: a fleet that breaks a constraint
    (by the solver's tolerance) is a numerical failure, reported as ``error``, never as an answer."""
    rep = run_solver(m.prob, inst.solver, inst.time_limit_s, presolve=m.presolve)
    fleet = extract(inst, m) if rep.has_solution else None
    if fleet is not None:
        broken = violations(inst, fleet, budget_units)
        if broken:
            return Outcome(ERROR, None, rep.seconds, None,
                           f"{inst.solver}: returned a fleet that breaks a limit ({broken[0]})")
    return Outcome(rep.status, fleet, rep.seconds, rep.mip_gap, rep.message)


def solve_known(inst: Instance, m: Built, known: Fleet | None, budget_units: int | None = None) -> Outcome:
    """:func:`solve_built` on a model that ``known`` (a fleet in hand) satisfies: an ``infeasible`` answer
    is then a numerical failure (HiGHS's presolve has been seen to make it on request-mix models) and the
    model is solved once more with presolve off; the caller's tally records a second ``infeasible``
    as an error."""
    out = solve_built(inst, m, budget_units)
    if out.status != INFEASIBLE or known is None or not m.presolve:
        return out
    retry = solve_built(inst, replace(m, presolve=False), budget_units)
    return replace(retry, seconds=out.seconds + retry.seconds, solves=out.solves + retry.solves)


def optimise(inst: Instance, t_weight: float, c_weight: float, *, budget_units: int | None = None,
             nonempty: bool = False, t_floor: float = 0.0) -> Outcome:
    """Maximise ``t_weight·T − c_weight·C`` (T in tokens/s, C in cost units) over the instance's fleets."""
    if not inst.candidates:
        return Outcome(INFEASIBLE, None, 0.0, message=NO_CANDIDATE)
    m = build(inst, budget_units=budget_units, nonempty=nonempty, t_floor=t_floor)
    m.prob.setObjective((t_weight * m.t_scale) * m.T - (c_weight * m.c_scale) * m.C)
    return solve_built(inst, m, budget_units)


NO_CANDIDATE = "no candidate can serve this model"
NO_FLEET = "no fleet fits the limits"


class BudgetSolver:
    """Budget solves of one instance (SPEC §5): the most throughput within a budget, then the least cost
    among the maximisers. One built model is reused across solves; only the budget row, the node bounds
    it implies, one throughput row and the objective change (pareto, iterative and enumeration make many).

    Two stages: max T; then the least cost among the maximisers (see :meth:`solve`). On a scaled model;
    every answer is checked
    against what is already known, in exact arithmetic: fleets found earlier (and every single-replica
    fleet) are feasible at their cost, so an ``infeasible`` at a budget above one of them, or a T* below
    one of theirs, is a numerical failure. It is recovered from by one solve on a freshly built model
    with presolve off; if that fails too, the result is ``error`` with the best known fleet.
    """

    def __init__(self, inst: Instance):
        self.inst = inst
        self.ceiling = inst.max_cost_units()
        self.m = build(inst, budget_units=self.ceiling) if inst.candidates else None
        self.known: list[Fleet] = []
        for c in range(len(inst.candidates)):
            f = fleet_of(inst, {c: 1})
            if not f.empty and not violations(inst, f, self.ceiling):
                self.known.append(f)

    def _best_known(self, cap: int) -> Fleet | None:
        best = None
        for f in self.known:
            if f.cost_units <= cap and (best is None or f.throughput_exact > best.throughput_exact or (
                    f.throughput_exact == best.throughput_exact and f.cost_units < best.cost_units)):
                best = f
        return best

    def _set(self, m: Built, cap: int, t_min: float) -> None:
        m.prob.constraints["budget"].constant = -(cap + 0.5) / m.c_scale
        m.prob.constraints["demand"].constant = -max(t_min, self.inst.demand_tok_s) / m.t_scale
        for var, slot in zip(m.n, self.inst.slots, strict=True):
            var.upBound = node_bound(slot, cap)

    def _stage1(self, m: Built, cap: int) -> Outcome:
        self._set(m, cap, 0.0)
        m.prob.setObjective(m.T)
        return solve_built(self.inst, m, cap)

    def solve(self, budget_units: int | None = None) -> Outcome:
        inst = self.inst
        if self.m is None:
            return Outcome(INFEASIBLE, None, 0.0, message=NO_CANDIDATE, solves=0)
        budget = effective_budget(inst, budget_units)
        cap = self.ceiling if budget is None else min(self.ceiling, budget)
        known = self._best_known(cap)
        first = self._stage1(self.m, cap)
        solves, seconds, m = 1, first.seconds, self.m
        if _contradicts(first, known):
            m = replace(build(inst, budget_units=cap), presolve=False)  # a fresh model, presolve off
            retry = self._stage1(m, cap)
            solves, seconds = solves + 1, seconds + retry.seconds
            if _contradicts(retry, known):
                return Outcome(ERROR, known, seconds, message=(
                    f"{inst.solver}: reported {first.status} at budget {cap} although a fleet of "
                    f"{known.throughput_tok_s:g} tok/s costs {known.cost_units}; best known fleet kept"), solves=solves)
            first = retry
        if first.status != OPTIMAL or first.fleet is None or first.fleet.empty:
            if first.status == OPTIMAL:
                return Outcome(INFEASIBLE, None, seconds, message=NO_FLEET, solves=solves)
            return replace(first, seconds=seconds, solves=solves)
        best = first.fleet
        # the least cost among the maximisers: max T − μ·C is one fast solve, exact when it keeps T*
        # (a cost unit moves its objective by μ/c_scale, far above the solver's gap); otherwise the
        # strict (and slower) min C subject to T ≥ T*
        self._set(m, cap, 0.0)
        m.prob.setObjective(m.T - TIE_WEIGHT * m.C)
        second = solve_known(inst, m, best, cap) if best.cost_units > 0 else first
        if second is not first:
            solves, seconds = solves + 1, seconds + second.seconds
            f2 = second.fleet
            if f2 is not None and f2.throughput_exact > best.throughput_exact:
                best = f2  # stage 1 stopped within its tolerance short of the maximum: more T wins
            if f2 is not None and f2.throughput_exact == best.throughput_exact:
                best = f2 if f2.cost_units <= best.cost_units else best
            else:
                self._set(m, best.cost_units - 1, float(best.throughput_exact))
                m.prob.setObjective(-1 * m.C)
                second = solve_built(inst, m, cap)
                solves, seconds = solves + 1, seconds + second.seconds
                f2 = second.fleet  # "infeasible" here means best is already the cheapest maximiser
                if f2 is not None and f2.throughput_exact >= best.throughput_exact and f2.cost_units < best.cost_units:
                    best = f2
        self.known.append(best)
        status = first.status if second.status in (OPTIMAL, INFEASIBLE) else second.status
        msg = second.message if status != OPTIMAL else ""
        return Outcome(status, best, seconds, first.mip_gap, msg, solves=solves)


def _contradicts(out: Outcome, known: Fleet | None) -> bool:
    """Does a stage-1 answer contradict a fleet known to fit (no fleet, or less throughput than it)?"""
    if known is None or out.status not in (OPTIMAL, INFEASIBLE):
        return False
    return out.fleet is None or out.fleet.throughput_exact < known.throughput_exact


def budget_solve(inst: Instance, budget_units: int | None = None) -> Outcome:
    """Max throughput within the budget; among the maximisers the least cost (see :class:`BudgetSolver`).
    Stateless: builds its own model; a caller making many solves keeps one :class:`BudgetSolver`."""
    return BudgetSolver(inst).solve(budget_units)
