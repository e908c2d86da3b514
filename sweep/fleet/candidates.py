"""Candidates (SPEC §4): every (offering, tp, pp) layout of a scenario with its per-replica throughput.

A candidate's ``throughput_tok_s`` is output tokens/s exactly as the model or the profile gives it
(never rounded: SPEC §5); ``batch`` and ``tpot_ms`` are None where a profile does not say.
"""

from __future__ import annotations

from dataclasses import replace

from sweep.fleet.layouts import (  # noqa: F401  (Stage, workload_of: re-exported)
    Candidate,
    CandidateTable,
    Stage,
    candidate_cost_units,
    layout,
    roofline,
    workload_of,
)
from sweep.fleet.perf import Estimate, Knobs
from sweep.inputs.catalog import units_to_dollars
from sweep.inputs.mix import Bucket, mean_output_tokens
from sweep.inputs.scenario import ProfileRow, Scenario


def _profile_rows(sc: Scenario) -> list[ProfileRow]:
    """The profile rows of this workload: rows measured at its prompt/output lengths win over rows
    without lengths (which apply to every workload); rows at other lengths are not this workload's."""
    p, o = sc.workload.prompt_tokens, sc.workload.output_tokens
    rows: dict[tuple[str, int, int], ProfileRow] = {}
    for row in sc.profile:
        key = (row.offering, row.tp, row.pp)
        if row.prompt_tokens is None:
            rows.setdefault(key, row)
        elif (row.prompt_tokens, row.output_tokens) == (p, o):
            rows[key] = row
    return list(rows.values())


def _from_profile(sc: Scenario, knobs: Knobs) -> dict[tuple[str, int, int], Candidate]:
    out: dict[tuple[str, int, int], Candidate] = {}
    slo = sc.workload.tpot_slo_ms
    for row in _profile_rows(sc):
        if row.offering not in sc.offerings:
            continue  # filtered out by catalog.only
        base = layout(sc, row.offering, row.tp, row.pp)
        if isinstance(base, str):
            o = sc.offerings[row.offering]
            out[(row.offering, row.tp, row.pp)] = Candidate(
                row.offering, o.gpu, row.tp, row.pp, row.tp * row.pp, 0, 0, 0.0,
                ((row.offering, row.tp * row.pp),), kept=False, reason=base)
            continue
        thr = row.throughput_tok_s  # as measured: never rounded
        c = replace(base, throughput_tok_s=thr, batch=row.batch, tpot_ms=row.tpot_ms)
        if slo > 0 and row.tpot_ms is not None and row.tpot_ms > slo:
            c = replace(c, kept=False, reason=f"profiled TPOT {row.tpot_ms:g} ms above the {slo:g} ms limit")
        elif thr <= 0:
            c = replace(c, kept=False, reason="profiled throughput is 0")
        elif row.batch is not None and row.batch < knobs.min_batch:
            c = replace(c, kept=False, reason=f"profiled batch {row.batch} below min_batch {knobs.min_batch}")
        out[(row.offering, row.tp, row.pp)] = c
    return out


def prune_dominated(cands: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """Drop a candidate when another uses no more GPUs of every offering and serves at least as much
    (with a request mix: at least as much of every bucket).

    Exact for the MILP: swapping a dominated replica for its dominator keeps every constraint
    (capacity, nodes, cost, GPU cap) and never lowers throughput.
    """
    from itertools import combinations

    kept: list[Candidate] = []
    dropped: list[Candidate] = []
    by_offerings: dict[frozenset[str], list[Candidate]] = {}  # a dominator uses a subset of c's offerings
    order = sorted(cands, key=lambda c: (-sum(c.bucket_rates), c.gpus, c.name))
    for c in order:
        use_c = dict(c.uses)
        names = sorted(use_c)
        subsets = [frozenset(sub) for r in range(1, len(names) + 1) for sub in combinations(names, r)]
        dom = next(
            (k for sub in subsets for k in by_offerings.get(sub, ())
             if all(a >= b for a, b in zip(k.bucket_rates, c.bucket_rates, strict=True))
             and all(use_c[o] >= g for o, g in k.uses)),
            None,
        )
        if dom is None:
            kept.append(c)
            by_offerings.setdefault(frozenset(use_c), []).append(c)
        else:
            dropped.append(replace(c, kept=False, reason=f"dominated by {dom.name}"))
    return kept, dropped


def build_candidates(sc: Scenario, prune: bool = True) -> CandidateTable:
    """All candidates of a scenario, kept and dropped (with reasons), in a stable order."""
    if sc.mix:
        return _mix_candidates(sc, prune)
    knobs = Knobs.from_settings(sc.perf, sc.calibration)
    wl = workload_of(sc)
    source = sc.perf.source
    table: dict[tuple[str, int, int], Candidate] = {}
    if source in ("profile", "profile+roofline"):
        table.update(_from_profile(sc, knobs))
    if source in ("roofline", "profile+roofline"):
        memo: dict[tuple, Estimate] = {}
        for name in sorted(sc.offerings):
            for tp in sc.perf.tp:
                for pp in sc.perf.pp:
                    if (name, tp, pp) in table:
                        continue
                    base = layout(sc, name, tp, pp)
                    if isinstance(base, str):
                        o = sc.offerings[name]
                        table[(name, tp, pp)] = Candidate(name, o.gpu, tp, pp, tp * pp, 0, 0, 0.0,
                                                          ((name, tp * pp),), kept=False, reason=base)
                    else:
                        table[(name, tp, pp)] = roofline(sc, base, knobs, wl, memo)
    cands = list(table.values())
    mixed = mixed_mode(sc, cands)
    if mixed in ("on", "auto"):
        from sweep.fleet.pipelines import mixed_candidates  # only when needed: it enumerates many templates

        cands.extend(mixed_candidates(sc, knobs, wl))
    return _table([c for c in cands if c.kept], [c for c in cands if not c.kept], mixed, prune)


def _table(usable: list[Candidate], dropped: list[Candidate], mixed: str, prune: bool) -> CandidateTable:
    """Kept and dropped candidates (dominated ones dropped when ``prune``), in a stable order."""
    if prune:
        usable, more = prune_dominated(usable)
        dropped = dropped + more
    key = lambda c: (c.offering, c.tp, c.pp, c.name)  # noqa: E731
    return CandidateTable(tuple(sorted(usable, key=key)), tuple(sorted(dropped, key=key)), mixed)


def bucket_scenario(sc: Scenario, b: Bucket) -> Scenario:
    """The scenario as one bucket of its mix sees it: that bucket's lengths, no mix."""
    return replace(sc, params={**sc.params, "workload.prompt_tokens": b.prompt_tokens,
                               "workload.output_tokens": b.output_tokens}, mix=())


def mix_throughput(c_rates: tuple[float, ...], mix: tuple[Bucket, ...]) -> float:
    """Output tokens/s one replica sustains on the whole mix, its time shared among the buckets:
    ō / Σ_b s_b·o_b/thr_b (0 when it cannot serve a bucket)."""
    if any(r <= 0 for r in c_rates):
        return 0.0
    seconds_per_request = sum(float(b.share) * b.output_tokens / r for b, r in zip(mix, c_rates, strict=True))
    return float(mean_output_tokens(mix)) / seconds_per_request


def _mix_candidates(sc: Scenario, prune: bool) -> CandidateTable:
    """SPEC §5.2: each bucket's candidates (its own lengths, latency limits and usable rate), joined by
    layout; a layout is kept when it serves at least one bucket, with its per-bucket tokens/s."""
    tables = [build_candidates(bucket_scenario(sc, b), prune=False) for b in sc.mix]
    per: dict[str, list[Candidate | None]] = {}
    for i, t in enumerate(tables):
        for c in t.all:
            per.setdefault(c.name, [None] * len(tables))[i] = c
    usable: list[Candidate] = []
    dropped: list[Candidate] = []
    for entries in per.values():
        rates = tuple(c.throughput_tok_s if c is not None and c.kept else 0.0 for c in entries)
        base = next((c for c in entries if c is not None and c.kept), None)
        if base is not None:
            usable.append(replace(base, throughput_tok_s=mix_throughput(rates, sc.mix), rates_tok_s=rates))
            continue
        reasons = {c.reason for c in entries if c is not None}
        first = next(c for c in entries if c is not None)
        why = reasons.pop() if len(reasons) == 1 else "; ".join(
            f"bucket {sc.mix[i].prompt_tokens}/{sc.mix[i].output_tokens}: {c.reason}"
            for i, c in enumerate(entries) if c is not None)
        dropped.append(replace(first, throughput_tok_s=0.0, kept=False, reason=why, rates_tok_s=rates))
    return _table(usable, dropped, next((t.mixed for t in tables if t.mixed), ""), prune)


def unserved_buckets(sc: Scenario, table: CandidateTable) -> list[Bucket]:
    """Buckets of the mix that no kept candidate can serve."""
    return [b for i, b in enumerate(sc.mix) if not any(c.rates_tok_s[i] > 0 for c in table.kept)]


def mixed_mode(sc: Scenario, single: list[Candidate]) -> str:
    """SPEC §4.1: ``perf.mixed = "auto"`` builds mixed pipelines when no single-offering layout holds
    the model (none is kept); true always, false never (then "off" when they would have been built)."""
    setting = sc.perf.mixed
    needed = sc.perf.source != "profile" and not any(c.kept for c in single)
    if setting is True:
        return "on"
    if setting == "auto":
        return "auto" if needed else ""
    return "off" if needed else ""


def candidate_rows(sc: Scenario, table: CandidateTable) -> list[dict]:
    """The table as SPEC §7 ``sweep candidates --json`` objects."""
    rows = []
    for c in table.all:
        cost = units_to_dollars(round(candidate_cost_units(sc, c))) if c.kept else None
        row = {
            "offering": c.offering, "gpu": c.gpu, "tp": c.tp, "pp": c.pp, "gpus": c.gpus,
            "throughput_tok_s": c.throughput_tok_s if c.kept else None,
            "batch": c.batch if c.kept else None, "tpot_ms": c.tpot_ms if c.kept else None,
            "cost_per_hour": cost,
            "cost_per_token": (cost / (3600 * c.throughput_tok_s))
            if c.kept and cost is not None and c.throughput_tok_s > 0 else None,
            "kept": c.kept, "reason": c.reason,
        }
        if sc.mix:  # per bucket (SPEC §5.2); throughput_tok_s is then the whole mix's (0: a bucket it cannot serve)
            row["bucket_tok_s"] = list(c.rates_tok_s) if c.rates_tok_s else [0.0] * len(sc.mix)
        if c.stages:
            row["stages"] = [s.__dict__ for s in c.stages]
        rows.append(row)
    return rows
