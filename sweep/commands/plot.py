"""``sweep plot RESULTS [--scenario ID | --compare] -o FILE.png``."""

from __future__ import annotations

import argparse

from sweep.results.query import Results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder or URI (s3://…, gs://…, file://…)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.png", help="image to write (.png, .svg or .pdf)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--scenario", "-s", metavar="ID",
                      help="scenario id or a unique prefix (default: the first with an exact frontier)")
    mode.add_argument("--compare", action="store_true",
                      help="across all scenarios: each baseline method's $/token gap to the exact optimum")
    p.add_argument("--where", metavar="EXPR",
                   help="with --compare: only the rows this SQL condition keeps (as in sweep query)")


def run(args: argparse.Namespace) -> int:
    from sweep.results.plot import plot_compare, plot_frontier

    res = Results(args.results)
    if args.compare:
        n = plot_compare(res, args.out, args.where)
        print(f"wrote {args.out}: $/token gap to the exact optimum, {n} scenarios")
        return 0
    if args.where:
        from sweep.errors import InputError, Problem

        raise InputError([Problem("--where", "only with --compare; pick one scenario with --scenario")])
    sid = plot_frontier(res, args.out, args.scenario)
    print(f"wrote {args.out}: frontier and method answers of scenario {sid}")
    return 0
