"""Latency of one replica at load (SPEC §4.2): percentile TTFT and TPOT at a Poisson request rate, and the
largest rate meeting TTFT and TPOT limits.

Pure numbers: no other ``sweep`` module is imported. The caller passes a :class:`ReplicaTiming` built from
the performance model: P = ``prefill_s`` (engine seconds per request's prefill), ``step(b)`` = the decode
step (round) for b = 1..B sequences without prefill work (B = ``max_batch``), N = ``output_tokens``.

**The replica** (continuous batching, the interleaving ``pipeline_estimate`` amortises as b·P/N per
round): requests arrive at rate λ (Poisson) and wait FIFO for one of B slots. At each step boundary the
engine runs the prefill of a waiting request that has a slot (P seconds; the decoding sequences stall —
prefill priority, as vLLM without chunked prefill; a chunked prefill costs the same engine time), which
emits the first token after ``prefill_latency_s`` (= P; for a pipeline the stage sum); then N decode steps
of ``step(b)`` for the b sequences decoding together. ``benchmarks/latency_sim.py`` simulates exactly this.

- **Capacity** ``λ_max = B / (B·P + N·step(B))``: every slot busy, each departure costs its prefill plus
  a B-th of N steps — perf.py's ``throughput_tok_s / output_tokens`` at batch B.
- **TPOT** (a request's mean time per output token over its decode): the engine spends λ·P of each second
  on prefills, so ``τ = step(b̄) / (1 − λ·P)`` (at full load, λ = B/(N·τ), this is perf.py's round time
  ``step(B) + B·P/N``). The batch a decoding sequence sees is itself plus the others, Poisson with mean
  λ·N·τ (Little's law; M/G/∞): ``b̄ = min(B, 1 + λ·N·τ)`` — a fixed point, solved by monotone iteration
  from step(1)/(1 − λP) (the least fixed point, so τ grows with λ). Percentiles: a request's TPOT is
  ``step(1 + X) + P·K/N`` with X the others averaged over its life (variance 2L/3, L = λ·N·τ) and K the
  prefills during it (variance L, covariance L/2), times a feedback factor 1/(1 − λP − 0.75·λ·N·step′):
  a request that lives longer sees more arrivals (0.75 fitted between the derivable 1/2 and 1); a normal
  quantile ``τ + z·σ``, the batch part capped at B; and exactly step(1) for the percentiles below
  ``e^(−λ(2·N·τ + P))``, the chance a request overlaps no other.
- **TTFT** = wait + prefill latency. The wait is a mixture:

  * *every slot taken* — probability q from a birth–death chain on the number in the replica, n, with
    departure rate ``μ(n) = 1/(P + N·step(b)/b)``, b = min(n, B) (the engine is work-conserving; each
    request needs P plus a b-th of N steps of it; a processor-sharing view, whose queue length is
    insensitive to the service-time distribution); the chain is geometric above B, so given a wait it is
    exponential, with rate ``2·(λ_max − λ)`` (M/M/B's rate doubled, Allen–Cunneen for deterministic slot
    times);
  * *a slot free* — the engine finishes its current decode step, then the prefills queued ahead (prefill
    priority): an M/D/1 queue of prefills (Erlang's exact waiting-time distribution, its exponential
    asymptote beyond 8·P) plus, with probability v = (share of time in decode steps)/(1 − λP), the
    residual U(0, step) of a decode step (Fuhrmann–Cooper decomposition: the steps are the prefill
    server's vacations).

  ``P(wait > x) = q·e^(−2(λ_max − λ)x) + (1 − q)·P(M/D/1 wait + V > x)``, inverted by bisection.
- :func:`max_rate_rps`: bisection over [0, λ_max] on "P(wait > limit − prefill latency) ≤ 1 − percentile
  and TPOT percentile ≤ limit" — a fixed number of halvings returns the largest point of one fixed dyadic
  grid meeting both, so a tighter limit never raises it.

**How good** (``tests/test_latency.py`` prints the table against the simulator; README "Latency at load"):
below the *knee* — where q < 5 %, i.e. the p90 is an engine wait, not a slot wait; utilisation ≤ 0.5 for a
batch of 8, 0.7–0.9 for batches of 16–128 — TTFT p50/p90 are within a few % (worst ~21 % over seeds) and
TPOT p50/p90 within ~7 %/15 % everywhere. At the knee the fixed-load TTFT p90 error is large either way
(−45 % … +46 %: the p90 jumps from ~P to seconds within a few % of load; the chain misses the congestion
feedback of long prefills — optimistic — and M/D/B's decay is pessimistic for small batches); the usable
rate at a TTFT limit, what the planner uses, stays within ~13 % of the simulator's. Outside the model:
length variation within a bucket (N and P fixed; a mix is buckets, each its own timing), KV-cache
preemption (B is the batch the cache holds), chunked-prefill budgets that split a prefill over steps (same
engine time, a thinner TTFT tail for the others), and bursty (non-Poisson) traffic, which makes every
queueing figure optimistic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

_BISECT_ITERS = 60
_AMP_C = 0.75  # share of the batch-slope feedback in the TPOT spread (see _tpot_sd_s)
_QUAD = 8  # midpoint-rule points for the decode-step residual


@dataclass(frozen=True)
class ReplicaTiming:
    """The timing of one replica, all in seconds.

    ``prefill_s``: engine time one request's prefill takes (for a pipeline: its busiest stage's share);
    ``step_table_s[b-1]``: one decode step (round) of b sequences, b = 1..max_batch, without prefill work
    (nondecreasing in b); ``output_tokens``: decode steps per request; ``prefill_latency_s``: time from a
    prefill's start to the first token (default ``prefill_s``; for a pipeline, the sum over stages).
    """

    prefill_s: float
    step_table_s: tuple[float, ...]
    output_tokens: int
    prefill_latency_s: float | None = None

    def __post_init__(self) -> None:
        if not self.step_table_s:
            raise ValueError("step_table_s needs at least batch 1")
        if self.output_tokens < 1 or self.prefill_s < 0 or min(self.step_table_s) <= 0:
            raise ValueError("output_tokens ≥ 1, prefill_s ≥ 0 and step times > 0 required")
        if any(b < a for a, b in zip(self.step_table_s, self.step_table_s[1:], strict=False)):
            raise ValueError("step_table_s must be nondecreasing in the batch")

    @property
    def max_batch(self) -> int:
        """Slots: the largest number of sequences decoding together."""
        return len(self.step_table_s)

    @property
    def first_token_s(self) -> float:
        """Seconds from a prefill's start to the first token."""
        return self.prefill_s if self.prefill_latency_s is None else self.prefill_latency_s

    @classmethod
    def from_step_fn(cls, prefill_s: float, step_s: Callable[[int], float], max_batch: int,
                     output_tokens: int, prefill_latency_s: float | None = None) -> ReplicaTiming:
        """Tabulate ``step_s(b)`` (seconds per decode step of b sequences) for b = 1..max_batch."""
        return cls(prefill_s, tuple(float(step_s(b)) for b in range(1, max_batch + 1)), output_tokens,
                   prefill_latency_s)

    @classmethod
    def affine(cls, prefill_s: float, step_base_s: float, step_per_seq_s: float, max_batch: int,
               output_tokens: int, prefill_latency_s: float | None = None) -> ReplicaTiming:
        """Decode step ``step_base_s + step_per_seq_s·b`` seconds for b sequences."""
        return cls.from_step_fn(prefill_s, lambda b: step_base_s + step_per_seq_s * b, max_batch,
                                output_tokens, prefill_latency_s)

    def step_s(self, batch: float) -> float:
        """Seconds of one decode step at a (fractional) batch, linear between table entries, clamped to
        [1, max_batch]."""
        tab = self.step_table_s
        if len(tab) == 1:
            return tab[0]
        b = min(max(batch, 1.0), float(len(tab)))
        i = min(int(b), len(tab) - 1)  # 1-based lower entry
        return tab[i - 1] + (tab[min(i, len(tab) - 1)] - tab[i - 1]) * (b - i)

    def step_slope_s(self, batch: float) -> float:
        """d step / d batch (seconds per extra sequence) around ``batch``."""
        tab = self.step_table_s
        if len(tab) == 1:
            return 0.0
        i = min(max(int(batch), 1), len(tab) - 1)
        return tab[i] - tab[i - 1]


@dataclass(frozen=True)
class LoadState:
    """The model's steady state at a rate: ``tpot_s`` mean TPOT (s), ``tpot_sd_s`` its spread across
    requests (s), ``batch`` the batch a decoding sequence sees, ``slot_wait_prob`` the probability an
    arrival finds every slot taken, ``drain_rps`` the departure rate with every slot taken (= capacity)."""

    rate_rps: float
    tpot_s: float
    tpot_sd_s: float
    batch: float
    slot_wait_prob: float
    drain_rps: float


def capacity_rps(t: ReplicaTiming) -> float:
    """Largest sustainable rate (requests/s): every slot busy, the engine does B decode steps' share plus
    a prefill per departure: ``B / (B·P + N·step(B))`` — perf.py's ``throughput / output_tokens``."""
    big_b = t.max_batch
    return big_b / (big_b * t.prefill_s + t.output_tokens * t.step_s(big_b))


def _tpot_mean_s(t: ReplicaTiming, rate_rps: float) -> float:
    """Least fixed point of τ = step(min(B, 1 + λ·N·τ)) / (1 − λ·P), seconds (inf if λ·P ≥ 1)."""
    stall = 1.0 - rate_rps * t.prefill_s
    if stall <= 0:
        return math.inf
    tau = t.step_s(1.0) / stall
    for _ in range(100_000):
        nxt = t.step_s(1.0 + rate_rps * t.output_tokens * tau) / stall
        if nxt - tau <= 1e-13 * nxt:
            return max(nxt, tau)
        tau = nxt
    return tau


def _slot_chain(t: ReplicaTiming, lam: float) -> float:
    """P(an arrival finds all B slots taken) in the engine-work birth–death chain (λ < capacity)."""
    big_b, p, n = t.max_batch, t.prefill_s, t.output_tokens
    log_w = 0.0
    logs = [0.0]
    for b in range(1, big_b + 1):
        log_w += math.log(lam * (p + n * t.step_s(b) / b))  # λ / μ(b)
        logs.append(log_w)
    r = lam / capacity_rps(t)
    top = max(logs)
    w = [math.exp(x - top) for x in logs]
    full = w[big_b] / (1.0 - r)  # states n ≥ B: geometric with ratio r
    return full / (sum(w[:big_b]) + full)


def load_state(t: ReplicaTiming, rate_rps: float) -> LoadState:
    """The steady state at ``rate_rps`` (requests/s); see the module docstring. Past capacity the slot
    wait probability is 1 (the queue grows without bound)."""
    lam = max(rate_rps, 0.0)
    cap = capacity_rps(t)
    tau = _tpot_mean_s(t, lam)
    b = min(float(t.max_batch), 1.0 + lam * t.output_tokens * tau) if math.isfinite(tau) else t.max_batch
    sd = _tpot_sd_s(t, lam, tau, b) if math.isfinite(tau) else 0.0
    wait = 0.0 if lam == 0 else (1.0 if lam >= cap else _slot_chain(t, lam))
    return LoadState(lam, tau, sd, b, wait, cap)


def _tpot_sd_s(t: ReplicaTiming, lam: float, tau: float, b: float) -> float:
    """Spread (seconds) of a request's TPOT: batch term c·(others averaged over its life) and stall term
    P·K/N, amplified by the feedback A = 1/(1 − λ·P − a·λ·N·c): a slower life sees more arrivals. The
    linearisation gives a = 1/2 if only the request's own life stretches and a = 1 if the whole batch slows
    together; a = 0.75 (``_AMP_C``) is fitted to the simulator's grid (tests/test_latency.py)."""
    n = t.output_tokens
    ell = lam * n * tau
    c = t.step_slope_s(b) if b < t.max_batch else 0.0
    p_n = t.prefill_s / n
    var = c * c * (2.0 * ell / 3.0) + p_n * p_n * ell + c * p_n * ell
    amp = 1.0 / max(1.0 - lam * t.prefill_s - _AMP_C * lam * n * c, 0.1)
    return amp * math.sqrt(max(var, 0.0))


class _MD1:
    """Waiting time of an M/D/1 queue (arrival rate ``lam``/s, service ``d`` s): Erlang's exact formula up
    to 8 services, then its exponential asymptote (decay θ, the root of λ·(e^(θ·d) − 1) = θ)."""

    def __init__(self, lam: float, d: float) -> None:
        self.lam, self.d = lam, d
        self.rho = lam * d
        self.x0 = 8.0 * d
        self.theta = 0.0
        self.at_x0 = 0.0
        if 0 < self.rho < 1:
            lo, hi = 1e-12 / d, 1.0 / d
            while lam * math.expm1(hi * d) < hi:
                hi *= 2.0
            for _ in range(_BISECT_ITERS):
                mid = 0.5 * (lo + hi)
                if lam * math.expm1(mid * d) < mid:
                    lo = mid
                else:
                    hi = mid
            self.theta = lo
            self.at_x0 = self._exact(self.x0)

    def _exact(self, x: float) -> float:
        acc = 0.0
        for k in range(int(x / self.d) + 1):
            y = self.lam * (k * self.d - x)
            acc += y ** k / math.factorial(k) * math.exp(-y)
        return min(1.0, max(0.0, 1.0 - (1.0 - self.rho) * acc))

    def exceed(self, x: float) -> float:
        """P(wait > x)."""
        if x < 0:
            return 1.0
        if self.rho <= 0:
            return 0.0
        if x <= self.x0:
            return self._exact(x)
        return self.at_x0 * math.exp(-self.theta * (x - self.x0))


def _z(percentile: float) -> float:
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    return NormalDist().inv_cdf(percentile / 100.0)


class _WaitModel:
    """The wait before a request's prefill starts, at one rate below capacity (see the module docstring):
    ``P(wait > x) = q·e^(−κ·(cap − λ)·x) + (1 − q)·P(M + V > x)`` with M the M/D/1 prefill-queue wait and
    V the residual U(0, step) of a decode step with probability v."""

    def __init__(self, t: ReplicaTiming, lam: float) -> None:
        st = load_state(t, lam)
        n, p = t.output_tokens, t.prefill_s
        ell = lam * n * st.tpot_s
        b_step = min(float(t.max_batch), ell / -math.expm1(-ell)) if ell > 0 else 1.0
        self.step = t.step_s(b_step)
        f_dec = min(lam * n * self.step / b_step, max(0.0, 1.0 - lam * p))  # time share in decode steps
        self.v = f_dec / (1.0 - lam * p)
        self.q = st.slot_wait_prob
        # Allen–Cunneen with deterministic slot times (cs² = 0): the wait for a slot decays twice as fast
        # as M/M/B's
        self.decay = 2.0 * (st.drain_rps - lam)
        self.md1 = _MD1(lam, p)

    def exceed(self, x: float) -> float:
        """P(wait > x seconds)."""
        if x < 0:
            return 1.0
        md1 = self.md1.exceed
        mid = sum(md1(x - self.step * (k + 0.5) / _QUAD) for k in range(_QUAD)) / _QUAD
        engine = (1.0 - self.v) * md1(x) + self.v * mid
        return self.q * math.exp(-self.decay * x) + (1.0 - self.q) * engine


def wait_exceed_prob(t: ReplicaTiming, rate_rps: float, wait_s: float) -> float:
    """P(a request waits more than ``wait_s`` seconds before its prefill starts) at ``rate_rps``
    (requests/s); 1 at or above capacity, 0 at rate 0."""
    if rate_rps <= 0:
        return 0.0
    if rate_rps >= capacity_rps(t):
        return 1.0
    return _WaitModel(t, rate_rps).exceed(wait_s)


def wait_at_rate_s(t: ReplicaTiming, rate_rps: float, percentile: float) -> float:
    """Percentile of the wait before a request's prefill starts (seconds) at ``rate_rps``; inf at or above
    :func:`capacity_rps`. The smallest x (to 1e-9 relative) with P(wait > x) ≤ 1 − percentile/100."""
    _z(percentile)
    if rate_rps <= 0:
        return 0.0
    if rate_rps >= capacity_rps(t):
        return math.inf
    tail = 1.0 - percentile / 100.0
    wm = _WaitModel(t, rate_rps)
    if wm.exceed(0.0) <= tail:
        return 0.0
    lo, hi = 0.0, max(t.prefill_s, t.step_s(t.max_batch))
    while wm.exceed(hi) > tail:
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-9 * hi:
        mid = 0.5 * (lo + hi)
        if wm.exceed(mid) > tail:
            lo = mid
        else:
            hi = mid
    return hi


def ttft_at_rate_s(t: ReplicaTiming, rate_rps: float, percentile: float = 90.0) -> float:
    """Percentile time to first token (seconds): queueing wait + prefill latency, at a Poisson arrival
    rate of ``rate_rps`` requests/s; inf at or above :func:`capacity_rps`."""
    return wait_at_rate_s(t, rate_rps, percentile) + t.first_token_s


def tpot_at_rate_ms(t: ReplicaTiming, rate_rps: float, percentile: float = 90.0) -> float:
    """Percentile (across requests) of a request's mean time per output token, milliseconds, at
    ``rate_rps`` requests/s. Finite even at or above capacity (the batch saturates at max_batch; the queue
    grows instead, which :func:`ttft_at_rate_s` reports as inf); inf only when λ·prefill_s ≥ 1."""
    z = _z(percentile)
    lam = max(rate_rps, 0.0)
    tau = _tpot_mean_s(t, lam)
    if math.isinf(tau):
        return math.inf
    ell = lam * t.output_tokens * tau
    # a request that overlaps no other (no arrival within its decode time either side, nor during its
    # prefill) decodes alone at step(1): at light load the lower percentiles are exactly that
    if percentile / 100.0 <= math.exp(-lam * (2.0 * t.output_tokens * tau + t.prefill_s)):
        return 1e3 * t.step_s(1.0)
    free = tau + z * _tpot_sd_s(t, lam, tau, min(float(t.max_batch), 1.0 + ell))
    # the batch part is capped at max_batch: at most step(B) plus the prefill stalls and their spread
    stall_sd = t.prefill_s / t.output_tokens * math.sqrt(ell) / (1.0 - lam * t.prefill_s)
    capped = t.step_s(t.max_batch) + lam * t.prefill_s * tau + z * stall_sd
    return 1e3 * max(t.step_s(1.0), min(free, capped))


def max_rate_rps(t: ReplicaTiming, ttft_slo_ms: float | None, tpot_slo_ms: float | None,
                 percentile: float = 90.0) -> float:
    """Largest request rate (requests/s) at which the ``percentile`` TTFT ≤ ``ttft_slo_ms`` and the
    ``percentile`` TPOT ≤ ``tpot_slo_ms`` (None or ≤ 0: no such limit). 0 when a lone request misses
    a limit; :func:`capacity_rps` when neither limit binds (the supremum of stable rates).

    Bisection over [0, capacity] for a fixed number of halvings returns the largest point of a fixed
    dyadic grid meeting both limits; TTFT and TPOT both grow with the rate, so a tighter limit never
    gives a higher rate."""
    _z(percentile)
    ttft_lim = ttft_slo_ms if ttft_slo_ms is not None and ttft_slo_ms > 0 else None
    tpot_lim = tpot_slo_ms if tpot_slo_ms is not None and tpot_slo_ms > 0 else None

    tail = 1.0 - percentile / 100.0

    def ok(rate: float) -> bool:
        if ttft_lim is not None:  # percentile TTFT ≤ limit  ⟺  P(wait > limit − prefill latency) ≤ tail
            budget_s = ttft_lim / 1e3 - t.first_token_s
            if budget_s < 0 or wait_exceed_prob(t, rate, budget_s) > tail:
                return False
        return tpot_lim is None or tpot_at_rate_ms(t, rate, percentile) <= tpot_lim

    if not ok(0.0):
        return 0.0
    cap = capacity_rps(t)
    if ok(cap):
        return cap
    lo, hi = 0.0, cap
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def utilisation(t: ReplicaTiming, rate_rps: float) -> float:
    """``rate_rps`` as a fraction of :func:`capacity_rps` (dimensionless)."""
    return rate_rps / capacity_rps(t)


def rate_at_utilisation_rps(t: ReplicaTiming, utilisation_frac: float) -> float:
    """The request rate (requests/s) at a fraction of :func:`capacity_rps`."""
    return utilisation_frac * capacity_rps(t)


def table_from_pairs(pairs: Sequence[tuple[int, float]], max_batch: int) -> tuple[float, ...]:
    """A step table (seconds, b = 1..max_batch) from measured ``(batch, step_s)`` points, linear between
    them and flat beyond the ends."""
    pts = sorted(pairs)
    if not pts:
        raise ValueError("no (batch, step_s) points")
    out = []
    for b in range(1, max_batch + 1):
        if b <= pts[0][0]:
            out.append(pts[0][1])
        elif b >= pts[-1][0]:
            out.append(pts[-1][1])
        else:
            for (b0, s0), (b1, s1) in zip(pts, pts[1:], strict=False):
                if b0 <= b <= b1:
                    out.append(s0 + (s1 - s0) * (b - b0) / (b1 - b0))
                    break
    return tuple(out)
