"""``sweep catalog [gpus|offerings|models] [--file CSV] [--csv]`` and
``sweep catalog import skypilot VMS_CSV... [--region R] [--cloud C] [--as-of DATE] -o offerings.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.errors import Problems
from sweep.inputs.catalog import builtin_path, load_gpus, load_models, load_offerings
from sweep.report import table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=["gpus", "offerings", "models", "import"], default="offerings",
                   help="the catalog to print, or `import skypilot VMS_CSV...` to turn SkyPilot's catalog files "
                        "(~/.sky/catalogs/<version>/<cloud>/vms.csv) into an offerings CSV")
    p.add_argument("files", nargs="*", metavar="skypilot VMS_CSV", help="with import: `skypilot` and the vms.csv files")
    p.add_argument("--file", help="a catalog CSV of your own to check and print (default: the built-in one)")
    p.add_argument("--csv", action="store_true", help="print the CSV as is")
    imp = p.add_argument_group("import skypilot")
    imp.add_argument("-o", "--out", metavar="offerings.csv", help="the offerings CSV to write")
    imp.add_argument("--region", metavar="R", help="price every instance in this region (default: its cheapest)")
    imp.add_argument("--cloud", metavar="C", help="the cloud of the files (default: from their folder or name, "
                                                  "e.g. .../aws/vms.csv)")
    imp.add_argument("--as-of", metavar="YYYY-MM-DD", help="when the prices were read (default: each file's "
                                                           "modification date)")
    imp.add_argument("--max-nodes", type=int, default=8, metavar="N", help="max_nodes of each offering (default 8)")


def run(args: argparse.Namespace) -> int:
    if args.kind == "import":
        from sweep.commands.catalog_import import run_import

        return run_import(args)
    if args.files:
        from sweep.errors import InputError, Problem

        raise InputError([Problem(args.files[0], f"unexpected argument to `sweep catalog {args.kind}`")])
    path = Path(args.file) if args.file else builtin_path(args.kind)
    problems = Problems()
    if args.kind == "gpus":
        items = list(load_gpus(path, problems).values())
        cols = ["gpu", "mem_gb", "bf16_tflops", "fp8_tflops", "fp4_tflops", "mem_bw_gbps", "link_gbps"]
    elif args.kind == "models":
        items = list(load_models(path, problems).values())
        cols = ["model", "params_b", "active_params_b", "layers", "hidden", "heads", "kv_heads", "head_dim", "vocab"]
    else:
        gpus = load_gpus(builtin_path("gpus"), problems)
        items = list(load_offerings(path, gpus, problems).values())
        cols = ["offering", "provider", "gpu", "gpus_per_node", "price_per_hour", "spot_price_per_hour", "max_nodes"]
    problems.raise_if_any()
    if args.csv:
        print(path.read_text(encoding="utf-8"), end="")
        return 0
    print(table(cols, [[getattr(i, c) for c in cols] for i in items]))
    print(f"\n{len(items)} {args.kind} from {path}")
    return 0
