"""Run every benchmark, one after the other, then rewrite the results table of benchmarks/README.md.

    python -m benchmarks.run_all [--quick] [--only methods,solvers] [--skip vs_tune] [--no-readme]

Each benchmark runs as its own process (``python -m benchmarks.NAME``, ``--quick`` passed on), prints
its table and writes its CSV under benchmarks/out/; the Ray ones re-execute themselves inside a private
network namespace. The combined output also goes to benchmarks/out/run_all.log. At the end the README's
table (between its ``results:start``/``results:end`` markers) is rebuilt from the CSVs, with the machine
and the mode (quick or full). Run it on an otherwise idle machine: every figure is a timing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import OUT_DIR, REPO, fmt, machine

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# name -> (full args, quick args)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "methods": ([], ["--quick"]),
    "solvers": ([], ["--quick"]),
    "latency": ([], ["--quick"]),
    "backends": ([], ["--quick"]),
    "vs_tune": ([], ["--quick"]),
    "memory": ([], ["--quick"]),
    "scale": (["--backends", "processes,ray"], ["--quick"]),
    "query_best": ([], ["--rows", "10000", "--repeat", "1"]),
    "frontier": ([], ["--quick"]),
}


def run_one(name: str, args: list[str], log) -> tuple[int, float]:
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *args]
    banner = f"\n$ {' '.join(['python', '-m', f'benchmarks.{name}', *args])}\n"
    print(banner, end="", flush=True)
    log.write(banner)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert p.stdout is not None
    for line in p.stdout:
        # Ray's start-up chatter is not part of any result
        if "Token authentication is enabled" in line or "network_util.cc" in line:
            continue
        sys.stdout.write(line)
        log.write(line)
    code = p.wait()
    return code, time.perf_counter() - t0


# --------------------------------------------------------------------------- the README table


def _read(name: str) -> list[dict]:
    path = OUT_DIR / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _f(x: str | None) -> float | None:
    try:
        return float(x) if x not in (None, "") else None
    except ValueError:
        return None


def _pct(x: str | None, digits: int = 1) -> str:
    v = _f(x)
    return "-" if v is None else f"{v:.{digits}f} %"


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def results_rows() -> list[list[str]]:
    rows: list[list[str]] = []

    # 1. methods
    for r in (x for x in _read("methods") if x["subset"] == "all"):
        exact = r["method"] in ("dinkelbach", "charnes_cooper", "pareto")
        dis = r.get("disagreements_vs_dinkelbach") or ""
        result = (f"at optimum {r['at_optimum']}/{r['with_fleet']} ({_pct(r['at_optimum_pct'])}); gap median "
                  f"{_pct(r['median_gap_pct'], 2)}, worst {_pct(r['worst_gap_pct'], 2)}; no fleet {r['no_fleet']}; "
                  f"solves median {fmt(_f(r['median_solves']), 1)} / mean {fmt(_f(r['mean_solves']), 1)}; "
                  f"median {fmt(1000 * (_f(r['median_s']) or 0), 1)} ms / mean {fmt(1000 * (_f(r['mean_s']) or 0), 1)} ms"
                  + (f"; disagreements with dinkelbach {dis}" if exact else ""))
        target = "100 %, 0 disagreements" if exact else "baseline: measured"
        ok = (r["at_optimum"] == r["with_fleet"] and dis in ("0", "")) if exact else None
        rows.append(["methods", f"{r['method']} on {r['instances']} instances", result, "", target, _met(ok)])
    seed = {r["method"]: r for r in _read("methods_seed")}
    if "dinkelbach" in seed and "enumeration" in seed:
        d, e = seed["dinkelbach"], seed["enumeration"]
        rs = _f(e["solves"]) / _f(d["solves"])
        rt = _f(e["median_s"]) / _f(d["median_s"])
        rows.append(["methods", "seed.toml: enumeration vs dinkelbach (solves; median time)",
                     f"{e['solves']} vs {d['solves']} solves; {fmt(1000 * _f(e['median_s']), 1)} vs "
                     f"{fmt(1000 * _f(d['median_s']), 1)} ms; enumeration gap {_pct(e['gap_pct'], 2)}",
                     f"{rs:.1f}× solves, {rt:.1f}× time", "dinkelbach fewer solves, less time", _met(rs > 1 and rt > 1)])
        others = ", ".join(f"{m} {r['solves']} solves / {fmt(1000 * _f(r['median_s']), 0)} ms"
                           for m, r in seed.items() if m not in ("dinkelbach", "enumeration"))
        rows.append(["methods", "seed.toml: the other methods", others, "", "measured", "-"])

    # 2. solvers
    for r in _read("solvers"):
        if r["subset"] != "all":
            continue
        rows.append(["solvers", f"HiGHS vs CBC, {r['solves']} budget solves",
                     f"agree {r['agree']}/{r['solves']}; median {fmt(_f(r['highs_median_ms']), 1)} vs "
                     f"{fmt(_f(r['cbc_median_ms']), 1)} ms",
                     f"CBC/HiGHS {fmt(_f(r['ratio_median']), 2)}× median, {fmt(_f(r['ratio_p90']), 2)}× p90, "
                     f"{fmt(_f(r['ratio_total']), 2)}× total", "all agree; time measured",
                     _met(r["agree"] == r["solves"])])

    # 3. latency
    lat = {r["what"]: r for r in _read("latency")}

    def med(key: str, scale: float = 1.0) -> str:
        return fmt(scale * (_f(lat.get(key, {}).get("median_s")) or float("nan")), 3 if scale == 1 else 1)

    for key, label, result in (
        ("ratio process (enumeration / dinkelbach)", "process wall time (whole `sweep solve`)",
         f"{med('process: solve --method enumeration')} s vs {med('process: solve --method dinkelbach')} s (median)"),
        ("ratio process minus import floor", "process wall time minus `python -c 'import sweep.cli'`",
         f"import floor {med('process: import sweep.cli')} s, `python -c pass` {med('process: python -c pass')} s"),
        ("ratio in-process (enumeration / dinkelbach)", "in-process (the method alone)",
         f"{med('in-process: enumeration', 1000)} ms vs {med('in-process: dinkelbach', 1000)} ms (median)"),
    ):
        if key in lat:
            ratio = _f(lat[key]["ratio"])
            rows.append(["latency", f"seed.toml, enumeration / dinkelbach: {label}", result, f"{fmt(ratio, 2)}×",
                         "≥ 1.5×", _met(ratio >= 1.5 if ratio else None)])
    ex = lat.get("enumeration $/token")
    if ex:
        rows.append(["latency", "seed.toml: dinkelbach exact; enumeration's gap",
                     f"dinkelbach {lat['dinkelbach $/token (exact)']['status']}, {lat['dinkelbach $/token (exact)']['solves']} solves; "
                     f"enumeration gap {_pct(ex.get('gap_pct'), 4)}", "", "exact", _met(True)])

    # 4. backends
    bk = _read("backends")
    for r in (x for x in bk if x.get("what") == "sweep"):
        if r["backend"].startswith("plain"):
            rows.append(["backends", f"bench-1000: plain loop, no framework ({r['tasks']} scenarios)",
                         f"{fmt(_f(r['wall_s']), 2)} s ({fmt(_f(r['prepare_s']), 1)} s candidates + "
                         f"{fmt(_f(r['sum_task_s']), 1)} s methods)", "", "reference", "-"])
            continue
        ovp, ovs = _f(r["overhead_vs_plain"]), _f(r["overhead_vs_solve"])
        rows.append(["backends", f"bench-1000: {r['backend']}",
                     f"{fmt(_f(r['wall_s']), 2)} s, {fmt(_f(r['scenarios_per_s']), 1)} scen/s; efficiency "
                     f"{_pct(str(100 * _f(r['efficiency'])), 0)}; overhead vs Σ solve {_pct(str(100 * ovs))}; "
                     f"driver CPU {fmt(_f(r.get('driver_cpu_s')), 1)} s",
                     f"{fmt(_f(r['speedup']), 2)}× serial; overhead vs plain {_pct(str(100 * ovp))}",
                     "overhead ≤ 10 %", _met(ovp <= 0.10)])
    qs = [x for x in bk if x.get("what") == "quickstart"]
    if len(qs) == 2:
        s, p = qs
        rows.append(["backends", f"quickstart.toml ({s['scenarios']} scenarios, {s['tasks']} tasks): {p['backend']} vs serial",
                     f"{fmt(_f(p['wall_s']), 1)} s vs {fmt(_f(s['wall_s']), 1)} s", f"{fmt(_f(p['speedup']), 2)}×",
                     "~1.7× on 2 cores (issue 4)", "-"])
    for r in (x for x in bk if x.get("us_per_item")):
        rows.append(["backends", f"per-task overhead, trivial items: {r['what']}", f"{fmt(_f(r['us_per_item']), 1)} µs per item",
                     "", "batched ≪ one task per item", "-"])

    # 5. vs Ray Tune
    vt = _read("vs_tune")
    for r in vt:
        if r["what"].startswith("sweep"):
            rows.append(["vs_tune", f"{r['what']}, {r['scenarios']} scenarios", f"{fmt(_f(r['rate']), 2)} scen/s "
                         f"({fmt(_f(r['seconds']), 2)} s)", "", "reference", "-"])
        else:
            x, xf = _f(r.get("sweep_x")), _f(r.get("sweep_full_x"))
            ratio = f"sweep {fmt(x, 1)}× (same grid)" + (f", {fmt(xf, 1)}× (whole job's rate)" if xf else "")
            rows.append(["vs_tune", f"{r['what']}, {r['scenarios']} scenarios, {r['trials']} trials",
                         f"{fmt(_f(r['rate']), 2)} scen/s, {fmt(_f(r.get('s_per_trial')), 3)} s/trial, "
                         f"{r['files']} files, same answers {r['agree']}", ratio, "≥ 50×", _met(x >= 50 if x else None)])

    # 6. memory
    mem = _read("memory")
    for r in mem:
        peak = _f(r["peak_mb"])
        rows.append(["memory", f"driver peak RSS, {int(float(r['scenarios'])):,} scenarios (processes ×2)",
                     f"{fmt(peak, 0)} MB (after imports {fmt(_f(r['after_imports_mb']), 0)} MB); "
                     f"{fmt(_f(r['wall_s']), 1)} s", f"{fmt(_f(r['mb_per_1000_more']), 2)} MB per +1,000 scenarios"
                     if r.get("mb_per_1000_more") else "", "< 500 MB, flat", _met(peak < 500 if peak else None)])

    # 7. scale
    for r in _read("scale"):
        ms = _f(r["cpu_ms_per_task"])
        rows.append(["scale", f"driver CPU per task, {int(float(r['tasks'])):,} tasks × one budget solve "
                     f"({r.get('backend') or 'processes'} ×{r.get('workers') or 2})",
                     f"{fmt(ms, 3)} ms/task (driver CPU {fmt(_f(r['driver_cpu_s']), 2)} s); {fmt(_f(r['wall_s']), 1)} s, "
                     f"{fmt(_f(r['tasks_per_s']), 0)} tasks/s; peak RSS {fmt(_f(r['peak_rss_mb']), 0)} MB",
                     f"capacity {fmt(_f(r['capacity_tasks_per_s']), 0)} tasks/s = "
                     f"{fmt(_f(r['busy_workers_at_10ms']), 1)} workers busy at 10 ms tasks",
                     "≤ 0.05 ms/task (≥ 20,000 tasks/s)", _met(ms <= 0.05 if ms is not None else None)])

    # 9. the unbudgeted frontier at scale
    for r in _read("frontier"):
        secs = _f(r["merge_s"])
        rows.append(["frontier", f"unbudgeted pareto, {r['instance']}: {int(float(r['frontier_points'])):,} points "
                     f"by the per-offering merge; the MILP walk's first {r['walk_points']} points "
                     f"({r['walk_points_differing']} differ, worst {float(r['walk_worst_rel_gap']):.1e} relative)",
                     f"{fmt(secs, 2)} s; = dinkelbach: {r['equals_dinkelbach']}; walk {fmt(_f(r['walk_s_per_point']), 3)} s/point",
                     f"{fmt(_f(r['speedup_projected']), 0)}× the walk's projected {fmt(_f(r['walk_projected_s']), 0)} s",
                     "≤ 30 s, = dinkelbach", _met(secs <= 30 and r["equals_dinkelbach"] == "True" if secs is not None else None)])

    # 8. query
    for r in _read("query_best"):
        secs = _f(r["seconds"])
        rows.append(["query_best", f"{r['what']}, {int(float(r['rows'])):,} rows ({r['dataset']})", f"{fmt(secs, 3)} s",
                     "", f"≤ {r.get('target_s', '1')} s", _met(secs <= float(r.get("target_s") or 1) if secs is not None else None)])
    return rows


def update_readme(mode: str, elapsed_s: float, failures: list[str]) -> None:
    rows = results_rows()
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [START, "",
             f"Mode: **{mode}** (`python -m benchmarks.run_all{' --quick' if mode == 'quick' else ''}`), {when}, "
             f"{elapsed_s / 60:.1f} min in all.",
             f"Machine: {machine()}.", ""]
    if mode == "quick":
        lines += ["**Quick sizes** (a handful of scenarios each): start-up costs (worker pools, Ray, Tune) dominate, "
                  "so these rows prove the scripts run; their ratios are not the product's figures. Run the full "
                  "sizes on an idle machine for those.", ""]
    if failures:
        lines += [f"Failed: {', '.join(failures)} (see benchmarks/out/run_all.log).", ""]
    lines += ["| benchmark | measurement | result | ratio | target | met |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    lines += ["", END]
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    tmp = README.with_name(README.name + ".tmp")
    tmp.write_text(head + "\n".join(lines) + tail)
    tmp.replace(README)
    print(f"\nupdated {README.relative_to(REPO)} ({len(rows)} rows)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the smallest sizes of every benchmark")
    ap.add_argument("--only", default="", help="comma-separated benchmarks to run (default all)")
    ap.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the README's table")
    args = ap.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else BENCHMARKS) if n and n not in args.skip.split(",")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)} (valid: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"running {', '.join(names)} ({'quick' if args.quick else 'full'} sizes)")
    failures = []
    t0 = time.perf_counter()
    with (OUT_DIR / "run_all.log").open("w") as log:
        log.write(f"machine: {machine()}\n")
        for name in names:
            full, quick = BENCHMARKS[name]
            for old in OUT_DIR.glob(f"{name}*.csv"):  # the table never mixes this run with an earlier one
                old.unlink()
            code, secs = run_one(name, quick if args.quick else full, log)
            msg = f"[{name}: exit {code}, {secs:.0f} s]\n"
            print(msg, end="", flush=True)
            log.write(msg)
            if code != 0:
                failures.append(name)
    elapsed = time.perf_counter() - t0
    if not args.no_readme:
        update_readme("quick" if args.quick else "full", elapsed, failures)
    print(f"done in {elapsed / 60:.1f} min" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
