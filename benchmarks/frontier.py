"""The unbudgeted frontier at scale: ``pareto`` on the large instance of issue 15 (built-in catalog,
llama-3.1-70b, 2000/300 tokens, TPOT 50 ms, 5,000 tok/s demand).

    python -m benchmarks.frontier [--quick] [--walk-points N] [--out CSV]

- ``merge``: the whole frontier by the per-offering knapsack and Pareto merge (``pareto`` on an instance
  whose offerings are independent; sweep.solve.decomposed), wall seconds, points, and its min-$/token
  point against ``dinkelbach`` (exact rationals);
- ``walk``: the ε-constraint MILP walk (``pareto_walk``, one reused HiGHS model) for its first
  ``--walk-points`` points from the top, seconds per point, the whole walk's time projected from that
  rate (the walk itself is not run to the end: hours), and how many of its points differ from the
  merge's (the merge is exact by construction; a differing walk point is HiGHS stopping within its
  tolerance of the optimum) with the largest relative throughput gap.

Target (issue 15): the unbudgeted large pareto in ≤ 30 s and equal to dinkelbach's $/token.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import add_common_args, header, table, write_csv
from sweep.inputs.scenario import scenario_from_dict
from sweep.solve.methods import run_method
from sweep.solve.methods.common import Tally
from sweep.solve.milp import BudgetSolver
from sweep.solve.prepare import prepare

LARGE = {"model": "llama-3.1-70b", "workload": {"prompt_tokens": 2000, "output_tokens": 300, "tpot_slo_ms": 50,
                                                "min_throughput": 5000}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walk-points", type=int, default=None, help="MILP walk points to time (default 200; --quick 20)")
    add_common_args(ap, "frontier")
    args = ap.parse_args(argv)
    n_walk = args.walk_points or (20 if args.quick else 200)

    t0 = time.perf_counter()
    prep = prepare(scenario_from_dict(LARGE))
    t_prepare = time.perf_counter() - t0
    inst = prep.instance
    t0 = time.perf_counter()
    p = run_method("pareto", inst, prep.params)
    t_merge = time.perf_counter() - t0
    d = run_method("dinkelbach", inst, prep.params)
    same = p.fleet is not None and d.fleet is not None and p.fleet.ratio == d.fleet.ratio and \
        p.fleet.throughput_exact == d.fleet.throughput_exact

    # the MILP walk's first points, from the top, each equal to the merge's
    tally = Tally(inst.solver)
    solver = BudgetSolver(inst)
    budget, walked, differ, worst, merge_never_worse = None, 0, 0, 0.0, True
    t0 = time.perf_counter()
    while walked < min(n_walk, len(p.frontier)):
        out = tally.add(solver.solve(budget))
        if out.fleet is None:
            break
        want = p.frontier[walked]
        if (out.fleet.cost_units, out.fleet.throughput_exact) != (want.cost_units, want.throughput_exact):
            # the walk's point at this budget against the merge's (the exact one, by construction)
            differ += 1
            worst = max(worst, float(abs(want.throughput_exact - out.fleet.throughput_exact) / want.throughput_exact))
            merge_never_worse &= want.throughput_exact >= out.fleet.throughput_exact
        walked += 1
        budget = out.fleet.cost_units - 1  # the walk goes on from its own point, as pareto_walk does
    t_walk = time.perf_counter() - t0
    per_point = t_walk / max(walked, 1)

    rows = [{
        "instance": "llama-3.1-70b 2000/300, TPOT 50 ms, 5,000 tok/s, built-in catalog",
        "candidates": len(inst.candidates), "offerings": len(inst.slots), "prepare_s": round(t_prepare, 2),
        "frontier_points": len(p.frontier), "merge_s": round(t_merge, 2), "merge_status": p.status,
        "equals_dinkelbach": same, "cost_per_token": p.fleet.cost_per_token if p.fleet else None,
        "walk_points": walked, "walk_s": round(t_walk, 2), "walk_s_per_point": round(per_point, 4),
        "walk_solves": tally.solves, "walk_points_differing": differ, "walk_worst_rel_gap": worst,
        "merge_never_worse": merge_never_worse,
        "walk_projected_s": round(per_point * len(p.frontier), 1),
        "speedup_projected": round(per_point * len(p.frontier) / max(t_merge, 1e-9), 1),
    }]
    header("unbudgeted pareto on the large instance (target: ≤ 30 s, equal to dinkelbach)")
    r = rows[0]
    print(table(["points", "merge s", "= dinkelbach", "walk points", "walk s/point", "walk ≠ merge",
                 "worst rel. gap", "walk projected s", "speed-up"],
                [[r["frontier_points"], r["merge_s"], r["equals_dinkelbach"], r["walk_points"], r["walk_s_per_point"],
                  r["walk_points_differing"], f"{worst:.1e}", r["walk_projected_s"], r["speedup_projected"]]]))
    print(f"wrote {write_csv(rows, args.out)}")
    return 0 if same and merge_never_worse else 1


if __name__ == "__main__":
    raise SystemExit(main())
