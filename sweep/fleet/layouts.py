"""Layouts (SPEC §4): one replica's shape — a homogeneous (offering, tp, pp) layout or a mixed-GPU
pipeline's stages — as a :class:`Candidate` with its modelled throughput, and what it costs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from sweep.fleet.latency import ReplicaTiming, max_rate_rps, tpot_at_rate_ms
from sweep.fleet.perf import Estimate, Knobs, Workload, estimate
from sweep.inputs.scenario import Scenario


@dataclass(frozen=True)
class Stage:
    """One stage of a mixed-GPU pipeline: ``tp`` GPUs of ``offering`` holding layers first..last (1-based)."""

    offering: str
    gpu: str
    tp: int
    first_layer: int
    last_layer: int


@dataclass(frozen=True)
class Candidate:
    """One replica layout. ``uses`` = GPUs per replica drawn from each offering."""

    offering: str
    gpu: str
    tp: int
    pp: int
    gpus: int
    throughput_tok_s: float
    batch: int | None
    tpot_ms: float | None
    uses: tuple[tuple[str, int], ...]
    stages: tuple[Stage, ...] = ()
    kept: bool = True
    reason: str = ""
    # with a request mix (SPEC §5.2): output tokens/s of one replica serving only bucket b (0 = it cannot);
    # ``throughput_tok_s`` is then what one replica sustains on the whole mix (0 if it cannot serve a bucket)
    rates_tok_s: tuple[float, ...] = ()

    @property
    def bucket_rates(self) -> tuple[float, ...]:
        """Tokens/s per bucket: ``rates_tok_s``, or without a mix the one bucket's ``throughput_tok_s``."""
        return self.rates_tok_s or (self.throughput_tok_s,)

    @property
    def name(self) -> str:
        if self.stages:
            return "+".join(f"{s.offering}:tp{s.tp}[{s.first_layer}-{s.last_layer}]" for s in self.stages)
        return f"{self.offering}:tp{self.tp}:pp{self.pp}"


@dataclass(frozen=True)
class CandidateTable:
    """``mixed``: whether mixed-GPU pipelines were built — "on", "auto" (built because no
    single-offering layout holds the model), "off" (``perf.mixed = false``) or "" (not needed)."""

    kept: tuple[Candidate, ...]
    dropped: tuple[Candidate, ...]
    mixed: str = ""

    @property
    def all(self) -> tuple[Candidate, ...]:
        return self.kept + self.dropped


def workload_of(sc: Scenario) -> Workload:
    w = sc.workload
    return Workload(w.prompt_tokens, w.output_tokens, w.tpot_slo_ms, sc.perf.dtype,
                    timing=at_load_limits(sc) is not None, ttft_slo_ms=w.ttft_slo_ms)


def at_load_limits(sc: Scenario) -> tuple[float | None, float | None, float] | None:
    """(TTFT limit ms, TPOT limit ms, percentile) a candidate's usable rate is checked against at load
    (SPEC §4.2), or None when nothing is: without a TTFT limit or a request rate the TPOT limit only
    caps the batch (as it always does), and with a request rate but no latency limit every rate up to
    the batch-limited throughput is usable."""
    w = sc.workload
    ttft = w.ttft_slo_ms or None
    tpot = (w.tpot_slo_ms or None) if (ttft or w.request_rate) else None
    if ttft is None and tpot is None:
        return None
    return ttft, tpot, w.slo_percentile


@lru_cache(maxsize=8192)
def usable_rate_rps(timing: ReplicaTiming, ttft_slo_ms: float | None, tpot_slo_ms: float | None,
                    percentile: float) -> float:
    """:func:`sweep.fleet.latency.max_rate_rps`, memoised per replica timing and limits (one call is
    ~0.03 s at batch 256; one GPU layout recurs across offerings, templates and scenarios of a grid)."""
    return max_rate_rps(timing, ttft_slo_ms, tpot_slo_ms, percentile)


def _ms(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def cap_at_load(sc: Scenario, c: Candidate, est: Estimate) -> Candidate:
    """SPEC §4.2: the candidate's usable throughput is the smaller of its batch-limited throughput and
    the largest request rate meeting the latency limits at load × output tokens; a candidate no rate
    serves is dropped, naming the limit a lone request misses."""
    limits = at_load_limits(sc)
    if limits is None or est.timing is None or not c.kept:
        return c
    ttft, tpot, pct = limits
    rate = usable_rate_rps(est.timing, ttft, tpot, pct)
    if rate <= 0:
        lone_ttft = est.timing.first_token_s * 1e3
        if ttft is not None and lone_ttft > ttft:
            why = f"TTFT p{pct:g} of a lone request {_ms(lone_ttft)} ms is above the {_ms(ttft)} ms limit"
        else:
            lone = tpot_at_rate_ms(est.timing, 0.0, pct)
            why = f"TPOT p{pct:g} of a lone request {_ms(lone)} ms is above the {_ms(tpot or 0.0)} ms limit"
        return replace(c, throughput_tok_s=0.0, kept=False, reason=why)
    return replace(c, throughput_tok_s=min(c.throughput_tok_s, rate * est.timing.output_tokens))


def candidate_cost_units(sc: Scenario, c: Candidate) -> float:
    """$/h (in 1e-4 units) of the GPUs one replica occupies, pro rata of a node's price."""
    return sum(sc.price_units(o) * g / sc.offerings[o].gpus_per_node for o, g in c.uses)


def layout(sc: Scenario, name: str, tp: int, pp: int) -> Candidate | str:
    """A homogeneous candidate, or the reason its layout is impossible on this offering."""
    o = sc.offerings[name]
    if tp > o.gpus_per_node:
        return f"tp={tp} exceeds the node's {o.gpus_per_node} GPU{'s' if o.gpus_per_node != 1 else ''}"
    if o.gpus_per_node % tp:
        return f"tp={tp} does not divide the node's {o.gpus_per_node} GPUs"
    if tp * pp > o.gpus_per_node * o.max_nodes:
        return f"needs {tp * pp} GPUs, at most {o.gpus_per_node * o.max_nodes} available"
    return Candidate(name, o.gpu, tp, pp, tp * pp, 0, 0, 0.0, ((name, tp * pp),))


def roofline(sc: Scenario, base: Candidate, knobs: Knobs, wl: Workload,
              memo: dict[tuple, Estimate] | None = None) -> Candidate:
    o = sc.offerings[base.offering]
    gpu = sc.catalog.gpus[o.gpu]
    # stages beyond one node talk over the node network, within a node over the GPU link
    link = gpu.link_gbps if base.gpus <= o.gpus_per_node else min(gpu.link_gbps, o.net_gbps)
    key = (o.gpu, base.tp, base.pp, link)  # the same GPU layout at another provider performs the same
    est = memo.get(key) if memo is not None else None
    if est is None:
        est = estimate(sc.model, gpu, base.tp, base.pp, wl, knobs, pp_link_gbps=link)
        if memo is not None:
            memo[key] = est
    if est.reason:
        return replace(base, kept=False, reason=est.reason)
    thr = est.throughput_tok_s
    if thr <= 0:
        return replace(base, kept=False, reason="no throughput")
    return cap_at_load(sc, replace(base, throughput_tok_s=thr, batch=est.batch, tpot_ms=round(est.tpot_ms, 3)), est)
