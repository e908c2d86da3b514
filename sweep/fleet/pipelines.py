"""Mixed-GPU pipelines (SPEC §4.1): replicas whose stages sit on offerings of different GPU types.

A mixed candidate draws GPUs from several offerings (``Candidate.uses``); the MILP is unchanged.

**The template space** (the "all pipelines" the exact methods are exact over):

- 2 to ``perf.max_gpu_types`` offerings of *different* GPU types, all of one provider (stages talk over
  a node network, which only exists inside one provider) unless ``perf.link_gbps`` names a link
  between them;
- each offering holds a block of ``k ≥ 1`` consecutive stages of one TP (from ``perf.tp``, dividing
  its ``gpus_per_node`` and the model's heads), at most ``perf.max_stages`` stages in all;
- the blocks in every order when the model's embedding and head sit on the end stages (``vocab``), else in the
  order that minimises the time spent on the links (then the only difference); layers are contiguous, at least one
  per stage, and split to *maximise the estimated throughput* (exactly, see :class:`_Splitter`); a
  TTFT limit (SPEC §4.2) then caps that split's throughput — the split is not re-chosen for the limit;
- one replica must fit the offerings' availability, ``limits.max_gpus`` and ``limits.budget``.

**Links** between consecutive stages (GB/s): within one offering, its GPU link when the pipeline's GPUs
of that offering fit one node, else ``min(GPU link, net_gbps)`` (as for homogeneous pipelines);
between offerings, the ``perf.link_gbps`` entry for the pair, else the slower of the two node
networks (and GPU links). A link of 0 GB/s means "not connected": no pipeline uses it.

**Pruning** keeps the MILP small. Exact for the MILP: a template is skipped when an upper bound of
its throughput is no better than a candidate already found (a homogeneous roofline one, or a mixed
one) that uses no more GPUs of every offering; :func:`sweep.fleet.candidates.prune_dominated` then prunes
the whole table the same way. The documented cap: at most ``perf.max_mixed`` (default 4; 0 = none)
candidates per set of offerings, the cheapest per token (pro-rata replica $/h over tokens/s); the
templates of a set are visited by increasing lower bound of that ratio, so the search stops as soon
as no template left can enter. For llama-3.1-70b fp8 with ``perf.mixed = true`` on the whole built-in catalog
this takes 16–17 s on a 2-core machine (every block order is tried, the model having an embedding and head of
its own; 7.4 s when one order per template was) and adds about 1.5k candidates; narrow it with
``catalog.only`` for sweeps (``perf.mixed = "auto"``, the default, builds them only when nothing else holds the
model).

The candidate's ``offering``/``tp`` are its first stage's, ``pp`` its number of stages, ``gpus`` the
total, and ``gpu`` the distinct GPU names in stage order joined by ``+`` (``"A100-80GB+L4"``), so that
results grouped by ``gpu`` keep mixed pipelines apart from homogeneous ones.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sweep.errors import InputError, Problem
from sweep.fleet.layouts import Candidate, Stage, cap_at_load, layout, roofline
from sweep.fleet.perf import (
    ACT_BYTES,
    Estimate,
    Knobs,
    StageShape,
    Workload,
    pipeline_estimate,
    stage_memory,
    stage_round_s,
)
from sweep.inputs.catalog import Gpu
from sweep.inputs.scenario import Scenario
from sweep.inputs.schema import parse_link_entry


def link_overrides(sc: Scenario) -> dict[frozenset[str], float]:
    """``perf.link_gbps`` as {pair of offering names: GB/s}; raises InputError for a bad entry or an
    offering missing from the catalog (ones filtered out by ``catalog.only`` are ignored)."""
    out: dict[frozenset[str], float] = {}
    bad: list[Problem] = []
    for entry in sc.perf.link_gbps:
        parsed = parse_link_entry(entry)
        if isinstance(parsed, str):
            bad.append(Problem("perf.link_gbps", parsed))
            continue
        a, b, gbps = parsed
        unknown = [n for n in (a, b) if n not in sc.catalog.offerings]
        if unknown:
            bad.append(Problem("perf.link_gbps", f"unknown offering '{unknown[0]}' in '{entry}'"))
            continue
        out[frozenset((a, b))] = gbps
    if bad:
        raise InputError(bad)
    return out


@dataclass(frozen=True, order=True)
class Block:
    """``count`` consecutive stages of ``tp`` GPUs each on one offering."""

    offering: str
    tp: int
    count: int


def link_gbps(sc: Scenario, a: str, b: str, gpus_on: dict[str, int],
              overrides: dict[frozenset[str], float]) -> float:
    """GB/s between a stage on offering ``a`` and the next on ``b`` (0 = not connected).

    ``gpus_on`` = GPUs of each offering in the whole pipeline (stages of one offering share a node
    only when they all fit in one)."""
    oa, ob = sc.offerings[a], sc.offerings[b]
    ga, gb = sc.gpu(a), sc.gpu(b)
    if a == b:
        return ga.link_gbps if gpus_on[a] <= oa.gpus_per_node else min(ga.link_gbps, oa.net_gbps)
    if frozenset((a, b)) in overrides:
        return overrides[frozenset((a, b))]
    return min(oa.net_gbps, ob.net_gbps, ga.link_gbps, gb.link_gbps)


def stage_offerings(blocks: Sequence[Block]) -> list[str]:
    return [blk.offering for blk in blocks for _ in range(blk.count)]


def pipeline_links(sc: Scenario, offerings: Sequence[str], gpus_on: dict[str, int],
                   overrides: dict[frozenset[str], float]) -> list[float]:
    """Link bandwidths between consecutive stages (``len(offerings) - 1`` values, GB/s)."""
    return [link_gbps(sc, a, b, gpus_on, overrides) for a, b in itertools.pairwise(offerings)]


# --------------------------------------------------------------------------- the layer split


@dataclass
class _StageModel:
    """Per-layer memory and time of one (GPU, TP) stage type, cached across templates."""

    gpu: Gpu
    tp: int
    bmem: list[int]  # bmem[l-1] = largest batch a middle stage of l layers holds (-1: weights do not fit)
    bmem_end: list[int]  # the same for an end stage: the first holds the embedding, the last the output head
    neg_bmem: list[int] = field(default_factory=list)
    neg_bmem_end: list[int] = field(default_factory=list)
    busy: dict[tuple[int, int], float] = field(default_factory=dict)  # (pp, batch) -> s per layer
    last_busy: dict[tuple[int, int, int], float] = field(default_factory=dict)  # (pp, batch, layers) -> s

    def cap(self, b: int, end: bool = False) -> int:
        """Most layers this stage can hold with KV room for ``b`` sequences (as an end stage: beside an end matrix)."""
        return bisect.bisect_right(self.neg_bmem_end if end else self.neg_bmem, -b)


class _Splitter:
    """Finds the contiguous layer split of a stage sequence with the highest estimated throughput.

    For a fixed batch b every stage's round time is (its layers) × (a per-layer time β_i(b)) — the last
    stage's plus its output head's, which grows with its layers too — so the best split at b minimises the
    slowest stage's time subject to the memory caps (the end stages' beside the embedding or the head) — a
    greedy water-fill, exact for times that grow with the layers.
    Throughput b / (that bottleneck + link time) is then maximised over b ∈ [min_batch, top]: where no
    cap changes it never decreases with b, so only the ends of constant-cap stretches are tried, from
    the top down, until the continuous relaxation b / (L / Σ 1/β_i + link time) — which never grows as
    b shrinks — cannot beat the best found. Exact over every split and every batch.
    """

    def __init__(self, sc: Scenario, knobs: Knobs, wl: Workload):
        self.model, self.knobs, self.wl = sc.model, knobs, wl
        self.ctx = wl.prompt_tokens + wl.output_tokens
        self.stage_models: dict[tuple[str, int], _StageModel] = {}

    def stage_model(self, gpu: Gpu, tp: int) -> _StageModel:
        key = (gpu.gpu, tp)
        sm = self.stage_models.get(key)
        if sm is None:
            bmem: dict[bool, list[int]] = {False: [], True: []}
            for end, layers in itertools.product((False, True), range(1, self.model.layers + 1)):
                shape = StageShape(gpu, tp, layers, last=end)  # an end stage of a pipeline holds one end matrix
                _, kv_token, free = stage_memory(self.model, self.wl, shape, self.knobs)
                bmem[end].append(math.floor(free / (kv_token * self.ctx)) if free > 0 else -1)
            sm = _StageModel(gpu, tp, bmem[False], bmem[True], [-x for x in bmem[False]], [-x for x in bmem[True]])
            self.stage_models[key] = sm
        return sm

    def beta(self, sm: _StageModel, pp: int, b: int) -> float:
        """Seconds per layer of one round (every micro-batch stepped once, prefills amortised)."""
        key = (pp, b)
        v = sm.busy.get(key)
        if v is None:
            v = stage_round_s(self.model, self.wl, StageShape(sm.gpu, sm.tp, 1), self.knobs, pp, b)
            sm.busy[key] = v
        return v

    def last_stage_s(self, sm: _StageModel, pp: int, b: int, layers: int) -> float:
        """Seconds of one round of the last stage with ``layers`` layers: theirs, plus the output head it holds
        (read and multiplied every step) — not linear in the layers, but growing with them."""
        key = (pp, b, layers)
        v = sm.last_busy.get(key)
        if v is None:
            v = stage_round_s(self.model, self.wl, StageShape(sm.gpu, sm.tp, layers, last=True), self.knobs, pp, b)
            sm.last_busy[key] = v
        return v

    def hop_s(self, links: Sequence[float], pp: int, b: int) -> float:
        m = b / min(pp, b)
        lat = self.knobs.allreduce_latency_us * 1e-6
        per_seq = b * self.knobs.seq_step_us * 1e-6  # per-sequence step overhead (perf.pipeline_estimate)
        return per_seq + sum(lat + m * self.model.hidden * ACT_BYTES / (bw * 1e9) for bw in links)

    @staticmethod
    def caps(sms: Sequence[_StageModel], b: int) -> list[int]:
        """Each stage's most layers at batch ``b``; the first and last hold the embedding and the head."""
        return [sm.cap(b, end=i in (0, len(sms) - 1)) for i, sm in enumerate(sms)]

    def feasible(self, sms: Sequence[_StageModel], b: int) -> bool:
        caps = self.caps(sms, b)
        return min(caps) >= 1 and sum(caps) >= self.model.layers

    def top_batch(self, sms: Sequence[_StageModel]) -> int | None:
        """The largest batch in [min_batch, max_batch] some split has memory for (None: not even min_batch)."""
        lo, hi = self.knobs.min_batch, self.knobs.max_batch
        if lo > hi or not self.feasible(sms, lo):
            return None
        while lo < hi:  # feasibility only shrinks as the batch grows
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.feasible(sms, mid) else (lo, mid - 1)
        return lo

    def bound(self, shapes: Sequence[tuple[Gpu, int]], links: Sequence[float]) -> float:
        """An upper bound of the throughput (tokens/s) of any split: the continuous relaxation of the
        split at the largest batch memory allows, ignoring the TPOT limit."""
        sms = [self.stage_model(g, tp) for g, tp in shapes]
        pp, total = len(shapes), self.model.layers
        hi = self.top_batch(sms) if pp <= total else None
        if hi is None:
            return 0.0
        betas = [self.beta(sm, pp, hi) for sm in sms]
        return hi / (total / sum(1 / x for x in betas) + self.hop_s(links, pp, hi))

    def water_fill(self, betas: Sequence[float], caps: Sequence[int],
                   last_s: Callable[[int], float] | None = None) -> tuple[list[int], float]:
        """Layers per stage (each in [1, cap]) minimising the slowest stage's round time, and that time: l_i·β_i,
        except the last stage's ``last_s(l)`` when given (it holds the output head). Greedy — each layer to the
        stage it slows least — exact for round times that grow with the layers."""
        total, n = self.model.layers, len(betas)
        time = [lambda k, x=x: k * x for x in betas]
        if last_s is not None:
            time[-1] = last_s
        tau = total / sum(1 / x for x in betas)  # the optimum is at least this (end matrices only add time)
        if tau < max(betas):
            layers = [1] * n
        else:  # every stage's time ≤ τ ≤ optimum: a safe start for the greedy
            layers = [max(1, min(c, math.floor(tau / x))) for x, c in zip(betas, caps, strict=True)]
            if last_s is not None:  # the most layers whose time with the head stays ≤ τ (it grows with them)
                lo, hi = 1, caps[-1]
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if last_s(mid) <= tau else (lo, mid - 1)
                layers[-1] = lo
        left = total - sum(layers)
        while left > 0:
            i = min((i for i in range(n) if layers[i] < caps[i]), key=lambda i: time[i](layers[i] + 1))
            layers[i] += 1
            left -= 1
        return layers, max(time[i](layers[i]) for i in range(n))

    def best(self, shapes: Sequence[tuple[Gpu, int]], links: Sequence[float]) -> tuple[list[int], Estimate] | str:
        """The best split of these stages (GPU, TP) with these links: (layers per stage, estimate), or why none."""
        pp, total = len(shapes), self.model.layers
        if pp > total:
            return f"{pp} stages exceed the model's {total} layers"
        sms = [self.stage_model(g, tp) for g, tp in shapes]
        lo, hi = self.knobs.min_batch, self.top_batch(sms)
        if hi is None:
            return f"the stages cannot hold the weights and KV cache of {lo} sequence(s)"

        head = self.model.vocab > 0

        def at(b: int) -> tuple[list[int], float]:
            betas = [self.beta(sm, pp, b) for sm in sms]
            last_s = (lambda k: self.last_stage_s(sms[-1], pp, b, k)) if head else None
            layers, tau = self.water_fill(betas, self.caps(sms, b), last_s)
            return layers, tau + self.hop_s(links, pp, b)

        slo = self.wl.tpot_slo_ms / 1e3
        if slo > 0:  # the best round time only grows with the batch
            if at(lo)[1] > slo:
                return f"TPOT at batch {lo} is {at(lo)[1] * 1e3:.1f} ms, above the {self.wl.tpot_slo_ms:g} ms limit"
            a, z = lo, hi
            while a < z:
                mid = (a + z + 1) // 2
                a, z = (mid, z) if at(mid)[1] <= slo else (a, mid - 1)
            hi = a
        # with the memory caps fixed, b / round time never decreases with b: only the largest b of
        # each stretch of equal caps (b = some stage's batch room at some layer count) can be best
        ends = sorted({hi, *(v for sm in sms for v in (*sm.bmem, *sm.bmem_end) if lo <= v < hi)}, reverse=True)
        best_val, best_layers = -1.0, None
        for b in ends:
            betas = [self.beta(sm, pp, b) for sm in sms]
            bound = b / (total / sum(1 / x for x in betas) + self.hop_s(links, pp, b))
            if bound <= best_val:
                break  # the relaxation bound never grows as b shrinks
            layers, t = at(b)
            if b / t > best_val:
                best_val, best_layers = b / t, layers
        assert best_layers is not None  # hi ≥ lo is feasible, so the first step sets it
        stages = [StageShape(g, tp, n) for (g, tp), n in zip(shapes, best_layers, strict=True)]
        est = pipeline_estimate(self.model, self.wl, stages, self.knobs, list(links))
        if est.reason:
            return est.reason
        return best_layers, est


# --------------------------------------------------------------------------- templates


def _stage_tps(sc: Scenario, name: str) -> list[int]:
    gpn = sc.offerings[name].gpus_per_node
    return [tp for tp in sorted(set(sc.perf.tp)) if tp <= gpn and gpn % tp == 0 and sc.model.heads % tp == 0]


def _compositions(total_max: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Tuples of ``parts`` positive ints with sum ≤ total_max."""
    for counts in itertools.product(range(1, total_max - parts + 2), repeat=parts):
        if sum(counts) <= total_max:
            yield counts


def templates(sc: Scenario, overrides: dict[frozenset[str], float]) -> Iterator[tuple[Block, ...]]:
    """Every template of the space (module docstring), blocks unordered (by offering name)."""
    max_types = sc.perf.max_gpu_types
    max_stages = sc.perf.max_stages
    max_gpus = sc.limits.max_gpus
    budget_units = sc.limits.budget_units
    names = sorted(n for n in sc.offerings if _stage_tps(sc, n))
    for r in range(2, min(max_types, max_stages) + 1):
        for combo in itertools.combinations(names, r):
            offs = [sc.offerings[n] for n in combo]
            if len({o.gpu for o in offs}) < r:
                continue  # one GPU type twice: not a mixed pipeline
            if len({o.provider for o in offs}) > 1 and not all(
                    frozenset(p) in overrides for p in itertools.combinations(combo, 2)):
                continue  # no network between providers unless given
            for tps in itertools.product(*(_stage_tps(sc, n) for n in combo)):
                for counts in _compositions(max_stages, r):
                    blocks = tuple(Block(n, tp, k) for n, tp, k in zip(combo, tps, counts, strict=True))
                    gpus = [tp * k for tp, k in zip(tps, counts, strict=True)]
                    if any(g > o.gpus_per_node * o.max_nodes for g, o in zip(gpus, offs, strict=True)):
                        continue
                    if max_gpus and sum(gpus) > max_gpus:
                        continue
                    min_cost = sum(sc.price_units(o.offering) * -(-g // o.gpus_per_node)
                                   for g, o in zip(gpus, offs, strict=True))
                    if budget_units and min_cost > budget_units:
                        continue
                    yield blocks


def block_orders(sc: Scenario, blocks: Sequence[Block], overrides: dict[frozenset[str], float]
                 ) -> list[tuple[tuple[Block, ...], list[float]]]:
    """The block orders to try, each with its links; none if every order crosses an unconnected (0 GB/s) link.

    Without an embedding and head of its own (``vocab``), stages cost the same wherever they sit: only the links
    differ, so the one order with the least link time (Σ 1/bandwidth) is best. With them, the first stage holds
    the embedding and the last the head, so every connected order is tried (an order and its reverse too)."""
    gpus_on = {blk.offering: blk.tp * blk.count for blk in blocks}
    every = sc.model.vocab > 0
    out: list[tuple[float, tuple[Block, ...], list[float]]] = []
    for perm in dict.fromkeys(itertools.permutations(blocks)):
        if not every and out and perm[0].offering > perm[-1].offering:
            continue  # a reversed order has the same links
        links = pipeline_links(sc, stage_offerings(perm), gpus_on, overrides)
        if min(links) <= 0:
            continue
        out.append((sum(1 / bw for bw in links), perm, links))
    if not every and out:
        out = [min(out, key=lambda e: e[0])]
    return [(perm, links) for _, perm, links in out]


def _candidate(sc: Scenario, blocks: Sequence[Block], layers: Sequence[int], est: Estimate) -> Candidate | None:
    thr = est.throughput_tok_s  # as modelled: never rounded (SPEC §5)
    if thr <= 0:
        return None
    stages = []
    first = 1
    for name, tp, n in zip(stage_offerings(blocks), [b.tp for b in blocks for _ in range(b.count)], layers,
                           strict=True):
        stages.append(Stage(name, sc.offerings[name].gpu, tp, first, first + n - 1))
        first += n
    gpu = "+".join(dict.fromkeys(s.gpu for s in stages))
    uses = tuple((b.offering, b.tp * b.count) for b in blocks)
    cand = cap_at_load(sc, Candidate(stages[0].offering, gpu, stages[0].tp, len(stages), sum(s.tp for s in stages),
                                     thr, est.batch, round(est.tpot_ms, 3), uses, tuple(stages)), est)
    return cand if cand.kept else None  # (a TTFT limit: the split is the batch-limited best one)


def _homogeneous(sc: Scenario, knobs: Knobs, wl: Workload) -> list[Candidate]:
    """The roofline homogeneous candidates, as dominators (only when they will be in the table)."""
    if sc.perf.source != "roofline":
        return []

    out = []
    for name in sc.offerings:
        for tp in sc.perf.tp:
            for pp in sc.perf.pp:
                base = layout(sc, name, tp, pp)
                if not isinstance(base, str):
                    c = roofline(sc, base, knobs, wl)
                    if c.kept:
                        out.append(c)
    return out


def _replica_cost_units(sc: Scenario, uses: dict[str, int]) -> float:
    """$/h (1e-4 units) of one replica's GPUs, pro rata of a node's price (as candidate_cost_units)."""
    return sum(sc.price_units(o) * g / sc.offerings[o].gpus_per_node for o, g in uses.items())


@dataclass(frozen=True)
class _Template:
    blocks: tuple[Block, ...]  # in stage order
    links: tuple[float, ...]
    uses: dict[str, int]
    bound_tok_s: float  # no split serves more
    cost_units: float  # one replica, pro rata

    @property
    def cpt_bound(self) -> float:
        """No split is cheaper per token than this (1e-4 $/h per token/s)."""
        return self.cost_units / self.bound_tok_s if self.bound_tok_s > 0 else math.inf


class _Dominators:
    """Candidates found so far, by the set of offerings they use, for the exact dominance test."""

    def __init__(self) -> None:
        self.by_set: dict[frozenset[str], list[Candidate]] = {}

    def add(self, c: Candidate) -> None:
        self.by_set.setdefault(frozenset(o for o, _ in c.uses), []).append(c)

    def dominated(self, uses: dict[str, int], thr: float) -> bool:
        """Is there a candidate using no more GPUs of every offering that serves at least ``thr``?"""
        names = sorted(uses)
        for r in range(1, len(names) + 1):
            for sub in itertools.combinations(names, r):
                for k in self.by_set.get(frozenset(sub), ()):
                    if k.throughput_tok_s >= thr and all(uses[o] >= g for o, g in k.uses):
                        return True
        return False


def mixed_candidates(sc: Scenario, knobs: Knobs, wl: Workload, prune: bool = True) -> list[Candidate]:
    """The mixed-GPU pipeline candidates of a scenario (SPEC §4.1), all kept ones.

    Per set of offerings: templates by increasing lower bound of $/token; a template is skipped when
    a candidate using no more GPUs of every offering serves at least its throughput bound (exact), and
    the enumeration stops once ``perf.max_mixed`` candidates are cheaper per token than any template
    left (the documented cap; 0 = none). ``prune=False`` returns every template's best-split candidate
    (no dominance, no cap) for tests against brute force. Raises InputError for a bad ``perf.link_gbps``.
    """
    overrides = link_overrides(sc)
    splitter = _Splitter(sc, knobs, wl)
    cap = sc.perf.max_mixed if prune else 0
    doms = _Dominators()
    if prune:
        for c in _homogeneous(sc, knobs, wl):
            doms.add(c)
    by_set: dict[frozenset[str], list[_Template]] = {}
    for perm, links in (o for blocks in templates(sc, overrides) for o in block_orders(sc, blocks, overrides)):
        uses = {b.offering: b.tp * b.count for b in perm}
        bound = splitter.bound(_shapes(sc, perm), links)
        if bound < 1:
            continue
        by_set.setdefault(frozenset(uses), []).append(
            _Template(perm, tuple(links), uses, bound, _replica_cost_units(sc, uses)))
    out: list[Candidate] = []
    for key in sorted(by_set, key=sorted):
        # fewer GPUs first among equal bounds, so that dominators tend to come first
        todo = sorted(by_set[key], key=lambda t: (t.cpt_bound, sum(t.uses.values()), t.blocks))
        kept: list[tuple[float, Candidate]] = []
        for t in todo:
            if cap and len(kept) >= cap and t.cpt_bound >= kept[cap - 1][0]:
                break
            if prune and doms.dominated(t.uses, t.bound_tok_s):
                continue
            res = splitter.best(_shapes(sc, t.blocks), t.links)
            cand = None if isinstance(res, str) else _candidate(sc, t.blocks, *res)
            if cand is None or (prune and doms.dominated(t.uses, cand.throughput_tok_s)):
                continue
            doms.add(cand)
            kept.append((t.cost_units / cand.throughput_tok_s, cand))
            kept.sort(key=lambda e: e[0])
        out.extend(c for _, c in (kept[:cap] if cap else kept))
    return out


def _shapes(sc: Scenario, blocks: Sequence[Block]) -> list[tuple[Gpu, int]]:
    return [(sc.gpu(b.offering), b.tp) for b in blocks for _ in range(b.count)]


__all__ = ["Block", "block_orders", "link_gbps", "mixed_candidates", "parse_link_entry", "templates"]
