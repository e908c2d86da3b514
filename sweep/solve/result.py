"""What a method returns (SPEC §6) and how it becomes a row (SPEC §7 JSON, §8 Parquet)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sweep.inputs.catalog import COST_UNITS_PER_DOLLAR
from sweep.inputs.scenario import Scenario
from sweep.solve.milp import ERROR, INFEASIBLE, OPTIMAL, TIME_LIMIT, Fleet, Instance

_STATUS_RANK = {OPTIMAL: 0, INFEASIBLE: 1, TIME_LIMIT: 2, ERROR: 3}


def worst_status(statuses: list[str]) -> str:
    """The status a method may claim: as good as its worst solve (``infeasible`` never hides a limit)."""
    return max(statuses, key=_STATUS_RANK.__getitem__) if statuses else OPTIMAL


def method_status(solve_statuses: list[str], fleet: Fleet | None) -> str:
    """A method's status from its solves': the worst of them, where a solve that found no fleet at its
    budget counts as optimal (a fact about that budget); a method left with no fleet is ``infeasible``."""
    status = worst_status([OPTIMAL if s == INFEASIBLE else s for s in solve_statuses])
    return INFEASIBLE if fleet is None and status == OPTIMAL else status


def better(a: Fleet | None, b: Fleet | None) -> bool:
    """Is fleet a strictly better $/token than b (exact; ties go to the higher throughput)?"""
    ra = a.ratio if a is not None else None
    if ra is None:
        return False
    rb = b.ratio if b is not None else None
    if rb is None:
        return True
    return ra < rb or (ra == rb and a.throughput_exact > b.throughput_exact)


@dataclass(frozen=True)
class MethodResult:
    """One method's answer for one scenario.

    ``status`` is the worst status among the solves it relied on; ``fleet`` is None when no fleet
    was found. ``path`` lists the steps taken (iterations, budgets); ``points`` are enumeration's
    budget points; ``frontier`` is pareto's exact frontier (descending cost).
    """

    method: str
    status: str
    fleet: Fleet | None
    solves: int
    seconds: float
    solver: str
    budget: float | None = None  # $/h this row was solved at, if one budget
    path: tuple[dict, ...] = ()
    points: tuple[MethodResult, ...] = ()
    frontier: tuple[Fleet, ...] = ()
    mip_gap: float | None = None
    message: str = ""


def allocation(inst: Instance, fleet: Fleet | None) -> list[dict]:
    """SPEC §7 allocation entries. ``nodes`` attributes each offering's rented nodes to its entries
    in proportion to their GPUs (largest remainder), so entries of one offering sum to its nodes."""
    if fleet is None:
        return []
    idx = inst.slot_index()
    node_count = dict(fleet.nodes)
    gpus_on: dict[int, list[tuple[int, int]]] = {}
    for c, n in fleet.replicas:
        for o, g in inst.candidates[c].uses:
            gpus_on.setdefault(idx[o], []).append((c, g * n))
    share: dict[int, int] = {c: 0 for c, _ in fleet.replicas}
    for s, entries in gpus_on.items():
        total_nodes = node_count.get(s, 0)
        total_gpus = sum(g for _, g in entries)
        exact = [(c, Fraction(g * total_nodes, total_gpus)) for c, g in entries]
        floors = {c: int(q) for c, q in exact}
        left = total_nodes - sum(floors.values())
        for c, _q in sorted(exact, key=lambda e: (-(e[1] - int(e[1])), e[0]))[:left]:
            floors[c] += 1
        for c, v in floors.items():
            share[c] += v
    out = []
    routing = fleet.routing or [None] * len(fleet.replicas)
    for (c, n), routed in zip(fleet.replicas, routing, strict=True):
        cand = inst.candidates[c]
        entry = {"offering": cand.offering, "gpu": cand.gpu, "tp": cand.tp, "pp": cand.pp,
                 "replicas": n, "nodes": share[c]}
        if routed is not None:  # SPEC §5.2: requests/s of each bucket sent to these replicas
            entry["routed_rps"] = list(routed)
        if cand.stages:
            entry["stages"] = [
                {"offering": s.offering, "gpu": s.gpu, "tp": s.tp, "first_layer": s.first_layer,
                 "last_layer": s.last_layer}
                for s in cand.stages
            ]
        out.append(entry)
    return out


def fleet_fields(inst: Instance | None, fleet: Fleet | None, per_request: float = 0) -> dict:
    """A fleet's result columns: cost_per_hour ($/h), throughput_tok_s, cost_per_token ($), gpus and
    allocation — None (and no allocation) when there is no fleet; with ``per_request`` (output tokens per
    request, see :func:`tokens_per_request`) also request_rate (requests/s); with a request mix also
    ``routing`` (per allocation entry, requests/s of each bucket; SPEC §5.2)."""
    routed = inst is not None and inst.routed
    if fleet is None or inst is None:
        out = {"cost_per_hour": None, "throughput_tok_s": None, "cost_per_token": None, "gpus": None,
               "allocation": []}
        out = {**out, "routing": None} if routed else out
        return {**out, "request_rate": None} if per_request else out
    out = {**point_dict(fleet), "gpus": fleet.gpus, "allocation": allocation(inst, fleet)}
    if routed:
        out["routing"] = [list(r) for r in fleet.routing]
    if per_request:  # exact: Λ = T / ō
        out["request_rate"] = float(fleet.throughput_exact / (inst.per_request or Fraction(per_request)))
    return out


def tokens_per_request(sc: Scenario) -> float:
    """Output tokens per request when the scenario plans for requests (a request rate, a TTFT limit or a
    request mix, SPEC §5.2): results then carry ``request_rate`` = throughput / this; else 0 (no such field).
    With a mix this is ō = Σ s_b·o_b."""
    if sc.mix or sc.workload.request_rate or sc.workload.ttft_slo_ms:
        return float(sc.mean_output_tokens) if sc.mix else sc.workload.output_tokens
    return 0


def point_dict(fleet: Fleet) -> dict:
    return {"cost_per_hour": fleet.cost_per_hour, "throughput_tok_s": fleet.throughput_tok_s,
            "cost_per_token": fleet.cost_per_token}


def to_row(inst: Instance, r: MethodResult, scenario_id: str = "", per_request: float = 0) -> dict:
    """The SPEC §7 ``--json`` object of a method result (``per_request``: see :func:`fleet_fields`)."""
    row: dict = {
        "scenario_id": scenario_id,
        "method": r.method,
        "status": r.status,
        "budget": r.budget,
        **fleet_fields(inst, r.fleet, per_request),
        "solves": r.solves,
        "seconds": round(r.seconds, 6),
        "solver": r.solver,
    }
    if r.mip_gap is not None:
        row["mip_gap"] = r.mip_gap
    if r.message:
        row["message"] = r.message
    if r.path:
        row["path"] = list(r.path)
    if r.method == "pareto":
        row["frontier"] = [{**point_dict(p), "allocation": allocation(inst, p)} for p in r.frontier]
    if r.points:
        row["points"] = [
            {"budget": p.budget, "status": p.status, **(point_dict(p.fleet) if p.fleet else
             {"cost_per_hour": None, "throughput_tok_s": None, "cost_per_token": None})}
            for p in r.points
        ]
    return row


def budget_units(budget_per_hour: float) -> int:
    """$/h to whole cost units, rounded down (a budget is a cap)."""
    return int(Fraction(str(budget_per_hour)) * COST_UNITS_PER_DOLLAR)
