"""GPU, offering and model catalogs: loading and validating the CSV files of SPEC §3.1.

Prices are rounded to 1e-4 $/h on load and kept as integer *cost units* (1 unit = 1e-4 $/h)
so that every cost the MILP sees is an exact integer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sweep.errors import Problems
from sweep.inputs.csvfile import read_csv
from sweep.vocab import COST_UNITS_PER_DOLLAR


def dollars_to_units(price_per_hour: float) -> int:
    return round(price_per_hour * COST_UNITS_PER_DOLLAR)


def units_to_dollars(units: int) -> float:
    return units / COST_UNITS_PER_DOLLAR


MIB = 2**20  # bytes
MEM_MIB_TOLERANCE = 0.15  # a mem_mib further than this (relative) from mem_gb describes another card


@dataclass(frozen=True)
class Gpu:
    """A GPU type. ``mem_gb`` is the datasheet figure (GB); ``mem_mib`` the total memory software sees
    (nvidia-smi's MiB total, rocm-smi's VRAM total / 2^20), None = unknown: ``mem_gb`` × 1e9 bytes is
    used. HBM parts are specified in GiB (an "80 GB" A100/H100 shows 81920 / 81559 MiB, ~7 % more than
    80e9 bytes); GDDR parts show a little less than their decimal figure (ECC reserve)."""

    gpu: str
    mem_gb: float
    bf16_tflops: float
    fp8_tflops: float  # 0 = no fp8 tensor cores
    mem_bw_gbps: float
    link_gbps: float  # intra-node GPU-to-GPU bandwidth per GPU, GB/s
    source: str = ""
    mem_mib: float | None = None
    fp4_tflops: float = 0.0  # 0 = no fp4 tensor cores (fp4 weights then run as weight-only 4-bit, 16-bit math)

    @property
    def mem_bytes(self) -> float:
        """Bytes of memory the serving engine sees: ``mem_mib`` MiB when known, else ``mem_gb`` × 1e9 (a copy
        whose ``mem_gb`` is overridden, e.g. by a gpu_pool.csv ``memory_gb``, drops its ``mem_mib``)."""
        return self.mem_mib * MIB if self.mem_mib else self.mem_gb * 1e9


def mem_mib_matches(mem_mib: float, mem_gb: float) -> bool:
    """Whether a reported MiB total is the same card as a datasheet GB figure (within :data:`MEM_MIB_TOLERANCE`)."""
    return abs(mem_mib * MIB / (mem_gb * 1e9) - 1) <= MEM_MIB_TOLERANCE


@dataclass(frozen=True)
class Offering:
    offering: str
    provider: str
    gpu: str
    gpus_per_node: int
    price_units: int  # on-demand $/node-hour in 1e-4 units
    spot_price_units: int
    max_nodes: int
    as_of: str = ""
    net_gbps: float = 12.5  # node-to-node network, GB/s (100 Gb/s default)

    @property
    def price_per_hour(self) -> float:
        return units_to_dollars(self.price_units)

    @property
    def spot_price_per_hour(self) -> float:
        return units_to_dollars(self.spot_price_units)


@dataclass(frozen=True)
class Model:
    model: str
    params_b: float
    active_params_b: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    weight_bytes: float
    kv_bytes: float
    vocab: int = 0  # untied input embedding and output head of vocab × hidden each; 0 = not given (counted in layers)

    @property
    def head_params(self) -> float:
        """Parameters of the output head (and, the same again, of the input embedding): vocab × hidden."""
        return float(self.vocab * self.hidden)


@dataclass(frozen=True)
class Catalog:
    gpus: dict[str, Gpu]
    offerings: dict[str, Offering]
    models: dict[str, Model]
    # names of rows skipped for their own problems (already reported): references to them are
    # not reported again as "unknown"
    broken: frozenset[str] = frozenset()


# column -> (type, required, default); type is int, float or str
_Col = tuple[type, bool, object]
GPU_COLUMNS: dict[str, _Col] = {
    "gpu": (str, True, None),
    "mem_gb": (float, True, None),
    "mem_mib": (float, False, None),  # blank/absent = mem_gb × 1e9 bytes (Gpu.mem_bytes)
    "bf16_tflops": (float, True, None),
    "fp8_tflops": (float, False, 0.0),
    "fp4_tflops": (float, False, 0.0),  # blank/absent = no fp4 tensor cores
    "mem_bw_gbps": (float, True, None),
    "link_gbps": (float, False, 32.0),
    "source": (str, False, ""),
}
OFFERING_COLUMNS: dict[str, _Col] = {
    "offering": (str, True, None),
    "provider": (str, False, ""),
    "gpu": (str, True, None),
    "gpus_per_node": (int, True, None),
    "price_per_hour": (float, True, None),
    "spot_price_per_hour": (float, False, None),  # default: the on-demand price
    "max_nodes": (int, False, 8),
    "as_of": (str, False, ""),
    "net_gbps": (float, False, 12.5),
}
MODEL_COLUMNS: dict[str, _Col] = {
    "model": (str, True, None),
    "params_b": (float, True, None),
    "active_params_b": (float, False, None),  # default: params_b (dense)
    "layers": (int, True, None),
    "hidden": (int, True, None),
    "heads": (int, True, None),
    "kv_heads": (int, False, None),  # default: heads
    "head_dim": (int, False, None),  # default: hidden // heads
    "weight_bytes": (float, False, 2.0),
    "kv_bytes": (float, False, 2.0),
    "vocab": (int, False, None),  # config.json vocab_size; blank = embedding and head not placed apart
}
# columns that may be zero; every other number must be > 0
_MAY_BE_ZERO = {"fp8_tflops", "fp4_tflops", "spot_price_per_hour"}


def builtin_path(kind: str) -> Path:
    return Path(str(resources.files("sweep") / "data" / f"{kind}.csv"))


def resolve_path(value: str, kind: str, base_dir: Path) -> Path:
    """``builtin`` or a path relative to ``base_dir`` (the folder of the file that names it)."""
    if value == "builtin":
        return builtin_path(kind)
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """A short content hash (scenario ids depend on data, not on paths); cached per file version."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in _digests:
            _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return _digests[key]
    except OSError:
        return "unreadable"


def read_rows(path: Path, columns: dict[str, _Col], problems: Problems,
              broken: set[str] | None = None) -> list[dict[str, object]]:
    """Read a catalog CSV, checking header, types and positivity; returns typed rows (bad rows skipped).

    The name (first column) of every skipped row is added to ``broken``.
    """
    label = str(path)
    before = len(problems.items)
    key_col = next(iter(columns))
    table = read_csv(path, problems, error_detail=True)
    if table is None:
        return []
    unknown = [h for h in table.header if h not in columns]
    for h in unknown:
        problems.add(label, f"unknown column '{h}' (valid: {', '.join(columns)})")
    missing = [c for c, (_, req, _) in columns.items() if req and c not in table.header]
    for c in missing:
        problems.add(label, f"missing required column '{c}'")
    if unknown or missing:
        return []
    rows: list[dict[str, object]] = []
    for lineno, raw in table.records():
        row = _typed_row(raw, columns, table.where(lineno), problems)
        if row is not None:
            rows.append(row)
        elif broken is not None and (raw.get(key_col) or "").strip():
            broken.add((raw.get(key_col) or "").strip())
    if not rows and len(problems.items) == before:
        problems.add(label, "no data rows")
    return rows


def _typed_row(raw: dict[str, str | None], columns: dict[str, _Col], where: str,
               problems: Problems) -> dict[str, object] | None:
    """One catalog row's cells converted and checked (every problem added), or None if one is bad."""
    row: dict[str, object] = {}
    ok = True
    for col, (typ, req, default) in columns.items():
        cell = (raw.get(col) or "").strip()
        if cell == "":
            if req:
                problems.add(where, f"'{col}' is empty")
                ok = False
            row[col] = default
            continue
        try:
            if typ is int:
                f = float(cell)
                if f != int(f):
                    raise ValueError
                val: object = int(f)
            elif typ is float:
                val = float(cell)
                if val != val or val in (float("inf"), float("-inf")):
                    raise ValueError
            else:
                val = cell
        except ValueError:
            problems.add(where, f"'{col}' must be {'a whole number' if typ is int else 'a number'}, got '{cell}'")
            ok = False
            continue
        if typ is not str:
            num = float(val)  # type: ignore[arg-type]
            if num < 0 or (num == 0 and col not in _MAY_BE_ZERO):
                problems.add(where, f"'{col}' must be {'>= 0' if col in _MAY_BE_ZERO else '> 0'}, got '{cell}'")
                ok = False
        row[col] = val
    return row if ok else None


def _unique(rows: list[dict[str, object]], key: str, label: str, problems: Problems) -> None:
    seen: set[object] = set()
    for row in rows:
        if row[key] in seen:
            problems.add(label, f"duplicate {key} '{row[key]}'")
        seen.add(row[key])


def load_gpus(path: Path, problems: Problems, broken: set[str] | None = None) -> dict[str, Gpu]:
    rows = read_rows(path, GPU_COLUMNS, problems, broken)
    _unique(rows, "gpu", str(path), problems)
    out: dict[str, Gpu] = {}
    for r in rows:
        mib, gb = r["mem_mib"], float(r["mem_gb"])  # type: ignore[arg-type]
        if mib is not None and not mem_mib_matches(float(mib), gb):  # type: ignore[arg-type]
            problems.add(str(path), f"gpu '{r['gpu']}': mem_mib {mib:g} ({float(mib) * MIB / 1e9:.1f} GB) is "  # type: ignore[arg-type]
                                    f"not within {MEM_MIB_TOLERANCE:.0%} of mem_gb {gb:g}")
            if broken is not None:
                broken.add(str(r["gpu"]))
            continue
        out[str(r["gpu"])] = Gpu(**r)  # type: ignore[arg-type]
    return out


def load_offerings(path: Path, gpus: dict[str, Gpu], problems: Problems, gpus_path: str = "",
                   broken: set[str] | None = None) -> dict[str, Offering]:
    """Offerings whose gpu is in ``gpus``; one naming a gpu in ``broken`` is skipped silently (and becomes broken)."""
    broken = set() if broken is None else broken
    rows = read_rows(path, OFFERING_COLUMNS, problems, broken)
    _unique(rows, "offering", str(path), problems)
    out: dict[str, Offering] = {}
    for r in rows:
        if r["gpu"] in broken and r["gpu"] not in gpus:
            broken.add(str(r["offering"]))
            continue
        if gpus and r["gpu"] not in gpus:
            broken.add(str(r["offering"]))
            problems.add(
                f"{path}",
                f"offering '{r['offering']}' names unknown gpu '{r['gpu']}' "
                f"(known in {gpus_path or 'the gpus catalog'}: {', '.join(sorted(gpus))})",
            )
            continue
        price = float(r["price_per_hour"])  # type: ignore[arg-type]
        spot = r["spot_price_per_hour"]
        out[str(r["offering"])] = Offering(
            offering=str(r["offering"]),
            provider=str(r["provider"]),
            gpu=str(r["gpu"]),
            gpus_per_node=int(r["gpus_per_node"]),  # type: ignore[call-overload]
            price_units=dollars_to_units(price),
            spot_price_units=dollars_to_units(float(spot) if spot is not None else price),  # type: ignore[arg-type]
            max_nodes=int(r["max_nodes"]),  # type: ignore[call-overload]
            as_of=str(r["as_of"]),
            net_gbps=float(r["net_gbps"]),  # type: ignore[arg-type]
        )
    return out


def load_models(path: Path, problems: Problems, broken: set[str] | None = None) -> dict[str, Model]:
    rows = read_rows(path, MODEL_COLUMNS, problems, broken)
    _unique(rows, "model", str(path), problems)
    out: dict[str, Model] = {}
    for r in rows:
        params = float(r["params_b"])  # type: ignore[arg-type]
        heads = int(r["heads"])  # type: ignore[call-overload]
        hidden = int(r["hidden"])  # type: ignore[call-overload]
        active = float(r["active_params_b"]) if r["active_params_b"] is not None else params  # type: ignore[arg-type]
        if r["vocab"] and 2 * int(r["vocab"]) * hidden >= active * 1e9:  # type: ignore[call-overload]
            problems.add(str(path), f"model '{r['model']}': embedding and head (2 × vocab {r['vocab']} × hidden "
                                    f"{hidden}) leave no active parameters of {active:g}B for the layers")
            if broken is not None:
                broken.add(str(r["model"]))
            continue
        out[str(r["model"])] = Model(
            model=str(r["model"]),
            params_b=params,
            active_params_b=active,
            layers=int(r["layers"]),  # type: ignore[call-overload]
            hidden=hidden,
            heads=heads,
            kv_heads=int(r["kv_heads"]) if r["kv_heads"] is not None else heads,  # type: ignore[call-overload]
            head_dim=int(r["head_dim"]) if r["head_dim"] is not None else hidden // heads,  # type: ignore[call-overload]
            weight_bytes=float(r["weight_bytes"]),  # type: ignore[arg-type]
            kv_bytes=float(r["kv_bytes"]),  # type: ignore[arg-type]
            vocab=int(r["vocab"] or 0),  # type: ignore[call-overload]
        )
    return out


def load_builtin() -> Catalog:
    """The built-in catalogs; raises InputError if the package data is broken."""
    problems = Problems()
    gpus = load_gpus(builtin_path("gpus"), problems)
    offerings = load_offerings(builtin_path("offerings"), gpus, problems)
    models = load_models(builtin_path("models"), problems)
    problems.raise_if_any()
    return Catalog(gpus, offerings, models)
