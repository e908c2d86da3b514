"""``sweep catalog import skypilot VMS_CSV... [--region R] [--cloud C] [--as-of DATE] -o offerings.csv``."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sweep.errors import InputError, Problem, Problems


def run_import(args: argparse.Namespace) -> int:
    from sweep.inputs.catalog import builtin_path, load_gpus, load_offerings
    from sweep.inputs.skypilot_catalog import CLOUDS, import_vms, unknown_lines, write_offerings

    problems = Problems()
    if not args.files or args.files[0] != "skypilot":
        got = f"got {args.files[0]!r}" if args.files else "nothing"
        raise InputError([Problem("import", f"the source must be `skypilot` ({got}): "
                                            "sweep catalog import skypilot VMS_CSV... -o offerings.csv")])
    paths = [Path(f) for f in args.files[1:]]
    if not paths:
        problems.add("import skypilot", "name at least one SkyPilot vms.csv file (e.g. ~/.sky/catalogs/v8/aws/vms.csv)")
    if not args.out:
        problems.add("-o", "required: the offerings CSV to write")
    elif not Path(args.out).parent.is_dir():
        problems.add(args.out, f"folder {Path(args.out).parent} does not exist")
    if args.cloud is not None and args.cloud not in CLOUDS:
        problems.add("--cloud", f"unknown cloud {args.cloud!r} (known: {', '.join(CLOUDS)})")
    if args.as_of is not None:
        try:
            date.fromisoformat(args.as_of)
        except ValueError:
            problems.add("--as-of", f"must be a date YYYY-MM-DD, got {args.as_of!r}")
    if args.max_nodes <= 0:
        problems.add("--max-nodes", f"must be > 0, got {args.max_nodes}")
    problems.raise_if_any()
    imported = import_vms(paths, problems, cloud=args.cloud, region=args.region, as_of=args.as_of,
                          max_nodes=args.max_nodes)
    problems.raise_if_any()
    for line in unknown_lines(imported):
        print(line, file=sys.stderr)
    for line in imported.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if not imported.rows:
        raise InputError([Problem(", ".join(map(str, paths)), "no GPU instance with an accelerator of the GPU "
                                                               "catalog (nothing written)")])
    out = Path(args.out)
    write_offerings(imported.rows, out)
    check = Problems()  # what we wrote must load as an offerings catalog
    offerings = load_offerings(out, load_gpus(builtin_path("gpus"), check), check)
    check.raise_if_any()
    by_cloud: dict[str, int] = {}
    for o in offerings.values():
        by_cloud[o.provider] = by_cloud.get(o.provider, 0) + 1
    clouds = ", ".join(f"{n} {c}" for c, n in sorted(by_cloud.items()))
    left = sum(len(t) for accs in imported.unknown.values() for t in accs.values())
    print(f"wrote {out}: {len(offerings)} offerings ({clouds}) from {len(paths)} file{'s' if len(paths) > 1 else ''}"
          f"; {left} instance type{'s' if left != 1 else ''} with accelerators not in the GPU catalog left out"
          f"; {imported.cpu_rows} CPU-only rows ignored")
    print(f"use it in a scenario: [catalog] offerings = \"{out}\"")
    return 0
