"""One self-contained HTML page of a results dataset (SPEC §7 ``sweep report``).

Everything is inline — CSS, a few lines of JavaScript for the parameter filters, and SVG plots drawn
here (no CDN, no fonts, no images to fetch): the page opens offline. Sections: the sweep's manifest,
the audit table (``Results.audit()``), the best fleet of every scenario, and each scenario's exact
cost–throughput frontier with every method's answer. Units: cost in $/h, throughput in output tokens/s,
$/token in $ per output token.
"""

from __future__ import annotations

import html
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sweep.errors import InputError, Problem
from sweep.vocab import EXACT_METHODS

DEFAULT_MAX_SCENARIOS = 60
# scenario parameters offered as filters when they vary (scenarios.parquet column names)
FILTER_SKIP = {"sweep", "scenario_id", "origin"}
# one colour and marker per method, the same as `sweep plot` (sweep/plot.py STYLE)
COLORS = {"max_throughput": "#8c564b", "weighted": "#d62728", "iterative": "#ff7f0e", "enumeration": "#9467bd",
          "dinkelbach": "#2ca02c", "charnes_cooper": "#17becf", "pareto": "#1f77b4", "min_cost": "#e377c2"}
OTHER_COLOR = "#7f7f7f"
EXACT_RADIUS = {"dinkelbach": 11.0, "charnes_cooper": 8.5, "pareto": 6.0}
FRONTIER_COLOR = "#4c72b0"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:0 0 4px} .muted{color:#666} .note{background:#fff8e1;padding:6px 10px;border-radius:4px}
table{border-collapse:collapse;margin:6px 0} th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
th{background:#f5f5f5;position:sticky;top:0} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;background:#f7f9fc;padding:8px;border-radius:6px}
.filters label{font-size:13px} .grid{display:flex;flex-wrap:wrap;gap:16px}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:10px;width:560px}
.card svg{display:block} .scroll{max-height:520px;overflow:auto;border:1px solid #eee}
.scroll td{white-space:nowrap} .legend span{display:inline-block;margin-right:10px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:-1px}
"""

JS = """
(function(){
  var sels = Array.prototype.slice.call(document.querySelectorAll('select.f'));
  function apply(){
    var want = {};
    sels.forEach(function(s){ if (s.value !== '') { want[s.getAttribute('data-k')] = s.value; } });
    var shown = 0, total = 0;
    document.querySelectorAll('[data-p]').forEach(function(el){
      var p = JSON.parse(el.getAttribute('data-p')), ok = true;
      Object.keys(want).forEach(function(k){ if (String(p[k]) !== want[k]) { ok = false; } });
      el.style.display = ok ? '' : 'none';
      if (el.classList.contains('card')) { total += 1; if (ok) { shown += 1; } }
    });
    var c = document.getElementById('count');
    if (c) { c.textContent = shown + ' of ' + total + ' scenario plots shown'; }
  }
  sels.forEach(function(s){ s.addEventListener('change', apply); });
  var reset = document.getElementById('reset');
  if (reset) { reset.addEventListener('click', function(){ sels.forEach(function(s){ s.value=''; }); apply(); }); }
  apply();
})();
"""


def short(col: str) -> str:
    """A parameter column without its section (workload_prompt_tokens → prompt_tokens) for headers."""
    for prefix in ("workload_", "catalog_", "perf_", "limits_", "solver_", "methods_"):
        if col.startswith(prefix):
            return col[len(prefix):]
    return col


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: Any, kind: str = "") -> str:
    f = _num(v)
    if f is None:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    if kind == "cpt":
        return f"${f:.3e}"
    if kind == "usd":
        return f"${f:,.2f}"
    if kind == "int":
        return f"{f:,.0f}"
    return f"{f:,.4g}" if abs(f) < 1e6 else f"{f:,.0f}"


def alloc_text(alloc: Any) -> str:
    """``2×aws-p4d.24xlarge tp8 pp2`` per entry; a mixed pipeline's stages joined with ``+``."""
    parts = []
    for a in list(alloc if alloc is not None else []):
        stages = a.get("stages") if isinstance(a, dict) else None
        if stages is not None and len(stages):
            name = "+".join(f"{s['offering']}[{s['first_layer']}-{s['last_layer']}]" for s in stages)
        else:
            name = f"{a['offering']} tp{a['tp']}" + (f" pp{a['pp']}" if int(a["pp"]) > 1 else "")
        parts.append(f"{a['replicas']}×{name}")
    return ", ".join(parts) or "-"


# --------------------------------------------------------------------------- SVG


class _Axis:
    """A linear or log axis from data values to pixels, with readable ticks."""

    def __init__(self, values: list[float], lo_px: float, hi_px: float):
        vals = [v for v in values if v > 0] or [1.0]
        lo, hi = min(vals), max(vals)
        self.log = hi / lo > 30
        if self.log:
            self.lo, self.hi = math.log10(lo) - 0.05, math.log10(hi) + 0.05
        else:
            pad = (hi - lo) * 0.08 or hi * 0.1 or 1.0
            self.lo, self.hi = max(0.0, lo - pad), hi + pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, v: float) -> float:
        x = math.log10(max(v, 1e-12)) if self.log else v
        return self.lo_px + (x - self.lo) / (self.hi - self.lo or 1.0) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** e for e in range(math.ceil(self.lo), math.floor(self.hi) + 1)]
        span = self.hi - self.lo
        step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1.0
        for m in (1, 2, 5, 10):
            if span / (step * m) <= 6:
                step *= m
                break
        start = math.ceil(self.lo / step) * step
        return [start + i * step for i in range(int((self.hi - start) / step) + 1)]


def _tick_label(v: float, money: bool) -> str:
    if money:
        return f"${v:,.0f}" if v >= 10 else f"${v:,.2f}".rstrip("0").rstrip(".")
    return f"{v / 1000:,.0f}k" if v >= 10_000 else f"{v:,.0f}"


def frontier_svg(front: list[tuple[float, float]], answers: dict[str, tuple[float, float]],
                 width_px: int = 540, height_px: int = 330) -> str:
    """The exact frontier (cost $/h → tok/s, a step line) and each method's answer as a marker."""
    left, right, top, bottom = 62, 12, 12, 40
    xs = [c for c, _ in front] + [c for c, _ in answers.values()]
    ys = [t for _, t in front] + [t for _, t in answers.values()]
    if not xs:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" height="60" role="img">'
                '<text x="10" y="30" fill="#666">no fleet in this scenario</text></svg>')
    ax = _Axis(xs, left, width_px - right)
    ay = _Axis(ys, height_px - bottom, top)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" height="{height_px}" '
           f'viewBox="0 0 {width_px} {height_px}" role="img" font-size="11" font-family="sans-serif">',
           f'<rect x="{left}" y="{top}" width="{width_px - left - right}" height="{height_px - top - bottom}" '
           'fill="#fbfbfb" stroke="#ccc"/>']
    for t in ax.ticks():
        x = ax(t)
        if left <= x <= width_px - right:
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height_px - bottom}" stroke="#eee"/>'
                       f'<text x="{x:.1f}" y="{height_px - bottom + 14}" text-anchor="middle">'
                       f'{_e(_tick_label(t, True))}</text>')
    for t in ay.ticks():
        y = ay(t)
        if top <= y <= height_px - bottom:
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width_px - right}" y2="{y:.1f}" stroke="#eee"/>'
                       f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(_tick_label(t, False))}</text>')
    out.append(f'<text x="{(left + width_px - right) / 2:.0f}" y="{height_px - 6}" text-anchor="middle">'
               f'fleet cost, $/h{" (log)" if ax.log else ""}</text>')
    out.append(f'<text transform="translate(12,{(top + height_px - bottom) / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">output tok/s{" (log)" if ay.log else ""}</text>')
    pts = sorted(front)
    if pts:
        path = []
        for i, (c, t) in enumerate(pts):  # a step: each frontier point holds until the next cost
            if i:
                path.append(f"L{ax(c):.1f},{ay(pts[i - 1][1]):.1f}")
            path.append(f"{'M' if not i else 'L'}{ax(c):.1f},{ay(t):.1f}")
        out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{FRONTIER_COLOR}" stroke-width="1.5" '
                   'opacity="0.8"/>')
        out += [f'<circle cx="{ax(c):.1f}" cy="{ay(t):.1f}" r="2.5" fill="{FRONTIER_COLOR}"/>' for c, t in pts]
    for m, (c, t) in answers.items():
        color = COLORS.get(m, OTHER_COLOR)
        exact = m in EXACT_METHODS
        r = EXACT_RADIUS.get(m, 8) if exact else 4.5  # nested rings: exact methods on one point stay visible
        fill = "none" if exact else color
        out.append(f'<circle cx="{ax(c):.1f}" cy="{ay(t):.1f}" r="{r}" fill="{fill}" stroke="{color}" '
                   f'stroke-width="2"><title>{_e(m)}: ${c:,.2f}/h, {t:,.0f} tok/s</title></circle>')
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------- page


def _table(headers: list[str], rows: list[list[str]], numeric: set[int], row_attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        cells = "".join(f'<td class="n">{c}</td>' if j in numeric else f"<td>{c}</td>" for j, c in enumerate(r))
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _params_attr(p: dict[str, Any]) -> str:
    return f' data-p="{_e(json.dumps(p, default=str))}"'


def build_report(res: Any, scenarios: list[str] | None = None, max_scenarios: int = DEFAULT_MAX_SCENARIOS) -> str:
    """The page's HTML. ``scenarios``: ids (or unique prefixes) to plot; default the first ``max_scenarios``."""
    import pandas as pd

    manifest = res.manifest()
    sc_df = res.scenarios()
    if sc_df.empty:
        raise InputError([Problem(res.label, "no scenarios in this dataset yet")])
    best = res.best()
    front = res.frontier()
    audit = res.audit()
    ids = list(sc_df["scenario_id"])
    if scenarios:
        from sweep.results.plot import pick_scenario

        chosen = list(dict.fromkeys(pick_scenario(res, s) for s in scenarios))
    else:
        chosen = ids[:max_scenarios]
    varying = [c for c in sc_df.columns if c not in FILTER_SKIP and sc_df[c].astype(str).nunique() > 1]
    params = {r["scenario_id"]: {c: (None if pd.isna(r[c]) else r[c]) for c in varying}
              for r in sc_df[["scenario_id", *varying]].to_dict("records")}
    name = manifest.get("sweep") or (sc_df["sweep"].iloc[0] if "sweep" in sc_df else "")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>sweep report: {_e(name)}</title><style>{CSS}</style></head><body>",
             f"<h1>sweep report: {_e(name)}</h1>",
             f"<p class='muted'>{_e(res.label)} · {len(ids)} scenarios · status {_e(manifest.get('status', '?'))} · "
             f"tasks {_e((manifest.get('tasks') or {}).get('done', '?'))}/{_e((manifest.get('tasks') or {}).get('total', '?'))}"
             f" · updated {_e(manifest.get('updated', '?'))} · page written "
             f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</p>"]
    if varying:
        parts.append(_filters_html(varying, params))
    parts += _audit_html(audit)
    parts += _best_html(ids, best, params, varying)
    parts += _frontiers_html(chosen, len(ids) if not scenarios else 0, best, front, params)
    parts.append(f"<p class='muted'>versions: {_e(json.dumps(manifest.get('versions', {})))}</p>")
    parts.append(f"<script>{JS}</script></body></html>")
    return "\n".join(parts)


def _filters_html(varying: list[str], params: dict[str, dict[str, Any]]) -> str:
    """A select per parameter that varies across the scenarios (the page's script filters by them)."""
    sel = []
    for c in varying:
        values = sorted({str(p[c]) for p in params.values()}, key=lambda v: (_num(v) is None, _num(v) or 0, v))
        opts = "".join(f"<option value='{_e(v)}'>{_e(v)}</option>" for v in values)
        sel.append(f"<label title='{_e(c)}'>{_e(short(c))} <select class='f' data-k='{_e(c)}'><option value=''>all</option>{opts}"
                   "</select></label>")
    return ("<h2>Filter by parameter</h2><div class='filters'>" + "".join(sel) +
            "<button id='reset' type='button'>reset</button> <span id='count' class='muted'></span></div>")


def _audit_html(audit: Any) -> list[str]:
    parts = ["<h2>Audit: how each method compares with the exact optimum</h2>"]
    if audit is not None and not audit.empty:
        cols = list(audit.columns)
        rows = [[_e(_fmt(v) if not isinstance(v, str) else v) for v in r] for r in audit.itertuples(index=False)]
        parts.append(_table(cols, rows, {i for i, c in enumerate(cols) if c != "method"}))
        parts.append("<p class='muted'>at_optimum_pct: share of scenarios where the method's $/token equals the exact "
                     "minimum; gaps are % above it; no_fleet: scenarios where the method found none.</p>")
    else:
        parts.append("<p class='muted'>no exact method in this sweep: nothing to compare with</p>")
    return parts


def _best_html(ids: list[str], best: Any, params: dict[str, dict[str, Any]], varying: list[str]) -> list[str]:
    """Per scenario, the least $/token over all methods (an exact method's answer when proven)."""
    parts = ["<h2>Best fleet of each scenario</h2>"]
    headers = ["scenario", *map(short, varying), "method", "$/token", "tok/s", "$/h", "GPUs", "fleet"]
    rows, attrs = [], []
    for sid in ids:
        b = best[best["scenario_id"] == sid]
        if b.empty:
            rows.append([_e(sid), *[_e(params[sid][c]) for c in varying], "-", "no fleet", "-", "-", "-", "-"])
        else:
            b = b.sort_values(["cost_per_token", "throughput_tok_s"], ascending=[True, False])
            exact = b[b["method"].isin(EXACT_METHODS)]
            r = (exact if not exact.empty else b).iloc[0]
            rows.append([_e(sid), *[_e(params[sid][c]) for c in varying], _e(r["method"]),
                         _e(_fmt(r["cost_per_token"], "cpt")), _e(_fmt(r["throughput_tok_s"], "int")),
                         _e(_fmt(r["cost_per_hour"], "usd")), _e(_fmt(r["gpus"], "int")),
                         _e(alloc_text(r["allocation"]))])
        attrs.append(_params_attr(params[sid]))
    n0 = 1 + len(varying)
    parts.append("<div class='scroll'>" + _table(headers, rows, {n0 + 1, n0 + 2, n0 + 3, n0 + 4}, attrs) + "</div>")
    return parts


def _frontiers_html(chosen: list[str], n_all: int, best: Any, front: Any, params: dict[str, dict[str, Any]]
                    ) -> list[str]:
    """A card per chosen scenario: its frontier and the methods' answers as a picture and a table.
    ``n_all``: the number of scenarios when the chosen ones are the first few (0 when chosen by id)."""
    parts = ["<h2>Frontier and method answers per scenario</h2>"]
    if n_all > len(chosen):
        parts.append(f"<p class='note'>Showing the first {len(chosen)} of {n_all} scenarios (in sweep order); "
                     "choose others with <code>sweep report RESULTS --scenario ID...</code> or raise "
                     "<code>--max-scenarios</code>.</p>")
    methods = sorted(set(best["method"]), key=lambda m: list(COLORS).index(m) if m in COLORS else 99)
    legend = "".join(f"<span><i style='background:{COLORS.get(m, OTHER_COLOR)}'></i>{_e(m)}</span>" for m in methods)
    parts.append(f"<div class='legend'><span><i style='background:{FRONTIER_COLOR}'></i>exact frontier</span>"
                 f"{legend} <span class='muted'>(hollow = exact method)</span></div><div class='grid'>")
    for sid in chosen:
        f = front[front["scenario_id"] == sid]
        pts = [(float(c), float(t)) for c, t in zip(f["cost_per_hour"], f["throughput_tok_s"], strict=True)]
        b = best[best["scenario_id"] == sid]
        answers = {str(r["method"]): (float(r["cost_per_hour"]), float(r["throughput_tok_s"]))
                   for _, r in b.iterrows() if _num(r["cost_per_hour"]) is not None}
        desc = ", ".join(f"{k}={v}" for k, v in params.get(sid, {}).items())
        rows = [[_e(m), _e(_fmt(r["cost_per_token"], "cpt")), _e(_fmt(r["throughput_tok_s"], "int")),
                 _e(_fmt(r["cost_per_hour"], "usd")), _e(alloc_text(r["allocation"]))]
                for m, r in ((str(r["method"]), r) for _, r in b.sort_values("cost_per_token").iterrows())]
        parts.append(f"<div class='card'{_params_attr(params.get(sid, {}))}><h3>scenario {_e(sid)}</h3>"
                     f"<div class='muted'>{_e(desc) or '&nbsp;'} · {len(pts)} frontier points</div>"
                     f"{frontier_svg(pts, answers)}"
                     + (_table(["method", "$/token", "tok/s", "$/h", "fleet"], rows, {1, 2, 3}) if rows else
                        "<p class='muted'>no method found a fleet (limits cannot be met)</p>") + "</div>")
    parts.append("</div>")
    return parts


def write_report(text: str, out: Path) -> None:
    """Write atomically: a hidden temporary name in the same folder, then rename."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
