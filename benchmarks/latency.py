"""Per-scenario latency: ``sweep solve jobs/seed.toml --method dinkelbach`` against ``--method enumeration``.

    python -m benchmarks.latency [--quick] [--repeat 9] [--scenario jobs/seed.toml] [--out CSV]

- *process*: the whole command as a user runs it (a new ``python -m sweep.cli`` process: interpreter
  start-up, imports, loading the scenario, candidates, the solves, the report), median of ``--repeat``
  runs, the two methods interleaved so that background load hits both alike. Two floors are measured the
  same way: ``python -c pass`` and ``python -c "import sweep.cli"``.
- *in-process*: the method alone (``run_method`` on a freshly prepared scenario each time, so no model
  built by an earlier repetition is reused), median of ``--repeat`` after one warm-up run.

Also checks both answers against the exact optimum (dinkelbach is exact; enumeration's gap is shown).
Target: dinkelbach exact and ≥ 1.5× faster than the 15-point enumeration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.common import JOBS, REPO, add_common_args, fmt, header, median, table, write_csv
from sweep.inputs.load import load_scenario
from sweep.solve.methods import gap_pct, run_method
from sweep.solve.prepare import prepare

TARGET = 1.5
METHODS = ("dinkelbach", "enumeration")


def process_times(cmds: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for k, cmd in cmds.items():  # interleaved: load changes hit every command alike
            t = time.perf_counter()
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
            times[k].append(time.perf_counter() - t)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return times


def in_process_times(scenario: str, repeat: int) -> tuple[dict[str, list[float]], dict[str, dict]]:
    sc = load_scenario(scenario)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    answers: dict[str, dict] = {}
    for i in range(repeat + 1):
        for m in METHODS:
            prep = prepare(sc)  # a new Instance: nothing cached from the previous repetition
            t = time.perf_counter()
            r = run_method(m, prep.instance, prep.params)
            dt = time.perf_counter() - t
            if i:  # the first round warms up (imports, the solver library)
                times[m].append(dt)
            answers[m] = {"result": r, "solves": r.solves}
    return times, answers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "latency")
    ap.add_argument("--repeat", type=int, default=9, help="runs of each command (median reported; default 9)")
    ap.add_argument("--scenario", default=str(JOBS / "seed.toml"))
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat = 1
    header(f"latency: sweep solve {args.scenario} --method dinkelbach vs enumeration")
    py = sys.executable
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "import sweep.cli": [py, "-c", "import sweep.cli"],
        **{f"solve --method {m}": [py, "-m", "sweep.cli", "solve", args.scenario, "--method", m, "--json"] for m in METHODS},
    }
    proc = process_times(cmds, args.repeat)
    inproc, answers = in_process_times(args.scenario, args.repeat)

    # the answers, as the CLI prints them
    out = subprocess.run([py, "-m", "sweep.cli", "solve", args.scenario, "--method", "dinkelbach", "--method",
                          "enumeration", "--json"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    cli = {d["method"]: d for d in map(json.loads, out.splitlines())}
    d, e = answers["dinkelbach"]["result"], answers["enumeration"]["result"]
    enum_gap = gap_pct(e.fleet, d.fleet)

    rows = []
    for k, ts in proc.items():
        rows.append({"what": f"process: {k}", "median_s": median(ts), "min_s": min(ts), "max_s": max(ts),
                     "runs": len(ts)})
    for m, ts in inproc.items():
        rows.append({"what": f"in-process: {m}", "median_s": median(ts), "min_s": min(ts), "max_s": max(ts),
                     "runs": len(ts), "solves": answers[m]["solves"]})
    p_ratio = median(proc["solve --method enumeration"]) / median(proc["solve --method dinkelbach"])
    i_ratio = median(inproc["enumeration"]) / median(inproc["dinkelbach"])
    floor = median(proc["import sweep.cli"])
    rows.append({"what": "ratio process (enumeration / dinkelbach)", "ratio": p_ratio, "target": TARGET})
    rows.append({"what": "ratio process minus import floor", "ratio":
                 (median(proc["solve --method enumeration"]) - floor) / (median(proc["solve --method dinkelbach"]) - floor),
                 "target": TARGET})
    rows.append({"what": "ratio in-process (enumeration / dinkelbach)", "ratio": i_ratio, "target": TARGET})
    rows.append({"what": "dinkelbach $/token (exact)", "value": cli["dinkelbach"]["cost_per_token"],
                 "status": cli["dinkelbach"]["status"], "solves": cli["dinkelbach"]["solves"]})
    rows.append({"what": "enumeration $/token", "value": cli["enumeration"]["cost_per_token"],
                 "status": cli["enumeration"]["status"], "solves": cli["enumeration"]["solves"],
                 "gap_pct": enum_gap})

    print(table(["measurement", "median s", "min s", "max s", "runs", "solves"],
                [[r["what"], fmt(r["median_s"], 3), fmt(r["min_s"], 3), fmt(r["max_s"], 3), r["runs"], r.get("solves", "-")]
                 for r in rows if "median_s" in r]))
    print()
    print(table(["ratio", "measured", "target"],
                [[r["what"], fmt(r["ratio"], 2) + "×", f"≥ {TARGET}×"] for r in rows if "ratio" in r]))
    print(f"\nanswers: dinkelbach {cli['dinkelbach']['status']} ${cli['dinkelbach']['cost_per_token']:.4e}/token "
          f"in {cli['dinkelbach']['solves']} solves (exact); enumeration {cli['enumeration']['status']} "
          f"${cli['enumeration']['cost_per_token']:.4e}/token in {cli['enumeration']['solves']} solves, "
          f"gap {fmt(enum_gap, 4)}% to the optimum")
    path = write_csv(rows, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
