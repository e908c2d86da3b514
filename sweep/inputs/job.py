"""Sweep definitions (SPEC §3.3): ``jobs/*.toml`` → a stream of validated scenarios.

A job file has ``[sweep]`` (name, methods, optional ``base`` scenario file), scenario sections that
override the base (``[workload]``, ``[catalog]``, …), ``[grid]`` (dotted keys → lists; the cartesian
product) and/or ``[[scenarios]]`` (explicit tables; each is crossed with the grid). Scenarios are
generated lazily so a 100,000-scenario grid never sits in memory.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.errors import InputError, Problem, Problems
from sweep.inputs.scenario import Scenario, build_scenario, read_scenario_file
from sweep.inputs.schema import ALIASES, SCHEMA, check_params, flatten, has_nul
from sweep.vocab import ALL_METHODS

SWEEP_KEYS = {"name", "methods", "base", "out", "description"}
DEFAULT_METHODS = ("dinkelbach",)
MAX_DEPTH = 32  # no sensible job nests deeper; a deeper one must not exhaust the stack
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Job:
    """A validated sweep: its name, methods and how to generate its scenarios."""

    name: str
    methods: tuple[str, ...]
    path: str
    base: dict[str, Any]  # dotted key -> value, base file and job-level overrides merged
    grid: dict[str, list[Any]]
    explicit: tuple[dict[str, Any], ...]  # [[scenarios]] tables, flattened
    out: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # the job as resolved, for the manifest

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent

    @property
    def size(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n * max(1, len(self.explicit))

    def raw_scenarios(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, dotted-key values) of every scenario, in a stable order."""
        keys = list(self.grid)
        i = 0
        for ex in self.explicit or ({},):
            for combo in itertools.product(*(self.grid[k] for k in keys)):
                yield i, {**self.base, **ex, **dict(zip(keys, combo, strict=True))}
                i += 1

    def scenarios(self) -> Iterator[Scenario]:
        """Every scenario, validated; raises InputError listing each distinct problem."""
        problems = Problems()
        for i, raw in self.raw_scenarios():
            try:
                yield build_scenario(raw, self.base_dir, f"{self.path}#{i}")
            except InputError as e:
                for prob in e.problems:
                    # the same bad value repeats across a grid: report it once, at the job file
                    problems.add(re.sub(r"#\d+", "", prob.where), prob.what)
                if len(problems.items) > 50:
                    break
        problems.raise_if_any()


def _where(path: str, key: str) -> str:
    return f"{path}: {key}"


def load_job(path: str | Path) -> Job:
    """Read and validate a job file (scenarios are validated when generated); raises InputError."""
    p = Path(path)
    label = str(p)
    data = _read_toml(p)
    problems = Problems()
    name, methods, out, sweep = _sweep_table(data.pop("sweep", None), p, problems)
    base: dict[str, Any] = {}
    if "base" in sweep:
        if not isinstance(sweep["base"], str):
            problems.add(_where(label, "sweep.base"), "must be a scenario file path")
        else:
            base = read_scenario_file(p.parent / sweep["base"], problems)
    grid_raw = data.pop("grid", {})
    explicit_raw = data.pop("scenarios", [])
    base.update({ALIASES.get(k, k): v for k, v in flatten(data).items()})
    grid = _grid(grid_raw, label, problems)
    explicit = _explicit(explicit_raw, label, problems)
    for k in base:
        if k not in SCHEMA:
            problems.add(_where(label, k), f"unknown key (valid: sweep, grid, scenarios, {', '.join(SCHEMA)})")
    # a NUL cannot be in a file name or a model name: report it here, at its key, once
    nul = [k for k, v in base.items() if has_nul(v)]
    nul += [f"grid.{k}" for k, v in grid.items() if has_nul(v)]
    nul += [f"scenarios[{i}].{k}" for i, t in enumerate(explicit) for k, v in t.items() if has_nul(v)]
    for k in nul:
        problems.add(_where(label, k), "contains a NUL character")
    problems.raise_if_any()
    spec = {"name": name, "methods": methods, "base": base, "grid": grid, "scenarios": explicit, "file": str(p)}
    return Job(name, tuple(dict.fromkeys(methods)), str(p), base, grid, tuple(explicit), out, spec)


def _read_toml(p: Path) -> dict[str, Any]:
    """The job file's tables; raises InputError (one problem) if it cannot be read or parsed."""
    label = str(p)
    try:
        if p.is_dir():
            raise InputError([Problem(label, "is a folder, expected a job file (.toml)")])
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(label, "file not found")]) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path; UnicodeDecodeError is one too
        why = e.strerror if isinstance(e, OSError) and e.strerror else e.__class__.__name__
        raise InputError([Problem(label, f"cannot read file ({why})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError([Problem(label, f"invalid TOML: {e}")]) from None
    except RecursionError:
        raise InputError([Problem(label, "invalid TOML: nested too deeply")]) from None
    if _depth(data) > MAX_DEPTH:
        raise InputError([Problem(label, f"tables or lists nested more than {MAX_DEPTH} levels deep")])
    return data


def _sweep_table(sweep: Any, p: Path, problems: Problems) -> tuple[str, list[str], str, Mapping[str, Any]]:
    """``[sweep]``: (name, methods, out, the table without NUL-bearing values), every problem added."""
    label = str(p)
    if not isinstance(sweep, Mapping):
        problems.add(label, "missing [sweep] table (name, methods)")
        sweep = {}
    for k in sweep:
        if k not in SWEEP_KEYS:
            problems.add(_where(label, f"sweep.{k}"), f"unknown key (valid: {', '.join(sorted(SWEEP_KEYS))})")
    name = sweep.get("name", p.stem)
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        problems.add(_where(label, "sweep.name"),
                     "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it names "
                     "the output folder)" + ("" if "name" in sweep else f"; none given, and the file name "
                                             f"{p.stem!r} is not one"))
        name = "sweep"
    methods = sweep.get("methods", list(DEFAULT_METHODS))
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, list) or not methods:
        problems.add(_where(label, "sweep.methods"), "must be a non-empty list of method names")
        methods = list(DEFAULT_METHODS)
    for m in methods:
        if m not in ALL_METHODS:
            problems.add(_where(label, "sweep.methods"), f"unknown method {m!r} (valid: {', '.join(ALL_METHODS)})")
    out = sweep.get("out", "")
    if not isinstance(out, str):
        problems.add(_where(label, "sweep.out"), "must be a path or URI string")
        out = ""
    for key in ("out", "base", "description"):
        if has_nul(sweep.get(key)):
            problems.add(_where(label, f"sweep.{key}"), "contains a NUL character")
            sweep = {k: v for k, v in sweep.items() if k != key}
            out = "" if key == "out" else out
    return name, methods, out, sweep


def _grid(grid_raw: Any, label: str, problems: Problems) -> dict[str, list[Any]]:
    """``[grid]``: dotted key → its values, each value checked here so a bad one is reported at its key."""
    grid: dict[str, list[Any]] = {}
    if not isinstance(grid_raw, Mapping):
        problems.add(_where(label, "grid"), "must be a table of dotted key = [values]")
        grid_raw = {}
    for key, values in flatten(grid_raw).items():
        key = ALIASES.get(key, key)
        if key not in SCHEMA:
            problems.add(_where(label, f"grid.{key}"), f"unknown key (valid: {', '.join(SCHEMA)})")
            continue
        vals = values if isinstance(values, list) else [values]
        if not vals:
            problems.add(_where(label, f"grid.{key}"), "empty list: a grid axis needs at least one value")
            continue
        if SCHEMA[key].kind.startswith("list[") and vals and not isinstance(vals[0], list):
            vals = [vals]  # a list-valued key given one list: a single grid point
        for v in vals:
            sub = Problems()
            check_params({"model": "x", key: v}, "", sub)
            for prob in sub.items:
                if prob.where.endswith(key):
                    problems.add(_where(label, f"grid.{key}"), f"{prob.what} (value {v!r})")
        grid[key] = vals
    return grid


def _explicit(explicit_raw: Any, label: str, problems: Problems) -> list[dict[str, Any]]:
    """``[[scenarios]]``: each table flattened to dotted keys (aliases resolved)."""
    explicit: list[dict[str, Any]] = []
    if not isinstance(explicit_raw, list):
        problems.add(_where(label, "scenarios"), "must be an array of tables ([[scenarios]])")
        explicit_raw = []
    for i, table in enumerate(explicit_raw):
        if not isinstance(table, Mapping):
            problems.add(_where(label, f"scenarios[{i}]"), "must be a table")
            continue
        flat = {ALIASES.get(k, k): v for k, v in flatten(table).items()}
        for k in flat:
            if k not in SCHEMA:
                problems.add(_where(label, f"scenarios[{i}].{k}"), "unknown key")
        explicit.append(flat)
    return explicit


def _depth(v: Any) -> int:
    """How deeply tables and lists nest (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(v, 0)]
    while stack:
        x, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(x, Mapping):
            stack.extend((y, d + 1) for y in x.values())
        elif isinstance(x, list):
            stack.extend((y, d + 1) for y in x)
    return deepest

