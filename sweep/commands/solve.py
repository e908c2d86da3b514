"""``sweep solve SCENARIO [--method M]... [--budget B] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys

from sweep.errors import InputError, Problem
from sweep.fleet.candidates import unserved_buckets
from sweep.inputs.load import load_scenario
from sweep.report import fmt_cpt, fmt_money, fmt_tok_s, table
from sweep.solve.decomposed import decomposes
from sweep.solve.methods import ALL_METHODS, EXACT_METHODS, gap_pct
from sweep.solve.milp import NO_CANDIDATE, NO_FLEET, OPTIMAL, Fleet
from sweep.solve.prepare import Prepared, prepare, solve_scenario
from sweep.solve.result import MethodResult, allocation, to_row, tokens_per_request
from sweep.vocab import Status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario file (.toml or the note's config.csv)")
    p.add_argument("--method", "-m", action="append", default=[], metavar="M",
                   help=f"one of {', '.join(ALL_METHODS)}, or 'all' (repeatable; default dinkelbach)")
    p.add_argument("--budget", type=float, metavar="B", help="$/hour cap for this run (sets limits.budget; 0 = no cap)")
    p.add_argument("--json", action="store_true", help="one JSON object per method per line")


def parse_methods(names: list[str], has_demand: bool = True) -> list[str]:
    """The methods asked for; ``all`` leaves out ``min_cost`` when there is no demand to meet, and
    asking for ``min_cost`` without one is bad input (SPEC §5.1)."""
    out: list[str] = []
    bad = []
    for n in names or ["dinkelbach"]:
        for part in n.split(","):
            part = part.strip()
            if part == "all":
                out.extend(m for m in ALL_METHODS if has_demand or m != "min_cost")
            elif part == "min_cost" and not has_demand:
                bad.append(Problem("workload.min_throughput", "method min_cost needs a demand: set "
                                   "workload.min_throughput to the tokens/s the fleet must serve, or "
                                   "workload.request_rate to the requests/s"))
            elif part in ALL_METHODS:
                out.append(part)
            else:
                bad.append(Problem("--method", f"unknown method '{part}' (valid: {', '.join(ALL_METHODS)}, all)"))
    if bad:
        raise InputError(bad)
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    parse_methods(args.method)  # unknown names are reported before the scenario is read
    overrides = {}
    if args.budget is not None:
        if args.budget < 0:
            raise InputError([Problem("--budget", f"must be >= 0, got {args.budget}")])
        overrides["limits.budget"] = args.budget
    sc = load_scenario(args.scenario, overrides)
    methods = parse_methods(args.method, has_demand=bool(sc.workload.min_throughput or sc.workload.request_rate))
    prep = prepare(sc)
    if unserved := unserved_buckets(sc, prep.table):  # SPEC §5.2: every bucket needs a server
        raise InputError([Problem(f"{sc.origin}: workload.{'trace' if sc.workload.trace else 'mix'}"
                                  if sc.origin else "workload.mix",
                                  f"no candidate can serve the bucket {b.describe()} "
                                  "(see `sweep candidates` for why each layout is dropped)") for b in unserved])
    from sweep.inputs.freshness import stale_prices_warning

    if stale := stale_prices_warning(sc.offerings.values()):
        print(stale, file=sys.stderr)  # once per solve, once the input is known good
    if "pareto" in methods and not sc.limits.budget and len(prep.instance.slots) > 10 \
            and not decomposes(prep.instance):  # else the frontier is merged per offering, in seconds
        print(f"note: pareto without a budget walks the whole frontier of {len(prep.instance.slots)} offerings, "
              "one MILP per point (minutes on a large catalog); --budget B bounds it", file=sys.stderr)
    results = solve_scenario(prep, methods)
    if args.json:
        for r in results:
            print(json.dumps(to_row(prep.instance, r, prep.scenario_id, tokens_per_request(prep.scenario))))
        return 0
    print(render(prep, results))
    return 0


def _exact_best(results: list[MethodResult]) -> MethodResult | None:
    """The reference for the gap column: an exact method that proved its answer optimal."""
    for r in results:
        if r.method in EXACT_METHODS and r.status == OPTIMAL and r.fleet is not None:
            return r
    return None


def describe(prep: Prepared) -> str:
    sc = prep.scenario
    w, lim = sc.workload, sc.limits
    pct = f" p{w.slo_percentile:g}" if w.ttft_slo_ms or w.request_rate else ""
    limits = [(w.ttft_slo_ms, f"TTFT{pct} ≤ {w.ttft_slo_ms:g} ms at load"), (w.tpot_slo_ms, f"TPOT{pct} ≤ {w.tpot_slo_ms:g} ms"),
              (w.min_throughput, f"≥ {w.min_throughput:g} tok/s"), (w.request_rate, f"≥ {w.request_rate:g} requests/s"),
              (lim.budget, f"budget ${lim.budget:g}/h"), (lim.max_gpus, f"≤ {lim.max_gpus} GPUs")]
    extra = [text for value, text in limits if value]
    lengths = (f"a request mix of {len(sc.mix)} buckets ({float(sc.mean_output_tokens):,.1f} output tokens "
               f"per request: {'; '.join(b.describe() for b in sc.mix)})" if sc.mix else
               f"{w.prompt_tokens} prompt + {w.output_tokens} output tokens")
    return (f"scenario {sc.origin or '-'} (id {prep.scenario_id}): {sc.model.model} {sc.perf.dtype}, "
            f"{lengths}, {sc.settings.catalog.price.replace('_', '-')} prices" + (", " + ", ".join(extra) if extra else "")
            + f"\ncandidates: {len(prep.table.kept)} kept, {len(prep.table.dropped)} dropped "
              f"(see `sweep candidates`), {len(prep.instance.slots)} offerings in play"
            + ("\nmixed-GPU pipelines built: no single-offering layout holds the model (perf.mixed = \"auto\")"
               if prep.table.mixed == "auto" else ""))


def deployment(prep: Prepared, fleet: Fleet) -> str:
    alloc = allocation(prep.instance, fleet)  # one entry per fleet.replicas item, in that order
    mix = prep.scenario.mix
    rows = []
    for a, (c, n) in zip(alloc, fleet.replicas, strict=True):
        cand = prep.instance.candidates[c]
        name = a["offering"] if "stages" not in a else " + ".join(
            f"{s['offering']}[{s['first_layer']}-{s['last_layer']}]" for s in a["stages"])
        if mix:  # what the routing sends it: Σ_b y_b·o_b tokens/s, and each bucket's requests/s
            routed = a["routed_rps"]
            tok_s = sum(y * b.output_tokens for y, b in zip(routed, mix, strict=True))
            rows.append([name, a["gpu"], a["tp"], a["pp"], a["replicas"], a["nodes"], fmt_tok_s(tok_s),
                         *(f"{y:,.3f}" if y else "-" for y in routed)])
        else:
            rows.append([name, a["gpu"], a["tp"], a["pp"], a["replicas"], a["nodes"],
                         fmt_tok_s(cand.throughput_tok_s * n)])
    heads = ["offering", "gpu", "tp", "pp", "replicas", "nodes", "tok/s"]
    heads += [f"req/s {b.prompt_tokens}/{b.output_tokens}" for b in mix]
    lines = [table(heads, rows)]
    if mix:
        lines.append("routing: requests/s of each bucket (prompt/output tokens) sent to each layout; every bucket "
                     "gets its share of the total")
    cpt = fleet.cost_per_token or 0.0
    per_request = tokens_per_request(prep.scenario)
    rate = f" = {fleet.throughput_tok_s / per_request:,.3f} requests/s" if per_request else ""
    lines.append(f"total: {fleet.gpus} GPUs, {fmt_tok_s(fleet.throughput_tok_s)} tok/s{rate}, {fmt_money(fleet.cost_per_hour)}/h, "
                 f"{fmt_cpt(fleet.cost_per_token)}/token = ${cpt * 1e6:.4f} per M tokens")
    return "\n".join(lines)


def _kind(method: str) -> str:
    if method in EXACT_METHODS:
        return "exact"
    return {"max_throughput": "budget", "min_cost": "demand"}.get(method, "baseline")


def _note(r: MethodResult) -> str:
    """One line on how a method got its answer (path, budget points, frontier)."""
    if r.method == "iterative" and r.path:
        grows = [p for p in r.path if p["step"] == "grow"]
        steps = [p for p in r.path if isinstance(p["step"], int)]
        stop = next((p["reason"] for p in r.path if p["step"] == "stop"), "")
        grow = (f"first budget {fmt_money(grows[0]['budget'])}/h admitted no fleet, grown ×1.4 {len(grows)} times; "
                if grows else "")
        return f"{grow}{len(steps)} tightening step{'s' if len(steps) != 1 else ''}, stopped: {stop}"
    if r.method == "enumeration" and r.points:
        found = sum(p.fleet is not None for p in r.points)
        lo, hi = r.points[0].budget, r.points[-1].budget
        at = f"; best at the ${r.budget:.2f}/h point" if r.budget is not None else ""
        return f"{len(r.points)} budgets ${lo:.2f}–${hi:.2f}/h, {found} with a fleet{at}"
    if r.method == "dinkelbach" and r.path:
        ratios = " → ".join(fmt_cpt(p["cost_per_token"]) for p in r.path if "cost_per_token" in p)
        cert = next((p["min_subproblem"] for p in r.path if p["step"] == "certificate"), None)
        proof = f", certified (last subproblem min {cert:.1e})" if cert is not None else ""
        return f"$/token path {ratios} (from the best single replica){proof}, then a tie-break solve"
    if r.method == "charnes_cooper" and r.path:
        p = r.path[0]
        return (f"one ratio MILP ({p['candidates']} of {p['of']} candidates left by dominance and budget, "
                f"{p['binaries']} binaries), then a tie-break solve")
    if r.method == "pareto" and r.frontier:
        return (f"{len(r.frontier)} frontier points, {fmt_money(r.frontier[-1].cost_per_hour)}–"
                f"{fmt_money(r.frontier[0].cost_per_hour)}/h")
    if r.method == "max_throughput":
        return f"at budget {fmt_money(r.budget)}/h" if r.budget else "no budget: the most throughput available"
    if r.method == "min_cost" and r.fleet is not None:
        return "the cheapest fleet that serves the demand, then the most throughput at that cost"
    return ""


def _fmt_gap(g: float | None) -> str:
    if g is None:
        return "-"
    return "0.00%" if g == 0 else f"{g:+.2f}%" if abs(g) >= 0.005 else f"{g:+.1e}%"


def comparison(results: list[MethodResult]) -> str:
    """The ``--method all`` table: each method's $/token, its gap to the exact optimum, and its cost in solves."""
    ref = _exact_best(results)
    exact = ref.fleet if ref else None
    rows = []
    for r in results:
        f = r.fleet
        g = gap_pct(f, exact)
        rows.append([r.method, _kind(r.method), r.status, fmt_cpt(f.cost_per_token) if f else "-",
                     _fmt_gap(g), fmt_tok_s(f.throughput_tok_s) if f else "-",
                     fmt_money(f.cost_per_hour) if f else "-", r.solves, f"{r.seconds:.3f}"])
    out = [table(["method", "kind", "status", "$/token", "gap", "tok/s", "$/h", "solves", "seconds"], rows,
                 align="lllrrrrrr")]
    proved_none = [r.method for r in results if r.method in EXACT_METHODS and r.status == Status.INFEASIBLE]
    if ref is None and proved_none:
        out.append(f"gap: - (no fleet meets the scenario's limits: {', '.join(proved_none)})")
    elif ref is None or exact is None:
        out.append("gap: no exact method proved an optimum in this run (run with --method dinkelbach)")
    else:
        out.append(f"gap: % above the exact minimum {fmt_cpt(exact.cost_per_token)}/token ({ref.method}); "
                   "ties on $/token go to the higher throughput")
        off = [r.method for r in results if r.method in EXACT_METHODS and r.status == OPTIMAL and r.fleet is not None
               and gap_pct(r.fleet, exact) != 0]
        if off:
            out.append(f"warning: exact methods disagree ({', '.join(off)} differ from {ref.method})")
    out.append("status: how the method's MILP solves ended; only an exact method's answer is the optimum")
    notes = [(r.method, _note(r)) for r in results]
    notes = [(m, n) for m, n in notes if n]
    if notes:
        width = max(len(m) for m, _ in notes)
        out.append("")
        out += [f"{m.ljust(width)}  {n}" for m, n in notes]
    return "\n".join(out)


def render(prep: Prepared, results: list[MethodResult]) -> str:
    """The human report: the comparison table when several methods ran, then each distinct fleet once."""
    out = [describe(prep)]
    if len(results) > 1:
        out += ["", comparison(results)]
    if len(results) == 1:
        r = results[0]
        out += ["", f"{r.method}: {r.status} — {r.solves} MILP solve{'s' if r.solves != 1 else ''}, "
                    f"{r.seconds:.3f} s ({r.solver})"]
        note = _note(r)
        out += [f"  {note}"] if note else []
        out += [f"  {_why(prep, r.message)}"] if r.message and r.message != NO_FLEET else []
        out.append(deployment(prep, r.fleet) if r.fleet is not None else _no_fleet(r))
        return "\n".join(out)
    # one deployment table per distinct fleet, headed by the methods that chose it; then those without
    groups: dict[tuple | None, list[MethodResult]] = {}
    for r in results:
        groups.setdefault(r.fleet.replicas if r.fleet is not None else None, []).append(r)
    for key, members in sorted(groups.items(), key=lambda kv: kv[0] is None):
        out.append("")
        names = ", ".join(r.method for r in members)
        out.append(f"{names}:" if key is not None else f"{names}: no fleet")
        for r in members:
            if r.message and r.status != "infeasible":
                out.append(f"  {r.method}: {r.message}")
        if key is not None:
            out.append(deployment(prep, members[0].fleet))
        elif any(r.status == Status.INFEASIBLE for r in members):
            why = dict.fromkeys(_why(prep, r.message) for r in members if r.status == Status.INFEASIBLE and r.message)
            why.pop(NO_FLEET, None)
            out.append("  no fleet meets the scenario's limits" + (f" ({'; '.join(why)})" if why else ""))
    return "\n".join(out)


def _why(prep: Prepared, message: str) -> str:
    """A method's message, with the way out when nothing holds the model and mixed pipelines were off."""
    if message == NO_CANDIDATE and prep.table.mixed == "off":
        return (f"{message}: no single-offering layout holds it, and mixed-GPU pipelines are off "
                "(perf.mixed = false; \"auto\" or true builds them)")
    return message


def _no_fleet(r: MethodResult) -> str:
    if r.status == Status.INFEASIBLE:
        return "no fleet meets the scenario's limits"
    return f"no fleet found ({r.status})"
