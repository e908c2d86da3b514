"""Request mixes (SPEC §5.2): ``workload.mix`` (buckets with shares) and ``workload.trace`` (a CSV of
requests, bucketed by length into at most :data:`MAX_BUCKETS` buckets).

Shares are kept exact: a share written as 0.3 is 3/10 (its decimal text, not its binary float), and
shares that sum to 1 within 1e-6 are normalised to sum to exactly 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sweep.errors import Problems
from sweep.inputs.csvfile import read_csv

MAX_BUCKETS = 8
SHARE_TOLERANCE = 1e-6
MIX_KEYS = ("prompt_tokens", "output_tokens", "share")
PROMPT_GROUPS, OUTPUT_GROUPS = 4, 2  # a trace's buckets: prompt-length quartiles × output above/below median


@dataclass(frozen=True)
class Bucket:
    """One kind of request: its prompt and output lengths (tokens) and its share of the requests."""

    prompt_tokens: int
    output_tokens: int
    share: Fraction
    longest_tokens: int = 0  # the longest request's prompt + output (a trace's bucket; 0: these lengths)

    @property
    def max_tokens(self) -> int:
        """Room one request of this bucket needs: its longest request's, else prompt + output."""
        return max(self.longest_tokens, self.prompt_tokens + self.output_tokens)

    def describe(self) -> str:
        return f"{self.prompt_tokens}/{self.output_tokens} tokens, {float(self.share):.1%}"


def mean_output_tokens(mix: Sequence[Bucket]) -> Fraction:
    """ō = Σ s_b·o_b: output tokens per request of the mix (exact)."""
    return sum((b.share * b.output_tokens for b in mix), Fraction(0))


def _exact(v: float | int) -> Fraction:
    """A number as its decimal text says (0.3 → 3/10)."""
    return Fraction(repr(v)) if isinstance(v, float) else Fraction(v)


def _length(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v > 0:
        return v
    if isinstance(v, float) and v.is_integer() and v > 0:
        return int(v)
    return None


def parse_mix(value: Sequence[Mapping[str, Any]], where: str, problems: Problems) -> tuple[Bucket, ...]:
    """``workload.mix`` entries → buckets; every problem is added (one line each), then () is returned."""
    before = len(problems.items)
    buckets: list[tuple[int, int, Fraction]] = []
    if len(value) > MAX_BUCKETS:
        problems.add(where, f"{len(value)} buckets; at most {MAX_BUCKETS}")
    for i, entry in enumerate(value, start=1):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            problems.add(at, f"must be a table {{prompt_tokens, output_tokens, share}}, got {entry!r}")
            continue
        for k in entry:
            if k not in MIX_KEYS:
                problems.add(at, f"unknown key '{k}' (valid: {', '.join(MIX_KEYS)})")
        missing = [k for k in MIX_KEYS if k not in entry]
        if missing:
            problems.add(at, f"missing {', '.join(missing)}")
            continue
        p, o, s = _length(entry["prompt_tokens"]), _length(entry["output_tokens"]), entry["share"]
        if p is None or o is None:
            problems.add(at, "prompt_tokens and output_tokens must be whole numbers > 0, got "
                             f"{entry['prompt_tokens']!r} and {entry['output_tokens']!r}")
            continue
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or s <= 0:
            problems.add(at, f"share must be a number > 0, got {s!r}")
            continue
        buckets.append((p, o, _exact(s)))
    if len(problems.items) > before:
        return ()
    if not buckets:
        return ()
    total = sum((s for _, _, s in buckets), Fraction(0))
    if abs(total - 1) > SHARE_TOLERANCE:
        problems.add(where, f"shares sum to {float(total):g}, not 1")
        return ()
    return _merged([(p, o, s / total) for p, o, s in buckets])


def _merged(buckets: list[tuple[int, int, Fraction]], longest: dict[tuple[int, int], int] | None = None,
            ) -> tuple[Bucket, ...]:
    """Buckets of equal lengths are one bucket (their shares added); order by lengths."""
    shares: dict[tuple[int, int], Fraction] = {}
    for p, o, s in buckets:
        shares[(p, o)] = shares.get((p, o), Fraction(0)) + s
    return tuple(Bucket(p, o, s, (longest or {}).get((p, o), 0)) for (p, o), s in sorted(shares.items()))


def read_trace(path: Path, problems: Problems) -> tuple[Bucket, ...]:
    """A CSV of requests (``prompt_tokens, output_tokens`` columns; others ignored) → at most
    :data:`MAX_BUCKETS` buckets: prompt-length quartiles, each split at its median output length; a
    bucket's lengths are its requests' mean lengths (rounded) and its share their fraction."""
    label = str(path)
    table = read_csv(path, problems, not_found="trace file not found",
                     empty="empty trace: expected a header row (prompt_tokens, output_tokens) and requests")
    if table is None:
        return ()
    missing = [c for c in ("prompt_tokens", "output_tokens") if c not in table.header]
    if missing:
        problems.add(label, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return ()
    requests: list[tuple[int, int]] = []
    bad = 0
    for i, r in table.records():
        try:
            p, o = float(r["prompt_tokens"] or ""), float(r["output_tokens"] or "")
        except ValueError:
            p = o = -1.0
        if not (p >= 1 and o >= 1 and p.is_integer() and o.is_integer()):
            bad += 1
            if bad <= 5:
                problems.add(table.where(i), "prompt_tokens and output_tokens must be whole numbers >= 1, got "
                             f"{r['prompt_tokens']!r} and {r['output_tokens']!r}")
            continue
        requests.append((int(p), int(o)))
    if bad > 5:
        problems.add(label, f"{bad - 5} more bad rows")
    if bad:
        return ()
    if not requests:
        problems.add(label, "no requests in the trace")
        return ()
    return bucket_requests(requests)


def _split(items: list[tuple[int, int]], groups: int, key: int) -> list[list[tuple[int, int]]]:
    """Equal-count groups by one length (requests of one length stay together)."""
    items = sorted(items, key=lambda r: (r[key], r[1 - key]))
    out: list[list[tuple[int, int]]] = []
    start = 0
    for g in range(1, groups + 1):
        end = round(len(items) * g / groups)
        while 0 < end < len(items) and items[end][key] == items[end - 1][key]:
            end += 1  # keep a length in one group
        if end > start:
            out.append(items[start:end])
            start = end
    return out


def bucket_requests(requests: list[tuple[int, int]]) -> tuple[Bucket, ...]:
    """Requests (prompt, output) → buckets (see :func:`read_trace`)."""
    n = len(requests)
    buckets: list[tuple[int, int, Fraction]] = []
    longest: dict[tuple[int, int], int] = {}
    for by_prompt in _split(requests, PROMPT_GROUPS, 0):
        for group in _split(by_prompt, OUTPUT_GROUPS, 1):
            p = max(1, round(sum(r[0] for r in group) / len(group)))
            o = max(1, round(sum(r[1] for r in group) / len(group)))
            buckets.append((p, o, Fraction(len(group), n)))
            longest[(p, o)] = max(longest.get((p, o), 0), max(a + b for a, b in group))
    return _merged(buckets, longest)
