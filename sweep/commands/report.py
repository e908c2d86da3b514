"""``sweep report RESULTS [--scenario ID...] [--max-scenarios N] -o report.html``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.errors import InputError, Problem


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sweep.results.html_report import DEFAULT_MAX_SCENARIOS

    p.add_argument("results", help="results folder or URI (s3://…, gs://…, file://…)")
    p.add_argument("-o", "--out", required=True, metavar="report.html", help="the HTML page to write")
    p.add_argument("--scenario", "-s", nargs="+", metavar="ID",
                   help="plot these scenarios (ids or unique prefixes) instead of the first --max-scenarios")
    p.add_argument("--max-scenarios", type=int, default=DEFAULT_MAX_SCENARIOS, metavar="N",
                   help=f"frontier plots drawn by default (first N in sweep order; default {DEFAULT_MAX_SCENARIOS})")


def run(args: argparse.Namespace) -> int:
    from sweep.results.html_report import build_report, write_report
    from sweep.results.query import Results

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError([Problem(args.out, "the report is an HTML page: name it *.html")])
    if not out.parent.is_dir():
        raise InputError([Problem(args.out, f"folder {out.parent} does not exist")])
    if args.max_scenarios <= 0:
        raise InputError([Problem("--max-scenarios", f"must be > 0, got {args.max_scenarios}")])
    res = Results(args.results)
    text = build_report(res, args.scenario, args.max_scenarios)
    write_report(text, out)
    plots = text.count("<div class='card'")
    print(f"wrote {out}: {len(text) / 1024:,.0f} KiB, {plots} frontier plot{'s' if plots != 1 else ''}; "
          "self-contained (opens offline)")
    return 0
