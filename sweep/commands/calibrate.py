"""``sweep calibrate MEASUREMENTS... -o calibration.toml`` (SPEC §4.3).

Reads measured rows (the CSV form, or vLLM ``benchmark_serving.py --save-result`` JSON files), fits the
performance model's sustained fractions per GPU family, prints every row's error before and after, the
median and a leave-one-out figure, and writes a TOML file that ``perf.calibration`` applies. Bad rows:
one ``error:`` line each, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.errors import InputError, Problem
from sweep.fleet.calibrate import (
    MIN_ROWS_TWO_KNOBS,
    Measurement,
    calibration_toml,
    errors,
    fit,
    leave_one_out,
    read_measurements_csv,
    read_vllm_json,
    summary,
    write_atomic,
)
from sweep.fleet.perf import Knobs, family_of
from sweep.inputs.catalog import load_builtin
from sweep.report import table

LOO_MAX_ROWS = 150  # above this, leave one *file* out instead of one row (each left-out fit refits)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("measurements", nargs="+", type=Path,
                   help="CSV (model, gpu, tp, pp, dtype, prompt_tokens, output_tokens, concurrency, output_tok_s) "
                        "or vLLM benchmark_serving.py --save-result JSON files")
    p.add_argument("-o", "--output", type=Path, required=True, help="calibration TOML to write")
    p.add_argument("--gpu", help="GPU of the JSON results (else their metadata 'gpu')")
    p.add_argument("--tp", type=int, help="tensor parallelism of the JSON results (else metadata 'tp')")
    p.add_argument("--pp", type=int, help="pipeline parallelism of the JSON results (else metadata 'pp', or 1)")
    p.add_argument("--dtype", help="bf16, fp16, fp8, fp4 or int4 for the JSON results (else metadata 'dtype')")
    p.add_argument("--model", help="catalog model of the JSON results (else guessed from model_id)")
    p.add_argument("--max-batch", type=int, help="the server's --max-num-seqs in maximum-load JSON results (else "
                                                 "metadata 'max_batch'; absent = the memory decides)")


def _read(args: argparse.Namespace) -> list[Measurement]:
    catalog = load_builtin()
    problems: list[Problem] = []
    ms: list[Measurement] = []
    for path in args.measurements:
        if not path.is_file():
            problems.append(Problem(str(path), "file not found"))
        elif path.suffix.lower() == ".json":
            ms += read_vllm_json(path, catalog, problems, args.gpu, args.tp, args.pp, args.dtype, args.model,
                                  args.max_batch)
        else:
            ms += read_measurements_csv(path, catalog, problems)
    if problems:
        raise InputError(problems)
    return ms


def _load(m: Measurement) -> str | int:
    """A row's load: its concurrency, or ``max`` (``max≤N`` under an engine cap of N sequences)."""
    if m.concurrency is not None:
        return m.concurrency
    return "max" if m.max_batch is None else f"max≤{m.max_batch}"


def run(args: argparse.Namespace) -> int:
    ms = _read(args)
    catalog = load_builtin()
    base = Knobs()
    fitted = fit(ms, catalog, base)
    before, after = errors(ms, catalog, base), errors(ms, catalog, fitted)
    if len(ms) <= LOO_MAX_ROWS:
        loo_what, group = "leave-one-row-out", (lambda m: m.where)
    else:
        loo_what, group = "leave-one-file-out", (lambda m: m.where.rsplit(":", 1)[0])
    loo = leave_one_out(ms, catalog, base, group) if len({group(m) for m in ms}) > 1 else []
    print(f"{len(ms)} measured row(s); model error (model − measured) / measured, before and after the fit")
    print(table(
        ["row", "model", "gpu", "tp×pp", "dtype", "in/out", "conc", "measured tok/s", "before", "after"],
        [[m.where, m.model, m.gpu, f"{m.tp}×{m.pp}", m.dtype, f"{m.prompt_tokens}/{m.output_tokens}",
          _load(m), f"{m.output_tok_s:,.1f}", f"{b:+.1%}", f"{a:+.1%}"]
         for m, b, a in zip(ms, before, after, strict=True)],
    ))
    print(f"median |error|: before {summary(before)[0]:.1%}, after {summary(after)[0]:.1%}")
    if loo:
        print(f"{loo_what} (fitted without it, tested on it): median |error| {summary([e for _, e in loo])[0]:.1%}")
    else:
        print("leave-one-out: needs at least two rows (or files)")
    fams = sorted({family_of(m.gpu) for m in ms})
    old = {f.name: f for f in base.families}
    new = {f.name: f for f in fitted.families}
    rows_of = {f: sum(1 for m in ms if family_of(m.gpu) == f) for f in fams}
    print(table(
        ["family", "rows", "bw_eff", "compute_eff", "fitted"],
        [[f, rows_of[f], f"{old[f].bw_eff:.2f} → {new[f].bw_eff:.3f}" if f in old else f"{new[f].bw_eff:.3f}",
          f"{old[f].compute_eff:.2f} → {new[f].compute_eff:.3f}" if f in old else f"{new[f].compute_eff:.3f}",
          "both" if rows_of[f] >= MIN_ROWS_TWO_KNOBS else "one common scale (few rows)"] for f in fams],
    ))
    write_atomic(args.output, calibration_toml(fitted, fams, len(ms),
                                               note="from " + ", ".join(str(p) for p in args.measurements)))
    print(f"wrote {args.output} (apply it with perf.calibration = \"{args.output.name}\")")
    return 0
