"""HiGHS against CBC on the same budget solves: time and agreement.

    python -m benchmarks.solvers [--quick] [--small 60] [--large 60] [--shipped 17] [--out CSV]

Each instance (seeded random small and large ones, ``jobs/seed.toml`` and every 8th scenario of
``jobs/quickstart.toml``) is solved at several budgets — fractions of what renting every available
node would cost, capped by the scenario's own budget — by the product's budget solve (max tokens/s,
then least $/h; :class:`sweep.solve.milp.BudgetSolver`, one built model per instance and solver, the budget
row changed between solves), once with HiGHS (in-process, ``highspy``) and once with CBC (PuLP's
bundled binary, a subprocess per solve), both with a zero relative MIP gap and one thread.

Time is the solve as the product sees it (``Outcome.seconds``: hand-over to the solver, the solve,
reading the answer back; for CBC that includes writing the model file and starting the process).
Agreement: the same status and exactly the same (throughput, cost) — integers, so no tolerance.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from benchmarks.common import add_common_args, fmt, header, median, quantile, table, write_csv
from benchmarks.instances import random_cases, shipped_cases
from sweep.solve.milp import BudgetSolver

FRACTIONS = (0.05, 0.15, 0.4, 1.0)
SOLVERS = ("highs", "cbc")


def run(cases, fractions) -> list[dict]:
    rows = []
    for case in cases:
        ceiling = case.instance.max_cost_units()
        budgets = sorted({max(1, int(ceiling * f)) for f in fractions})
        per_solver = {}
        for solver in SOLVERS:
            bs = BudgetSolver(replace(case.instance, solver=solver))
            per_solver[solver] = [bs.solve(b) for b in budgets]
        for i, b in enumerate(budgets):
            h, c = per_solver["highs"][i], per_solver["cbc"][i]
            hp = (h.fleet.throughput_tok_s, h.fleet.cost_units) if h.fleet else None
            cp = (c.fleet.throughput_tok_s, c.fleet.cost_units) if c.fleet else None
            rows.append({
                "instance": case.name, "kind": case.kind, "candidates": len(case.instance.candidates),
                "budget_per_hour": b / 10_000, "highs_status": h.status, "cbc_status": c.status,
                "highs_point": hp, "cbc_point": cp, "agree": h.status == c.status and hp == cp,
                "highs_s": h.seconds, "cbc_s": c.seconds, "ratio_cbc_over_highs": c.seconds / max(h.seconds, 1e-9),
                "highs_solves": h.solves, "cbc_solves": c.solves,
            })
    return rows


def summarise(rows: list[dict], subset: str) -> dict:
    ratios = [r["ratio_cbc_over_highs"] for r in rows]
    hs, cs = [r["highs_s"] for r in rows], [r["cbc_s"] for r in rows]
    return {
        "subset": subset, "solves": len(rows), "agree": sum(r["agree"] for r in rows),
        "disagree": sum(not r["agree"] for r in rows),
        "highs_median_ms": median(hs) * 1000, "cbc_median_ms": median(cs) * 1000,
        "ratio_median": median(ratios), "ratio_p90": quantile(ratios, 0.9),
        "ratio_total": sum(cs) / max(sum(hs), 1e-9),
        "highs_not_optimal": sum(r["highs_status"] not in ("optimal", "infeasible") for r in rows),
        "cbc_not_optimal": sum(r["cbc_status"] not in ("optimal", "infeasible") for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "solvers")
    ap.add_argument("--small", type=int, default=60)
    ap.add_argument("--large", type=int, default=60)
    ap.add_argument("--shipped", type=int, default=17, help="seed.toml + every 8th quickstart scenario, up to this many")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    if args.quick:
        args.small, args.large, args.shipped = 3, 2, 1
    header("solvers: HiGHS vs CBC on the same budget solves")
    cases = random_cases(args.small, args.large, args.seed)
    if args.shipped:
        cases += shipped_cases(None if args.shipped > 1 else 0)[::8][: args.shipped]
    print(f"{len(cases)} instances × budgets at {', '.join(f'{f:g}' for f in FRACTIONS)} of the full-availability cost")
    t0 = time.perf_counter()
    rows = run(cases, FRACTIONS)
    summary = [summarise(rows, "all")]
    for kinds, label in ((("small",), "small"), (("large",), "large"), (("seed", "quickstart"), "shipped")):
        sub = [r for r in rows if r["kind"] in kinds]
        if sub:
            summary.append(summarise(sub, label))
    print(table(["set", "solves", "agree", "HiGHS med ms", "CBC med ms", "CBC/HiGHS med", "p90", "total",
                 "not optimal (H/C)"],
                [[s["subset"], s["solves"], f"{s['agree']}/{s['solves']}", fmt(s["highs_median_ms"], 1),
                  fmt(s["cbc_median_ms"], 1), fmt(s["ratio_median"], 2) + "×", fmt(s["ratio_p90"], 2) + "×",
                  fmt(s["ratio_total"], 2) + "×", f"{s['highs_not_optimal']}/{s['cbc_not_optimal']}"] for s in summary]))
    bad = [r for r in rows if not r["agree"]]
    for r in bad[:10]:
        print(f"  disagree: {r['instance']} at ${r['budget_per_hour']:g}/h: HiGHS {r['highs_status']} {r['highs_point']}, "
              f"CBC {r['cbc_status']} {r['cbc_point']}")
    print(f"\n{time.perf_counter() - t0:.1f} s. ratio = CBC seconds / HiGHS seconds per solve (>1: HiGHS faster).")
    out = write_csv(summary, args.out)
    per = write_csv(rows, args.out.replace(".csv", "_solves.csv"))
    print(f"wrote {out} and {per}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
