"""The routing LP of a request mix (SPEC §5.2), solved exactly in rational arithmetic.

Given replica counts x_c, the most requests/s Λ the fleet serves with every bucket b getting its share
s_b of them, and how (y_{c,b}, requests/s of bucket b sent to replicas of candidate c):

    max Λ   s.t.   Σ_c y_{c,b} ≥ s_b·Λ              (every bucket gets its share; a surplus is dropped)
                   Σ_b y_{c,b} / μ_{c,b} ≤ x_c      (a replica's time is shared among its buckets)
                   y, Λ ≥ 0

μ_{c,b} = requests/s one replica of c sustains on bucket b alone. The LP is tiny (the fleet's
candidates × buckets), so it is solved by a dense simplex over Fractions with Bland's rule: the
answer is exact for the given numbers, and the MILP's own (floating-point) rate is never trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def _simplex_max(obj: list[Fraction], rows: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """max obj·v s.t. rows·v ≤ rhs (rhs ≥ 0), v ≥ 0, bounded; returns v. Bland's rule (no cycling)."""
    m, n = len(rows), len(obj)
    tab = [row[:] + [Fraction(int(i == j)) for j in range(m)] + [rhs[i]] for i, row in enumerate(rows)]
    z = [-v for v in obj] + [Fraction(0)] * (m + 1)  # reduced costs (negative: can improve)
    basis = [n + i for i in range(m)]
    while True:
        enter = next((j for j in range(n + m) if z[j] < 0), None)
        if enter is None:
            break
        best: tuple[Fraction, int, int] | None = None
        for i in range(m):
            a = tab[i][enter]
            if a > 0:
                key = (tab[i][-1] / a, basis[i], i)
                if best is None or key < best:
                    best = key
        if best is None:  # cannot happen: every variable is bounded by the capacity rows
            raise ArithmeticError("routing LP unbounded")
        r = best[2]
        piv = tab[r][enter]
        tab[r] = [v / piv for v in tab[r]]
        for i in range(m):
            f = tab[i][enter]
            if i != r and f:
                tab[i] = [a - f * b for a, b in zip(tab[i], tab[r], strict=True)]
        f = z[enter]
        z = [a - f * b for a, b in zip(z, tab[r], strict=True)]
        basis[r] = enter
    out = [Fraction(0)] * n
    for i, j in enumerate(basis):
        if j < n:
            out[j] = tab[i][-1]
    return out


def max_rate(counts: Sequence[int], mu: Sequence[Sequence[Fraction]], shares: Sequence[Fraction],
             ) -> tuple[Fraction, list[list[Fraction]]]:
    """(Λ, y): the fleet's exact max request rate and a routing that achieves it, y[k][b] requests/s of
    bucket b to the replicas of the k-th entry, each bucket getting exactly s_b·Λ."""
    k_n, b_n = len(counts), len(shares)
    zero = [[Fraction(0)] * b_n for _ in range(k_n)]
    served = [any(counts[k] > 0 and mu[k][b] > 0 for k in range(k_n)) for b in range(b_n)]
    if not all(served[b] or shares[b] == 0 for b in range(b_n)):
        return Fraction(0), zero
    if k_n == 1:  # one layout: its time split in proportion to the shares
        lam = counts[0] / sum((shares[b] / mu[0][b] for b in range(b_n) if shares[b]), Fraction(0))
        return lam, [[shares[b] * lam for b in range(b_n)]]
    pairs = [(k, b) for k in range(k_n) for b in range(b_n) if counts[k] > 0 and mu[k][b] > 0]
    n = 1 + len(pairs)  # v = (Λ, y...)
    rows: list[list[Fraction]] = []
    rhs: list[Fraction] = []
    for b in range(b_n):  # s_b·Λ − Σ_k y_kb ≤ 0
        row = [Fraction(0)] * n
        row[0] = shares[b]
        for j, (_, bb) in enumerate(pairs, start=1):
            if bb == b:
                row[j] = Fraction(-1)
        rows.append(row)
        rhs.append(Fraction(0))
    for k in range(k_n):  # Σ_b y_kb / μ_kb ≤ x_k
        if counts[k] <= 0:
            continue
        row = [Fraction(0)] * n
        for j, (kk, b) in enumerate(pairs, start=1):
            if kk == k:
                row[j] = 1 / mu[k][b]
        rows.append(row)
        rhs.append(Fraction(counts[k]))
    v = _simplex_max([Fraction(1)] + [Fraction(0)] * len(pairs), rows, rhs)
    lam = v[0]
    y = [[Fraction(0)] * b_n for _ in range(k_n)]
    for j, (k, b) in enumerate(pairs, start=1):
        y[k][b] = v[j]
    for b in range(b_n):  # drop a bucket's surplus so that it gets exactly its share
        got = sum((y[k][b] for k in range(k_n)), Fraction(0))
        if got > shares[b] * lam:
            f = shares[b] * lam / got
            for k in range(k_n):
                y[k][b] *= f
    return lam, y
