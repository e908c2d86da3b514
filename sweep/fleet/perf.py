"""The roofline performance model (SPEC §4): per-replica throughput of one (GPU, TP, PP) layout.

Everything is per *replica* (all ``tp·pp`` GPUs of one model copy) and in output tokens/s.

The model, per pipeline stage of ``tp`` GPUs holding ``layers`` of the model:

- **memory** (:func:`stage_memory`): weights per GPU (the layers' ``params · bytes · layers/L / tp``, plus the
  16-bit input embedding on the first stage and output head on the last); a layout is dropped
  only when the weights and ``overhead_gb`` of runtime do not fit the GPU's memory as software sees it
  (``Gpu.mem_bytes``: the reported MiB total where ``gpus.csv`` has one — an "80 GB" HBM part is 80 GiB).
  The KV cache may use ``mem_fraction`` of what is left (TensorRT-LLM's ``kv_cache_free_gpu_mem_fraction``; vLLM's
  ``gpu_memory_utilization`` leaves about the same), so a 70B fp8 model does run on one 80 GB GPU;
- **decode step** (:func:`stage_step_s`): the larger of the memory time (weights read once per step —
  for a mixture of experts only the experts the batch touches; on the last stage the whole output head —
  plus each sequence's KV cache, which grows with the context) at the family's *sustained* bandwidth,
  and the compute time (weight GEMMs of the active parameters plus attention FLOPs that grow with the
  context) at the family's sustained FLOPS; times ``1 + tp_loss·log2(tp)`` (smaller GEMMs and
  synchronisation as TP grows); plus two all-reduces per layer — ring over NVLink-class links, or over
  PCIe (a ``link_gbps`` under :data:`PCIE_BELOW_GBPS`) at a lower effective bandwidth and a higher latency;
- **prefill** (:func:`stage_prefill_s`): weight GEMMs and causal attention over the prompt at the
  family's sustained FLOPS, plus the prompt's all-reduces, amortised over the output tokens;
- **pipeline** (:func:`pipeline_estimate`): ``pp`` micro-batches in flight (fewer than ``pp`` leave
  bubbles), the busiest stage sets the pace (the last holds the head), a round ``1 + pp_loss·(pp − 1)`` times
  longer (stages waiting on each other's sends), plus stage-to-stage transfers.

Precisions (``perf.dtype``): 16-bit, ``fp8`` and ``fp4`` (NVFP4) weights on their own tensor cores where the GPU
has them (``gpus.csv``), else dequantised to 16-bit math like ``int4``; attention at fp8 for fp8 and fp4 models
(their checkpoints' KV caches are fp8), else at 16 bits.

*Sustained* fractions of the datasheet peaks are per GPU family (:data:`FAMILIES`, from
``sweep/data/perf_families.csv``): a few documented numbers per family, fitted to the published
measurements in ``sweep/data/measurements.csv`` (``tests/test_perf_calibration.py`` prints the error
per row and per family). The scenario's ``perf.bw_efficiency``, ``perf.compute_efficiency`` and
``perf.prefill_efficiency`` scale them (1 = as calibrated); ``perf.calibration`` replaces them with a
``sweep calibrate`` file's values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sweep.fleet.latency import ReplicaTiming
from sweep.inputs.calibration import Family
from sweep.inputs.catalog import Gpu, Model
from sweep.inputs.csvfile import parse_csv
from sweep.inputs.settings import DEFAULTS, PerfSettings, settings_of

# (bytes per weight, bytes per KV element); None = the model's own. fp4 is NVFP4: a 4-bit value plus one FP8 scale
# per 16 weights (4.5 bits), with an FP8 KV cache as NVIDIA's FP4 checkpoints have.
DTYPE_BYTES = {"bf16": None, "fp8": (1.0, 1.0), "int4": (0.5, 1.0), "fp4": (0.5625, 1.0)}
ACT_BYTES = 2.0  # activations exchanged by all-reduce and between stages stay 16-bit
PCIE_BELOW_GBPS = 200.0  # a GPU link slower than this is PCIe (no NVLink / Infinity Fabric)
NVLINK_AR_EFF = 0.40  # all-reduce bus bandwidth / link_gbps (total, both directions) on NVLink-class links
PCIE_AR_EFF = 0.30  # the same over PCIe (through host bridges; NCCL reaches ~20 GB/s on Gen4 x16 = 64)
PCIE_AR_US = 30.0  # fixed cost of one all-reduce over PCIe, µs
MAX_LOAD_BATCH = 4096  # "max load": the engine's own batch cap is far above what memory allows
TP_LOSS = 0.11  # fractional slowdown of a stage's step per doubling of TP (fitted with the families)
PP_LOSS = 0.04  # fractional slowdown of a pipeline round per stage boundary (send/receive, stages waiting), fitted
SEQ_STEP_US = 15.0  # per sequence per decode step outside the GPU kernels (sampling, scheduling), µs (fitted)


def _families_path() -> Path:
    return Path(str(resources.files("sweep") / "data" / "perf_families.csv"))


@lru_cache(maxsize=1)
def builtin_families() -> tuple[tuple[Family, tuple[str, ...]], ...]:
    """(family, GPU-name prefixes) rows of ``sweep/data/perf_families.csv``, in file order."""
    out = []
    path = _families_path()
    for _, r in parse_csv(path.read_text(encoding="utf-8"), path).records():
        fam = Family(str(r["family"]), float(r["bw_eff"] or ""), float(r["compute_eff"] or ""),
                     float(r["allreduce_us"] or ""))
        out.append((fam, tuple((r["gpus"] or "").split())))
    return tuple(out)


@lru_cache(maxsize=1024)
def family_of(gpu_name: str) -> str:
    """The family a GPU belongs to: the longest matching name prefix in the families table, else 'default'."""
    best, best_len = "default", -1
    for fam, prefixes in builtin_families():
        for p in prefixes:
            if gpu_name.upper().startswith(p.upper()) and len(p) > best_len:
                best, best_len = fam.name, len(p)
    return best


def _default_families() -> tuple[Family, ...]:
    return tuple(f for f, _ in builtin_families())


@dataclass(frozen=True)
class Knobs:
    """Calibration and engine settings.

    ``bw_efficiency``, ``compute_efficiency``, ``prefill_efficiency``: multipliers on every family's
    sustained fractions (1 = as calibrated); ``mem_fraction``: share of the memory left after weights
    and ``overhead_gb`` (GB per GPU) that the KV cache may use; ``allreduce_latency_us``: fixed cost of a
    stage-to-stage hop, and of an all-reduce for a family without its own, µs; ``tp_loss``: fractional
    slowdown of a stage's step per doubling of TP; ``families``: the per-family fractions in use.
    The scenario's ``perf.*`` knobs default to the schema's defaults (:data:`sweep.inputs.scenario.SCHEMA`).
    """

    bw_efficiency: float = DEFAULTS.perf.bw_efficiency
    compute_efficiency: float = DEFAULTS.perf.compute_efficiency
    prefill_efficiency: float = DEFAULTS.perf.prefill_efficiency
    mem_fraction: float = DEFAULTS.perf.mem_fraction
    overhead_gb: float = DEFAULTS.perf.overhead_gb
    allreduce_latency_us: float = DEFAULTS.perf.allreduce_latency_us
    min_batch: int = DEFAULTS.perf.min_batch
    max_batch: int = DEFAULTS.perf.max_batch
    tp_loss: float = TP_LOSS
    seq_step_us: float = SEQ_STEP_US
    pp_loss: float = PP_LOSS
    families: tuple[Family, ...] = field(default_factory=_default_families)

    @classmethod
    def from_settings(cls, perf: PerfSettings, calibration: Sequence[Family] = ()) -> Knobs:
        """A scenario's knobs (its ``perf.*`` settings), with a calibration file's families."""
        knobs = cls(
            bw_efficiency=perf.bw_efficiency,
            compute_efficiency=perf.compute_efficiency,
            prefill_efficiency=perf.prefill_efficiency,
            mem_fraction=perf.mem_fraction,
            overhead_gb=perf.overhead_gb,
            allreduce_latency_us=perf.allreduce_latency_us,
            min_batch=perf.min_batch,
            max_batch=perf.max_batch,
        )
        for fam in calibration:  # a calibration file's families replace the built-in ones of the same name
            knobs = knobs.with_family(fam)
        return knobs

    @classmethod
    def from_params(cls, params: Mapping, calibration: Sequence[Family] = ()) -> Knobs:
        """The same from resolved dotted-key values (every key of the schema)."""
        return cls.from_settings(settings_of(params).perf, calibration)

    def family(self, gpu: Gpu) -> Family:
        """The sustained fractions for this GPU (its family's, else the 'default' row's)."""
        by_name = _families_by_name(self.families)
        return by_name.get(family_of(gpu.gpu)) or by_name["default"]

    def with_family(self, fam: Family) -> Knobs:
        """These knobs with one family's fractions replaced (or added)."""
        rest = tuple(f for f in self.families if f.name != fam.name)
        return replace(self, families=(*rest, fam))


@lru_cache(maxsize=64)
def _families_by_name(families: tuple[Family, ...]) -> dict[str, Family]:
    return {f.name: f for f in families}


@dataclass(frozen=True)
class Workload:
    prompt_tokens: int
    output_tokens: int
    tpot_slo_ms: float = 0.0  # 0 = no limit
    dtype: str = "bf16"
    timing: bool = False  # also build Estimate.timing (for latency at load, SPEC §4.2)
    ttft_slo_ms: float = 0.0  # with timing: a replica whose lone request misses it gets a batch-1 table only


@dataclass(frozen=True)
class Estimate:
    """A layout's estimate, or why it cannot serve (``reason`` non-empty, numbers 0)."""

    throughput_tok_s: float
    batch: int
    tpot_ms: float
    weights_gb_per_gpu: float = 0.0
    reason: str = ""
    timing: ReplicaTiming | None = None  # the replica's timing at batches 1..batch, when Workload.timing


def dtype_bytes(model: Model, dtype: str) -> tuple[float, float]:
    """(bytes per weight, bytes per KV element) for a precision."""
    override = DTYPE_BYTES[dtype]
    return override if override is not None else (model.weight_bytes, model.kv_bytes)


def peak_tflops(gpu: Gpu, dtype: str) -> float:
    """Dense peak of the weight GEMMs: fp8 and fp4 run on their tensor cores where the GPU has them; int4, and
    fp4 or fp8 on a GPU without such cores, are weight-only (dequantised to 16-bit math)."""
    if dtype == "fp4" and gpu.fp4_tflops > 0:
        return gpu.fp4_tflops
    if dtype == "fp8" and gpu.fp8_tflops > 0:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


def attention_tflops(gpu: Gpu, dtype: str) -> float:
    """Dense peak of attention (QKᵀ, AV): fp8 for fp8 and fp4 models (their KV caches are fp8) where the GPU has
    fp8 tensor cores, else 16-bit (int4's AWQ/GPTQ kernels attend in 16-bit)."""
    if dtype in ("fp8", "fp4") and gpu.fp8_tflops > 0:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


def _compute_s(gpu: Gpu, dtype: str, gemm_flops: float, attn_flops: float, efficiency: float) -> float:
    """Seconds of tensor work: weight GEMMs and attention, each at its own peak, times the sustained fraction."""
    return (gemm_flops / peak_tflops(gpu, dtype) + attn_flops / attention_tflops(gpu, dtype)) / (1e12 * efficiency)


@dataclass(frozen=True)
class StageShape:
    """One pipeline stage: ``tp`` GPUs of one type holding ``layers`` of the model."""

    gpu: Gpu
    tp: int
    layers: int
    first: bool = False  # holds the input embedding (pipeline_estimate marks the first stage)
    last: bool = False  # holds the output head (the last stage)


def _layer_params(model: Model) -> tuple[float, float]:
    """(all, active) parameters of the transformer layers: the model's, less its embedding and output head."""
    edges = 2 * model.head_params
    return model.params_b * 1e9 - edges, model.active_params_b * 1e9 - edges


def _edge_bytes(model: Model, stage: StageShape) -> float:
    """Bytes per GPU of the embedding (first stage) and the output head (last stage), split over TP: they stay at
    the model's own 16-bit precision in fp8, fp4 and int4 checkpoints (ModelOpt, AWQ and GPTQ leave them out)."""
    return (stage.first + stage.last) * model.head_params * model.weight_bytes / stage.tp


def stage_memory(model: Model, wl: Workload, stage: StageShape, knobs: Knobs) -> tuple[float, float, float]:
    """(weight bytes per GPU, KV bytes per token per GPU, bytes per GPU the KV cache may use) of one stage.

    The last is negative when the weights and the runtime overhead do not fit the GPU.
    """
    wb, kvb = dtype_bytes(model, wl.dtype)
    frac = stage.layers / model.layers
    weights = _layer_params(model)[0] * wb * frac / stage.tp + _edge_bytes(model, stage)
    kv_heads_per_gpu = math.ceil(model.kv_heads / stage.tp)  # fewer KV heads than TP ranks: replicated
    kv_token = 2 * stage.layers * kv_heads_per_gpu * model.head_dim * kvb
    left = stage.gpu.mem_bytes - knobs.overhead_gb * 1e9 - weights  # the bytes the engine sees (Gpu.mem_bytes)
    return weights, kv_token, (knobs.mem_fraction * left if left > 0 else left)


def _allreduce_s(gpu: Gpu, tp: int, fam: Family, knobs: Knobs, msg_bytes: float) -> float:
    """Seconds of one ring all-reduce of ``msg_bytes`` over ``tp`` GPUs (0 for tp = 1)."""
    if tp <= 1:
        return 0.0
    pcie = gpu.link_gbps < PCIE_BELOW_GBPS
    bus_gbps = gpu.link_gbps * (PCIE_AR_EFF if pcie else NVLINK_AR_EFF)
    lat_us = PCIE_AR_US if pcie else (fam.allreduce_us or knobs.allreduce_latency_us)
    return lat_us * 1e-6 + 2 * (tp - 1) / tp * msg_bytes / (bus_gbps * 1e9)


def _tp_factor(tp: int, knobs: Knobs) -> float:
    return 1.0 + knobs.tp_loss * math.log2(tp)


def pp_round_factor(pp: int, knobs: Knobs) -> float:
    """A pipeline round's stage work, stretched per stage boundary (send/receive, stages waiting on each other)."""
    return 1.0 + knobs.pp_loss * (pp - 1)


def _weights_read_fraction(model: Model, micro_batch: float) -> float:
    """Share of a stage's weights one decode step reads: all for a dense model; for a mixture of
    experts the shared part plus the experts the batch touches, each expert taken with probability
    active/total per token (Mixtral: 2 of 8) — all of them at large batch."""
    if model.active_params_b >= model.params_b:
        return 1.0
    total, active = _layer_params(model)
    a = active / total
    return a + (1 - a) * (1 - (1 - a) ** micro_batch)


def stage_step_s(model: Model, wl: Workload, stage: StageShape, knobs: Knobs, micro_batch: float) -> float:
    """Seconds for one decode step of ``micro_batch`` sequences through one stage (linear in its layers)."""
    fam = knobs.family(stage.gpu)
    weights, kv_token, _ = stage_memory(model, wl, stage, knobs)
    frac = stage.layers / model.layers
    ctx_avg = wl.prompt_tokens + wl.output_tokens / 2
    bw = stage.gpu.mem_bw_gbps * 1e9 * fam.bw_eff * knobs.bw_efficiency
    # the layers' weights (a mixture of experts: those the batch touches), the whole head (the embedding is only
    # looked up, a few rows a step), every sequence's KV cache
    layers = weights - _edge_bytes(model, stage)
    head = model.head_params * model.weight_bytes / stage.tp if stage.last else 0.0
    t_mem = (layers * _weights_read_fraction(model, micro_batch) + head + micro_batch * kv_token * ctx_avg) / bw
    gemm = 2 * _layer_params(model)[1] * frac * micro_batch
    attn = 4 * stage.layers * model.heads * model.head_dim * ctx_avg * micro_batch  # QKᵀ and AV
    eff = fam.compute_eff * knobs.compute_efficiency
    t_cmp = _compute_s(stage.gpu, wl.dtype, gemm, attn, eff) / stage.tp
    if stage.last:  # the head's logits GEMM, at 16 bits
        t_cmp += 2 * model.head_params * micro_batch / stage.tp / (stage.gpu.bf16_tflops * 1e12 * eff)
    t_ar = 2 * stage.layers * _allreduce_s(stage.gpu, stage.tp, fam, knobs, micro_batch * model.hidden * ACT_BYTES)
    return max(t_mem, t_cmp) * _tp_factor(stage.tp, knobs) + t_ar


def stage_prefill_s(model: Model, wl: Workload, stage: StageShape, knobs: Knobs) -> float:
    """Seconds one stage spends on the prefill of one request: weight GEMMs plus causal attention
    (compute bound), times the TP loss, plus the prompt's all-reduces."""
    fam = knobs.family(stage.gpu)
    frac = stage.layers / model.layers
    n = wl.prompt_tokens
    gemm = 2 * _layer_params(model)[1] * frac * n  # logits only for the prompt's last position: not counted
    attn = 2 * stage.layers * model.heads * model.head_dim * n * n  # causal: half of 4·d·n² per layer
    eff = fam.compute_eff * knobs.compute_efficiency * knobs.prefill_efficiency
    t_ar = 2 * stage.layers * _allreduce_s(stage.gpu, stage.tp, fam, knobs, n * model.hidden * ACT_BYTES)
    return _compute_s(stage.gpu, wl.dtype, gemm, attn, eff) / stage.tp * _tp_factor(stage.tp, knobs) + t_ar


def stage_round_s(model: Model, wl: Workload, stage: StageShape, knobs: Knobs, pp: int, b: float,
                  prefill_s: float | None = None) -> float:
    """Seconds one stage of a ``pp``-stage pipeline spends on a round at batch ``b``: each of its ``min(pp, b)``
    micro-batches stepped once, plus its share (``b / output_tokens``) of the prefills that replace finished
    sequences, stretched per stage boundary (:func:`pp_round_factor`). ``prefill_s``: the stage's
    :func:`stage_prefill_s` when already known."""
    n_mb = min(pp, b)
    pre = stage_prefill_s(model, wl, stage, knobs) if prefill_s is None else prefill_s
    return ((n_mb * stage_step_s(model, wl, stage, knobs, b / n_mb) + b * pre / wl.output_tokens)
            * pp_round_factor(pp, knobs))


def pipeline_estimate(
    model: Model,
    wl: Workload,
    stages: list[StageShape],
    knobs: Knobs,
    link_gbps: list[float] | None = None,
    batch: int | None = None,
) -> Estimate:
    """Throughput of a pipeline of stages (one stage = plain TP), with continuous batching.

    ``link_gbps[i]`` is the bandwidth between stage i and i+1 (GB/s). ``batch`` fixes the batch
    (static-batch or fixed-concurrency measurements; capped by memory); otherwise the largest batch
    that fits memory, ``max_batch`` and the TPOT limit is used, since throughput grows with the batch.
    Model: ``pp`` micro-batches are in flight; a token of one sequence takes one round through every
    stage and link; prefill work is amortised over the request's output tokens.
    """
    pp = len(stages)
    stages = [replace(st, first=i == 0, last=i == pp - 1) for i, st in enumerate(stages)]  # embedding, head
    ctx = wl.prompt_tokens + wl.output_tokens
    b_mem = math.inf
    for i, st in enumerate(stages):
        weights, kv_token, free = stage_memory(model, wl, st, knobs)
        if free <= 0:
            usable = (st.gpu.mem_bytes - knobs.overhead_gb * 1e9) / 1e9
            return Estimate(0, 0, 0, weights / 1e9, reason=(
                f"weights need {weights / 1e9:.1f} GB per GPU{f' in stage {i + 1}' if pp > 1 else ''}, "
                f"only {usable:.1f} GB usable on {st.gpu.gpu}"))
        b_mem = min(b_mem, math.floor(free / (kv_token * ctx)))
    weights_gb = stage_memory(model, wl, stages[0], knobs)[0] / 1e9
    if b_mem < knobs.min_batch:
        return Estimate(0, 0, 0, weights_gb, reason=(
            f"KV cache for {knobs.min_batch} sequence(s) of {ctx} tokens does not fit beside the weights"))
    links = link_gbps or []
    prefills = [stage_prefill_s(model, wl, st, knobs) for st in stages]  # one request's, whatever the batch

    def tpot_s(b: float) -> float:
        # One round: every stage steps each of the pp micro-batches once and does its share of the
        # b/output_tokens prefills that replace finished sequences; the busiest stage sets the pace.
        m = b / min(pp, b)  # micro-batch size; fewer micro-batches than stages leaves bubbles
        busy = max(stage_round_s(model, wl, st, knobs, pp, b, pre) for st, pre in zip(stages, prefills, strict=True))
        hop = sum(knobs.allreduce_latency_us * 1e-6 + m * model.hidden * ACT_BYTES / (bw * 1e9) for bw in links)
        return busy + hop + b * knobs.seq_step_us * 1e-6

    if batch is not None:
        b = int(min(batch, b_mem))
    else:
        b = int(min(b_mem, knobs.max_batch))
        slo = wl.tpot_slo_ms / 1e3
        if slo > 0:
            if tpot_s(knobs.min_batch) > slo:
                return Estimate(0, 0, 0, weights_gb, reason=(
                    f"TPOT at batch {knobs.min_batch} is {tpot_s(knobs.min_batch) * 1e3:.1f} ms, "
                    f"above the {wl.tpot_slo_ms:g} ms limit"))
            b = _largest_batch(tpot_s, knobs.min_batch, b, slo)
    t = tpot_s(b)
    return Estimate(b / t, b, t * 1e3, weights_gb,
                    timing=_timing(model, wl, stages, knobs, links, b) if wl.timing else None)


def _largest_batch(tpot_s: Callable[[float], float], lo: int, hi: int, slo_s: float) -> int:
    """The largest batch in [lo, hi] whose TPOT (s) meets ``slo_s``, by bisection (TPOT grows with the batch;
    ``lo`` meets it)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tpot_s(mid) <= slo_s:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _timing(model: Model, wl: Workload, stages: list[StageShape], knobs: Knobs, links: list[float],
            batch: int) -> ReplicaTiming:
    """The replica's timing for the latency-at-load model (sweep.fleet.latency): the round of
    ``pipeline_estimate`` without its ``b·prefill/output_tokens`` term (stage steps, link hops and the
    per-sequence overhead) for b = 1..batch; the busiest stage's prefill as the engine time per request;
    for a pipeline, every stage's prefill plus the prompt's link hops as the time to the first token. When the
    stage with the longest step (the last: it holds the head) is not the one with the longest prefill (an uneven
    split), step and prefill come from different stages: a little slower than the round, never faster."""
    pp = len(stages)

    distinct = list(dict.fromkeys(stages))  # first, middle and last stages; an uneven split adds a fourth

    stretch = pp_round_factor(pp, knobs)  # as in stage_round_s: steps and prefills of a round alike

    def step_s(b: int) -> float:
        m = b / min(pp, b)
        busy = max(min(pp, b) * stage_step_s(model, wl, st, knobs, m) for st in distinct) * stretch
        hop = sum(knobs.allreduce_latency_us * 1e-6 + m * model.hidden * ACT_BYTES / (bw * 1e9) for bw in links)
        return busy + hop + b * knobs.seq_step_us * 1e-6

    one = {st: stage_prefill_s(model, wl, st, knobs) * stretch for st in distinct}
    prefills = [one[st] for st in stages]
    first = None
    if pp > 1:
        first = sum(prefills) + sum(knobs.allreduce_latency_us * 1e-6
                                    + wl.prompt_tokens * model.hidden * ACT_BYTES / (bw * 1e9) for bw in links)
    lone_ttft_s = first if first is not None else max(prefills)
    if 0 < wl.ttft_slo_ms < lone_ttft_s * 1e3:
        batch = 1  # no rate meets the TTFT limit whatever the batch: spare the table
    return ReplicaTiming.from_step_fn(max(prefills), step_s, batch, wl.output_tokens, first)


def estimate(model: Model, gpu: Gpu, tp: int, pp: int, wl: Workload, knobs: Knobs,
             batch: int | None = None, pp_link_gbps: float | None = None) -> Estimate:
    """Homogeneous replica: ``pp`` stages of ``tp`` GPUs of one type, layers split as evenly as possible."""
    if model.heads % tp:
        return Estimate(0, 0, 0, reason=f"{model.heads} attention heads do not split over tp={tp}")
    if pp > model.layers:
        return Estimate(0, 0, 0, reason=f"pp={pp} exceeds the model's {model.layers} layers")
    per, extra = divmod(model.layers, pp)
    stages = [StageShape(gpu, tp, per + (1 if i < extra else 0)) for i in range(pp)]
    # the largest stage bounds memory; estimate with the uneven split as is
    links = [pp_link_gbps or gpu.link_gbps] * (pp - 1)
    return pipeline_estimate(model, wl, stages, knobs, links, batch)
