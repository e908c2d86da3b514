"""Plain-text tables for people (the CLI's default output)."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_cpt(cpt: float | None) -> str:
    return "-" if cpt is None else f"${cpt:.3e}"


def fmt_money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.4f}".rstrip("0").rstrip(".") if x < 1 else f"${x:,.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A fixed-width table; ``align`` has one of 'l'/'r' per column (default: numbers right)."""
    cells = [[("-" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def is_num(s: str) -> bool:
        return s.lstrip("$+-").replace(",", "").replace(".", "", 1).replace("e-", "").replace("e+", "").replace("%", "").isdigit()

    def cell(i: int, s: str) -> str:
        a = align[i] if i < len(align) else ("r" if all(is_num(r[i]) or r[i] == "-" for r in cells) and cells else "l")
        return s.rjust(widths[i]) if a == "r" else s.ljust(widths[i])

    out = ["  ".join(cell(i, h) for i, h in enumerate(headers)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(cell(i, s) for i, s in enumerate(r)).rstrip() for r in cells]
    return "\n".join(out)
