"""``sweep candidates SCENARIO [--json] [--kept]``."""

from __future__ import annotations

import argparse
import json

from sweep.fleet.calibrate import error_band_pct
from sweep.fleet.candidates import build_candidates, candidate_rows
from sweep.inputs.load import load_scenario
from sweep.report import fmt_cpt, fmt_money, fmt_tok_s, table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario file (.toml or config.csv)")
    p.add_argument("--json", action="store_true", help="one JSON object per candidate per line")
    p.add_argument("--kept", action="store_true", help="only the kept candidates")


def run(args: argparse.Namespace) -> int:
    sc = load_scenario(args.scenario)
    tab = build_candidates(sc)
    rows = candidate_rows(sc, tab)
    for r in rows:  # the model's error on published rows of the layout's GPU family (None: unmeasured)
        r["error_band_pct"] = error_band_pct(r["gpu"]) if r["kept"] and sc.perf.source == "roofline" else None
    if args.kept:
        rows = [r for r in rows if r["kept"]]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    kept = [r for r in rows if r["kept"]]
    kept.sort(key=lambda r: (r["cost_per_token"] is None, r["cost_per_token"] or 0.0))
    print(f"{sc.model.model}: {len(tab.kept)} kept, {len(tab.dropped)} dropped; kept, cheapest $/token first")
    if sc.mix:
        print("request mix: tok/s is one replica on the whole mix ('-': it cannot serve every bucket), then on "
              "each bucket alone: " + "; ".join(b.describe() for b in sc.mix))
    mixed = any("stages" in r for r in kept)  # mixed-GPU pipelines: one more column, layers per stage
    buckets = [f"{b.prompt_tokens}/{b.output_tokens}" for b in sc.mix]
    print(table(
        ["offering", "gpu", "tp", "pp", "gpus", "tok/s", *buckets, "batch", "tpot_ms", "$/h", "$/token", "error band"]
        + (["stages"] if mixed else []),
        [[r["offering"], r["gpu"], r["tp"], r["pp"], r["gpus"],
          fmt_tok_s(r["throughput_tok_s"]) if r["throughput_tok_s"] else "-",
          *(fmt_tok_s(v) if v else "-" for v in r.get("bucket_tok_s", ())),
          "?" if r["batch"] is None else r["batch"], "?" if r["tpot_ms"] is None else f"{r['tpot_ms']:.1f}",
          fmt_money(r["cost_per_hour"]), fmt_cpt(r["cost_per_token"]) if r["cost_per_token"] else "-"]
         + [_band_text(r["error_band_pct"], sc.perf.source)] + ([_stages_text(r)] if mixed else []) for r in kept],
    ))
    dropped = [r for r in rows if not r["kept"]]
    if dropped:
        print()
        print("dropped:")
        print(table(["offering", "gpu", "tp", "pp", "reason"],
                    [[r["offering"], r["gpu"], r["tp"], r["pp"], r["reason"]] for r in dropped], align="lllll"))
    return 0


def _band_text(band: list[float] | None, source: str) -> str:
    """``-12..+32%``: the roofline's error on published rows of this GPU family (README, "The performance model")."""
    if source != "roofline":
        return "-"
    return "unmeasured" if band is None else f"{band[0]:+.0f}..{band[1]:+.0f}%"


def _stages_text(row: dict) -> str:
    """``A100:tp2[1-30] + L4:tp4[31-80]`` for a mixed pipeline, ``-`` otherwise."""
    return " + ".join(f"{s['offering']}:tp{s['tp']}[{s['first_layer']}-{s['last_layer']}]"
                      for s in row.get("stages", ())) or "-"
