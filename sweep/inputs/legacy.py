"""The original solver's configuration folders (SPEC §4.1) as a scenario: ``sweep solve path/to/folder``.

A folder holds:

- ``config.csv`` — ``parameter,value`` rows (``#`` comments). The original keys and what they become:

  ==========================  =================================================================
  model_name                  the model's name; alone (no architecture keys) it must be a built-in
  num_decoder_layers          layers
  d_model                     hidden size (head_dim = d_model / num_attention_heads)
  d_hidden                    FFN size: params = layers·(2·d² + 2·d·kv_heads·head_dim + 3·d·d_hidden)
                              (+ 2·vocab_size·d), used when layer_weight_memory_gb is absent
  num_attention_heads         heads; KV heads = heads (the original has no GQA; ``num_kv_heads`` or
                              ``num_key_value_heads`` may say otherwise)
  layer_weight_memory_gb      params = layer_weight_memory_gb × layers / bytes_per_element
  bytes_per_element           weight and KV bytes; 1 → ``perf.dtype = "fp8"``, 0.5 → ``"int4"``
  sequence_length             prompt + output tokens: output = min(256, sequence_length // 2) unless
                              ``workload.output_tokens`` is given, the rest is the prompt
  min_batch_size              ``perf.min_batch``;  max_batch_size → ``perf.max_batch``
  max_pipeline_stages         ``perf.max_stages``, and ``perf.pp`` = 1 … that many
  max_hourly_cost             ``limits.budget``;  time_limit_seconds → ``solver.time_limit_s``
  max_cost_per_token          ``methods.iterative.target_cpt``
  cost_throughput_weight      ``methods.weighted.weight``
  optimality_gap              ignored with a warning: exact methods solve with a zero gap
  ==========================  =================================================================

  Any scenario key (``workload.tpot_slo_ms``, ``perf.tp``, …) may also be given; it wins over the
  mapped ones. Other keys are warned about on stderr (``warning: <file>: …``) and ignored.
- ``gpu_pool.csv`` — ``gpu_type,count,memory_gb,cost_per_hour`` with a *per-GPU* price, optionally
  ``gpus_per_node`` (default 1). Each row becomes one offering named by its ``gpu_type``: ``count``
  GPUs rentable one node at a time, a node being ``gpus_per_node`` GPUs at ``gpus_per_node ×
  cost_per_hour``. With the default of 1 every GPU is rented alone (the original's per-GPU pricing),
  so TP stays 1 — TP needs GPUs that share a node, which the original format does not say.
- ``network_bandwidth.csv`` (optional) — a GB/s matrix whose header and first column name ``gpu_0`` …
  ``gpu_N-1`` in pool order: either one per pool row (GPU type) or one per GPU (rows expanded by
  ``count``). Between two types the slowest connected pair counts (0 = not connected); within one
  type it becomes the offering's ``net_gbps`` (between stages on different nodes); between types,
  ``perf.link_gbps`` entries.

GPU names map to built-in rows (see :data:`GPU_NAMES`), the variant chosen by the nearest memory;
a ``memory_gb`` that still differs is used as given, with a warning. L20 is not built in: it is the
L40S row (same AD102 board: 48 GB GDDR6, 864 GB/s, PCIe Gen4) with L20's export-capped tensor
throughput (119.5 BF16 / 239 FP8 dense TFLOPS — figures as commonly reported, uncertain).

The scenario is built in memory (nothing is written) with ``perf.mixed = true`` and no cap on mixed
pipelines (pools are small); its ``scenario_id`` covers the folder's files by digest.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sweep.errors import InputError, Problems
from sweep.inputs.catalog import (
    Catalog,
    Gpu,
    Model,
    Offering,
    builtin_path,
    dollars_to_units,
    file_digest,
    load_gpus,
    load_models,
)
from sweep.inputs.csvfile import read_csv
from sweep.inputs.scenario import Scenario, read_config_csv
from sweep.inputs.schema import SCHEMA, check_params

CONFIG, POOL, NETWORK = "config.csv", "gpu_pool.csv", "network_bandwidth.csv"

LEGACY_KEYS = (
    "model_name", "num_decoder_layers", "d_model", "d_hidden", "num_attention_heads", "num_kv_heads",
    "num_key_value_heads", "vocab_size", "layer_weight_memory_gb", "bytes_per_element", "sequence_length",
    "min_batch_size", "max_batch_size", "max_pipeline_stages", "optimality_gap",
)

# normalised gpu_type -> built-in rows it may mean (the nearest memory wins)
GPU_NAMES: dict[str, tuple[str, ...]] = {
    "A100": ("A100-40GB", "A100-80GB"),
    "A100SXM": ("A100-40GB", "A100-80GB"),
    "A100PCIE": ("A100-80GB-PCIe",),
    "V100": ("V100-16GB", "V100-32GB"),
    "V100SXM2": ("V100-16GB", "V100-32GB"),
    "V100PCIE": ("V100-16GB-PCIe",),
    "H100": ("H100-SXM",),
    "H100SXM": ("H100-SXM",),
    "H100PCIE": ("H100-PCIe",),
    "L20": ("L40S",),  # derived, see the module docstring
    "A10": ("A10",),
    "A10G": ("A10G",),
    "T4": ("T4",),
    "L4": ("L4",),
    "L40S": ("L40S",),
    "H200": ("H200",),
    "B200": ("B200",),
    "MI300X": ("MI300X",),
}
L20_TFLOPS = (119.5, 239.0)  # dense BF16, FP8 (NVIDIA L20 product brief, as commonly reported)
POOL_COLUMNS = ("gpu_type", "count", "memory_gb", "cost_per_hour")
# original key -> the scenario key it sets (for naming the original key in problems)
_MAPPED = (("min_batch_size", "perf.min_batch"), ("max_batch_size", "perf.max_batch"),
           ("max_pipeline_stages", "perf.max_stages"), ("sequence_length", "workload.prompt_tokens"))


def _warn(where: str, what: str) -> None:
    print(f"warning: {where}: {what}", file=sys.stderr)


def _norm(name: str) -> str:
    n = name.upper().replace("NVIDIA", "").replace("TESLA", "")
    return "".join(ch for ch in n if ch.isalnum())


def _data_lines(path: Path, problems: Problems) -> list[tuple[int, list[str]]] | None:
    """(line number, stripped cells) of a CSV's non-blank, non-comment rows, the header first; None if
    unreadable or empty."""
    table = read_csv(path, problems)
    if table is None:
        return None
    return [(0, list(table.header)), *((lineno, [c.strip() for c in cells]) for lineno, cells in table.rows)]


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


# --------------------------------------------------------------------------- gpu_pool.csv


def map_gpu(gpu_type: str, memory_gb: float, gpus: dict[str, Gpu]) -> Gpu | None:
    """The built-in GPU a pool's ``gpu_type`` means (memory picks the variant), or None if unknown."""
    key = _norm(gpu_type)
    rows = GPU_NAMES.get(key)
    if rows is None:
        exact = {_norm(g): g for g in gpus}
        rows = (exact[key],) if key in exact else None
    if rows is None:
        return None
    base = gpus[min(rows, key=lambda g: abs(gpus[g].mem_gb - memory_gb))]
    if key == "L20":
        base = replace(base, gpu="L20", bf16_tflops=L20_TFLOPS[0], fp8_tflops=L20_TFLOPS[1],
                       source=f"L40S row with L20 dense tensor TFLOPS {L20_TFLOPS} (sweep.inputs.legacy)")
    return base


def read_pool(path: Path, gpus: dict[str, Gpu], problems: Problems) -> list[tuple[str, Gpu, int, float, int]]:
    """Pool rows as (gpu_type, Gpu, count, per-GPU $/h, gpus_per_node); problems name file:line."""
    rows = _data_lines(path, problems)
    if rows is None:
        return []
    (_, header), body = rows[0], rows[1:]
    missing = [c for c in POOL_COLUMNS if c not in header]
    for c in missing:
        problems.add(str(path), f"missing column '{c}' (expected {','.join(POOL_COLUMNS)}[,gpus_per_node])")
    for c in header:
        if c not in (*POOL_COLUMNS, "gpus_per_node"):
            _warn(str(path), f"unknown column '{c}' (ignored)")
    if missing:
        return []
    col = {c: header.index(c) for c in header}
    out: list[tuple[str, Gpu, int, float, int]] = []
    seen: set[str] = set()
    for lineno, cells in body:
        where = f"{path}:{lineno}"
        cells = cells + [""] * (len(header) - len(cells))
        name = cells[col["gpu_type"]]
        count, mem, price = (_number(cells[col[c]]) for c in ("count", "memory_gb", "cost_per_hour"))
        gpn_text = cells[col["gpus_per_node"]] if "gpus_per_node" in col else ""
        gpn = _number(gpn_text) if gpn_text else 1.0
        bad = False
        if not name:
            problems.add(where, "'gpu_type' is empty")
            bad = True
        elif any(ch in name for ch in "|="):
            problems.add(where, f"gpu_type '{name}' may not contain '|' or '='")
            bad = True
        elif name in seen:
            problems.add(where, f"duplicate gpu_type '{name}' (one row per GPU type)")
            bad = True
        for label, v, whole in (("count", count, True), ("memory_gb", mem, False),
                                ("cost_per_hour", price, False), ("gpus_per_node", gpn, True)):
            if v is None or v <= 0 or (whole and v != int(v)):
                raw = cells[col[label]] if label in col else ""
                problems.add(where, f"'{label}' must be {'a whole number' if whole else 'a number'} > 0, got '{raw}'")
                bad = True
        if bad:
            continue
        assert count is not None and mem is not None and price is not None and gpn is not None
        if int(count) % int(gpn):
            problems.add(where, f"count {int(count)} is not a multiple of gpus_per_node {int(gpn)}")
            continue
        gpu = map_gpu(name, mem, gpus)
        if gpu is None:
            known = sorted(set(GPU_NAMES) | set(gpus))
            problems.add(where, f"unknown gpu_type '{name}' (known: {', '.join(known)})")
            continue
        if abs(gpu.mem_gb - mem) > 0.5:
            _warn(where, f"{name}: memory_gb {mem:g} differs from the built-in {gpu.gpu}'s {gpu.mem_gb:g} GB; "
                         f"using {mem:g} GB")
            gpu = replace(gpu, gpu=f"{gpu.gpu}@{mem:g}GB", mem_gb=mem, mem_mib=None)  # no reported total for it
        seen.add(name)
        out.append((name, gpu, int(count), price, int(gpn)))
    if not out and not problems:
        problems.add(str(path), "no GPU rows")
    return out


# --------------------------------------------------------------------------- network_bandwidth.csv


def read_network(path: Path, pool: list[tuple[str, Gpu, int, float, int]], problems: Problems
                 ) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """(GB/s between nodes of one type, GB/s between two types) from the matrix; see the module docstring."""
    rows = _data_lines(path, problems)
    if rows is None or not pool:
        return {}, {}
    (_, header), body = rows[0], rows[1:]
    names = header[1:]
    n = len(names)
    per_gpu = [name for name, _, count, _, _ in pool for _ in range(count)]
    per_type = [name for name, *_ in pool]
    if names != [f"gpu_{i}" for i in range(n)]:
        problems.add(str(path), f"header must name gpu_0 … gpu_{n - 1} after its first cell, got {','.join(names)}")
        return {}, {}
    if n == len(per_type):
        owner = per_type
    elif n == len(per_gpu):
        owner = per_gpu
    else:
        problems.add(str(path), f"{n} columns, expected one per GPU type ({len(per_type)}) or one per GPU "
                                f"({len(per_gpu)}) of gpu_pool.csv, in pool order")
        return {}, {}
    matrix: list[list[float]] = []
    for i, (lineno, cells) in enumerate(body):
        where = f"{path}:{lineno}"
        if i >= n:
            problems.add(where, f"more rows than the {n} columns")
            break
        if cells[0] != f"gpu_{i}":
            problems.add(where, f"row must start with gpu_{i}, got '{cells[0]}'")
        vals = [_number(c) for c in cells[1:]]
        if len(vals) != n or any(v is None or v < 0 for v in vals):
            problems.add(where, f"expected {n} bandwidths in GB/s (numbers >= 0)")
            continue
        matrix.append([float(v) for v in vals])  # type: ignore[arg-type]
    if len(body) < n:
        problems.add(str(path), f"{len(body)} rows, expected {n}")
    if problems or len(matrix) != n:
        return {}, {}
    pairs: dict[tuple[str, str], list[float]] = {}
    for i in range(n):
        for j in range(n):
            if i == j and owner is per_gpu:
                continue  # a GPU with itself
            a, b = sorted((owner[i], owner[j]))
            pairs.setdefault((a, b), []).append(matrix[i][j])

    def slowest(vals: list[float]) -> float:
        connected = [v for v in vals if v > 0]
        return min(connected) if connected else 0.0

    within = {a: slowest(v) for (a, b), v in pairs.items() if a == b and slowest(v) > 0}
    between = {(a, b): slowest(v) for (a, b), v in pairs.items() if a != b}
    return within, between


# --------------------------------------------------------------------------- config.csv


def _model(cfg: dict[str, Any], where: str, name: str, builtin: dict[str, Model], problems: Problems) -> Model | None:
    def num(key: str, whole: bool, required: bool = True) -> float | None:
        if key not in cfg:
            if required:
                problems.add(f"{where}: {key}", "missing (needed to describe the model)")
            return None
        v = cfg[key]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and (not whole or v == int(v))
        if not ok:
            problems.add(f"{where}: {key}", f"must be {'a whole number' if whole else 'a number'} > 0, got {v!r}")
            return None
        return v

    bpe = num("bytes_per_element", False, required=False)
    arch = ("num_decoder_layers", "d_model", "num_attention_heads")
    if not any(k in cfg for k in arch):
        if name not in builtin:
            problems.add(f"{where}: model_name", f"'{name}' is not a built-in model (known: {', '.join(sorted(builtin))}); "
                         "or describe it with num_decoder_layers, d_model, num_attention_heads and "
                         "layer_weight_memory_gb or d_hidden")
            return None
        m = builtin[name]
        return replace(m, weight_bytes=float(bpe), kv_bytes=float(bpe)) if bpe else m
    layers, d, heads = (num(k, True) for k in arch)
    kv_key = next((k for k in ("num_kv_heads", "num_key_value_heads") if k in cfg), None)
    kv_heads = num(kv_key, True) if kv_key else heads
    lw = num("layer_weight_memory_gb", False, required=False)
    ffn = num("d_hidden", True, required=False)
    vocab = num("vocab_size", True, required=False) or 0
    if layers is None or d is None or heads is None or kv_heads is None:
        return None
    layers, d, heads, kv_heads = int(layers), int(d), int(heads), int(kv_heads)
    if d % heads:
        problems.add(f"{where}: d_model", f"{d} is not a multiple of num_attention_heads ({heads})")
        return None
    if heads % kv_heads:
        problems.add(f"{where}: {kv_key}", f"{kv_heads} does not divide num_attention_heads ({heads})")
        return None
    head_dim = d // heads
    wb = float(bpe or 2.0)
    if lw is not None:
        params_b = lw * layers / wb
    elif ffn is not None:
        per_layer = 2 * d * d + 2 * d * kv_heads * head_dim + 3 * d * ffn
        params_b = (layers * per_layer + 2 * vocab * d) / 1e9
    else:
        problems.add(f"{where}: layer_weight_memory_gb", "missing: give it (or d_hidden) to size the weights")
        return None
    return Model(name, params_b, params_b, layers, d, heads, kv_heads, head_dim, wb, wb)


def _translate(cfg: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    """The original's keys as scenario keys (explicit scenario keys in the file win)."""
    raw: dict[str, Any] = {}
    bpe = cfg.get("bytes_per_element")
    if bpe in (1, 1.0):
        raw["perf.dtype"] = "fp8"
    elif bpe == 0.5:
        raw["perf.dtype"] = "int4"
    for src, dst in (("min_batch_size", "perf.min_batch"), ("max_batch_size", "perf.max_batch")):
        if src in cfg:
            raw[dst] = cfg[src]
    if "max_pipeline_stages" in cfg:
        n = cfg["max_pipeline_stages"]
        raw["perf.max_stages"] = n
        if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 64:
            raw["perf.pp"] = list(range(1, n + 1))
    if "sequence_length" in cfg:
        seq = cfg["sequence_length"]
        if not (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 2):
            problems.add(f"{where}: sequence_length", f"must be a whole number >= 2, got {seq!r}")
        elif "workload.prompt_tokens" in cfg:
            problems.add(f"{where}: sequence_length", "give sequence_length or workload.prompt_tokens, not both")
        else:
            out = cfg.get("workload.output_tokens", min(256, seq // 2))
            if isinstance(out, int) and 0 < out < seq:
                raw["workload.output_tokens"] = out
                raw["workload.prompt_tokens"] = seq - out
            else:
                problems.add(f"{where}: workload.output_tokens", f"must be a whole number in [1, {seq - 1}] "
                             f"(below sequence_length), got {out!r}")
    gap = cfg.get("optimality_gap")
    if gap:
        _warn(where, f"optimality_gap = {gap} ignored: exact methods solve with a zero relative gap")
    return raw


# --------------------------------------------------------------------------- the folder


def load_config_folder(folder: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario from an original configuration folder; raises InputError naming the file of each problem.

    ``overrides`` are scenario keys applied last (e.g. ``limits.budget`` from ``--budget``).
    """
    root = Path(folder)
    problems = Problems()
    for name in (CONFIG, POOL):
        if not (root / name).is_file():
            problems.add(str(root / name), f"missing: a configuration folder needs {CONFIG} and {POOL}")
    problems.raise_if_any()
    cfg_path, pool_path, net_path = root / CONFIG, root / POOL, root / NETWORK
    cfg = read_config_csv(cfg_path, problems)
    where = str(cfg_path)
    for key in cfg:
        if key not in LEGACY_KEYS and key not in SCHEMA:
            _warn(where, f"unknown key '{key}' (ignored)")
    gpus_problems = Problems()
    gpus = load_gpus(builtin_path("gpus"), gpus_problems)
    builtin_models = load_models(builtin_path("models"), gpus_problems)
    gpus_problems.raise_if_any()  # the package's own data: broken only if the install is

    name = str(cfg.get("model_name") or root.resolve().name)
    model = _model(cfg, where, name, builtin_models, problems)
    generated = any(k in cfg for k in ("num_decoder_layers", "d_model", "num_attention_heads"))
    raw = _translate(cfg, where, problems)
    raw.update({k: v for k, v in cfg.items() if k in SCHEMA})
    raw.update({
        "model": name,
        "catalog.gpus": "builtin",
        "catalog.offerings": str(pool_path),
        "catalog.models": str(cfg_path) if generated else "builtin",
    })
    raw.setdefault("perf.mixed", True)
    raw.setdefault("perf.max_mixed", 0)
    pool = read_pool(pool_path, gpus, problems)
    within: dict[str, float] = {}
    between: dict[tuple[str, str], float] = {}
    digests = {"legacy.config": file_digest(cfg_path), "legacy.gpu_pool": file_digest(pool_path),
               "catalog.gpus": file_digest(builtin_path("gpus"))}
    if not generated:
        digests["catalog.models"] = file_digest(builtin_path("models"))
    if net_path.exists():
        digests["legacy.network_bandwidth"] = file_digest(net_path)
        within, between = read_network(net_path, pool, problems)
    if between and "perf.link_gbps" not in raw:
        raw["perf.link_gbps"] = [f"{a}|{b}={v:g}" for (a, b), v in sorted(between.items())]
    if pool:  # TP beyond the largest node only adds "does not fit a node" rows
        raw.setdefault("perf.tp", [t for t in (1, 2, 4, 8) if t <= max(gpn for *_, gpn in pool)])
    raw.update(overrides or {})
    params = _checked_params(raw, cfg, where, problems)
    problems.raise_if_any()
    assert model is not None  # a model that could not be built is a problem raised above
    catalog, offerings = _pool_catalog(pool, gpus, model, within, pool_path)
    _apply_catalog_keys(params, catalog, offerings, where, problems)
    problems.raise_if_any()
    return Scenario(params, str(root), catalog, model, offerings, (), digests)


def _checked_params(raw: dict[str, Any], cfg: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    """The scenario's values, validated; a problem with a mapped key names the key the user wrote."""
    if raw.get("perf.source", "roofline") != "roofline":
        problems.add(f"{where}: perf.source", "only 'roofline' for a configuration folder")
    checked = Problems()
    params = check_params(raw, where, checked)
    renamed = {f"{where}: {dst}": f"{where}: {src} ({dst})" for src, dst in _MAPPED if src in cfg and dst not in cfg}
    for p in checked.items:
        problems.add(renamed.get(p.where, p.where), p.what)
    return params


def _pool_catalog(pool: list[tuple[str, Gpu, int, float, int]], gpus: dict[str, Gpu], model: Model,
                  within: dict[str, float], pool_path: Path) -> tuple[Catalog, dict[str, Offering]]:
    """The pool's GPU types as offerings (one per type, per-node prices), in a catalog with the model."""
    offerings: dict[str, Offering] = {}
    for gpu_type, gpu, count, price, gpn in pool:
        gpus.setdefault(gpu.gpu, gpu)
        units = dollars_to_units(price * gpn)
        offerings[gpu_type] = Offering(gpu_type, "pool", gpu.gpu, gpn, units, units, count // gpn,
                                       as_of=str(pool_path), net_gbps=within.get(gpu_type, 12.5))
    return Catalog(gpus, dict(offerings), {model.model: model}), offerings


def _apply_catalog_keys(params: dict[str, Any], catalog: Catalog, offerings: dict[str, Offering], where: str,
                        problems: Problems) -> None:
    """``catalog.only`` and ``catalog.max_nodes`` applied to ``offerings`` (in place)."""
    only = params["catalog.only"]
    if only:
        for n in only:
            if n not in offerings and n not in {o.gpu for o in offerings.values()}:
                problems.add(f"{where}: catalog.only", f"unknown gpu or offering '{n}' (known: {', '.join(offerings)})")
        for k in [k for k, o in offerings.items() if not (k in only or o.gpu in only)]:
            del offerings[k]
    for n, nodes in params["catalog.max_nodes"].items():
        if n not in catalog.offerings:
            problems.add(f"{where}: catalog.max_nodes", f"unknown offering '{n}' (known: {', '.join(catalog.offerings)})")
        elif n in offerings:
            offerings[n] = replace(offerings[n], max_nodes=nodes)


__all__ = ["GPU_NAMES", "InputError", "load_config_folder", "map_gpu"]
