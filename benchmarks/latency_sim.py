"""Discrete-event simulation of one replica under continuous batching with Poisson arrivals (numpy only).

It checks ``sweep/fleet/latency.py``: same replica, same assumptions, no queueing formula.

- Requests arrive at Poisson rate ``rate_rps`` (seeded ``numpy.random.default_rng``) and wait FIFO.
- The engine works in iterations. At every decode-step boundary, while a request waits and fewer than
  ``max_batch`` slots are taken, it runs that request's prefill: ``prefill_s`` seconds of engine time during
  which no decode step runs (prefill priority — the interleaving ``pipeline_estimate`` amortises as
  ``b·prefill_s/output_tokens`` per round); the first token comes ``prefill_latency_s`` after the prefill
  starts (= ``prefill_s`` unless a pipeline's stage sum is given), and the request takes a slot.
- Otherwise, with b > 0 sequences decoding, one decode step of ``step_table_s[b-1]`` seconds gives each of
  them one token; a sequence leaves after ``output_tokens`` steps, freeing its slot.
- Arrivals during a step or a prefill are seen at the next boundary. Runs of identical steps (no arrival
  that could be admitted and no departure in between) are advanced at once, so the cost is O(requests),
  not O(steps). The event count is bounded (``max_events``).

Per request: TTFT = first token − arrival; TPOT = (last token − first token) / output_tokens (the decode
phase's mean time per token, prefill stalls included). The first ``warmup_frac`` and last ``tail_frac`` of
requests (by arrival) are left out of the percentiles (empty start, draining end).

    python -m benchmarks.latency_sim   # a few loads of one shape, printed
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TimingLike(Protocol):
    """What :func:`simulate_timing` reads (``sweep.fleet.latency.ReplicaTiming`` has it)."""

    prefill_s: float
    step_table_s: tuple[float, ...]
    output_tokens: int

    @property
    def first_token_s(self) -> float: ...


@dataclass(frozen=True)
class SimResult:
    """Per-request times of the measured requests, seconds."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    in_system: np.ndarray  # requests in the replica (slots + queue) when each one was first seen
    events: int
    sim_time_s: float

    def ttft_pct_s(self, percentile: float) -> float:
        """Percentile TTFT, seconds."""
        return float(np.percentile(self.ttft_s, percentile))

    def tpot_pct_ms(self, percentile: float) -> float:
        """Percentile (across requests) of the per-request mean TPOT, milliseconds."""
        return float(np.percentile(self.tpot_s, percentile)) * 1e3


def simulate(prefill_s: float, step_table_s: tuple[float, ...] | list[float], output_tokens: int,
             rate_rps: float, n_requests: int = 20_000, seed: int = 0, prefill_latency_s: float | None = None,
             warmup_frac: float = 0.1, tail_frac: float = 0.05, max_events: int | None = None) -> SimResult:
    """Simulate ``n_requests`` Poisson arrivals at ``rate_rps`` (requests/s) on one replica with
    ``len(step_table_s)`` slots; see the module docstring. Raises RuntimeError past ``max_events``
    (default 20 events per request)."""
    if rate_rps <= 0 or n_requests < 1:
        raise ValueError("rate_rps > 0 and n_requests ≥ 1 required")
    steps = [float(s) for s in step_table_s]
    big_b = len(steps)
    n_out = int(output_tokens)
    first_lat = prefill_s if prefill_latency_s is None else prefill_latency_s
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, n_requests)).tolist()
    first = [math.nan] * n_requests
    done = [math.nan] * n_requests
    seen = [0] * n_requests
    limit = max_events if max_events is not None else 20 * n_requests + 100

    queue: deque[int] = deque()
    heap: list[tuple[int, int]] = []  # (global step index at which the sequence finishes, request)
    t = 0.0
    step_count = 0
    nxt = 0  # next arrival not yet queued
    finished = 0
    events = 0
    while finished < n_requests:
        events += 1
        if events > limit:
            raise RuntimeError(f"simulation exceeded {limit} events")
        while nxt < n_requests and arrivals[nxt] <= t:
            seen[nxt] = len(heap) + len(queue)
            queue.append(nxt)
            nxt += 1
        active = len(heap)
        if queue and active < big_b:  # prefill priority at a step boundary
            i = queue.popleft()
            first[i] = t + first_lat
            t += prefill_s
            heapq.heappush(heap, (step_count + n_out, i))
            continue
        if not active:
            t = max(t, arrivals[nxt])  # idle until the next arrival (queue is empty here)
            continue
        s = steps[active - 1]
        k = heap[0][0] - step_count  # steps to the next departure
        if active < big_b and nxt < n_requests:  # an arrival could be admitted at a boundary
            k_arr = max(1, math.ceil((arrivals[nxt] - t) / s - 1e-9))
            k = min(k, k_arr)
        t += k * s
        step_count += k
        while heap and heap[0][0] <= step_count:
            _, i = heapq.heappop(heap)
            done[i] = t
            finished += 1

    lo = int(warmup_frac * n_requests)
    hi = max(lo + 1, int((1.0 - tail_frac) * n_requests))
    arr = np.asarray(arrivals[lo:hi])
    f = np.asarray(first[lo:hi])
    d = np.asarray(done[lo:hi])
    prefill_end = f - first_lat + prefill_s
    return SimResult(f - arr, (d - prefill_end) / n_out, np.asarray(seen[lo:hi]), events, t)


def simulate_timing(timing: TimingLike, rate_rps: float, n_requests: int = 20_000, seed: int = 0) -> SimResult:
    """:func:`simulate` on a ``ReplicaTiming``-like object."""
    return simulate(timing.prefill_s, timing.step_table_s, timing.output_tokens, rate_rps, n_requests, seed,
                    prefill_latency_s=timing.first_token_s)


if __name__ == "__main__":
    table = tuple(0.015 + 0.0008 * b for b in range(1, 9))
    for rate in (2.0, 6.0, 10.0):
        r = simulate(0.02, table, 128, rate, 20_000, seed=1)
        print(f"rate {rate:5.1f}/s  TTFT p50 {r.ttft_pct_s(50) * 1e3:8.1f} ms  p90 {r.ttft_pct_s(90) * 1e3:8.1f} ms"
              f"  TPOT p50 {r.tpot_pct_ms(50):6.2f} ms  p90 {r.tpot_pct_ms(90):6.2f} ms  events {r.events}")
