"""Scenarios (SPEC §3.2): one problem, from TOML or the design note's ``config.csv``.

All validation happens here, in one pass: every problem is reported with its file and key/row,
then :class:`~sweep.errors.InputError` is raised. Nothing downstream checks user input again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from sweep.errors import InputError, Problems
from sweep.inputs.calibration import Family, read_calibration
from sweep.inputs.catalog import (
    Catalog,
    Gpu,
    Model,
    Offering,
    file_digest,
    load_gpus,
    load_models,
    load_offerings,
    resolve_path,
)
from sweep.inputs.mix import Bucket, mean_output_tokens, parse_mix, read_trace

Check = Callable[[Any], str | None]  # returns a message when the value is wrong


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\0" in v
    if isinstance(v, Mapping):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_nul(x) for x in v)
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
    "perf.dtype": Key("str", "bf16", _one_of("bf16", "fp8", "int4")),
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
_FILE_KEYS = ("catalog.gpus", "catalog.offerings", "catalog.models", "perf.profile", "perf.calibration",
              "workload.trace")
# keys added after datasets existed: left out of the scenario id at their defaults, so a scenario's id
# (and a re-run's recognition of finished work) does not change with them
_LATER_KEYS = ("workload.request_rate", "workload.ttft_slo_ms", "workload.slo_percentile", "workload.mix",
               "workload.trace")


@dataclass(frozen=True)
class ProfileRow:
    offering: str
    tp: int
    pp: int
    throughput_tok_s: float
    tpot_ms: float | None
    batch: int | None
    prompt_tokens: int | None = None  # the request lengths the row was measured at (None: any)
    output_tokens: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated problem: every key of :data:`SCHEMA` resolved, catalogs loaded and filtered.

    ``offerings`` are the ones this scenario may rent, with its ``max_nodes`` overrides applied;
    ``price_units`` of each is the price it pays (on-demand or spot), in 1e-4 $/h units.
    """

    params: dict[str, Any]
    origin: str
    catalog: Catalog
    model: Model
    offerings: dict[str, Offering]
    profile: tuple[ProfileRow, ...] = ()
    digests: dict[str, str] = field(default_factory=dict)
    calibration: tuple[Family, ...] = ()  # perf.calibration's families, read at load
    mix: tuple[Bucket, ...] = ()  # workload.mix or workload.trace as buckets (SPEC §5.2); () = one bucket

    @property
    def mean_output_tokens(self) -> Fraction:
        """Output tokens per request: ō of the mix, else workload.output_tokens (exact)."""
        return mean_output_tokens(self.mix) if self.mix else Fraction(self.params["workload.output_tokens"])

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def gpu(self, offering: str) -> Gpu:
        return self.catalog.gpus[self.offerings[offering].gpu]

    def price_units(self, offering: str) -> int:
        o = self.offerings[offering]
        return o.spot_price_units if self.params["catalog.price"] == "spot" else o.price_units

    @property
    def scenario_id(self) -> str:
        """Stable hash of the resolved content, referenced data files included (not their paths)."""
        content = {k: v for k, v in self.params.items()
                   if k not in _FILE_KEYS and not (k in _LATER_KEYS and v == SCHEMA[k].default)}
        content["files"] = self.digests
        blob = json.dumps(content, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- parsing


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


def _parse_scalar(text: str) -> Any:
    """A config.csv cell: TOML literal syntax where it parses (numbers, bools, lists), else a string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip('"').strip("'")


def read_config_csv(path: Path, problems: Problems) -> dict[str, Any]:
    """The note's ``config.csv``: ``key,value`` (or ``parameter,value``) rows, ``#`` comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problems.add(str(path), f"cannot read file ({e.__class__.__name__})")
        return {}
    out: dict[str, Any] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        key = row[0].strip()
        if lineno == 1 and key.lower() in ("key", "parameter") and len(row) > 1 and row[1].strip().lower() == "value":
            continue
        value = ",".join(row[1:])
        if not value.strip().startswith("["):
            value = value.split("#", 1)[0]
        if not value.strip():
            problems.add(f"{path}:{lineno}", f"row '{key}' has no value (expected key,value)")
            continue
        out[ALIASES.get(key, key)] = _parse_scalar(value)
    return out


def read_scenario_file(path: Path, problems: Problems) -> dict[str, Any]:
    """Raw dotted-key values from a TOML or config.csv file (not yet validated)."""
    if not path.exists():
        problems.add(str(path), "file not found")
        return {}
    if path.is_dir():
        problems.add(str(path), "is a folder, expected a scenario file (.toml or config .csv)")
        return {}
    if path.suffix.lower() == ".csv":
        return read_config_csv(path, problems)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {ALIASES.get(k, k): v for k, v in flatten(data).items()}
    except tomllib.TOMLDecodeError as e:
        problems.add(str(path), f"invalid TOML: {e}")
    except (OSError, UnicodeDecodeError) as e:
        problems.add(str(path), f"cannot read file ({e.__class__.__name__})")
    except RecursionError:
        problems.add(str(path), "tables nested too deeply")
    return {}


# --------------------------------------------------------------------------- validation


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
        if err is None and _has_nul(v):
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


@lru_cache(maxsize=64)
def _load_catalog_files(gpus_p: str, offerings_p: str, models_p: str, stamp: str) -> tuple[Catalog, tuple]:
    problems = Problems()
    broken: set[str] = set()
    gpus = load_gpus(Path(gpus_p), problems, broken)
    offerings = load_offerings(Path(offerings_p), gpus, problems, gpus_p, broken)
    models = load_models(Path(models_p), problems, broken)
    return Catalog(gpus, offerings, models, frozenset(broken)), tuple(problems.items)


def load_catalog(params: Mapping[str, Any], base_dir: Path, problems: Problems) -> tuple[Catalog, dict[str, str]]:
    paths = {k: resolve_path(params[f"catalog.{k}"], k, base_dir) for k in ("gpus", "offerings", "models")}
    digests = {f"catalog.{k}": file_digest(p) for k, p in paths.items()}
    catalog, found = _load_catalog_files(
        str(paths["gpus"]), str(paths["offerings"]), str(paths["models"]), json.dumps(digests, sort_keys=True)
    )
    problems.items.extend(found)
    return catalog, digests


def read_profile(path: Path, offerings: Mapping[str, Offering], problems: Problems,
                 broken: frozenset[str] = frozenset()) -> tuple[ProfileRow, ...]:
    """Profile rows (SPEC §3.2). Offering names are checked only against a catalog that loaded;
    a row naming an offering in ``broken`` (a catalog row with its own problem) is skipped silently."""
    label = str(path)
    before = len(problems.items)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(label, "profile file not found")
        return ()
    except (OSError, UnicodeDecodeError) as e:
        problems.add(label, f"cannot read file ({e.__class__.__name__})")
        return ()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        problems.add(label, "empty file: expected a header row and at least one data row")
        return ()
    reader = csv.DictReader(lines)
    cols = ["offering", "tp", "pp", "throughput_tok_s", "tpot_ms", "batch", "prompt_tokens", "output_tokens"]
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header  # " tp" and "tp" name the same column
    bad = [h for h in header if h not in cols]
    missing = [c for c in cols[:4] if c not in header]
    for h in bad:
        problems.add(label, f"unknown column '{h}' (valid: {', '.join(cols)})")
    for c in missing:
        problems.add(label, f"missing required column '{c}'")
    if bad or missing:
        return ()
    rows = []
    seen = set()
    n_data = 0
    for i, r in enumerate(reader, start=2):
        n_data += 1
        where = f"{label}:{i}"
        name = (r.get("offering") or "").strip()
        if name not in offerings:
            if offerings and name not in broken:  # else the catalog's own problem is already reported
                problems.add(where, f"unknown offering '{name}' (known: {', '.join(sorted(offerings))})")
            continue
        try:
            tp, pp = int(r["tp"]), int(r["pp"])
            thr = float(r["throughput_tok_s"])
            tpot = float(r["tpot_ms"]) if (r.get("tpot_ms") or "").strip() else None
            batch = int(r["batch"]) if (r.get("batch") or "").strip() else None
            lengths = [int(r[k]) if (r.get(k) or "").strip() else None for k in ("prompt_tokens", "output_tokens")]
        except (TypeError, ValueError):
            problems.add(where, "tp, pp, batch, prompt_tokens, output_tokens must be whole numbers and "
                                "throughput_tok_s, tpot_ms numbers")
            continue
        if tp <= 0 or pp <= 0 or not thr > 0 or not math.isfinite(thr) or (tpot is not None and tpot <= 0):
            problems.add(where, "tp, pp, throughput_tok_s (and tpot_ms) must be > 0")
            continue
        if (lengths[0] is None) != (lengths[1] is None) or any(v is not None and v <= 0 for v in lengths):
            problems.add(where, "prompt_tokens and output_tokens go together, both whole numbers > 0")
            continue
        if (name, tp, pp, *lengths) in seen:
            problems.add(where, f"duplicate row for {name} tp={tp} pp={pp}"
                         + (f" at {lengths[0]}/{lengths[1]} tokens" if lengths[0] else ""))
            continue
        seen.add((name, tp, pp, *lengths))
        rows.append(ProfileRow(name, tp, pp, thr, tpot, batch, *lengths))
    if not n_data and len(problems.items) == before:
        problems.add(label, "no data rows")
    return tuple(rows)


def build_scenario(raw: Mapping[str, Any], base_dir: Path, origin: str) -> Scenario:
    """Validate raw dotted-key values (paths relative to ``base_dir``); raises InputError with every problem."""
    problems = Problems()
    params = check_params(raw, origin, problems)
    catalog, digests = load_catalog(params, base_dir, problems)
    where = (lambda k: f"{origin}: {k}") if origin else (lambda k: k)
    model = catalog.models.get(params["model"]) if params["model"] else None
    if params["model"] and catalog.models and model is None:
        problems.add(where("model"), f"unknown model '{params['model']}' (known: {', '.join(sorted(catalog.models))})")
    if catalog.gpus is not None and not catalog.offerings and not problems:
        problems.add(where("catalog.offerings"), "no offerings")
    offerings = dict(catalog.offerings)
    # references are checked only against catalogs that loaded (a missing or empty one is its own problem)
    known_offerings = ", ".join(sorted(catalog.offerings))
    only = params["catalog.only"]
    if only:
        names = set(catalog.offerings) | set(catalog.gpus)
        for name in only:
            if name not in names and name not in catalog.broken and catalog.offerings and catalog.gpus:
                problems.add(where("catalog.only"), f"unknown gpu or offering '{name}' (known gpus: "
                             f"{', '.join(sorted(catalog.gpus))}; known offerings: {known_offerings})")
        offerings = {k: o for k, o in offerings.items() if k in only or o.gpu in only}
        if not offerings and catalog.offerings and not problems:
            problems.add(where("catalog.only"), f"keeps no offering: no offering is, or has a GPU, named in {only}")
    for name, n in params["catalog.max_nodes"].items():
        if name not in catalog.offerings:
            if catalog.offerings and name not in catalog.broken:
                problems.add(where("catalog.max_nodes"), f"unknown offering '{name}' (known: {known_offerings})")
        elif name in offerings:
            offerings[name] = _replace_max_nodes(offerings[name], n)
    profile: tuple[ProfileRow, ...] = ()
    if params["perf.profile"]:
        ppath = resolve_path(params["perf.profile"], "profile", base_dir)
        digests["perf.profile"] = file_digest(ppath)
        profile = read_profile(ppath, catalog.offerings, problems, catalog.broken)
    calibration = _load_calibration(params, base_dir, digests, problems) if params["perf.calibration"] else ()
    mix = _load_mix(params, base_dir, digests, problems, where)
    problems.raise_if_any()
    assert model is not None  # guaranteed: a missing or unknown model is a problem raised above
    return Scenario(params, origin, catalog, model, offerings, profile, digests, calibration, mix)


def _load_mix(params: dict[str, Any], base_dir: Path, digests: dict[str, str], problems: Problems,
              where: Callable[[str], str]) -> tuple[Bucket, ...]:
    """``workload.mix`` or ``workload.trace`` as buckets (a trace's content is hashed into the id)."""
    if params["workload.mix"] and params["workload.trace"]:
        problems.add(where("workload.mix"), "give workload.mix or workload.trace, not both")
        return ()
    if params["workload.trace"]:
        tpath = resolve_path(params["workload.trace"], "trace", base_dir)
        if tpath.is_file():
            digests["workload.trace"] = file_digest(tpath)
        return read_trace(tpath, problems)
    return parse_mix(params["workload.mix"], where("workload.mix"), problems) if params["workload.mix"] else ()


def _load_calibration(params: dict[str, Any], base_dir: Path, digests: dict[str, str],
                      problems: Problems) -> tuple[Family, ...]:
    """Check ``perf.calibration``, hash its content into the id; its families, or None if it is bad."""
    cpath = resolve_path(params["perf.calibration"], "calibration", base_dir)
    if not cpath.is_file():
        problems.add(str(cpath), "calibration file not found")
        return ()
    try:
        families = tuple(read_calibration(cpath))
    except InputError as e:
        problems.extend(e)
        return ()
    digests["perf.calibration"] = file_digest(cpath)
    params["perf.calibration"] = str(cpath)
    return families


def _replace_max_nodes(o: Offering, n: int) -> Offering:
    from dataclasses import replace

    return replace(o, max_nodes=n)


def load_scenario_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario file (TOML or config.csv); raises InputError. (Folders too:
    :func:`sweep.inputs.load.load_scenario`.)"""
    p = Path(path)
    problems = Problems()
    raw = read_scenario_file(p, problems)
    problems.raise_if_any()
    raw = {**raw, **(overrides or {})}
    return build_scenario(raw, p.parent, str(p))


def scenario_from_dict(values: Mapping[str, Any], base_dir: str | Path = ".", origin: str = "") -> Scenario:
    """A scenario from nested or dotted values (the Python API); raises InputError."""
    return build_scenario({ALIASES.get(k, k): v for k, v in flatten(values).items()}, Path(base_dir), origin)


__all__ = ["SCHEMA", "InputError", "ProfileRow", "Scenario", "load_scenario_file", "scenario_from_dict"]
