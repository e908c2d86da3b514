"""Pictures of a results dataset (SPEC §7 ``sweep plot``): one scenario's cost–throughput frontier with
every method's answer, or (``compare``) how far each baseline lands from the exact optimum.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display needed). Units: cost in
$/h, throughput in output tokens/s, $/token in $ per output token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.errors import InputError, Problem
from sweep.vocab import ALL_METHODS, AT_OPTIMUM_REL, EXACT_METHODS, Status

if TYPE_CHECKING:
    from sweep.results.query import Results

LOG_SPAN = 30.0  # an axis whose data spans more than this factor is drawn on a log scale
FORMATS = (".png", ".svg", ".pdf")

# one look per method, the same in every picture; exact methods are hollow and large so that
# several of them on the same point stay visible, baselines filled and small
STYLE: dict[str, dict[str, Any]] = {
    "max_throughput": {"marker": "P", "color": "#8c564b", "ms": 9},
    "weighted": {"marker": "^", "color": "#d62728", "ms": 9},
    "iterative": {"marker": "v", "color": "#ff7f0e", "ms": 9},
    "enumeration": {"marker": "X", "color": "#9467bd", "ms": 9},
    "dinkelbach": {"marker": "o", "color": "#2ca02c", "ms": 17, "hollow": True},
    "charnes_cooper": {"marker": "s", "color": "#17becf", "ms": 14, "hollow": True},
    "pareto": {"marker": "D", "color": "#1f77b4", "ms": 11, "hollow": True},
}
_OTHER = {"marker": "o", "color": "#7f7f7f", "ms": 8}
FRONTIER_COLOR = "#4c72b0"
Row = dict[str, Any]  # one result row, by column


def pick_scenario(res: Results, scenario: str | None) -> str:
    """The scenario to draw: ``scenario`` (a full id or a unique prefix), else the first (in sweep
    order) that has frontier points, else the first with any result. Raises InputError."""
    sc = res.table("scenarios", ["scenario_id"])["scenario_id"].to_pylist()
    sol_ids = set(res.table("solutions", ["scenario_id"])["scenario_id"].to_pylist())
    known = list(dict.fromkeys([*sc, *sorted(sol_ids)]))
    if scenario:
        hits = [s for s in known if s == scenario] or [s for s in known if s.startswith(scenario)]
        if len(hits) == 1:
            return hits[0]
        some = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
        what = "matches several scenarios" if hits else "no such scenario"
        raise InputError([Problem("--scenario", f"{scenario!r}: {what} (scenarios: {some or 'none'})")])
    with_frontier = set(res.table("frontier", ["scenario_id"])["scenario_id"].to_pylist())
    for s in known:
        if s in with_frontier:
            return s
    for s in known:
        if s in sol_ids:
            return s
    raise InputError([Problem(res.label, "no results to plot yet")])


def _check_out(out: str | Path) -> Path:
    p = Path(out)
    if p.suffix.lower() not in FORMATS:
        raise InputError([Problem(str(out), f"unsupported image type {p.suffix or '(none)'!r} "
                                            f"(valid: {', '.join(FORMATS)})")])
    if not p.parent.exists():
        raise InputError([Problem(str(out), f"folder {p.parent} does not exist")])
    return p


def _figure(width_in: float, height_in: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110, layout="constrained")
    return fig, fig.subplots()


def _save(fig: Any, out: Path) -> None:
    try:
        fig.savefig(out)
    except OSError as e:
        raise InputError([Problem(str(out), f"cannot write: {e.strerror or e}")]) from None


def _span(values: list[float]) -> float:
    pos = [v for v in values if v and v > 0 and math.isfinite(v)]
    return max(pos) / min(pos) if pos else 1.0


def _leading(v: float) -> int:
    """The leading digit of a positive number (0 otherwise)."""
    return round(v / 10 ** math.floor(math.log10(v))) if v > 0 else 0


def _money(x: float, _pos: Any = None) -> str:
    if x >= 100:
        return f"${x:,.0f}"
    return f"${x:,.2f}".rstrip("0").rstrip(".") if x >= 1 else f"${x:.3g}"


def _tokens(y: float, _pos: Any = None) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(y) >= div:
            return f"{y / div:.3g}{suffix}"
    return f"{y:.3g}"


def _cpt(x: float) -> str:
    return f"${x:.3e}"


def _title(scenario: dict[str, Any], sid: str) -> str:
    model = scenario.get("model") or "?"
    prompt, output = scenario.get("workload_prompt_tokens"), scenario.get("workload_output_tokens")
    price = str(scenario.get("catalog_price") or "").replace("_", "-")
    head = f"{model} · {prompt} prompt + {output} output tokens" + (f" · {price} prices" if price else "")
    extra = []
    if scenario.get("workload_tpot_slo_ms"):
        extra.append(f"TPOT ≤ {scenario['workload_tpot_slo_ms']:g} ms")
    if scenario.get("workload_min_throughput"):
        extra.append(f"≥ {scenario['workload_min_throughput']:,.0f} tok/s")
    if scenario.get("limits_budget"):
        extra.append(f"budget ≤ ${scenario['limits_budget']:g}/h")
    if scenario.get("limits_max_gpus"):
        extra.append(f"≤ {scenario['limits_max_gpus']} GPUs")
    return head + "\n" + f"scenario {sid}" + ("  ·  " + ", ".join(extra) if extra else "")


def plot_frontier(res: Results, out: str | Path, scenario: str | None = None) -> str:
    """Draw one scenario's exact cost–throughput frontier and each method's answer into ``out``
    (.png, .svg or .pdf). Returns the scenario id drawn. Raises InputError on bad input."""
    path = _check_out(out)
    sid = pick_scenario(res, scenario)
    info, front, answers, points, statuses = _frontier_rows(res, sid)
    exact = [a for a in answers if a["method"] in EXACT_METHODS and a["status"] == Status.OPTIMAL]
    pool = exact or front or answers
    opt = min(pool, key=lambda r: (r["cost_per_token"], -r["throughput_tok_s"])) if pool else None
    opt_label = "exact min $/token" if (exact or front) else "least $/token found (no exact method in this sweep)"

    fig, ax = _figure(13.5, 6.8)
    xs = [r["cost_per_hour"] for r in (*front, *answers, *points)]
    ys = [r["throughput_tok_s"] for r in (*front, *answers, *points)]
    _draw_frontier(ax, front, points)
    budget = info.get("limits_budget")
    if budget and xs and budget <= max(xs) * 1.5:  # near enough to the data to be worth showing
        xs.append(budget)
        ax.axvline(budget, color="#cc4444", ls=":", lw=1.2, zorder=1)
        ax.text(budget, 0.5, f"budget ${budget:g}/h ", transform=ax.get_xaxis_transform(), color="#cc4444",
                fontsize=9, ha="right", va="center", rotation=90)
    log = _span(xs) > LOG_SPAN or _span(ys) > LOG_SPAN
    if opt:
        _draw_optimum(ax, opt, opt_label, xs, log)
    _draw_answers(ax, answers, opt)
    _axes(ax, xs, ys, log)
    if opt:
        _annotate_optimum(ax, opt)
    if not answers:
        ax.text(0.5, 0.5, "no fleet for this scenario\n(methods: " + (", ".join(statuses) or "no results yet") + ")",
                transform=ax.transAxes, ha="center", va="center", color="#777777", fontsize=13)
    elif not front:
        ax.text(0.98, 0.5, "no exact frontier in this dataset\n(run the pareto method)", transform=ax.transAxes,
                ha="right", va="center", color="#777777", fontsize=10)
    ax.set_title(_title(info, sid), fontsize=11.5, loc="left")
    if ax.get_legend_handles_labels()[0]:  # beside the plot: it never hides a point
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False, borderaxespad=0)
    _save(fig, path)
    return sid



def _frontier_rows(res: Results, sid: str) -> tuple[Row, list[Row], list[Row], list[Row], list[str]]:
    """One scenario's (parameters, frontier by cost, best answers, enumeration's points with a fleet,
    statuses), the dataset read once."""
    con = res.connect(["scenarios", "frontier", "best", "solutions"])
    try:
        def rows(q: str) -> list[Row]:
            return con.sql(q, params=[sid]).to_arrow_table().to_pylist()

        info = ([*rows("SELECT * FROM scenarios WHERE scenario_id = ?"), {"scenario_id": sid}])[0]
        front = rows("SELECT * FROM frontier WHERE scenario_id = ? ORDER BY cost_per_hour")
        answers = rows("SELECT * FROM best WHERE scenario_id = ?")
        points = rows("SELECT * FROM solutions WHERE scenario_id = ? AND method = 'enumeration' "
                      "AND cost_per_hour IS NOT NULL AND throughput_tok_s > 0")
        statuses = sorted({r["status"] for r in rows("SELECT status FROM solutions WHERE scenario_id = ?")})
    finally:
        con.close()
    return info, front, answers, points, statuses


def _draw_frontier(ax: Any, front: list[Row], points: list[Row]) -> None:
    """The exact frontier as a staircase, and enumeration's budget points."""
    if front:
        fx = [r["cost_per_hour"] for r in front]
        fy = [r["throughput_tok_s"] for r in front]
        ax.step(fx, fy, where="post", color=FRONTIER_COLOR, lw=1.8, alpha=0.85, zorder=2,
                label=f"exact frontier ({len(front)} points): most tok/s for a $/h")
        ax.plot(fx, fy, "o", ms=3.5, color=FRONTIER_COLOR, zorder=3)
    if points:
        ax.plot([r["cost_per_hour"] for r in points], [r["throughput_tok_s"] for r in points], ".",
                color=STYLE["enumeration"]["color"], alpha=0.45, ms=7, zorder=3,
                label=f"enumeration's budget points ({len(points)} with a fleet)")


def _draw_optimum(ax: Any, opt: Row, label: str, xs: list[float], log: bool) -> None:
    """The optimum as a star, and the line of fleets at its $/token (every fleet is on or below it)."""
    import numpy as np

    cpt = opt["cost_per_token"]
    lo, hi = min(v for v in xs if v > 0) / 1.5, max(xs) * 1.5
    line_x = np.geomspace(lo, hi, 50) if log else np.linspace(0, hi, 50)
    ax.plot(line_x, line_x / (cpt * 3600), ls="--", lw=1, color="#999999", zorder=1,
            label="same $/token as the optimum (all fleets on or below)")
    ax.plot([opt["cost_per_hour"]], [opt["throughput_tok_s"]], marker="*", ms=30, color="#ffd21f",
            markeredgecolor="black", markeredgewidth=1.0, ls="none", zorder=4, label=label)


def _draw_answers(ax: Any, answers: list[Row], opt: Row | None) -> None:
    """Each method's answer in its own marker, labelled with its $/token and its distance from the optimum."""
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    for a in sorted(answers, key=lambda r: order.get(r["method"], 99)):
        st = STYLE.get(a["method"], _OTHER)
        gap = "" if not opt else f" ({(a['cost_per_token'] / opt['cost_per_token'] - 1) * 100:+.2f}%)"
        face = "none" if st.get("hollow") else st["color"]
        ax.plot([a["cost_per_hour"]], [a["throughput_tok_s"]], marker=st["marker"], ms=st["ms"], ls="none",
                markerfacecolor=face, markeredgecolor=st["color"], markeredgewidth=2.2 if st.get("hollow") else 1,
                zorder=5, label=f"{a['method']}: {_cpt(a['cost_per_token'])}/token{gap}")


def _annotate_optimum(ax: Any, opt: Row) -> None:
    text = (f"min $/token: {_cpt(opt['cost_per_token'])}  (${opt['cost_per_token'] * 1e6:.4f} per M tokens)\n"
            f"{opt['throughput_tok_s']:,.0f} tok/s at {_money(opt['cost_per_hour'])}/h, {opt.get('gpus') or '?'} GPUs"
            + (f" ({opt['method']})" if opt.get("method") else " (frontier)"))
    ax.annotate(text, xy=(opt["cost_per_hour"], opt["throughput_tok_s"]), xycoords="data",
                xytext=(0.02, 0.97), textcoords="axes fraction", ha="left", va="top", fontsize=10,
                bbox={"boxstyle": "round,pad=0.4", "fc": "#fff8d6", "ec": "#b8a100"},
                arrowprops={"arrowstyle": "->", "color": "#8a7a00", "lw": 1.2,
                            "connectionstyle": "arc3,rad=0"}, zorder=6)


def _axes(ax: Any, xs: list[float], ys: list[float], log: bool) -> None:
    """Labels with units, dollar and token tick labels; log-log when ``log`` (both axes, so that
    lines of equal $/token stay straight)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlabel("fleet cost ($/h)")
    ax.set_ylabel("throughput (output tokens/s)")
    if not xs:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for axis, fmt in ((ax.xaxis, _money), (ax.yaxis, _tokens)):
        axis.set_major_formatter(FuncFormatter(fmt))
        # on a log axis also label the 2s and 5s: one label per decade is too few to read values off
        axis.set_minor_formatter(FuncFormatter(lambda v, _p, f=fmt: f(v) if log and _leading(v) in (2, 5) else ""))
    # head-room above the data (more on y, for the legend-free corner and annotations)
    for values, scale, set_lim, log_top, lin_top in ((xs, ax.get_xscale(), ax.set_xlim, 1.4, 1.08),
                                                      (ys, ax.get_yscale(), ax.set_ylim, 1.6, 1.12)):
        pos = [v for v in values or () if v > 0]
        if pos:
            set_lim(*((min(pos) / 1.4, max(pos) * log_top) if scale == "log" else (0, max(pos) * lin_top)))
    ax.grid(True, which="major", color="#dddddd", lw=0.8)
    ax.grid(True, which="minor", color="#f0f0f0", lw=0.5)
    ax.set_axisbelow(True)


def plot_compare(res: Results, out: str | Path, where: str | None = None) -> int:
    """Across all scenarios, each baseline method's $/token gap (%) to the exact optimum: a box per
    method with every scenario as a dot. Returns the number of scenarios compared. Raises InputError."""
    import numpy as np

    path = _check_out(out)
    g = res.gaps(where)
    g = g[g["optimum_cost_per_token"].notna() & ~g["method"].isin(EXACT_METHODS)]
    methods = [m for m in ALL_METHODS if m in set(g["method"])] + sorted(set(g["method"]) - set(ALL_METHODS))
    if not methods:
        raise InputError([Problem(res.label, "nothing to compare: needs an exact method (dinkelbach, "
                                            "charnes_cooper or pareto) and a baseline in the same sweep")])
    n_sc = g["scenario_id"].nunique()
    fig, ax = _figure(max(6.5, 2.2 * len(methods) + 2), 6.2)
    data, labels = [], []
    rng = np.random.default_rng(0)
    top = 0.0
    for i, m in enumerate(methods):
        rows = g[g["method"] == m]
        vals = rows["gap_pct"].dropna().clip(lower=0).to_numpy(dtype=float)
        data.append(vals)
        top = max(top, float(vals.max()) if len(vals) else 0.0)
        at_opt = 100.0 * (rows["gap_pct"].fillna(math.inf) <= 100 * AT_OPTIMUM_REL).sum() / max(len(rows), 1)
        missing = int(rows["gap_pct"].isna().sum())
        label = (f"{m}\nat optimum {at_opt:.0f}%\nmedian +{np.median(vals):.2f}%" if len(vals) else f"{m}\nno fleet")
        if len(vals):
            label += f"\nworst +{vals.max():.2f}%"
        if missing:
            label += f"\nno fleet: {missing}"
        labels.append(label)
        st = STYLE.get(m, _OTHER)
        jitter = rng.uniform(-0.18, 0.18, len(vals))
        ax.plot(i + 1 + jitter, vals, ls="none", marker=st["marker"], ms=6, alpha=0.55, color=st["color"], zorder=3)
    ax.boxplot(data, positions=range(1, len(methods) + 1), widths=0.55, showfliers=False, zorder=2,
               medianprops={"color": "black", "lw": 2}, boxprops={"color": "#555555"},
               whiskerprops={"color": "#555555"}, capprops={"color": "#555555"})
    ax.set_xticks(range(1, len(methods) + 1), labels, fontsize=9.5)
    ax.axhline(0, color="#2ca02c", lw=1.5, zorder=1)
    ax.text(0.005, 0, " exact optimum", transform=ax.get_yaxis_transform(), color="#2ca02c", ha="left",
            va="bottom", fontsize=9)
    if top > LOG_SPAN:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(-0.3, top * 1.6)
    else:
        ax.set_ylim(-0.05 * max(top, 1), max(top, 1) * 1.12)
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"+{y:g}%" if y > 0 else f"{y:g}%"))
    ax.set_ylabel("$/token above the exact optimum (%)")
    ax.grid(True, axis="y", color="#e3e3e3")
    ax.set_axisbelow(True)
    ax.set_title(f"How far each baseline lands from the exact min-$/token ({n_sc} scenario{'s' * (n_sc != 1)})",
                 fontsize=11.5, loc="left")
    _save(fig, path)
    return n_sc
