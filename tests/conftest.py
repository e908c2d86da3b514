"""Shared fixtures: run the CLI in-process, and write small scenarios as real files."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    @property
    def err_but_stale(self) -> str:
        """stderr without the one-line stale-price warning (sweep/freshness.py) that every solve on the
        built-in catalog (a 2025 snapshot) prints once prices are 90 days old."""
        return "".join(ln + "\n" for ln in self.err_lines if not ln.startswith("warning: prices older than"))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``run_cli("solve", path, "--json")`` runs ``sweep.cli.main`` in this process: exit code, stdout, stderr."""
    from sweep.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()  # drop whatever was printed before
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


def toml_text(values: Mapping[str, Any]) -> str:
    """Dotted keys → a TOML document (top-level dotted keys; JSON literals are valid TOML for these types)."""

    def literal(v: Any) -> str:
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {literal(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(literal(x) for x in v) + "]"
        return json.dumps(v)

    return "".join(f"{k} = {literal(v)}\n" for k, v in values.items())


# A small, valid profile-mode scenario over its own catalogs (costs 1e-4 $/h exact, whole tokens/s).
SMALL_FILES = {
    "gpus.csv": "gpu,mem_gb,bf16_tflops,mem_bw_gbps\nG1,80,300,2000\nG2,24,100,600\n",
    "offerings.csv": (
        "offering,provider,gpu,gpus_per_node,price_per_hour,spot_price_per_hour,max_nodes\n"
        "o1,acme,G1,4,10.0,4.0,2\n"
        "o2,acme,G2,1,1.0,0.5,3\n"
    ),
    "models.csv": "model,params_b,layers,hidden,heads\nm1,7,32,4096,32\n",
    "profile.csv": "offering,tp,pp,throughput_tok_s\no1,1,1,1000\no1,4,1,3000\no2,1,1,200\n",
}
SMALL_SCENARIO: dict[str, Any] = {
    "model": "m1",
    "catalog.gpus": "gpus.csv",
    "catalog.offerings": "offerings.csv",
    "catalog.models": "models.csv",
    "perf.source": "profile",
    "perf.profile": "profile.csv",
}


@pytest.fixture
def small_scenario(tmp_path: Path) -> Callable[..., Path]:
    """``small_scenario(values=None, files=None, name="scenario.toml")`` writes :data:`SMALL_FILES` (each
    replaced by ``files[name]``; ``None`` leaves a file out) and the scenario (:data:`SMALL_SCENARIO`
    updated by ``values``; a ``None`` value drops the key) into a fresh folder; returns the scenario path."""
    count = iter(range(10**6))

    def write(values: Mapping[str, Any] | None = None, files: Mapping[str, str | bytes | None] | None = None,
              name: str = "scenario.toml") -> Path:
        d = tmp_path / f"s{next(count)}"
        d.mkdir()
        for fname, content in {**SMALL_FILES, **(files or {})}.items():
            if content is None:
                continue
            if isinstance(content, bytes):
                (d / fname).write_bytes(content)
            else:
                (d / fname).write_text(content)
        vals = {k: v for k, v in {**SMALL_SCENARIO, **(values or {})}.items() if v is not None}
        path = d / name
        if not path.exists():
            path.write_text(toml_text(vals))
        return path

    return write
