"""SkyPilot's catalog files ↔ sweep's GPU and offering names (``sweep catalog import skypilot``, ``sweep export``).

SkyPilot keeps one ``vms.csv`` per cloud (``~/.sky/catalogs/<version>/<cloud>/vms.csv``; schema in
github.com/skypilot-org/skypilot-catalog README): ``InstanceType, AcceleratorName, AcceleratorCount,
vCPUs, MemoryGiB, GpuInfo, Price, SpotPrice, Region, AvailabilityZone`` — in a different column order
per cloud, ``AvailabilityZone`` absent for some (Lambda, Vast), ``SpotPrice`` empty or 0 where a cloud
has no spot market, one row per zone (or region). :func:`import_vms` turns such files into an
offerings CSV in sweep's format (``sweep/data/offerings.csv``): one offering per instance type with
GPUs, priced in its cheapest region (or the one chosen), spot = the cheapest zone's spot price there.

Accelerator names are mapped by the explicit table :data:`SKY_TO_GPU` plus the variant rules of
:func:`gpu_of` (PCIe vs SXM where SkyPilot uses one name for both); any other name is reported, never guessed.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sweep.errors import Problems

REQUIRED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")
KNOWN_COLUMNS = (*REQUIRED, "vCPUs", "MemoryGiB", "GpuInfo", "GPUInfo", "SpotPrice", "AvailabilityZone")
# SkyPilot's cloud names (sky/clouds/*.py, `cloud:` in a task YAML) that sweep's offerings use as provider
CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod", "vast", "oci", "nebius", "paperspace", "cudo",
          "fluidstack", "hyperbolic", "do", "ibm", "scp", "vsphere", "primeintellect", "shadeform", "seeweb")

# SkyPilot AcceleratorName → sweep GPU (sweep/data/gpus.csv); names SkyPilot lists in
# catalogs/v7/common/accelerators.csv. One SkyPilot name can cover two sweep GPUs (A100-80GB SXM and
# PCIe; H100 SXM and PCIe): gpu_of() settles those from the cloud and the instance type.
SKY_TO_GPU: dict[str, str] = {
    "T4": "T4",
    "L4": "L4",
    "A10": "A10",
    "A10G": "A10G",
    "L40S": "L40S",
    "V100": "V100-16GB",
    "V100-32GB": "V100-32GB",
    "A100": "A100-40GB",
    "A100-80GB": "A100-80GB",
    "A100-80GB-SXM": "A100-80GB",
    "H100": "H100-SXM",
    "H100-SXM": "H100-SXM",
    "H200": "H200",
    "H200-SXM": "H200",
    "B200": "B200",
    "MI300X": "MI300X",
}
# sweep GPU → SkyPilot AcceleratorName (the `accelerators:` key of a task), per cloud where it differs
GPU_TO_SKY: dict[str, str] = {
    "T4": "T4", "L4": "L4", "A10": "A10", "A10G": "A10G", "L40S": "L40S",
    "V100-16GB": "V100", "V100-16GB-PCIe": "V100", "V100-32GB": "V100-32GB",
    "A100-40GB": "A100", "A100-80GB": "A100-80GB", "A100-80GB-PCIe": "A100-80GB",
    "H100-SXM": "H100", "H100-PCIe": "H100", "H200": "H200", "B200": "B200", "MI300X": "MI300X",
}
GPU_TO_SKY_BY_CLOUD: dict[str, dict[str, str]] = {
    # RunPod's catalog names the SXM parts apart: A100-80GB (PCIe) / A100-80GB-SXM, H100 (PCIe) / H100-SXM
    "runpod": {"A100-80GB": "A100-80GB-SXM", "A100-80GB-PCIe": "A100-80GB", "H100-SXM": "H100-SXM",
               "H100-PCIe": "H100", "H200": "H200-SXM"},
}


def sky_accelerator(gpu: str, cloud: str) -> str | None:
    """SkyPilot's accelerator name for a sweep GPU on a cloud, or None when there is none."""
    return GPU_TO_SKY_BY_CLOUD.get(cloud, {}).get(gpu) or GPU_TO_SKY.get(gpu)


def gpu_of(accelerator: str, cloud: str, instance_type: str) -> str | None:
    """The sweep GPU of a SkyPilot catalog row, or None when it is not in the GPU catalog (or ambiguous)."""
    it = instance_type.lower()
    if "nvl" in it:  # H100 NVL (94 GB, Azure NC*ads_H100_v5, Vast H100_NVL): not in sweep's GPU catalog
        return None
    if cloud == "runpod":  # RunPod: plain A100-80GB / H100 are the PCIe cards
        if accelerator == "A100-80GB":
            return "A100-80GB-PCIe"
        if accelerator == "H100":
            return "H100-PCIe"
    if cloud == "azure":
        if re.match(r"standard_nc\d+ads_a100_v4", it):  # NC A100 v4: PCIe A100 80GB
            return "A100-80GB-PCIe"
        if re.match(r"standard_nc\d+s_v3", it) and accelerator == "V100":  # NCv3: PCIe V100 16GB
            return "V100-16GB-PCIe"
        if "h100" in it and not it.startswith("standard_nd"):  # NCads_H100_v5 etc.: NVL cards
            return None
    if "pcie" in it:
        return {"H100": "H100-PCIe", "A100-80GB": "A100-80GB-PCIe", "V100": "V100-16GB-PCIe"}.get(accelerator)
    return SKY_TO_GPU.get(accelerator)


def cloud_of(path: Path) -> str | None:
    """The cloud a catalog file belongs to, from its folder (``…/aws/vms.csv``) or name (``aws.csv``, ``aws-vms.csv``)."""
    candidates = [path.parent.name.lower(), path.stem.lower(), re.split(r"[-_.]", path.stem.lower())[0]]
    return next((c for c in candidates if c in CLOUDS), None)


def file_date(path: Path) -> date:
    """The file's modification day (UTC): when SkyPilot (or the user) fetched the catalog."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date()


@dataclass
class Imported:
    """The result of an import: offerings rows (sweep's columns) and what was left out, and why."""

    rows: list[dict[str, object]] = field(default_factory=list)
    unknown: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # file → accelerator → instance types
    skipped: list[str] = field(default_factory=list)  # one human line per other group of rows left out
    cpu_rows: int = 0


OFFERING_HEADER = ["offering", "provider", "gpu", "gpus_per_node", "price_per_hour", "spot_price_per_hour",
                   "max_nodes", "as_of"]


def _number(cell: str | None) -> float | None:
    try:
        v = float((cell or "").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


Prices = dict[str, dict[str, list[tuple[float, float | None]]]]  # instance type → region → [(price, spot)] by zone


def import_vms(paths: Sequence[Path], problems: Problems, *, cloud: str | None = None, region: str | None = None,
               as_of: str | None = None, max_nodes: int = 8) -> Imported:
    """Read SkyPilot ``vms.csv`` files into offerings rows. Bad files are problems; rows left out are listed."""
    out = Imported()
    seen: dict[str, str] = {}  # offering → file it came from
    for path in paths:
        label = str(path)
        provider = cloud or cloud_of(path)
        if provider is None:
            problems.add(label, f"cannot tell the cloud from the file's name or folder (pass --cloud; known: "
                                f"{', '.join(CLOUDS)})")
            continue
        read = _read_vms(path, as_of, problems)
        if read is None:
            continue
        stamp, reader = read
        prices, gpus = _gpu_prices(reader, label, out)
        for it, by_region in sorted(prices.items()):
            acc, count = gpus[it]
            gpu = gpu_of(acc, provider, it)
            if gpu is None:
                key = f"{acc} NVL" if "nvl" in it.lower() or (provider == "azure" and acc == "H100") else acc
                out.unknown.setdefault(label, {}).setdefault(key, set()).add(it)
                continue
            if region is not None:
                if region not in by_region:
                    continue
                reg = region
            else:  # the cheapest region's on-demand price; ties → alphabetical, so the result is stable
                reg = min(by_region, key=lambda g: (min(p for p, _ in by_region[g]), g))
            name = f"{provider}-{it}"
            if name in seen:
                problems.add(label, f"instance type {it!r} is also in {seen[name]} (one file per cloud)")
                continue
            seen[name] = label
            out.rows.append(_offering_row(name, provider, gpu, int(count), by_region[reg], max_nodes,
                                          f"{stamp} SkyPilot catalog {path.parent.name}/{path.name}, {provider} {reg}"
                                          f"{' (chosen region)' if region else ' (cheapest region)'}"))
    if region is not None and not out.rows and not problems:
        problems.add("--region", f"no GPU instance of a known accelerator is offered in region {region!r}")
    return out


def _read_vms(path: Path, as_of: str | None, problems: Problems) -> tuple[str, csv.DictReader] | None:
    """(the as-of stamp, the rows) of a vms.csv with SkyPilot's columns, or None after adding a problem."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        stamp = as_of or file_date(path).isoformat()
    except FileNotFoundError:
        problems.add(label, "file not found")
        return None
    except (OSError, UnicodeDecodeError) as e:
        problems.add(label, f"cannot read file ({e.__class__.__name__})")
        return None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.add(label, f"not a SkyPilot vms.csv: missing column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} (expected {', '.join(KNOWN_COLUMNS[:10])})")
        return None
    return stamp, reader


def _gpu_prices(reader: csv.DictReader, label: str, out: Imported) -> tuple[Prices, dict[str, tuple[str, float]]]:
    """(prices by instance type and region, instance type → (accelerator, count)) of the GPU rows;
    rows left out are counted or listed in ``out``."""
    prices: Prices = {}
    gpus: dict[str, tuple[str, float]] = {}
    bad_rows = 0
    for i, r in enumerate(reader, start=2):
        acc = (r.get("AcceleratorName") or "").strip()
        it = (r.get("InstanceType") or "").strip()
        if not acc:
            out.cpu_rows += 1
            continue
        count = _number(r.get("AcceleratorCount"))
        price = _number(r.get("Price"))
        spot = _number(r.get("SpotPrice"))
        reg = (r.get("Region") or "").strip()
        if not it:
            out.skipped.append(f"{label}:{i}: {acc} without an instance type (GCP prices attachable GPUs "
                               "apart from host VMs; pairing them is not supported)")
            continue
        if count is None or count <= 0 or count != int(count):
            out.skipped.append(f"{label}:{i}: {it}: AcceleratorCount {r.get('AcceleratorCount')!r} is not a "
                               "whole number of GPUs")
            continue
        if price is None or price <= 0:
            bad_rows += 1  # unpriced in this region (SkyPilot leaves Price empty there)
            continue
        gpus.setdefault(it, (acc, count))
        prices.setdefault(it, {}).setdefault(reg, []).append((price, spot if spot and spot > 0 else None))
    if bad_rows:
        out.skipped.append(f"{label}: {bad_rows} GPU row(s) without a price left out")
    return prices, gpus


def _offering_row(name: str, provider: str, gpu: str, gpus_per_node: int, zone_prices: list[tuple[float, float | None]],
                  max_nodes: int, source: str) -> dict[str, object]:
    """An offerings row: the region's cheapest zone price, on demand and spot (spot = on-demand if none)."""
    price = min(p for p, _ in zone_prices)
    spots = [s for _, s in zone_prices if s is not None]
    return {
        "offering": name, "provider": provider, "gpu": gpu, "gpus_per_node": gpus_per_node,
        "price_per_hour": round(price, 4), "spot_price_per_hour": round(min(spots), 4) if spots else "",
        "max_nodes": max_nodes,
        "as_of": f"{source}{'' if spots else '; no spot price listed so spot = on-demand'}",
    }


def unknown_lines(imported: Imported) -> list[str]:
    """One stderr line per accelerator left out because it is not in the GPU catalog."""
    lines = []
    for label, accs in imported.unknown.items():
        for acc, types in sorted(accs.items()):
            shown = ", ".join(sorted(types)[:4]) + (", …" if len(types) > 4 else "")
            lines.append(f"skipped: {label}: accelerator {acc!r} is not in the GPU catalog "
                         f"({len(types)} instance type{'s' if len(types) != 1 else ''}: {shown})")
    return lines


def write_offerings(rows: Iterable[dict[str, object]], out: Path) -> None:
    """Write an offerings CSV atomically (a hidden temporary name in the same folder, then rename)."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=OFFERING_HEADER, lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
