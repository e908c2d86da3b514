"""``sweep solve SCENARIO [--method M]... [--budget B] [--json]``."""

from __future__ import annotations

import argparse
import json

from sweep.errors import InputError, Problem
from sweep.methods import ALL_METHODS, EXACT_METHODS, gap_pct
from sweep.milp import OPTIMAL, Fleet
from sweep.report import fmt_cpt, fmt_money, table
from sweep.result import MethodResult, allocation, to_row
from sweep.scenario import load_scenario
from sweep.solve import Prepared, prepare, solve_scenario


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario file (.toml or the note's config.csv)")
    p.add_argument("--method", "-m", action="append", default=[], metavar="M",
                   help=f"one of {', '.join(ALL_METHODS)}, or 'all' (repeatable; default dinkelbach)")
    p.add_argument("--budget", type=float, metavar="B", help="$/hour cap for this run (sets limits.budget)")
    p.add_argument("--json", action="store_true", help="one JSON object per method per line")


def parse_methods(names: list[str]) -> list[str]:
    out: list[str] = []
    bad = []
    for n in names or ["dinkelbach"]:
        for part in n.split(","):
            part = part.strip()
            if part == "all":
                out.extend(ALL_METHODS)
            elif part in ALL_METHODS:
                out.append(part)
            else:
                bad.append(Problem("--method", f"unknown method '{part}' (valid: {', '.join(ALL_METHODS)}, all)"))
    if bad:
        raise InputError(bad)
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    methods = parse_methods(args.method)
    overrides = {}
    if args.budget is not None:
        if args.budget < 0:
            raise InputError([Problem("--budget", f"must be >= 0, got {args.budget}")])
        overrides["limits.budget"] = args.budget
    sc = load_scenario(args.scenario, overrides)
    prep = prepare(sc)
    results = solve_scenario(prep, methods)
    if args.json:
        for r in results:
            print(json.dumps(to_row(prep.instance, r, prep.scenario_id)))
        return 0
    print(render(prep, results))
    return 0


def _exact_best(results: list[MethodResult]) -> Fleet | None:
    for r in results:
        if r.method in EXACT_METHODS and r.status == OPTIMAL and r.fleet is not None:
            return r.fleet
    return None


def describe(prep: Prepared) -> str:
    sc = prep.scenario
    p = sc.params
    extra = []
    if p["workload.tpot_slo_ms"]:
        extra.append(f"TPOT ≤ {p['workload.tpot_slo_ms']:g} ms")
    if p["workload.min_throughput"]:
        extra.append(f"≥ {p['workload.min_throughput']:g} tok/s")
    if p["limits.budget"]:
        extra.append(f"budget ${p['limits.budget']:g}/h")
    if p["limits.max_gpus"]:
        extra.append(f"≤ {p['limits.max_gpus']} GPUs")
    return (f"scenario {sc.origin or '-'} (id {prep.scenario_id}): {sc.model.model} {p['perf.dtype']}, "
            f"{p['workload.prompt_tokens']} prompt + {p['workload.output_tokens']} output tokens, "
            f"{p['catalog.price'].replace('_', '-')} prices" + (", " + ", ".join(extra) if extra else "")
            + f"\ncandidates: {len(prep.table.kept)} kept, {len(prep.table.dropped)} dropped "
              f"(see `sweep candidates`), {len(prep.instance.slots)} offerings in play")


def deployment(prep: Prepared, fleet: Fleet) -> str:
    alloc = allocation(prep.instance, fleet)
    cands = {(c.offering, c.tp, c.pp): c for c in prep.instance.candidates}
    rows = []
    for a in alloc:
        c = cands.get((a["offering"], a["tp"], a["pp"]))
        name = a["offering"] if "stages" not in a else " + ".join(
            f"{s['offering']}[{s['first_layer']}-{s['last_layer']}]" for s in a["stages"])
        rows.append([name, a["gpu"], a["tp"], a["pp"], a["replicas"], a["nodes"],
                     f"{(c.throughput_tok_s * a['replicas']) if c else '-':,}"])
    lines = [table(["offering", "gpu", "tp", "pp", "replicas", "nodes", "tok/s"], rows)]
    cpt = fleet.cost_per_token or 0.0
    lines.append(f"total: {fleet.gpus} GPUs, {fleet.throughput_tok_s:,} tok/s, {fmt_money(fleet.cost_per_hour)}/h, "
                 f"{fmt_cpt(fleet.cost_per_token)}/token = ${cpt * 1e6:.4f} per M tokens")
    return "\n".join(lines)


def render(prep: Prepared, results: list[MethodResult]) -> str:
    out = [describe(prep)]
    exact = _exact_best(results)
    if len(results) > 1:
        rows = []
        for r in results:
            f = r.fleet
            g = gap_pct(f, exact)
            rows.append([r.method, r.status, fmt_cpt(f.cost_per_token) if f else "-",
                         "-" if g is None else f"{g:+.2f}%", f"{f.throughput_tok_s:,}" if f else "-",
                         fmt_money(f.cost_per_hour) if f else "-", r.solves, f"{r.seconds:.3f}"])
        out.append("")
        out.append(table(["method", "status", "$/token", "gap", "tok/s", "$/h", "solves", "seconds"], rows))
        if exact is None:
            out.append("(gap: no exact method solved to optimality in this run; run with --method dinkelbach)")
    for r in results:
        out.append("")
        head = f"{r.method}: {r.status}"
        if r.method == "max_throughput" and r.budget:
            head += f" at budget {fmt_money(r.budget)}/h"
        head += f" — {r.solves} MILP solve{'s' if r.solves != 1 else ''}, {r.seconds:.3f} s ({r.solver})"
        out.append(head)
        if r.message:
            out.append(f"  {r.message}")
        if r.fleet is not None:
            out.append(deployment(prep, r.fleet))
        elif r.status == "infeasible":
            out.append("no fleet meets the scenario's limits")
        if r.method == "pareto" and r.frontier:
            out.append(f"frontier: {len(r.frontier)} points from {fmt_money(r.frontier[-1].cost_per_hour)}/h to "
                       f"{fmt_money(r.frontier[0].cost_per_hour)}/h")
        if len(results) > 1:
            pass
    return "\n".join(out)
