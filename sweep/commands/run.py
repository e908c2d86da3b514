"""``sweep run JOB [--backend serial|processes|ray] [--workers N] [--address A] [--out DIR|URI] [--fresh]``."""

from __future__ import annotations

import argparse

from sweep.engine.backends import ALIASES, BACKENDS
from sweep.engine.runner import run_sweep


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", help="sweep definition (jobs/*.toml)")
    p.add_argument("--backend", "-b", default="processes", choices=[*BACKENDS, *ALIASES],
                   help="where tasks run (default: processes)")
    p.add_argument("--workers", "-w", type=int, default=None, help="worker processes / local Ray CPUs (default: all cores); with --address, a cap on the cluster CPUs used")
    p.add_argument("--address", help="Ray cluster address (HOST:PORT or ray://…); default $RAY_ADDRESS, else a local Ray")
    p.add_argument("--out", "-o", help="output folder or URI (s3://…, gs://…); default results/<sweep name>")
    p.add_argument("--fresh", action="store_true", help="start over: drop earlier results in the output")
    p.add_argument("--retry-errors", action="store_true", help="re-run tasks whose earlier result was an error")
    p.add_argument("--flush-s", type=float, default=5.0, metavar="S",
                   help="save finished results at least every S seconds (a kill loses at most that much; default 5)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        from sweep.errors import InputError, Problem

        raise InputError([Problem("--workers", f"must be >= 1, got {args.workers}")])
    s = run_sweep(args.job, backend=args.backend, workers=args.workers, address=args.address, out=args.out,
                  fresh=args.fresh, retry_errors=args.retry_errors, progress=not args.quiet,
                  flush_s=max(0.0, args.flush_s))
    print(s.text())
    return s.exit_code if s.interrupted else 0
