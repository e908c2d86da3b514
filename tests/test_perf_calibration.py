"""The roofline model against published measurements (``shared/data/published-throughput.csv``).

Every published row is re-estimated with the scenario defaults (``Knobs()``, the same as the
``perf.*`` defaults of ``sweep.scenario.SCHEMA``); the table of model vs published is printed, and the
median absolute error must stay at or under 25 %.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from sweep.catalog import load_builtin
from sweep.perf import Knobs, Workload, estimate
from sweep.scenario import SCHEMA

PUBLISHED = Path(__file__).resolve().parents[2] / "shared/data/published-throughput.csv"
MAX_MEDIAN_ERROR = 0.25

# published GPU names -> built-in catalog names (the SXM parts are the catalog's plain names)
GPU_NAMES = {
    "A100-SXM-80GB": "A100-80GB",
    "A100-SXM-40GB": "A100-40GB",
    "H100-SXM": "H100-SXM",
}
# published precision -> perf.dtype; fp16 has the bytes and (on these GPUs) the tensor FLOPS of bf16
DTYPES = {"fp16": "bf16", "bf16": "bf16", "fp8": "fp8"}
# "max load" is the engine's offline / maximum-throughput mode: the batch is bounded by memory only,
# so the engine limit on concurrent sequences is lifted far above what memory allows
MAX_LOAD_BATCH = 4096


def _rows() -> list[dict[str, str]]:
    if not PUBLISHED.exists():
        pytest.skip(f"published measurements not found at {PUBLISHED} (shared/ is expected beside the repo)")
    with PUBLISHED.open(newline="") as f:
        return list(csv.DictReader(f))


def _model_vs_published() -> list[dict]:
    cat = load_builtin()
    out = []
    for r in _rows():
        model = cat.models[r["model"]]
        gpu = cat.gpus[GPU_NAMES[r["gpu"]]]
        tp = int(r["tp"])
        pp = int(r["gpus"]) // tp
        wl = Workload(int(r["input_tokens"]), int(r["output_tokens"]), 0.0, DTYPES[r["precision"]])
        conc = r["concurrency"].strip()
        if conc == "max load":
            est = estimate(model, gpu, tp, pp, wl, Knobs(max_batch=MAX_LOAD_BATCH))
        else:  # "384 (static batch)" or a plain fixed concurrency: the batch is fixed
            est = estimate(model, gpu, tp, pp, wl, Knobs(), batch=int(conc.split()[0]))
        assert not est.reason, f"{r['model']} on {r['gpu']}: {est.reason}"
        published = float(r["output_tok_s"])
        out.append({"row": r, "model": est.throughput_tok_s, "batch": est.batch, "published": published,
                    "error": (est.throughput_tok_s - published) / published})
    return out


def _table(results: list[dict]) -> str:
    head = f"{'model':<14}{'gpu':<15}{'tp×pp':>6} {'dtype':<6}{'in/out':>10} {'concurrency':<19}" \
           f"{'batch':>6}{'published':>11}{'sweep':>9}{'error':>9}"
    lines = [head, "-" * len(head)]
    for x in results:
        r = x["row"]
        lines.append(
            f"{r['model']:<14}{r['gpu']:<15}{r['tp'] + '×' + str(int(r['gpus']) // int(r['tp'])):>6} "
            f"{r['precision']:<6}{r['input_tokens'] + '/' + r['output_tokens']:>10} {r['concurrency']:<19}"
            f"{x['batch']:>6}{x['published']:>11,.0f}{x['model']:>9,.0f}{x['error']:>+9.1%}")
    return "\n".join(lines)


def test_defaults_are_the_scenario_defaults():
    """``Knobs()`` (used below) is what a scenario gets when it sets no ``perf.*`` knob."""
    assert Knobs.from_params({k: v.default for k, v in SCHEMA.items()}) == Knobs()


def test_model_vs_published(capsys):
    results = _model_vs_published()
    errors = [abs(x["error"]) for x in results]
    median = statistics.median(errors)
    with capsys.disabled():  # shown with or without -s
        print(f"\n\nroofline model vs published throughput (output tokens/s per replica), "
              f"{len(results)} rows from {PUBLISHED.name}")
        print(_table(results))
        print(f"median absolute error {median:.1%}; largest {max(errors):.1%}\n")
    assert len(results) >= 5
    assert median <= MAX_MEDIAN_ERROR
