"""Every method on a fixed instance set: how often it reaches the exact min $/token, how far off it is
when it does not, and what it costs in MILP solves and seconds.

    python -m benchmarks.methods [--quick] [--small 120] [--large 120] [--quickstart all] [--out CSV]

The set: ``--small`` random instances drawn like ``tests/brute.py`` (2–3 offerings, 3–5 candidates),
``--large`` bigger random ones (4–8 offerings, 8–20 candidates, 1–8 nodes each), all seeded, plus the
shipped scenarios (``jobs/seed.toml`` and the scenarios of ``jobs/quickstart.toml``). HiGHS, one thread.

The exact optimum of an instance is ``dinkelbach``'s answer. ``pareto`` and ``charnes_cooper`` are checked
against it on every instance they run on (disagreement: a different feasibility, or $/token differing by
more than 1e-9 relative); the count should be 0. A method is *at the optimum* when its $/token is within
1e-9 relative of the exact one; shares and gaps are over the instances that have a fleet at all.
Instances without any feasible fleet are counted apart (every method should then return none).

Writes the summary to ``--out`` and one row per (instance, method) to ``<out>_instances.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.common import add_common_args, fmt, header, mean, median, table, write_csv
from benchmarks.instances import Case, random_cases, shipped_cases
from sweep.solve.methods import ALL_METHODS, EXACT_METHODS, run_method
from sweep.solve.milp import OPTIMAL, Fleet

REL_TOL = 1e-9
REFERENCE = "dinkelbach"


def rel_gap(fleet: Fleet | None, exact: Fleet | None) -> float | None:
    """(cpt / cpt*) − 1, exact in rationals; None when either has no fleet."""
    if fleet is None or exact is None or fleet.ratio is None or exact.ratio is None:
        return None
    return float(fleet.ratio / exact.ratio - 1)


def run_cases(cases: list[Case], methods: tuple[str, ...], progress: bool = True) -> list[dict]:
    """One row per (case, method): status, fleet, solves, seconds, gap to dinkelbach's optimum."""
    rows: list[dict] = []
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        results = {m: run_method(m, case.instance, case.params) for m in methods}
        ref = results[REFERENCE]
        exact = ref.fleet if ref.status == OPTIMAL else None
        for m, r in results.items():
            g = rel_gap(r.fleet, exact)
            rows.append({
                "instance": case.name, "kind": case.kind, "offerings": len(case.instance.slots),
                "candidates": len(case.instance.candidates), "method": m, "status": r.status,
                "reference_status": ref.status, "has_optimum": exact is not None,
                "cost_per_hour": r.fleet.cost_per_hour if r.fleet else None,
                "throughput_tok_s": r.fleet.throughput_tok_s if r.fleet else None,
                "cost_per_token": r.fleet.cost_per_token if r.fleet else None,
                "gap_rel": g, "at_optimum": (g is not None and abs(g) <= REL_TOL),
                "solves": r.solves, "seconds": r.seconds, "message": r.message,
            })
        if progress and (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(cases)} instances, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict], methods: tuple[str, ...], subset: str) -> list[dict]:
    out = []
    ref_ok = {r["instance"] for r in rows if r["method"] == REFERENCE and r["reference_status"] in (OPTIMAL, "infeasible")}
    for m in methods:
        mine = [r for r in rows if r["method"] == m and r["instance"] in ref_ok]
        feas = [r for r in mine if r["has_optimum"]]
        infeas = [r for r in mine if not r["has_optimum"]]
        gaps = [r["gap_rel"] * 100 for r in feas if r["gap_rel"] is not None]
        disagree = None
        if m in EXACT_METHODS:
            disagree = sum(1 for r in feas if not r["at_optimum"]) + sum(1 for r in infeas if r["cost_per_token"] is not None)
        out.append({
            "subset": subset, "method": m, "instances": len(mine), "with_fleet": len(feas),
            "at_optimum": sum(r["at_optimum"] for r in feas),
            "at_optimum_pct": 100 * sum(r["at_optimum"] for r in feas) / len(feas) if feas else None,
            "no_fleet": sum(1 for r in feas if r["cost_per_token"] is None),
            "fleet_when_infeasible": sum(1 for r in infeas if r["cost_per_token"] is not None),
            "not_optimal_status": sum(1 for r in mine if r["status"] not in (OPTIMAL, "infeasible")),
            "median_gap_pct": median(gaps), "worst_gap_pct": max(gaps) if gaps else None,
            "median_solves": median([r["solves"] for r in mine]), "mean_solves": mean([r["solves"] for r in mine]),
            "median_s": median([r["seconds"] for r in mine]), "mean_s": mean([r["seconds"] for r in mine]),
            "max_s": max((r["seconds"] for r in mine), default=None),
            "disagreements_vs_dinkelbach": disagree,
        })
    return out


def print_summary(summary: list[dict]) -> None:
    rows = []
    for s in summary:
        rows.append([s["subset"], s["method"], f"{s['with_fleet']}/{s['instances']}",
                     fmt(s["at_optimum_pct"], 1) + "%", fmt(s["median_gap_pct"], 2), fmt(s["worst_gap_pct"], 2),
                     s["no_fleet"], fmt(s["median_solves"], 1), fmt(s["mean_solves"], 1),
                     fmt(s["median_s"] * 1000, 1), fmt(s["mean_s"] * 1000, 1),
                     "-" if s["disagreements_vs_dinkelbach"] is None else s["disagreements_vs_dinkelbach"]])
    print(table(["set", "method", "fleet/n", "at opt", "med gap %", "worst gap %", "no fleet",
                 "med solves", "mean solves", "med ms", "mean ms", "disagree"], rows))


def seed_table(repeat: int) -> list[dict]:
    """Every method on ``jobs/seed.toml``, each timed ``repeat`` times on a freshly prepared scenario
    (no model reused from an earlier run); median seconds."""
    from benchmarks.common import JOBS
    from sweep.inputs.load import load_scenario
    from sweep.solve.prepare import prepare

    sc = load_scenario(JOBS / "seed.toml")
    run_method("dinkelbach", prepare(sc).instance, prepare(sc).params)  # warm-up: imports, solver library
    out = []
    exact = None
    for m in (REFERENCE, *[m for m in ALL_METHODS if m not in (REFERENCE, "min_cost")]):  # seed.toml has no demand
        times, r = [], None
        for _ in range(repeat):
            prep = prepare(sc)
            r = run_method(m, prep.instance, prep.params)
            times.append(r.seconds)
        if m == REFERENCE:
            exact = r.fleet
        g = rel_gap(r.fleet, exact)
        out.append({"method": m, "status": r.status, "cost_per_token": r.fleet.cost_per_token if r.fleet else None,
                    "throughput_tok_s": r.fleet.throughput_tok_s if r.fleet else None,
                    "gap_pct": None if g is None else 100 * g, "solves": r.solves, "median_s": median(times),
                    "runs": repeat})
    return sorted(out, key=lambda r: ALL_METHODS.index(r["method"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "methods")
    ap.add_argument("--small", type=int, default=120, help="random small instances (default 120)")
    ap.add_argument("--large", type=int, default=120, help="random large instances (default 120)")
    ap.add_argument("--quickstart", default="all", help="quickstart scenarios to include: a number or 'all'")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each method on seed.toml (median)")
    args = ap.parse_args(argv)
    if args.quick:
        args.small, args.large, args.quickstart, args.repeat = 6, 3, "0", 1
    header("methods: exact vs baselines on a fixed instance set (HiGHS)")
    n_qs = None if args.quickstart == "all" else int(args.quickstart)
    cases = random_cases(args.small, args.large, args.seed) + shipped_cases(n_qs)
    methods = tuple(m for m in ALL_METHODS if m != "min_cost")  # $/token methods; min_cost answers another question
    print(f"instances: {args.small} small random, {args.large} large random, "
          f"{len(cases) - args.small - args.large} shipped (seed.toml + quickstart); methods: {', '.join(methods)}")
    t0 = time.perf_counter()
    rows = run_cases(cases, methods)
    elapsed = time.perf_counter() - t0
    summary = summarise(rows, methods, "all")
    for kind, label in (("small", "small"), ("large", "large"), (("seed", "quickstart"), "shipped")):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        sub = [r for r in rows if r["kind"] in kinds]
        if sub:
            summary += summarise(sub, methods, label)
    print_summary(summary)
    n_infeasible = len({r["instance"] for r in rows if r["method"] == REFERENCE and not r["has_optimum"]})
    print(f"\n{len(cases)} instances ({n_infeasible} without any feasible fleet), {elapsed:.1f} s. "
          f"'at opt': $/token within {REL_TOL:g} relative of dinkelbach's; gaps over instances with a fleet; "
          f"'no fleet': the method returned none although one exists; 'disagree': exact methods vs dinkelbach.")
    seed = seed_table(args.repeat)
    print(f"\njobs/seed.toml, every method, median of {args.repeat} run(s):")
    print(table(["method", "status", "$/token", "gap %", "tok/s", "solves", "median ms"],
                [[r["method"], r["status"], "-" if r["cost_per_token"] is None else f"{r['cost_per_token']:.4e}",
                  fmt(r["gap_pct"], 2), r["throughput_tok_s"], r["solves"], fmt(r["median_s"] * 1000, 1)] for r in seed]))
    d = next(r for r in seed if r["method"] == "dinkelbach")
    e = next(r for r in seed if r["method"] == "enumeration")
    print(f"enumeration / dinkelbach on seed.toml: {e['solves'] / d['solves']:.1f}× the solves, "
          f"{e['median_s'] / d['median_s']:.1f}× the time")
    out = write_csv(summary, args.out)
    stem = Path(args.out).with_name(Path(args.out).stem)
    per = write_csv(rows, f"{stem}_instances.csv")
    sp = write_csv(seed, f"{stem}_seed.csv")
    print(f"wrote {out}, {per} and {sp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
