"""``sweep export (SCENARIO | RESULTS --scenario ID) [--method M] --format skypilot|vllm -o DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweep.errors import InputError, Problem


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SCENARIO|RESULTS",
                   help="a scenario file (solved now), or a results folder/URI with --scenario")
    p.add_argument("--scenario", "-s", metavar="ID", help="with RESULTS: the scenario id (or a unique prefix)")
    p.add_argument("--method", "-m", default="dinkelbach", metavar="M",
                   help="the method whose fleet to export (default dinkelbach)")
    p.add_argument("--format", "-f", required=True, choices=["skypilot", "vllm"],
                   help="skypilot: one SkyServe task YAML per replica group; vllm: launch-vllm.sh")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    p.add_argument("--hf-model", metavar="ORG/NAME",
                   help="Hugging Face model id vLLM loads (default: from the model name, e.g. llama-3.1-70b → "
                        "meta-llama/Llama-3.1-70B-Instruct)")


def _is_results(source: str) -> bool:
    p = Path(source)
    return "://" in source or (p.is_dir() and ((p / "manifest.json").exists() or (p / "solutions").is_dir()))


def run(args: argparse.Namespace) -> int:
    from sweep.deploy import export as deploy
    from sweep.inputs.freshness import stale_prices_warning

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError([Problem(args.out, "exists and is not a folder")])
    if _is_results(args.source):
        from sweep.results.plot import pick_scenario
        from sweep.results.query import Results

        if not args.scenario:
            raise InputError([Problem("--scenario", f"required with a results dataset ({args.source})")])
        res = Results(args.source)
        sid = pick_scenario(res, args.scenario)
        plan = deploy.plan_from_results(res, sid, args.method, args.hf_model)
        source = f"results {args.source}"
    else:
        from sweep.commands.solve import parse_methods
        from sweep.inputs.load import load_scenario
        from sweep.solve.prepare import prepare, solve_scenario

        if args.scenario:
            raise InputError([Problem("--scenario", f"only with a results dataset; {args.source} is a scenario file")])
        (method,) = parse_methods([args.method])
        sc = load_scenario(args.source)
        prep = prepare(sc)
        if stale := stale_prices_warning(sc.offerings.values()):
            print(stale, file=sys.stderr)
        (result,) = solve_scenario(prep, [method])
        if result.fleet is None:
            print(f"{method}: {result.status} — no fleet to export ({result.message or 'no fleet meets the limits'})",
                  file=sys.stderr)
            return 1
        plan = deploy.plan_from_solve(prep, result, args.hf_model)
        source = f"{method} on {args.source}"
    files, notes = deploy.render(plan, args.format)
    written = deploy.write_files(files, out)
    for n in notes:
        print(n, file=sys.stderr)
    print(f"{source}: {len(plan.groups)} replica group{'s' if len(plan.groups) != 1 else ''}, "
          f"{plan.throughput_tok_s:,.0f} tok/s at ${plan.cost_per_hour:,.2f}/h")
    for g in plan.groups:
        svc, dp, nodes = deploy.layout(g)
        how = "not exported (mixed-GPU pipeline)" if g.stages else (
            f"{svc} service replica{'s' if svc != 1 else ''}" + (f" × dp {dp}" if dp > 1 else "")
            + (f" × {nodes} nodes" if nodes > 1 else ""))
        name = " + ".join(f"{s['offering']}[{s['first_layer']}-{s['last_layer']}]" for s in g.stages) or g.offering
        print(f"  group {g.index}: {g.replicas} × {name} tp={g.tp} pp={g.pp} batch {g.batch} → {how}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
