"""The typed view of a scenario: one frozen dataclass per schema section, so code reads
``sc.workload.prompt_tokens`` — a name type checkers and editors know — instead of the dotted-key lookup
``sc["workload.prompt_tokens"]``. :class:`~sweep.inputs.scenario.Scenario` builds it once from its validated
values; :data:`DEFAULTS` is what a scenario gets for every key it leaves out (and what
:class:`~sweep.fleet.perf.Knobs` and :class:`~sweep.solve.methods.common.MethodParams` default to).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sweep.inputs.schema import SCHEMA
from sweep.vocab import COST_UNITS_PER_DOLLAR

# Field names are the schema's keys without their section; tests/test_inputs.py checks that the view and SCHEMA
# name the same keys. Lists are tuples here; tables (``catalog.max_nodes``, ``workload.mix``) stay dicts.


@dataclass(frozen=True)
class WorkloadSettings:
    """``workload.*``: request lengths (tokens), demand and latency limits (0 = none)."""

    prompt_tokens: int
    output_tokens: int
    tpot_slo_ms: float
    min_throughput: float
    request_rate: float
    ttft_slo_ms: float
    slo_percentile: float
    mix: tuple[dict[str, Any], ...]  # the raw tables; :attr:`Scenario.mix` holds them parsed as buckets
    trace: str


@dataclass(frozen=True)
class CatalogSettings:
    """``catalog.*``: where the catalogs come from and which of their rows a scenario may rent."""

    gpus: str
    offerings: str
    models: str
    price: str
    only: tuple[str, ...]
    max_nodes: dict[str, int]


@dataclass(frozen=True)
class LimitsSettings:
    """``limits.*``: $/hour and GPU caps (0 = none)."""

    budget: float
    max_gpus: int

    @property
    def budget_units(self) -> int:
        """The budget in whole cost units (1e-4 $/h), rounded down; 0 = no budget."""
        return math.floor(self.budget * COST_UNITS_PER_DOLLAR + 1e-9) if self.budget else 0


@dataclass(frozen=True)
class PerfSettings:
    """``perf.*``: the performance model's source, layouts and knobs (SPEC §4)."""

    source: str
    dtype: str
    profile: str
    tp: tuple[int, ...]
    pp: tuple[int, ...]
    min_batch: int
    max_batch: int
    bw_efficiency: float
    compute_efficiency: float
    prefill_efficiency: float
    mem_fraction: float
    overhead_gb: float
    allreduce_latency_us: float
    calibration: str
    mixed: bool | str  # True, False or "auto"
    max_stages: int
    max_gpu_types: int
    max_mixed: int
    link_gbps: tuple[str, ...]


@dataclass(frozen=True)
class SolverSettings:
    """``solver.*``."""

    name: str
    time_limit_s: float


@dataclass(frozen=True)
class EnumerationSettings:
    budget_min: float  # $/hour
    budget_max: float  # $/hour
    points: int


@dataclass(frozen=True)
class IterativeSettings:
    target_cpt: float  # $/token
    tighten: float
    max_iter: int


@dataclass(frozen=True)
class WeightedSettings:
    weight: float


@dataclass(frozen=True)
class MethodsSettings:
    """``methods.*``: the design note's baselines' settings."""

    enumeration: EnumerationSettings
    iterative: IterativeSettings
    weighted: WeightedSettings


@dataclass(frozen=True)
class Settings:
    """Every key of :data:`SCHEMA`, typed, by section. ``model`` is the model's name."""

    model: str | None
    workload: WorkloadSettings
    catalog: CatalogSettings
    limits: LimitsSettings
    perf: PerfSettings
    solver: SolverSettings
    methods: MethodsSettings


_SECTION_TYPES = {c.__name__: c for c in (WorkloadSettings, CatalogSettings, LimitsSettings, PerfSettings,
                                          SolverSettings, EnumerationSettings, IterativeSettings,
                                          WeightedSettings, MethodsSettings)}


def _section(cls: type, params: Mapping[str, Any], prefix: str) -> Any:
    values = {}
    for f in fields(cls):
        sub = _SECTION_TYPES.get(str(f.type))
        v = _section(sub, params, f"{prefix}{f.name}.") if sub else params[f"{prefix}{f.name}"]
        values[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**values)


def settings_of(params: Mapping[str, Any]) -> Settings:
    """The typed view of resolved dotted-key values (every key of :data:`SCHEMA`); KeyError if one is missing."""
    return _section(Settings, params, "")


def settings_keys(cls: type = Settings, prefix: str = "") -> list[str]:
    """The dotted keys the typed view reads, in field order."""
    out: list[str] = []
    for f in fields(cls):
        sub = _SECTION_TYPES.get(str(f.type))
        out += settings_keys(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"]
    return out


DEFAULTS = settings_of({k: v.default for k, v in SCHEMA.items()})  # what a scenario gets for a key it leaves out
