"""The latency-at-load model (sweep/fleet/latency.py) against the discrete-event simulator
(benchmarks/latency_sim.py): same replica, same lengths, Poisson arrivals (SPEC §4.2).

Prints the table (analytic vs simulated, error %) and asserts the stated bounds:

- TTFT p50 within ``TTFT50_BOUND`` and p90 within ``TTFT90_BOUND`` where the model's slot-wait probability is below ``KNEE`` (the p90
  is an engine wait, not a wait for a free slot) — the regime up to utilisation 0.7–0.9 depending on the
  shape. At the knee (slot waits start to set the p90) a fixed-load TTFT error is large by nature (the
  percentile jumps from ~prefill to seconds over a few % of load); there the figure that matters is the
  usable rate, and the test bounds the error of :func:`max_rate_rps` against the simulator's own largest
  rate meeting the same limit (``RATE_BOUND``);
- TPOT p50 within ``TPOT50_BOUND`` and p90 within ``TPOT90_BOUND`` at every load of the grid.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from benchmarks.latency_sim import simulate, simulate_timing
from sweep.fleet.latency import (
    ReplicaTiming,
    capacity_rps,
    load_state,
    max_rate_rps,
    table_from_pairs,
    tpot_at_rate_ms,
    ttft_at_rate_s,
)

SHAPES = {
    # name: (prefill s, step base s, step per sequence s, max batch, output tokens)
    "B8 short prompt": ReplicaTiming.affine(0.02, 0.015, 0.0008, 8, 128),
    "B128 short prompt": ReplicaTiming.affine(0.03, 0.012, 0.00015, 128, 256),
    "B16 long prompt": ReplicaTiming.affine(0.5, 0.02, 0.001, 16, 256),
    "B64 long prompt": ReplicaTiming.affine(0.25, 0.015, 0.0004, 64, 512),
    "B32 steep step": ReplicaTiming.affine(0.05, 0.005, 0.002, 32, 200),  # compute-bound: step ∝ batch
}
UTILISATIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
N_REQUESTS = 20_000
KNEE = 0.05  # model's P(wait for a slot) below which the TTFT bound applies
TTFT50_BOUND = 0.10
TTFT90_BOUND = 0.25
TPOT50_BOUND = 0.10
TPOT90_BOUND = 0.20
RATE_BOUND = 0.15


def _err(model: float, sim: float) -> float:
    return model / sim - 1.0


@pytest.fixture(scope="module")
def grid() -> list[dict]:
    rows = []
    for name, tm in SHAPES.items():
        cap = capacity_rps(tm)
        for u in UTILISATIONS:
            lam = u * cap
            sim = simulate_timing(tm, lam, N_REQUESTS, seed=7)
            row = {"shape": name, "u": u, "rate": lam, "slot_wait": load_state(tm, lam).slot_wait_prob}
            for p in (50, 90):
                row[f"ttft{p}"] = (ttft_at_rate_s(tm, lam, p) * 1e3, sim.ttft_pct_s(p) * 1e3)
                row[f"tpot{p}"] = (tpot_at_rate_ms(tm, lam, p), sim.tpot_pct_ms(p))
            rows.append(row)
    return rows


def _print_grid(rows: list[dict]) -> None:
    print(f"\n{'shape':<18} {'util':>4} {'P(slot)':>7} | {'TTFT p50 ms model/sim':>26} | "
          f"{'TTFT p90 ms model/sim':>26} | {'TPOT p50 ms':>20} | {'TPOT p90 ms':>20}")
    for r in rows:
        cells = []
        for k in ("ttft50", "ttft90", "tpot50", "tpot90"):
            m, s = r[k]
            w = 8 if k.startswith("ttft") else 5
            cells.append(f"{m:{w}.1f}/{s:{w}.1f} {100 * _err(m, s):+6.1f}%")
        mark = "" if r["slot_wait"] < KNEE else "  (knee)"
        print(f"{r['shape']:<18} {r['u']:>4.1f} {r['slot_wait']:>7.3f} | " + " | ".join(cells) + mark)
    for k in ("ttft50", "ttft90", "tpot50", "tpot90"):
        sel = [r for r in rows if not k.startswith("ttft") or r["slot_wait"] < KNEE]
        errs = [abs(_err(*r[k])) for r in sel]
        print(f"{k}: {len(sel)} points, median |error| {100 * statistics.median(errs):.1f}%, "
              f"worst {100 * max(errs):.1f}%" + (f" (slot-wait prob < {KNEE})" if k.startswith("ttft") else ""))
    knee = [r for r in rows if r["slot_wait"] >= KNEE]
    if knee:
        print("at the knee (unbounded at fixed load): TTFT p90 errors "
              + ", ".join(f"{r['shape']} u={r['u']:.1f} {100 * _err(*r['ttft90']):+.0f}%" for r in knee))


def test_model_vs_simulator(grid: list[dict]) -> None:
    _print_grid(grid)
    for r in grid:
        where = f"{r['shape']} at utilisation {r['u']}"
        if r["slot_wait"] < KNEE:
            assert abs(_err(*r["ttft50"])) <= TTFT50_BOUND, (where, r["ttft50"])
            assert abs(_err(*r["ttft90"])) <= TTFT90_BOUND, (where, r["ttft90"])
        assert abs(_err(*r["tpot50"])) <= TPOT50_BOUND, (where, r["tpot50"])
        assert abs(_err(*r["tpot90"])) <= TPOT90_BOUND, (where, r["tpot90"])
    # the bounded regime reaches utilisation 0.5 for every shape (0.7–0.9 for all but the small batch)
    for name in SHAPES:
        assert max(r["u"] for r in grid if r["shape"] == name and r["slot_wait"] < KNEE) >= 0.5


def _sim_max_rate(tm: ReplicaTiming, ttft_slo_ms: float, percentile: float, n: int = 20_000) -> float:
    """The simulator's largest rate meeting the TTFT limit (same seed at every rate, so the arrival times
    only scale: common random numbers), bisection to 0.5 % of capacity."""
    cap = capacity_rps(tm)
    lo, hi = 0.0, cap
    while hi - lo > 0.005 * cap:
        mid = 0.5 * (lo + hi)
        if simulate_timing(tm, mid, n, seed=11).ttft_pct_s(percentile) * 1e3 <= ttft_slo_ms:
            lo = mid
        else:
            hi = mid
    return lo


def test_max_rate_vs_simulator() -> None:
    print(f"\n{'shape':<18} {'TTFT p90 limit':>14} {'model rate/s':>12} {'sim rate/s':>10} {'error':>7}")
    errs = []
    for name, tm in SHAPES.items():
        for mult in (1.5, 4.0):
            slo = mult * tm.first_token_s * 1e3
            model = max_rate_rps(tm, slo, None, 90)
            sim = _sim_max_rate(tm, slo, 90)
            e = _err(model, sim)
            errs.append(abs(e))
            print(f"{name:<18} {slo:>11.0f} ms {model:>12.3f} {sim:>10.3f} {100 * e:>+6.1f}%")
            assert abs(e) <= RATE_BOUND, (name, slo, model, sim)
    print(f"usable rate at a TTFT p90 limit: median |error| {100 * statistics.median(errs):.1f}%, "
          f"worst {100 * max(errs):.1f}%")


def test_monotone() -> None:
    for tm in SHAPES.values():
        cap = capacity_rps(tm)
        rates = np.linspace(0, 0.999 * cap, 120)
        for p in (50, 90, 99):
            ttft = [ttft_at_rate_s(tm, float(r), p) for r in rates]
            tpot = [tpot_at_rate_ms(tm, float(r), p) for r in rates]
            assert all(b >= a - 1e-12 for a, b in zip(ttft, ttft[1:], strict=False)), p
            assert all(b >= a - 1e-12 for a, b in zip(tpot, tpot[1:], strict=False)), p
        base_ttft = tm.first_token_s * 1e3
        base_tpot = tm.step_s(1) * 1e3
        ttft_limits = [base_ttft * m for m in (0.9, 1.0, 1.05, 1.2, 1.5, 2, 3, 5, 10, 50, 1e4)]
        tpot_limits = [base_tpot * m for m in (0.9, 1.0, 1.1, 1.3, 1.6, 2, 3, 5, 10)]
        for tpot_lim in [None, *tpot_limits]:
            rs = [max_rate_rps(tm, lim, tpot_lim, 90) for lim in ttft_limits]
            assert rs == sorted(rs), (tpot_lim, rs)  # looser TTFT limit → never a lower rate
        for ttft_lim in [None, base_ttft * 2, base_ttft * 10]:
            rs = [max_rate_rps(tm, ttft_lim, lim, 90) for lim in tpot_limits]
            assert rs == sorted(rs), (ttft_lim, rs)
        # a higher percentile is a tighter limit
        assert max_rate_rps(tm, base_ttft * 2, None, 99) <= max_rate_rps(tm, base_ttft * 2, None, 90)
        assert all(r <= cap for r in rs)


def test_edges() -> None:
    tm = SHAPES["B8 short prompt"]
    cap = capacity_rps(tm)
    assert ttft_at_rate_s(tm, 0.0, 90) == pytest.approx(tm.first_token_s)
    assert tpot_at_rate_ms(tm, 0.0, 90) == pytest.approx(tm.step_s(1) * 1e3)
    assert math.isinf(ttft_at_rate_s(tm, cap, 90))
    assert math.isinf(ttft_at_rate_s(tm, 2 * cap, 50))
    assert math.isfinite(tpot_at_rate_ms(tm, 2 * cap, 90))  # the batch saturates; the queue grows instead
    # capacity is perf.py's throughput / output_tokens at the full batch: B / (B·P + N·step(B))
    assert cap == pytest.approx(8 / (8 * 0.02 + 128 * (0.015 + 0.0008 * 8)))
    # a lone request missing a limit: rate 0
    assert max_rate_rps(tm, tm.first_token_s * 1e3 * 0.99, None, 90) == 0.0
    assert max_rate_rps(tm, None, tm.step_s(1) * 1e3 * 0.99, 90) == 0.0
    # no limit binds: the supremum of stable rates
    assert max_rate_rps(tm, None, None, 90) == cap
    assert max_rate_rps(tm, 0, 0, 90) == cap
    with pytest.raises(ValueError):
        ttft_at_rate_s(tm, 1.0, 100)
    with pytest.raises(ValueError):
        ReplicaTiming(0.1, (0.02, 0.01), 10)  # step time falling with the batch
    # the max rate does meet its limits
    r = max_rate_rps(tm, 60.0, 21.0, 90)
    assert 0 < r < cap
    assert ttft_at_rate_s(tm, r, 90) * 1e3 <= 60.0 * (1 + 1e-9) and tpot_at_rate_ms(tm, r, 90) <= 21.0
    # table helpers and a pipeline's prefill latency (stage sum) above its engine cost (busiest stage)
    tab = table_from_pairs([(1, 0.01), (4, 0.016)], 6)
    assert tab == pytest.approx((0.01, 0.012, 0.014, 0.016, 0.016, 0.016))
    pipe = ReplicaTiming(0.02, tab, 64, prefill_latency_s=0.05)
    assert ttft_at_rate_s(pipe, 0.0, 90) == pytest.approx(0.05)
    res = simulate(0.02, tab, 64, 1.0, 2_000, seed=3, prefill_latency_s=0.05)
    assert float(np.min(res.ttft_s)) == pytest.approx(0.05)


def test_simulator_bounded_and_seeded() -> None:
    tm = SHAPES["B8 short prompt"]
    a = simulate_timing(tm, 2.0, 3_000, seed=5)
    b = simulate_timing(tm, 2.0, 3_000, seed=5)
    assert np.array_equal(a.ttft_s, b.ttft_s) and np.array_equal(a.tpot_s, b.tpot_s)
    assert a.events <= 20 * 3_000 + 100
    with pytest.raises(RuntimeError):
        simulate(tm.prefill_s, tm.step_table_s, tm.output_tokens, 2.0, 3_000, seed=5, max_events=100)
    # a lone request: TTFT = prefill, TPOT = step(1)
    lone = simulate(0.1, (0.01, 0.02), 50, 1e-4, 50, seed=1, warmup_frac=0, tail_frac=0)
    assert np.allclose(lone.ttft_s, 0.1) and np.allclose(lone.tpot_s, 0.01)
