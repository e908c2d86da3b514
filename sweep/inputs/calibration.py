"""Calibration files (SPEC §4.3): the sustained fractions of peak per GPU family that ``sweep calibrate``
writes and ``perf.calibration`` applies. Parsed here, with the inputs, so a scenario carries the values
(not a path) to any worker; the performance model applies them (:meth:`sweep.fleet.perf.Knobs.from_params`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import InputError, Problem


@dataclass(frozen=True)
class Family:
    """Sustained fractions of one GPU family's datasheet peaks (dimensionless) and its all-reduce latency.

    ``bw_eff``: achieved fraction of peak memory bandwidth in decode; ``compute_eff``: achieved fraction
    of dense peak tensor FLOPS (weight GEMMs, attention, prefill); ``allreduce_us``: fixed cost of one
    all-reduce over the family's GPU link, µs.
    """

    name: str
    bw_eff: float
    compute_eff: float
    allreduce_us: float



def read_calibration(path: Path) -> list[Family]:
    """The families of a calibration file; raises InputError naming what is wrong."""
    label = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise InputError([Problem(label, f"calibration file: cannot read: {e.strerror or e}")]) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError([Problem(label, f"calibration file: not TOML: {e}")]) from None
    fams = data.get("families")
    if not isinstance(fams, dict) or not fams:
        raise InputError([Problem(label, "calibration file: no [families.<name>] tables")])
    out, problems = [], []
    for name, t in fams.items():
        try:
            vals = {k: float(t[k]) for k in ("bw_eff", "compute_eff")}
            if not all(0 < v <= 1 for v in vals.values()):
                raise ValueError("bw_eff and compute_eff must be in (0, 1]")
            ar = float(t.get("allreduce_us", 0.0))
            if ar < 0:
                raise ValueError("allreduce_us must be ≥ 0")
        except (KeyError, TypeError, ValueError) as e:
            msg = f"missing {e}" if isinstance(e, KeyError) else str(e)
            problems.append(Problem(f"{label}: families.{name}", msg))
            continue
        out.append(Family(str(name), vals["bw_eff"], vals["compute_eff"], ar))
    if problems:
        raise InputError(problems)
    return out
