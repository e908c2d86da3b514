"""``sweep catalog [gpus|offerings|models] [--file CSV] [--csv]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.catalog import builtin_path, load_gpus, load_models, load_offerings
from sweep.errors import Problems
from sweep.report import table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=["gpus", "offerings", "models"], default="offerings")
    p.add_argument("--file", help="a catalog CSV of your own to check and print (default: the built-in one)")
    p.add_argument("--csv", action="store_true", help="print the CSV as is")


def run(args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else builtin_path(args.kind)
    problems = Problems()
    if args.kind == "gpus":
        items = list(load_gpus(path, problems).values())
        cols = ["gpu", "mem_gb", "bf16_tflops", "fp8_tflops", "mem_bw_gbps", "link_gbps"]
    elif args.kind == "models":
        items = list(load_models(path, problems).values())
        cols = ["model", "params_b", "active_params_b", "layers", "hidden", "heads", "kv_heads", "head_dim"]
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
