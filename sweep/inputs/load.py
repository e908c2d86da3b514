"""Loading a scenario from a path: a scenario file (TOML or the note's config.csv) or the original
solver's configuration folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweep.inputs.legacy import load_config_folder
from sweep.inputs.scenario import Scenario, load_scenario_file


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario file, or a configuration folder (:mod:`sweep.inputs.legacy`);
    ``overrides`` (dotted keys) replace the file's values. Raises InputError."""
    p = Path(path)
    if p.is_dir():
        return load_config_folder(p, overrides)
    return load_scenario_file(p, overrides)
