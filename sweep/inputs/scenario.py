"""Scenarios (SPEC §3.2): one problem, from TOML or the design note's ``config.csv``.

All validation happens here, in one pass: every problem is reported with its file and key/row,
then :class:`~sweep.errors.InputError` is raised. Nothing downstream checks user input again.
The keys and their checks are :mod:`sweep.inputs.schema`; a :class:`Scenario` carries its values both as
dotted keys (``sc["perf.tp"]``, the form results store) and typed (``sc.perf.tp``, :mod:`sweep.inputs.settings`),
which is how code reads them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from sweep.inputs.csvfile import read_csv
from sweep.inputs.mix import Bucket, mean_output_tokens, parse_mix, read_trace
from sweep.inputs.schema import ALIASES, SCHEMA, check_params, flatten
from sweep.inputs.settings import (
    DEFAULTS,
    LimitsSettings,
    MethodsSettings,
    PerfSettings,
    Settings,
    SolverSettings,
    WorkloadSettings,
    settings_of,
)

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
    settings: Settings = field(init=False, repr=False, compare=False)  # the typed view of ``params``

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", settings_of(self.params))

    @property
    def workload(self) -> WorkloadSettings:
        return self.settings.workload

    @property
    def limits(self) -> LimitsSettings:
        return self.settings.limits

    @property
    def perf(self) -> PerfSettings:
        return self.settings.perf

    @property
    def solver(self) -> SolverSettings:
        return self.settings.solver

    @property
    def methods(self) -> MethodsSettings:
        return self.settings.methods

    @property
    def spot(self) -> bool:
        """Whether the scenario pays spot prices (``catalog.price = "spot"``)."""
        return self.settings.catalog.price == "spot"

    @property
    def mean_output_tokens(self) -> Fraction:
        """Output tokens per request: ō of the mix, else workload.output_tokens (exact)."""
        return mean_output_tokens(self.mix) if self.mix else Fraction(self.workload.output_tokens)

    def __getitem__(self, key: str) -> Any:
        """A value by its dotted key (the form results store); code reads the typed view instead."""
        return self.params[key]

    def gpu(self, offering: str) -> Gpu:
        return self.catalog.gpus[self.offerings[offering].gpu]

    def price_units(self, offering: str) -> int:
        o = self.offerings[offering]
        return o.spot_price_units if self.spot else o.price_units

    @property
    def scenario_id(self) -> str:
        """Stable hash of the resolved content, referenced data files included (not their paths)."""
        content = {k: v for k, v in self.params.items()
                   if k not in _FILE_KEYS and not (k in _LATER_KEYS and v == SCHEMA[k].default)}
        content["files"] = self.digests
        blob = json.dumps(content, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]



# --------------------------------------------------------------------------- parsing


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
    table = read_csv(path, problems, not_found="profile file not found")
    if table is None:
        return ()
    cols = ["offering", "tp", "pp", "throughput_tok_s", "tpot_ms", "batch", "prompt_tokens", "output_tokens"]
    bad = [h for h in table.header if h not in cols]
    missing = [c for c in cols[:4] if c not in table.header]
    for h in bad:
        problems.add(label, f"unknown column '{h}' (valid: {', '.join(cols)})")
    for c in missing:
        problems.add(label, f"missing required column '{c}'")
    if bad or missing:
        return ()
    rows = []
    seen = set()
    n_data = 0
    for i, r in table.records():
        n_data += 1
        where = table.where(i)
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


# SCHEMA, ALIASES, flatten and check_params live in sweep.inputs.schema, DEFAULTS in sweep.inputs.settings;
# they are re-exported here for the modules that read a scenario and its keys together
__all__ = ["ALIASES", "DEFAULTS", "SCHEMA", "InputError", "ProfileRow", "Scenario", "Settings", "check_params",
           "flatten", "load_scenario_file", "scenario_from_dict", "settings_of"]
