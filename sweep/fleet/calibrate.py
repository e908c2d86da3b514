"""Fitting the performance model's family knobs to measured throughput (SPEC §4.3).

A :class:`Measurement` is one measured replica: model, GPU, TP/PP, dtype, prompt/output tokens, the
load (a fixed concurrency, or ``None`` = maximum load) and the output tokens/s of the whole replica.
They come from the CSV form (:func:`read_measurements_csv`) or from vLLM's ``benchmark_serving.py
--save-result`` JSON (:func:`read_vllm_json`). :func:`fit` adjusts each GPU family's sustained fractions
(:class:`sweep.fleet.perf.Family`) to minimise the summed |log error| (a median-seeking, outlier-robust loss);
:func:`write_calibration` stores them as TOML, which ``perf.calibration`` applies
(:func:`apply_calibration_file`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from sweep import vocab
from sweep.errors import Problem
from sweep.fleet.perf import MAX_LOAD_BATCH, Knobs, Workload, estimate, family_of
from sweep.inputs.calibration import Family, read_calibration  # noqa: F401  (re-exported)
from sweep.inputs.catalog import Catalog
from sweep.inputs.csvfile import parse_csv

DTYPES = {**{d: d for d in vocab.DTYPES}, "fp16": "bf16", "float16": "bf16", "bfloat16": "bf16", "nvfp4": "fp4"}
CSV_COLUMNS = ("model", "gpu", "tp", "pp", "dtype", "prompt_tokens", "output_tokens", "concurrency", "output_tok_s")
MIN_ROWS_TWO_KNOBS = 4  # a family with fewer measured rows gets one common scale on both fractions
BOUNDS = {"bw_eff": (0.15, 1.0), "compute_eff": (0.03, 1.0)}


@dataclass(frozen=True)
class Measurement:
    """One measured replica; ``concurrency`` None = maximum load; ``output_tok_s`` for the whole replica."""

    model: str
    gpu: str
    tp: int
    pp: int
    dtype: str
    prompt_tokens: int
    output_tokens: int
    concurrency: int | None
    output_tok_s: float
    source: str = ""  # a label for leave-one-source-out
    where: str = ""  # file:row, for messages
    max_batch: int | None = None  # the engine's cap on running sequences (vLLM --max-num-seqs), if known


# --------------------------------------------------------------------------------------------- reading


def _int(v: str, what: str, lo: int = 1) -> int:
    try:
        x = int(str(v).strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got '{v}'") from None
    if x < lo:
        raise ValueError(f"{what} must be at least {lo}, got {x}")
    return x


def _check(m: Measurement, catalog: Catalog) -> None:
    """Raise ValueError naming the first thing wrong with a measurement against the catalog."""
    if m.model not in catalog.models:
        raise ValueError(f"unknown model '{m.model}' (known: {', '.join(sorted(catalog.models))})")
    if m.gpu not in catalog.gpus:
        raise ValueError(f"unknown gpu '{m.gpu}' (known: {', '.join(sorted(catalog.gpus))})")
    if m.dtype not in DTYPES:
        raise ValueError(f"unknown dtype '{m.dtype}' (one of {', '.join(sorted(DTYPES))})")
    if not (m.output_tok_s > 0 and math.isfinite(m.output_tok_s)):
        raise ValueError(f"output_tok_s must be a positive number, got {m.output_tok_s}")


def _row_measurement(r: dict[str, str], source: str, where: str) -> Measurement:
    missing = [c for c in CSV_COLUMNS if not (r.get(c) or "").strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    conc = r["concurrency"].strip().lower()
    try:
        tok_s = float(r["output_tok_s"])
    except ValueError:
        raise ValueError(f"output_tok_s must be a number, got '{r['output_tok_s']}'") from None
    return Measurement(
        model=r["model"].strip(), gpu=r["gpu"].strip(), tp=_int(r["tp"], "tp"), pp=_int(r["pp"], "pp"),
        dtype=r["dtype"].strip().lower(), prompt_tokens=_int(r["prompt_tokens"], "prompt_tokens"),
        output_tokens=_int(r["output_tokens"], "output_tokens"),
        concurrency=None if conc in ("max", "inf", "max load") else _int(conc, "concurrency"),
        output_tok_s=tok_s, source=(r.get("source_id") or r.get("source") or source).strip(), where=where,
        max_batch=_int(r["max_batch"], "max_batch") if (r.get("max_batch") or "").strip() else None)


def read_measurements_csv(path: Path, catalog: Catalog, problems: list[Problem]) -> list[Measurement]:
    """Rows of a measurements CSV (columns :data:`CSV_COLUMNS`, extra columns ignored; ``#`` lines are
    comments); every bad row adds one problem ``<file>:<row>``."""
    out: list[Measurement] = []
    try:
        text = path.read_text()
    except OSError as e:
        problems.append(Problem(str(path), f"cannot read: {e.strerror or e}"))
        return out
    table = parse_csv(text, path)
    absent = [c for c in CSV_COLUMNS if c not in table.header]
    if absent:
        problems.append(Problem(str(path), f"missing column(s) {', '.join(absent)}"))
        return out
    for i, r in table.records():
        where = table.where(i)
        try:
            m = _row_measurement(r, path.name, where)
            _check(m, catalog)
        except ValueError as e:
            problems.append(Problem(where, str(e)))
            continue
        out.append(m)
    if not out and not problems:
        problems.append(Problem(str(path), "no data rows"))
    return out


def read_vllm_json(path: Path, catalog: Catalog, problems: list[Problem], gpu: str | None = None,
                   tp: int | None = None, pp: int | None = None, dtype: str | None = None,
                   model: str | None = None, max_batch: int | None = None) -> list[Measurement]:
    """One measurement from vLLM's ``benchmark_serving.py --save-result`` JSON.

    Fields read: ``output_throughput`` (output tokens/s), ``completed``, ``total_input_tokens`` and
    ``total_output_tokens`` (mean lengths), ``max_concurrency`` (None or absent = maximum load) and the
    model from ``model_id``. GPU, TP, PP and dtype come from the arguments, else from the file's
    metadata (``--metadata gpu=H100-SXM tp=2 pp=1 dtype=fp8``, saved as top-level keys); the model may
    be given to map a Hugging Face id onto a catalog name. ``max_batch`` (else metadata ``max_batch``) is the
    server's ``--max-num-seqs`` for a maximum-load run.
    """
    where = str(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        problems.append(Problem(where, f"cannot read: {e.strerror or e}"))
        return []
    except json.JSONDecodeError as e:
        problems.append(Problem(where, f"not JSON: {e.msg} at line {e.lineno}"))
        return []
    if not isinstance(data, dict):
        problems.append(Problem(where, "expected a JSON object (benchmark_serving.py --save-result)"))
        return []
    try:
        for k in ("output_throughput", "completed", "total_input_tokens", "total_output_tokens"):
            if k not in data:
                raise ValueError(f"missing '{k}' (not a benchmark_serving.py --save-result file?)")
        given = {"gpu": gpu, "tp": tp, "pp": pp if pp is not None else data.get("pp", 1), "dtype": dtype}
        for k in ("gpu", "tp", "dtype"):
            if given[k] is None:
                given[k] = data.get(k)
            if given[k] in (None, ""):
                raise ValueError(f"no {k}: give --{k} or save it in the file's metadata ({k}=...)")
        done = _int(data["completed"], "completed")
        name = model or _catalog_model(str(data.get("model_id", "")), catalog)
        conc = data.get("max_concurrency")
        cap = data.get("max_batch") if max_batch is None else max_batch
        m = Measurement(
            model=name, gpu=str(given["gpu"]), tp=_int(given["tp"], "tp"), pp=_int(given["pp"], "pp"),
            dtype=str(given["dtype"]).lower(),
            prompt_tokens=max(1, round(float(data["total_input_tokens"]) / done)),
            output_tokens=max(1, round(float(data["total_output_tokens"]) / done)),
            concurrency=None if conc in (None, "", "inf") else _int(conc, "max_concurrency"),
            output_tok_s=float(data["output_throughput"]), source=path.name, where=where,
            max_batch=None if cap in (None, "") else _int(cap, "max_batch"))
        _check(m, catalog)
    except (ValueError, TypeError) as e:
        problems.append(Problem(where, str(e)))
        return []
    return [m]


def _catalog_model(model_id: str, catalog: Catalog) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' → 'llama-3.1-8b' when one catalog name is a prefix of it."""
    if model_id in catalog.models:
        return model_id
    tail = model_id.rsplit("/", 1)[-1].lower().replace("meta-llama-", "llama-").replace("_", "-")
    hits = [m for m in catalog.models if tail.startswith(m.lower())]
    if not hits:
        raise ValueError(f"model_id '{model_id}' matches no catalog model: give --model")
    return max(hits, key=len)


# --------------------------------------------------------------------------------------------- model


def predict_tok_s(m: Measurement, catalog: Catalog, knobs: Knobs) -> float:
    """The model's output tokens/s for a measurement's layout and load (0 if the model drops it)."""
    wl = Workload(m.prompt_tokens, m.output_tokens, 0.0, DTYPES[m.dtype])
    model, gpu = catalog.models[m.model], catalog.gpus[m.gpu]
    if m.concurrency is None:  # as many sequences as memory holds, up to the engine's cap when it is known
        est = estimate(model, gpu, m.tp, m.pp, wl, replace(knobs, max_batch=m.max_batch or MAX_LOAD_BATCH))
    else:  # the engine's cap, when known, bounds a fixed concurrency too
        est = estimate(model, gpu, m.tp, m.pp, wl, knobs, batch=min(m.concurrency, m.max_batch or m.concurrency))
    return est.throughput_tok_s


def errors(ms: Sequence[Measurement], catalog: Catalog, knobs: Knobs) -> list[float]:
    """Signed relative errors (model − measured) / measured, one per measurement (−1 = dropped)."""
    return [predict_tok_s(m, catalog, knobs) / m.output_tok_s - 1 for m in ms]


def summary(errs: Sequence[float]) -> tuple[float, float]:
    """(median, p90) of |error|."""
    a = sorted(abs(e) for e in errs)
    if not a:
        return 0.0, 0.0
    return statistics.median(a), a[min(len(a) - 1, math.ceil(0.9 * len(a)) - 1)]


# --------------------------------------------------------------------------------------------- fitting


def _loss(ms: Sequence[Measurement], catalog: Catalog, knobs: Knobs) -> float:
    total = 0.0
    for m in ms:
        p = predict_tok_s(m, catalog, knobs)
        total += abs(math.log(p / m.output_tok_s)) if p > 0 else 10.0
    return total


def _golden(f: Callable[[float], float], lo: float, hi: float, x0: float, iters: int = 18) -> float:
    """Minimise f on [lo, hi] in log space (golden section), never returning worse than x0."""
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(math.exp(d))
    best = math.exp(c) if fc < fd else math.exp(d)
    return best if min(fc, fd) < f(x0) else x0


def fit_family(ms: Sequence[Measurement], catalog: Catalog, knobs: Knobs, fam: Family, sweeps: int = 3) -> Family:
    """One family's fractions fitted to its measurements (see :data:`MIN_ROWS_TWO_KNOBS`)."""
    if not ms:
        return fam

    def loss_of(f: Family) -> float:
        return _loss(ms, catalog, knobs.with_family(f))

    if len(ms) < MIN_ROWS_TWO_KNOBS:  # one common scale: the data cannot separate bandwidth from compute
        top = min(1.0 / fam.bw_eff, 1.0 / fam.compute_eff)
        s = _golden(lambda s: loss_of(replace(fam, bw_eff=fam.bw_eff * s, compute_eff=fam.compute_eff * s)),
                    0.2, top, 1.0)
        return replace(fam, bw_eff=round(fam.bw_eff * s, 4), compute_eff=round(fam.compute_eff * s, 4))
    for _ in range(sweeps):  # all-reduce latency stays a physical prior: rows cannot separate it from TP loss
        for name in ("bw_eff", "compute_eff"):
            lo, hi = BOUNDS[name]
            x = _golden(lambda v, n=name, f=fam: loss_of(replace(f, **{n: v})), lo, hi, getattr(fam, name))
            fam = replace(fam, **{name: round(x, 4)})
    return fam


GLOBAL_BOUNDS = {"tp_loss": (0.001, 0.6), "seq_step_us": (0.01, 50.0), "pp_loss": (0.001, 0.5)}


def fit(ms: Sequence[Measurement], catalog: Catalog, knobs: Knobs, fit_globals: bool = False) -> Knobs:
    """Knobs with every family that has measurements refitted (families without keep their values);
    with ``fit_globals`` also the knobs shared by all families (:data:`GLOBAL_BOUNDS`), alternately."""
    if fit_globals:
        for _ in range(3):
            knobs = fit(ms, catalog, knobs)
            for name, (lo, hi) in GLOBAL_BOUNDS.items():
                x = _golden(lambda v, n=name, k=knobs: _loss(ms, catalog, fit(ms, catalog, replace(k, **{n: v}))),
                            lo, hi, max(lo, getattr(knobs, name)), iters=12)
                knobs = replace(knobs, **{name: round(x, 4)})
    by_family: dict[str, list[Measurement]] = {}
    for m in ms:
        by_family.setdefault(family_of(m.gpu), []).append(m)
    for name, rows in sorted(by_family.items()):
        fam = next((f for f in knobs.families if f.name == name), None) or knobs.family(catalog.gpus[rows[0].gpu])
        knobs = knobs.with_family(fit_family(rows, catalog, knobs, replace(fam, name=name)))
    return knobs


def leave_one_out(ms: Sequence[Measurement], catalog: Catalog, knobs: Knobs,
                  group: Callable[[Measurement], str]) -> list[tuple[Measurement, float]]:
    """For every group (a source, or a single row): fit without it, predict it. (measurement, error) pairs.

    A family left with no training row falls back to the 'default' (prior) fractions, so a held-out
    group never sees values fitted to itself.
    """
    out: list[tuple[Measurement, float]] = []
    groups = sorted({group(m) for m in ms})
    prior = next(f for f in knobs.families if f.name == "default")
    for g in groups:
        train = [m for m in ms if group(m) != g]
        test = [m for m in ms if group(m) == g]
        start = knobs
        for name in {family_of(m.gpu) for m in test} - {family_of(m.gpu) for m in train}:
            start = start.with_family(replace(prior, name=name))
        fitted = fit(train, catalog, start)
        out.extend(zip(test, errors(test, catalog, fitted), strict=True))
    return out


# --------------------------------------------------------------------------------------------- files


def calibration_toml(knobs: Knobs, fitted: Iterable[str], n_rows: int, note: str = "") -> str:
    """TOML text of a calibration: one ``[families.<name>]`` table per fitted family."""
    lines = ["# sweep calibration: sustained fractions of datasheet peaks per GPU family (sweep calibrate)",
             f"# fitted to {n_rows} measured row(s){'; ' + note if note else ''}", ""]
    by_name = {f.name: f for f in knobs.families}
    for name in sorted(fitted):
        f = by_name[name]
        lines += [f'[families."{name}"]', f"bw_eff = {f.bw_eff:.4f}", f"compute_eff = {f.compute_eff:.4f}",
                  f"allreduce_us = {f.allreduce_us:.2f}", ""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------- error bands


def shipped_measurements_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("sweep") / "data" / "measurements.csv"))


MIN_BAND_ROWS = 3  # a family with fewer published rows gets no band: one or two rows say nothing of the spread


@lru_cache(maxsize=1)
def family_error_bands() -> dict[str, tuple[float, float, int]]:
    """Per GPU family with at least :data:`MIN_BAND_ROWS` published rows: (low, high, rows) of the built-in
    model's signed error in % on ``sweep/data/measurements.csv`` — the 10th and 90th percentiles (min and
    max under 10 rows)."""
    from sweep.inputs.catalog import load_builtin

    catalog = load_builtin()
    problems: list[Problem] = []
    ms = read_measurements_csv(shipped_measurements_path(), catalog, problems)
    by: dict[str, list[float]] = {}
    for m, e in zip(ms, errors(ms, catalog, Knobs()), strict=True):
        by.setdefault(family_of(m.gpu), []).append(100 * e)
    out = {}
    for fam, xs in by.items():
        xs.sort()
        if len(xs) < MIN_BAND_ROWS:
            continue
        if len(xs) >= 10:
            q = statistics.quantiles(xs, n=10, method="inclusive")
            out[fam] = (round(q[0], 1), round(q[-1], 1), len(xs))
        else:
            out[fam] = (round(xs[0], 1), round(xs[-1], 1), len(xs))
    return out


def error_band_pct(gpu: str) -> list[float] | None:
    """The expected error band [low, high] in % of a layout on ``gpu`` (a mixed pipeline's 'A+B': the
    union of its GPUs' bands), or None when a family has fewer than :data:`MIN_BAND_ROWS` published rows."""
    bands = family_error_bands()
    lo, hi = math.inf, -math.inf
    for name in gpu.split("+"):
        band = bands.get(family_of(name))
        if band is None:
            return None
        lo, hi = min(lo, band[0]), max(hi, band[1])
    return [lo, hi]
