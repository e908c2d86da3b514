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
from sweep.inputs.scenario import Scenario


def _from_profile(sc: Scenario, knobs: Knobs) -> dict[tuple[str, int, int], Candidate]:
    out: dict[tuple[str, int, int], Candidate] = {}
    slo = sc["workload.tpot_slo_ms"]
    for row in sc.profile:
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
    """Drop a candidate when another uses no more GPUs of every offering and serves at least as much.

    Exact for the MILP: swapping a dominated replica for its dominator keeps every constraint
    (capacity, nodes, cost, GPU cap) and never lowers throughput.
    """
    from itertools import combinations

    kept: list[Candidate] = []
    dropped: list[Candidate] = []
    by_offerings: dict[frozenset[str], list[Candidate]] = {}  # a dominator uses a subset of c's offerings
    order = sorted(cands, key=lambda c: (-c.throughput_tok_s, c.gpus, c.name))
    for c in order:
        use_c = dict(c.uses)
        names = sorted(use_c)
        subsets = [frozenset(sub) for r in range(1, len(names) + 1) for sub in combinations(names, r)]
        dom = next(
            (k for sub in subsets for k in by_offerings.get(sub, ())
             if k.throughput_tok_s >= c.throughput_tok_s and all(use_c[o] >= g for o, g in k.uses)),
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
    knobs = Knobs.from_params(sc.params, sc.calibration)
    wl = workload_of(sc)
    source = sc["perf.source"]
    table: dict[tuple[str, int, int], Candidate] = {}
    if source in ("profile", "profile+roofline"):
        table.update(_from_profile(sc, knobs))
    if source in ("roofline", "profile+roofline"):
        memo: dict[tuple, Estimate] = {}
        for name in sorted(sc.offerings):
            for tp in sc["perf.tp"]:
                for pp in sc["perf.pp"]:
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
    usable = [c for c in cands if c.kept]
    dropped = [c for c in cands if not c.kept]
    if prune:
        usable, more = prune_dominated(usable)
        dropped += more
    key = lambda c: (c.offering, c.tp, c.pp, c.name)  # noqa: E731
    return CandidateTable(tuple(sorted(usable, key=key)), tuple(sorted(dropped, key=key)), mixed)


def mixed_mode(sc: Scenario, single: list[Candidate]) -> str:
    """SPEC §4.1: ``perf.mixed = "auto"`` builds mixed pipelines when no single-offering layout holds
    the model (none is kept); true always, false never (then "off" when they would have been built)."""
    setting = sc["perf.mixed"]
    needed = sc["perf.source"] != "profile" and not any(c.kept for c in single)
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
            "cost_per_token": (cost / (3600 * c.throughput_tok_s)) if c.kept and cost is not None else None,
            "kept": c.kept, "reason": c.reason,
        }
        if c.stages:
            row["stages"] = [s.__dict__ for s in c.stages]
        rows.append(row)
    return rows
