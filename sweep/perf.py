"""The roofline performance model (SPEC §4): per-replica decode throughput of one (GPU, TP, PP) layout.

Everything is per *replica* (all ``tp·pp`` GPUs of one model copy) and in output tokens/s.
The calibration knobs are the ``perf.*`` efficiencies of :data:`sweep.scenario.SCHEMA`; their defaults
are fitted to ``shared/data/published-throughput.csv`` (see ``tests/test_perf_calibration.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sweep.catalog import Gpu, Model

DTYPE_BYTES = {"bf16": None, "fp8": (1.0, 1.0), "int4": (0.5, 1.0)}  # (weight, kv); None = the model's own
ACT_BYTES = 2.0  # activations exchanged by all-reduce and between stages stay 16-bit


@dataclass(frozen=True)
class Knobs:
    """Calibration and engine settings (fractions of peak, GB, µs)."""

    bw_efficiency: float = 0.80
    compute_efficiency: float = 0.40
    prefill_efficiency: float = 0.55
    mem_fraction: float = 0.90
    overhead_gb: float = 1.5
    allreduce_latency_us: float = 8.0
    min_batch: int = 1
    max_batch: int = 256

    @classmethod
    def from_params(cls, params: dict) -> Knobs:
        return cls(
            bw_efficiency=params["perf.bw_efficiency"],
            compute_efficiency=params["perf.compute_efficiency"],
            prefill_efficiency=params["perf.prefill_efficiency"],
            mem_fraction=params["perf.mem_fraction"],
            overhead_gb=params["perf.overhead_gb"],
            allreduce_latency_us=params["perf.allreduce_latency_us"],
            min_batch=params["perf.min_batch"],
            max_batch=params["perf.max_batch"],
        )


@dataclass(frozen=True)
class Workload:
    prompt_tokens: int
    output_tokens: int
    tpot_slo_ms: float = 0.0  # 0 = no limit
    dtype: str = "bf16"


@dataclass(frozen=True)
class Estimate:
    """A layout's estimate, or why it cannot serve (``reason`` non-empty, numbers 0)."""

    throughput_tok_s: float
    batch: int
    tpot_ms: float
    weights_gb_per_gpu: float = 0.0
    reason: str = ""


def dtype_bytes(model: Model, dtype: str) -> tuple[float, float]:
    """(bytes per weight, bytes per KV element) for a precision."""
    override = DTYPE_BYTES[dtype]
    return override if override is not None else (model.weight_bytes, model.kv_bytes)


def peak_tflops(gpu: Gpu, dtype: str) -> float:
    """fp8 runs on fp8 tensor cores where the GPU has them; int4 is weight-only (16-bit math)."""
    if dtype == "fp8" and gpu.fp8_tflops > 0:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


@dataclass(frozen=True)
class StageShape:
    """One pipeline stage: ``tp`` GPUs of one type holding ``layers`` of the model."""

    gpu: Gpu
    tp: int
    layers: int


def stage_memory(model: Model, wl: Workload, stage: StageShape, knobs: Knobs) -> tuple[float, float, float]:
    """(weight bytes per GPU, KV bytes per token per GPU, free bytes per GPU for KV) of one stage."""
    wb, kvb = dtype_bytes(model, wl.dtype)
    frac = stage.layers / model.layers
    weights = model.params_b * 1e9 * wb * frac / stage.tp
    kv_heads_per_gpu = math.ceil(model.kv_heads / stage.tp)  # fewer KV heads than TP ranks: replicated
    kv_token = 2 * stage.layers * kv_heads_per_gpu * model.head_dim * kvb
    usable = stage.gpu.mem_gb * 1e9 * knobs.mem_fraction - knobs.overhead_gb * 1e9
    return weights, kv_token, usable - weights


def stage_step_s(model: Model, wl: Workload, stage: StageShape, knobs: Knobs, micro_batch: float) -> float:
    """Seconds for one decode step of ``micro_batch`` sequences through one stage (roofline + all-reduce)."""
    weights, kv_token, _ = stage_memory(model, wl, stage, knobs)
    frac = stage.layers / model.layers
    ctx_avg = wl.prompt_tokens + wl.output_tokens / 2
    t_mem = (weights + micro_batch * kv_token * ctx_avg) / (stage.gpu.mem_bw_gbps * 1e9 * knobs.bw_efficiency)
    flops = 2 * model.active_params_b * 1e9 * frac * micro_batch / stage.tp
    t_cmp = flops / (peak_tflops(stage.gpu, wl.dtype) * 1e12 * knobs.compute_efficiency)
    t_ar = 0.0
    if stage.tp > 1:  # two all-reduces per layer, ring over the intra-node link
        msg = micro_batch * model.hidden * ACT_BYTES
        per = knobs.allreduce_latency_us * 1e-6 + 2 * (stage.tp - 1) / stage.tp * msg / (stage.gpu.link_gbps * 1e9)
        t_ar = 2 * stage.layers * per
    return max(t_mem, t_cmp) + t_ar


def stage_prefill_s(model: Model, wl: Workload, stage: StageShape, knobs: Knobs) -> float:
    """Seconds one stage spends on the prefill of one request (compute bound)."""
    frac = stage.layers / model.layers
    flops = 2 * model.active_params_b * 1e9 * frac * wl.prompt_tokens / stage.tp
    return flops / (peak_tflops(stage.gpu, wl.dtype) * 1e12 * knobs.prefill_efficiency)


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
    (static-batch measurements); otherwise the largest batch that fits memory, ``max_batch`` and the
    TPOT limit is used, since throughput grows with the batch.
    Model: ``pp`` micro-batches are in flight; a token of one sequence takes one round through every
    stage and link; prefill work is amortised over the request's output tokens.
    """
    pp = len(stages)
    ctx = wl.prompt_tokens + wl.output_tokens
    b_mem = math.inf
    for i, st in enumerate(stages):
        weights, kv_token, free = stage_memory(model, wl, st, knobs)
        if free <= 0:
            usable = weights + free
            return Estimate(0, 0, 0, weights / 1e9, reason=(
                f"weights need {weights / 1e9:.1f} GB per GPU{f' in stage {i + 1}' if pp > 1 else ''}, "
                f"only {usable / 1e9:.1f} GB usable on {st.gpu.gpu}"))
        b_mem = min(b_mem, math.floor(free / (kv_token * ctx)))
    weights_gb = stage_memory(model, wl, stages[0], knobs)[0] / 1e9
    if b_mem < knobs.min_batch:
        return Estimate(0, 0, 0, weights_gb, reason=(
            f"KV cache for {knobs.min_batch} sequence(s) of {ctx} tokens does not fit beside the weights"))
    links = link_gbps or []

    def tpot_s(b: float) -> float:
        # One round: every stage steps each of the pp micro-batches once and does its share of the
        # b/output_tokens prefills that replace finished sequences; the busiest stage sets the pace.
        m = b / min(pp, b)  # micro-batch size; fewer micro-batches than stages leaves bubbles
        busy = max(
            min(pp, b) * stage_step_s(model, wl, st, knobs, m) + b * stage_prefill_s(model, wl, st, knobs) / wl.output_tokens
            for st in stages
        )
        hop = sum(knobs.allreduce_latency_us * 1e-6 + m * model.hidden * ACT_BYTES / (bw * 1e9) for bw in links)
        return busy + hop

    if batch is not None:
        b = batch
    else:
        b = int(min(b_mem, knobs.max_batch))
        slo = wl.tpot_slo_ms / 1e3
        if slo > 0:
            if tpot_s(knobs.min_batch) > slo:
                return Estimate(0, 0, 0, weights_gb, reason=(
                    f"TPOT at batch {knobs.min_batch} is {tpot_s(knobs.min_batch) * 1e3:.1f} ms, "
                    f"above the {wl.tpot_slo_ms:g} ms limit"))
            lo, hi = knobs.min_batch, b  # largest batch meeting the limit (TPOT grows with batch)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if tpot_s(mid) <= slo:
                    lo = mid
                else:
                    hi = mid - 1
            b = lo
    t = tpot_s(b)
    return Estimate(b / t, b, t * 1e3, weights_gb)


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
