"""The scenario schema (SPEC §3.2): every key with its type, default and check, the design note's
aliases, and the one validation pass over raw dotted-key values (:func:`check_params`). Files are read
and catalogs resolved by :mod:`sweep.inputs.scenario`; the typed view is :mod:`sweep.inputs.settings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sweep.errors import Problems
from sweep.vocab import DTYPES

Check = Callable[[Any], str | None]  # returns a message when the value is wrong


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def has_nul(v: Any) -> bool:
    """Whether a value (a string, or one inside lists and tables, keys included) holds a NUL character."""
    if isinstance(v, str):
        return "\0" in v
    if isinstance(v, Mapping):
        return any(has_nul(k) or has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(has_nul(x) for x in v)
    return False


def _at_most(limit: int) -> Check:
    def check(v: Any) -> str | None:
        return None if 0 < v <= limit else f"must be between 1 and {limit}"

    return check


def _fraction(v: Any) -> str | None:
    return None if 0 < v <= 1 else "must be in (0, 1]"


def _open_fraction(v: Any) -> str | None:
    return None if 0 < v < 1 else "must be in (0, 1)"


def _percentile(v: Any) -> str | None:
    return None if 0 < v < 100 and math.isfinite(v) else "must be in (0, 100)"


def _one_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(repr(c) for c in choices)}, got {v!r}"

    return check


def _positive_ints(v: Any) -> str | None:
    if not v:
        return "must list at least one value"
    return None if all(x > 0 for x in v) else "values must be > 0"


def _positive_map(v: Any) -> str | None:
    bad = [f"{k} = {x}" for k, x in v.items() if x <= 0]
    return f"values must be > 0, got {', '.join(bad)}" if bad else None


@dataclass(frozen=True)
class Key:
    kind: str  # int, float, str, bool, list[int], list[str], map[int]
    default: Any
    check: Check | None = None
    doc: str = ""


def parse_link_entry(entry: str) -> tuple[str, str, float] | str:
    """``"A|B=25"`` → ``("A", "B", 25.0)``, or a message saying what is wrong with it."""
    pair, eq, value = entry.partition("=")
    a, bar, b = pair.partition("|")
    a, b = a.strip(), b.strip()
    try:
        gbps = float(value)
    except ValueError:
        gbps = -1.0
    if not eq or not bar or not a or not b or "|" in b or not (gbps >= 0 and math.isfinite(gbps)):
        return f"'{entry}' is not 'OFFERING_A|OFFERING_B=GBPS' (GB/s >= 0)"
    if a == b:
        return f"'{entry}' names one offering twice (links within an offering use its net_gbps)"
    return a, b, gbps


def _link_entries(v: Any) -> str | None:

    return "; ".join(m for m in map(parse_link_entry, v) if isinstance(m, str)) or None


SCHEMA: dict[str, Key] = {
    "model": Key("str", None, None, "a model name from the models catalog (required)"),
    "workload.prompt_tokens": Key("int", 512, _positive, "mean input length, tokens"),
    "workload.output_tokens": Key("int", 256, _positive, "mean output length, tokens"),
    "workload.tpot_slo_ms": Key("float", 0.0, _non_negative, "per-output-token latency limit, ms (0 = none)"),
    "workload.min_throughput": Key("float", 0.0, _non_negative, "output tokens/s the fleet must serve (0 = none)"),
    "workload.request_rate": Key("float", 0.0, _non_negative, "requests/s the fleet must serve (0 = none)"),
    "workload.ttft_slo_ms": Key("float", 0.0, _non_negative, "time-to-first-token limit at the planned load, ms (0 = none)"),
    "workload.slo_percentile": Key("float", 90.0, _percentile, "percentile the TTFT limit (and, with a TTFT limit "
                                   "or request rate, the TPOT limit) applies to"),
    "workload.mix": Key("list[table]", [], None, "request mix: [{prompt_tokens, output_tokens, share}, …] (SPEC §5.2)"),
    "workload.trace": Key("str", "", None, "CSV of requests (prompt_tokens, output_tokens), bucketed into a mix"),
    "catalog.gpus": Key("str", "builtin", None, "'builtin' or a CSV path"),
    "catalog.offerings": Key("str", "builtin", None, "'builtin' or a CSV path"),
    "catalog.models": Key("str", "builtin", None, "'builtin' or a CSV path"),
    "catalog.price": Key("str", "on_demand", _one_of("on_demand", "spot")),
    "catalog.only": Key("list[str]", [], None, "keep only these gpu or offering names"),
    "catalog.max_nodes": Key("map[int]", {}, _positive_map, "per-offering availability override"),
    "limits.budget": Key("float", 0.0, _non_negative, "$/hour cap (0 = none)"),
    "limits.max_gpus": Key("int", 0, _non_negative, "GPU cap (0 = none)"),
    "perf.source": Key("str", "roofline", _one_of("roofline", "profile", "profile+roofline")),
    "perf.dtype": Key("str", "bf16", _one_of(*DTYPES)),
    "perf.profile": Key("str", "", None, "CSV: offering, tp, pp, throughput_tok_s [, tpot_ms, batch]"),
    "perf.tp": Key("list[int]", [1, 2, 4, 8], _positive_ints),
    "perf.pp": Key("list[int]", [1, 2, 4], _positive_ints),
    "perf.min_batch": Key("int", 1, _positive, "smallest batch a replica must hold"),
    "perf.max_batch": Key("int", 256, _positive, "engine's largest batch (concurrent sequences)"),
    "perf.bw_efficiency": Key("float", 1.0, _fraction,
                              "scale on the GPU family's sustained fraction of peak memory bandwidth (1 = as calibrated)"),
    "perf.compute_efficiency": Key("float", 1.0, _fraction,
                                   "scale on the GPU family's sustained fraction of peak FLOPS (1 = as calibrated)"),
    "perf.prefill_efficiency": Key("float", 1.0, _fraction, "further scale on the sustained FLOPS in prefill"),
    "perf.mem_fraction": Key("float", 0.90, _fraction,
                             "share of the memory left after weights and overhead_gb that the KV cache may use"),
    "perf.overhead_gb": Key("float", 1.5, _non_negative, "per-GPU memory for activations/runtime, GB"),
    "perf.allreduce_latency_us": Key("float", 8.0, _non_negative,
                                     "fixed cost of a stage-to-stage hop (and of an all-reduce where the GPU "
                                     "family has none of its own), µs"),
    "perf.calibration": Key("str", "", None, "TOML from `sweep calibrate`: per-GPU-family sustained fractions"),
    "perf.mixed": Key("auto|bool", "auto", None,
                      "mixed-GPU pipelines (SPEC §4.1): 'auto' (when no single-offering layout holds the model), "
                      "true or false"),
    "perf.max_stages": Key("int", 4, _positive, "most stages of a mixed pipeline"),
    "perf.max_gpu_types": Key("int", 2, _positive, "most GPU types in one mixed pipeline"),
    "perf.max_mixed": Key("int", 4, _non_negative,
                          "most mixed pipelines kept per set of offerings, cheapest per token first (0 = no cap)"),
    "perf.link_gbps": Key("list[str]", [], _link_entries,
                          "inter-stage network of a mixed pipeline between two offerings, 'A|B=GB/s' "
                          "(default: the slower node network; 0 = not connected)"),
    "solver.name": Key("str", "highs", _one_of("highs", "cbc")),
    "solver.time_limit_s": Key("float", 60.0, _positive),
    "methods.enumeration.budget_min": Key("float", 0.30, _positive, "$/hour"),
    "methods.enumeration.budget_max": Key("float", 34.65, _positive, "$/hour"),
    "methods.enumeration.points": Key("int", 15, _at_most(1000)),
    "methods.iterative.target_cpt": Key("float", 1e-6, _positive, "$/token target"),
    "methods.iterative.tighten": Key("float", 0.95, _open_fraction),
    "methods.iterative.max_iter": Key("int", 10, _at_most(1000)),
    "methods.weighted.weight": Key("float", 0.5, _non_negative),
}
SECTIONS = sorted({k.rsplit(".", 1)[0] for k in SCHEMA if "." in k})
# the design note's config.csv names
ALIASES = {
    "max_cost_per_token": "methods.iterative.target_cpt",
    "cost_throughput_weight": "methods.weighted.weight",
    "budget": "limits.budget",
    "max_hourly_cost": "limits.budget",
    "time_limit_seconds": "solver.time_limit_s",
}


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables to dotted keys; stops at schema keys whose value is itself a table."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in SCHEMA:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _coerce(kind: str, value: Any) -> tuple[Any, str | None]:
    """Value converted to ``kind``, or an error message. Ints are accepted where floats are."""

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if kind == "int":
        if is_int(value):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        return None, f"must be a whole number, got {value!r}"
    if kind == "float":
        if is_int(value) or (isinstance(value, float) and math.isfinite(value)):
            return float(value), None
        return None, f"must be a number, got {value!r}"
    if kind == "str":
        return (value, None) if isinstance(value, str) else (None, f"must be a string, got {value!r}")
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else (None, f"must be true or false, got {value!r}")
    if kind == "auto|bool":
        if isinstance(value, bool) or value == "auto":
            return value, None
        return None, f"must be \"auto\", true or false, got {value!r}"
    if kind == "list[table]":  # the tables' own keys are checked by their reader (sweep.inputs.mix)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            return None, f"must be a list of tables, got {value!r}"
        return [dict(v) for v in value], None
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list):
            value = [value]
        out = []
        for item in value:
            v, err = _coerce(inner, item)
            if err:
                return None, f"list items {err}"
            out.append(v)
        return out, None
    if kind == "map[int]":
        if not isinstance(value, Mapping):
            return None, f"must be a table of name = number, got {value!r}"
        m = {}
        for k, item in value.items():
            v, err = _coerce("int", item)
            if err:
                return None, f"'{k}' {err}"
            m[str(k)] = v
        return m, None
    raise ValueError(kind)  # a schema bug, not user input


def _valid_keys_hint(key: str) -> str:
    section = key.rsplit(".", 1)[0] if "." in key else ""
    keys = [k for k in SCHEMA if k.rsplit(".", 1)[0] == section] if section in SECTIONS else []
    if not keys:
        keys = sorted({"model", *SECTIONS})
        return f"valid top-level keys and sections: {', '.join(keys)}"
    return f"valid keys: {', '.join(keys)}"


def check_params(raw: Mapping[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    """Every schema key with its default or validated value; unknown keys are problems."""
    params: dict[str, Any] = {}
    for key, _value in raw.items():
        if key not in SCHEMA:
            problems.add(f"{where}: {key}" if where else key, f"unknown key ({_valid_keys_hint(key)})")
    for key, spec in SCHEMA.items():
        if key not in raw:
            params[key] = spec.default
            continue
        v, err = _coerce(spec.kind, raw[key])
        if err is None and has_nul(v):
            err = "must not contain a NUL character"
        if err is None and spec.check is not None:
            err = spec.check(v)
        if err:
            problems.add(f"{where}: {key}" if where else key, err)
            params[key] = spec.default
        else:
            params[key] = v
    if params["model"] is None and "model" not in raw:
        problems.add(f"{where}: model" if where else "model", "missing: name a model from the models catalog")
    e_min, e_max = params["methods.enumeration.budget_min"], params["methods.enumeration.budget_max"]
    if e_min > e_max:
        problems.add(
            f"{where}: methods.enumeration" if where else "methods.enumeration",
            f"budget_min ({e_min}) is above budget_max ({e_max})",
        )
    if params["workload.ttft_slo_ms"] > 0 and params["perf.source"] != "roofline":
        problems.add(f"{where}: workload.ttft_slo_ms" if where else "workload.ttft_slo_ms",
                     f"needs perf.source = 'roofline' (profile rows carry no prefill time to model TTFT), "
                     f"got '{params['perf.source']}'")
    if params["perf.source"] != "roofline" and not params["perf.profile"]:
        problems.add(f"{where}: perf.profile" if where else "perf.profile", f"required when perf.source = '{params['perf.source']}'")
    return params
