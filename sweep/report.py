"""Plain-text tables for people (the CLI's default output)."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_cpt(cpt: float | None) -> str:
    return "-" if cpt is None else f"${cpt:.3e}"


def fmt_tok_s(x: float | None, grouping: bool = True) -> str:
    """Tokens/s as given, to at most 3 decimals (966.586 stays 966.586; 17512.0 prints 17,512, or 17512
    without ``grouping``)."""
    return "-" if x is None else (f"{x:,.3f}" if grouping else f"{x:.3f}").rstrip("0").rstrip(".")


def fmt_money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.4f}".rstrip("0").rstrip(".") if x < 1 else f"${x:,.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A fixed-width table; ``align`` has one of 'l'/'r' per column (default: numbers right)."""
    cells = [[("-" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def is_num(s: str) -> bool:
        return s.lstrip("$+-").replace(",", "").replace(".", "", 1).replace("e-", "").replace("e+", "").replace("%", "").isdigit()

    right = [
        (align[i] == "r") if i < len(align) else bool(cells) and all(is_num(r[i]) or r[i] == "-" for r in cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(widths[i]) if right[i] else v.ljust(widths[i]) for i, v in enumerate(values)).rstrip()

    out = [line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)
